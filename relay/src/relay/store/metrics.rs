//! What the store tells Prometheus (`p2p_chat_store_*`, `p2p_chat_history_*`): how much it
//! holds, how long its commits take, and how fast it answers history queries. The store thread
//! records them; the relay serves them at `/metrics` with the chat core's.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// Histogram buckets in seconds, 0.5 ms to about 4 s: a commit waits for an fsync (a few ms on
/// a good disk); a history page is read from memory-mapped pages (well under a ms) unless the
/// queue in front of it is long.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 14)
}

/// The store's metrics. Cheap to clone: every handle shares its value. A default one is
/// registered nowhere (tests).
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    /// Bytes of room messages and waiting DMs held (what the byte cap counts).
    pub(super) content_bytes: Gauge,
    /// The byte cap.
    pub(super) max_bytes: Gauge,
    /// The database file's size on disk.
    pub(super) file_bytes: Gauge,
    /// Room messages held.
    pub(super) room_messages: Gauge,
    /// Sealed DMs waiting for their recipients.
    pub(super) dms_waiting: Gauge,
    /// Room messages filed.
    pub(super) filed: Counter,
    /// How long a write transaction took, commit (and its fsync) included.
    pub(super) commit_seconds: Histogram,
    /// History pages answered.
    pub(super) queries: Counter,
    /// From the store taking a history query off its queue (in a batch, after the batch's
    /// writes) to its answer.
    pub(super) query_seconds: Histogram,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            content_bytes: Gauge::default(),
            max_bytes: Gauge::default(),
            file_bytes: Gauge::default(),
            room_messages: Gauge::default(),
            dms_waiting: Gauge::default(),
            filed: Counter::default(),
            commit_seconds: Histogram::new(latency_buckets()),
            queries: Counter::default(),
            query_seconds: Histogram::new(latency_buckets()),
        }
    }
}

impl StoreMetrics {
    /// Registers them in `registry` under `p2p_chat_`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let ours = registry.sub_registry_with_prefix("p2p_chat");
        let bytes = [
            (
                "store_content",
                "Bytes of room messages and waiting DMs the store holds (what --store-max-bytes caps)",
                &metrics.content_bytes,
            ),
            ("store_max", "The store's byte cap (--store-max-bytes)", &metrics.max_bytes),
            ("store_file", "The store's database file on disk", &metrics.file_bytes),
        ];
        for (name, help, gauge) in bytes {
            ours.register_with_unit(name, help, Unit::Bytes, gauge.clone());
        }
        ours.register(
            "store_room_messages",
            "Room messages the store holds",
            metrics.room_messages.clone(),
        );
        ours.register(
            "store_dms_waiting",
            "Sealed direct messages waiting in the mailbox for their recipients",
            metrics.dms_waiting.clone(),
        );
        ours.register(
            "store_filed_messages",
            "Room messages filed in the store",
            metrics.filed.clone(),
        );
        ours.register_with_unit(
            "store_commit",
            "How long a write transaction of the store took, its commit and fsync included",
            Unit::Seconds,
            metrics.commit_seconds.clone(),
        );
        ours.register(
            "history_queries",
            "History pages the store answered",
            metrics.queries.clone(),
        );
        ours.register_with_unit(
            "history_query",
            "How long a history query took, from the store taking it off its queue to its answer \
             (the writes queued with it first)",
            Unit::Seconds,
            metrics.query_seconds.clone(),
        );
        metrics
    }

    /// What the store holds now.
    pub(super) fn set_held(&self, held: Held) {
        let set = |gauge: &Gauge, value: u64| {
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        set(&self.content_bytes, held.content_bytes);
        set(&self.max_bytes, held.max_bytes);
        set(&self.file_bytes, held.file_bytes);
        set(&self.room_messages, held.room_messages);
        set(&self.dms_waiting, held.dms_waiting);
    }

    /// Bytes of content held now, as the last update saw them: for the monitor page.
    pub fn content_bytes(&self) -> u64 {
        u64::try_from(self.content_bytes.get()).unwrap_or(0)
    }

    /// The byte cap: for the monitor page.
    pub fn max_bytes(&self) -> u64 {
        u64::try_from(self.max_bytes.get()).unwrap_or(0)
    }

    /// Room messages and waiting DMs held now: for the monitor page.
    pub fn held_counts(&self) -> (u64, u64) {
        let get = |gauge: &Gauge| u64::try_from(gauge.get()).unwrap_or(0);
        (get(&self.room_messages), get(&self.dms_waiting))
    }
}

/// What the store holds, as measured once a second.
#[derive(Debug, Clone, Copy)]
pub(super) struct Held {
    pub content_bytes: u64,
    pub max_bytes: u64,
    pub file_bytes: u64,
    pub room_messages: u64,
    pub dms_waiting: u64,
}
