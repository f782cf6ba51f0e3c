//! The operator's monitor page (`/` on `--admin-addr`): the relay's figures over the last
//! minutes, sampled every [`SAMPLE_EVERY`] from its metrics, with its rooms, its latest events,
//! its addresses and its uptime, served as `/monitor.json` to the page, which polls it.
//!
//! The page itself (`monitor/`: HTML, script, style) has no dependencies: its charts are SVG
//! drawn by its own script.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use p2p_chat_shared::addr::TRANSPORTS;
use p2p_chat_shared::native::metrics::{CoreMetrics, Recent, RoomMembers};
use p2p_chat_shared::text::now_unix_ms;
use serde::Serialize;

use super::store::StoreMetrics;

/// How often the page's figures are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Samples kept: ten minutes of them. The page shows them all.
pub const SAMPLES: usize = 600;
/// Most addresses listed (the relay's own listen and external addresses: a handful).
const MAX_ADDRS: usize = 32;

/// One sample of the figures.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// When (unix ms).
    pub at_ms: u64,
    /// Open connections by transport, in the order of `transports` in [`Snapshot`].
    pub connections: Vec<i64>,
    /// Peers with an open connection.
    pub peers: i64,
    /// Room messages forwarded in all (the page shows the rate).
    pub forwarded: u64,
    /// Room messages over the publish limit in all.
    pub over_limit: u64,
    /// Reservations held.
    pub reservations: i64,
    /// Circuits open.
    pub circuits: i64,
    /// Bytes of content in the store.
    pub store_bytes: u64,
}

/// What the store holds, as its metrics last saw it.
#[derive(Debug, Clone, Serialize)]
pub struct StoreFigures {
    /// Bytes of room messages and waiting DMs.
    pub content_bytes: u64,
    /// The byte cap.
    pub max_bytes: u64,
    /// Room messages held.
    pub room_messages: u64,
    /// Sealed DMs waiting.
    pub dms_waiting: u64,
}

/// `/monitor.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The relay's peer id.
    pub peer_id: String,
    /// Its version.
    pub version: &'static str,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// Its addresses (listen and external), with `/p2p`.
    pub addrs: Vec<String>,
    /// The transports, in the order of every sample's `connections`.
    pub transports: &'static [&'static str],
    /// Samples newer than the `since` asked for (all of them without one), oldest first.
    pub samples: Vec<Sample>,
    /// The busiest rooms, with their members.
    pub rooms: Vec<RoomMembers>,
    /// Rooms followed in all.
    pub rooms_total: i64,
    /// The latest events, oldest first.
    pub events: Vec<Recent>,
    /// The store, if the relay has one.
    pub store: Option<StoreFigures>,
}

/// The monitor's state: shared by the sampler and the HTTP handlers.
#[derive(Clone)]
pub struct Monitor {
    relay: PeerId,
    started: Instant,
    metrics: CoreMetrics,
    store: Option<StoreMetrics>,
    addrs: Arc<RwLock<Vec<Multiaddr>>>,
    samples: Arc<Mutex<VecDeque<Sample>>>,
}

impl Monitor {
    /// A monitor of the relay `relay`, reading `metrics` and the store's.
    pub fn new(relay: PeerId, metrics: CoreMetrics, store: Option<StoreMetrics>) -> Self {
        Self {
            relay,
            started: Instant::now(),
            metrics,
            store,
            addrs: Arc::default(),
            samples: Arc::default(),
        }
    }

    /// The metrics it reads (and `/metrics` exposes).
    pub fn metrics(&self) -> &CoreMetrics {
        &self.metrics
    }

    /// Lists one of the relay's addresses.
    pub fn add_addr(&self, addr: Multiaddr) {
        let mut addrs = self.addrs.write().unwrap_or_else(PoisonError::into_inner);
        if !addrs.contains(&addr) && addrs.len() < MAX_ADDRS {
            addrs.push(addr);
        }
    }

    /// Takes a sample now.
    pub fn sample(&self) {
        let figures = self.metrics.figures();
        let sample = Sample {
            at_ms: now_unix_ms(),
            connections: figures.connections.iter().map(|(_, n)| *n).collect(),
            peers: figures.peers,
            forwarded: figures.forwarded,
            over_limit: figures.over_limit,
            reservations: figures.reservations,
            circuits: figures.circuits,
            store_bytes: self.store.as_ref().map_or(0, StoreMetrics::content_bytes),
        };
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() >= SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Samples every [`SAMPLE_EVERY`] on a task of its own, for as long as the runtime runs.
    pub fn spawn_sampler(&self) {
        let monitor = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SAMPLE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                monitor.sample();
            }
        });
    }

    /// What the page shows, with the samples taken after `since` (unix ms).
    pub fn snapshot(&self, since: Option<u64>) -> Snapshot {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let samples = samples
            .iter()
            .filter(|s| since.is_none_or(|since| s.at_ms > since))
            .cloned()
            .collect();
        let addrs = self.addrs.read().unwrap_or_else(PoisonError::into_inner);
        let store = self.store.as_ref().map(|store| {
            let (room_messages, dms_waiting) = store.held_counts();
            StoreFigures {
                content_bytes: store.content_bytes(),
                max_bytes: store.max_bytes(),
                room_messages,
                dms_waiting,
            }
        });
        Snapshot {
            peer_id: self.relay.to_string(),
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: self.started.elapsed().as_secs(),
            addrs: addrs.iter().map(ToString::to_string).collect(),
            transports: &TRANSPORTS,
            samples,
            rooms: self.metrics.busiest_rooms(),
            rooms_total: self.metrics.figures().rooms,
            events: self.metrics.recent(),
            store,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_kept_for_ten_minutes_and_handed_out_after_since() {
        let metrics = CoreMetrics::new(Default::default());
        let monitor = Monitor::new(PeerId::random(), metrics, None);
        for _ in 0..SAMPLES + 5 {
            monitor.sample();
        }
        let all = monitor.snapshot(None).samples;
        assert_eq!(all.len(), SAMPLES);
        let last = all.last().expect("a sample").at_ms;
        assert!(monitor.snapshot(Some(last)).samples.is_empty());
        let transports = monitor.snapshot(None).transports.len();
        assert!(all.iter().all(|s| s.connections.len() == transports));
    }
}
