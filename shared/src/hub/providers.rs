//! What the relay keeps of the DHT for its peers: provider records (a peer saying it has a file,
//! [`crate::files`]), a bounded number per peer, and no values at all.
//!
//! Kademlia's own store takes whatever any peer sends, up to limits shared by everyone: 1024
//! provider keys in all and 1024 records of up to 64 KiB. One peer could fill the first (no one
//! could announce a file any more) or park 64 MiB in the second. The relay's DHT therefore filters
//! what comes in (`StoreInserts::FilterBoth`, [`crate::dht`]): a record (a value) is never kept,
//! since nothing in p2p-chat stores values; a provider record is kept while its peer has fewer
//! than [`MAX_FILES_PER_PROVIDER`] announced, and for [`PROVIDER_RECORD_TTL`].

use std::collections::HashMap;
use std::time::Duration;

use libp2p::kad::{ProviderRecord, RecordKey};
use libp2p::PeerId;
use web_time::Instant;

/// Most files one peer may have announced at the relay at once.
pub const MAX_FILES_PER_PROVIDER: usize = 64;

/// Most provider keys the relay's DHT holds in all (Kademlia's store refuses more).
pub const MAX_PROVIDED_KEYS: usize = 16_384;

/// How long a provider record lives unless renewed (peers renew theirs every 12 hours, as
/// Kademlia does by default).
pub const PROVIDER_RECORD_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The provider records the relay holds, by peer.
#[derive(Debug, Default)]
pub struct ProviderRecords {
    by_peer: HashMap<PeerId, HashMap<RecordKey, Instant>>,
    /// Records refused for their peer's limit.
    pub refused: u64,
}

impl ProviderRecords {
    /// Whether to keep `record` (an announcement renewed counts once).
    pub fn admit(&mut self, record: &ProviderRecord, now: Instant) -> bool {
        let keys = self.by_peer.entry(record.provider).or_default();
        keys.retain(|_, at| now.duration_since(*at) < PROVIDER_RECORD_TTL);
        if keys.contains_key(&record.key) || keys.len() < MAX_FILES_PER_PROVIDER {
            keys.insert(record.key.clone(), now);
            return true;
        }
        self.refused += 1;
        // Said once per peer and burst, not once per record: a flood must not flood the log.
        if self.refused.is_power_of_two() {
            tracing::info!(
                peer = %record.provider,
                refused = self.refused,
                "provider records refused: the peer announces more than {MAX_FILES_PER_PROVIDER} files"
            );
        }
        false
    }

    /// Forgets records past their lifetime.
    pub fn prune(&mut self, now: Instant) {
        self.by_peer.retain(|_, keys| {
            keys.retain(|_, at| now.duration_since(*at) < PROVIDER_RECORD_TTL);
            !keys.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(peer: PeerId, n: u32) -> ProviderRecord {
        ProviderRecord::new(RecordKey::new(&n.to_be_bytes()), peer, Vec::new())
    }

    #[test]
    fn one_peer_announces_a_bounded_number_of_files_and_renewals_count_once() {
        let (mut records, now) = (ProviderRecords::default(), Instant::now());
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        let kept = (0..1000)
            .filter(|n| records.admit(&record(flooder, *n), now))
            .count();
        assert_eq!(kept, MAX_FILES_PER_PROVIDER);
        assert_eq!(records.refused, 1000 - MAX_FILES_PER_PROVIDER as u64);
        assert!(records.admit(&record(flooder, 0), now), "a renewal is kept");
        assert!(
            records.admit(&record(honest, 5), now),
            "others are unaffected"
        );
        // A day later the flooder's records are gone, and so is its count.
        let later = now + PROVIDER_RECORD_TTL;
        records.prune(later);
        assert!(records.admit(&record(flooder, 2000), later));
    }
}
