//! What the relay keeps of the DHT for its peers: provider records (a peer saying it has a file,
//! [`crate::files`]), a bounded number per peer, and no values at all.
//!
//! Kademlia's own store takes whatever any peer sends, up to limits shared by everyone: 1024
//! provider keys in all and 1024 records of up to 64 KiB. One peer could fill the first (no one
//! could announce a file any more) or park 64 MiB in the second. The relay's DHT therefore filters
//! what comes in (`StoreInserts::FilterBoth`, [`crate::dht`]): a record (a value) is never kept,
//! since nothing in p2p-chat stores values; a provider record is kept while its peer has fewer
//! than [`MAX_FILES_PER_PROVIDER`] announced and the peers of its IP address fewer than
//! [`MAX_FILES_PER_IP`], with at most [`MAX_PROVIDER_ADDRS`] addresses, for
//! [`PROVIDER_RECORD_TTL`] (then it is taken out of Kademlia's store too, which on its own
//! forgets an expired record only when someone asks for its key).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use libp2p::kad::{ProviderRecord, RecordKey};
use libp2p::PeerId;
use web_time::Instant;

/// Most files one peer may have announced at the relay at once.
pub const MAX_FILES_PER_PROVIDER: usize = 64;

/// Most files the peers of one IP address (an IPv6 /64) may have announced at once; peers
/// whose address the relay does not know count as one address.
pub const MAX_FILES_PER_IP: usize = 256;

/// Most addresses kept with a provider record (a peer chooses them, and their size).
pub const MAX_PROVIDER_ADDRS: usize = 4;

/// Most provider keys the relay's DHT holds in all (Kademlia's store refuses more).
pub const MAX_PROVIDED_KEYS: usize = 16_384;

/// How long a provider record lives unless renewed (peers renew theirs every 12 hours, as
/// Kademlia does by default).
pub const PROVIDER_RECORD_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The provider records the relay holds, by peer.
#[derive(Debug, Default)]
pub struct ProviderRecords {
    by_peer: HashMap<PeerId, Announced>,
    /// Records by the address of the peers that announced them (peers whose address the relay
    /// does not know share one count).
    by_ip: HashMap<Option<IpAddr>, usize>,
    /// Records refused for their peer's or address's limit.
    pub refused: u64,
}

/// What one peer announced, and from where.
#[derive(Debug, Default)]
struct Announced {
    ip: Option<IpAddr>,
    keys: HashMap<RecordKey, Instant>,
}

impl ProviderRecords {
    /// Whether to keep `record` from a peer at `ip` (an announcement renewed counts once).
    pub fn admit(&mut self, record: &ProviderRecord, ip: Option<IpAddr>, now: Instant) -> bool {
        // The key relays announce themselves under takes one relay per address (and none over a
        // circuit): throwaway identities cannot fill it (Kademlia keeps 20 providers a key).
        if record.key.as_ref() == super::peering::RELAYS_KEY {
            let taken = ip.is_none()
                || self.by_peer.iter().any(|(peer, announced)| {
                    *peer != record.provider
                        && announced.ip == ip
                        && announced.keys.contains_key(&record.key)
                });
            if taken {
                self.refused += 1;
                tracing::info!(peer = %record.provider, ?ip, "relay announcement refused: one relay per address");
                return false;
            }
        }
        let announced = self.by_peer.entry(record.provider).or_default();
        let renewal = announced.keys.contains_key(&record.key);
        let by_ip = self.by_ip.get(&ip).copied().unwrap_or(0);
        if !renewal && (announced.keys.len() >= MAX_FILES_PER_PROVIDER || by_ip >= MAX_FILES_PER_IP)
        {
            if announced.keys.is_empty() {
                self.by_peer.remove(&record.provider);
            }
            self.refused += 1;
            // Said once per burst, not once per record: a flood must not flood the log.
            if self.refused.is_power_of_two() {
                tracing::info!(
                    peer = %record.provider,
                    ?ip,
                    refused = self.refused,
                    "provider records refused: over {MAX_FILES_PER_PROVIDER} files per peer or {MAX_FILES_PER_IP} per address"
                );
            }
            return false;
        }
        if announced.keys.is_empty() {
            announced.ip = ip;
        }
        if announced.keys.insert(record.key.clone(), now).is_none() {
            *self.by_ip.entry(announced.ip).or_default() += 1;
        }
        true
    }

    /// Takes back an admitted record that the store then refused.
    pub fn forget(&mut self, peer: &PeerId, key: &RecordKey) {
        let Some(announced) = self.by_peer.get_mut(peer) else {
            return;
        };
        if announced.keys.remove(key).is_some() {
            release(&mut self.by_ip, announced.ip);
        }
        if announced.keys.is_empty() {
            self.by_peer.remove(peer);
        }
    }

    /// Forgets records past their lifetime; returns them, for Kademlia's store to drop too.
    pub fn prune(&mut self, now: Instant) -> Vec<(PeerId, RecordKey)> {
        let mut expired = Vec::new();
        let by_ip = &mut self.by_ip;
        self.by_peer.retain(|peer, announced| {
            announced.keys.retain(|key, at| {
                let live = now.duration_since(*at) < PROVIDER_RECORD_TTL;
                if !live {
                    expired.push((*peer, key.clone()));
                    release(by_ip, announced.ip);
                }
                live
            });
            !announced.keys.is_empty()
        });
        expired
    }
}

/// One record fewer for `ip`.
fn release(by_ip: &mut HashMap<Option<IpAddr>, usize>, ip: Option<IpAddr>) {
    if let Some(count) = by_ip.get_mut(&ip) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            by_ip.remove(&ip);
        }
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
            .filter(|n| records.admit(&record(flooder, *n), None, now))
            .count();
        assert_eq!(kept, MAX_FILES_PER_PROVIDER);
        assert_eq!(records.refused, 1000 - MAX_FILES_PER_PROVIDER as u64);
        assert!(
            records.admit(&record(flooder, 0), None, now),
            "a renewal is kept"
        );
        assert!(
            records.admit(&record(honest, 5), None, now),
            "others are unaffected"
        );
        // A day later the flooder's records are gone (and handed back for Kademlia's store to
        // drop), and so is its count.
        let later = now + PROVIDER_RECORD_TTL;
        assert_eq!(records.prune(later).len(), MAX_FILES_PER_PROVIDER + 1);
        assert!(records.admit(&record(flooder, 2000), None, later));
    }

    #[test]
    fn the_peers_of_one_address_announce_a_bounded_number_of_files() {
        let (mut records, now) = (ProviderRecords::default(), Instant::now());
        let ip: IpAddr = "203.0.113.7".parse().expect("address");
        let peers: Vec<PeerId> = (0..10).map(|_| PeerId::random()).collect();
        let kept: usize = peers
            .iter()
            .map(|peer| {
                (0..100)
                    .filter(|n| records.admit(&record(*peer, *n), Some(ip), now))
                    .count()
            })
            .sum();
        assert_eq!(kept, MAX_FILES_PER_IP);
        let elsewhere = "198.51.100.1".parse().ok();
        assert!(records.admit(&record(PeerId::random(), 1), elsewhere, now));
        // One record taken back frees a place at that address.
        assert!(!records.admit(&record(PeerId::random(), 1), Some(ip), now));
        records.forget(&peers[0], &RecordKey::new(&0u32.to_be_bytes()));
        assert!(records.admit(&record(PeerId::random(), 1), Some(ip), now));
    }
}
