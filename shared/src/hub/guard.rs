//! The hub's guard against hostile peers ([`HubLimits`]):
//!
//! - **publish limit**: a token bucket per author, and one per neighbour that delivers messages
//!   (so that a peer signing each batch with a new key is limited all the same). A message over
//!   either is neither forwarded nor filed (gossipsub is told to ignore it); a chat message over
//!   it (not a join, presence or leave: an honest peer rejoining many rooms at once sends many)
//!   costs the neighbour that delivered it one point of application score; the penalty fades
//!   ([`PENALTY_KEPT_PER_SEC`]).
//! - **peer scoring**: gossipsub scores every neighbour (that application score, invalid
//!   messages such as bad signatures, broken promises). Below [`GRAYLIST_THRESHOLD`] everything
//!   it sends is dropped unread; at the next tick it is disconnected and refused for
//!   [`HubLimits::ban`]. Until then it is forwarded its rooms' messages whatever its score:
//!   every peer is an explicit gossipsub peer of the hub (`hub::connections`), which gossipsub
//!   does not hold to the lower thresholds.
//! - **rooms**: the rooms the hub follows because one peer, or the peers of one IP address,
//!   subscribed first are bounded, so that throwaway identities cannot take them all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use libp2p::core::multiaddr::Protocol;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::{Multiaddr, PeerId, Swarm};

use super::limits::HubLimits;
use crate::behaviour::{Behaviour, Extension};

/// Below this score a neighbour gets no gossip (IHAVE/IWANT) from the hub, which gossips to
/// nobody anyway (its peers are explicit ones).
pub const GOSSIP_THRESHOLD: f64 = -10.0;
/// Below this score the hub would publish nothing to a neighbour; it publishes nothing of its
/// own, and forwards to explicit peers whatever their score. Gossipsub needs it between the
/// two others.
pub const PUBLISH_THRESHOLD: f64 = -20.0;
/// Below this score everything a neighbour sends is dropped unread, and at the next tick it is
/// disconnected and refused for a while.
pub const GRAYLIST_THRESHOLD: f64 = -40.0;
/// Application score a message over the publish limit costs its author.
const PENALTY_PER_MESSAGE: f64 = 1.0;
/// Share of a penalty still held after a second.
pub const PENALTY_KEPT_PER_SEC: f64 = 0.9;
/// Weight of a message that fails gossipsub's checks (a bad signature), squared per topic.
const INVALID_MESSAGE_WEIGHT: f64 = -10.0;
/// Authors tracked at once; beyond, an author not tracked is limited by its neighbour's bucket
/// alone.
const MAX_TRACKED: usize = 100_000;

/// The peer scoring a hub runs: only what a chat hub can judge (the application score, invalid
/// messages per room, gossip promises). Scores for mesh delivery rates are off: a browser with
/// one quiet member is no worse a neighbour. IP colocation is off too: the per-IP limits are
/// the hub's own, fit for an office behind one NAT.
pub fn score_params() -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let params = gossipsub::PeerScoreParams {
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: GOSSIP_THRESHOLD,
        publish_threshold: PUBLISH_THRESHOLD,
        graylist_threshold: GRAYLIST_THRESHOLD,
        ..Default::default()
    };
    (params, thresholds)
}

/// A room's scoring: invalid messages only.
pub fn room_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: INVALID_MESSAGE_WEIGHT,
        invalid_message_deliveries_decay: 0.5,
        ..Default::default()
    }
}

/// One author's (or neighbour's) allowance.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    penalty: f64,
    /// Filled at the relay allowance.
    relay: bool,
}

/// Whose allowance a bucket is filled at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowance {
    /// The author of a message.
    Author,
    /// The neighbour that delivered it: a peer.
    Neighbour,
    /// The neighbour that delivered it: a relay of the network.
    Relay,
}

/// What the buckets said of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed,
    /// The neighbour that delivered it is over its allowance.
    NeighbourOver,
    /// Its author is.
    AuthorOver,
}

/// Who asked first for a room the hub follows.
#[derive(Debug, Clone, Copy)]
struct Owner {
    peer: PeerId,
    ip: Option<IpAddr>,
}

/// The guard's state.
#[derive(Debug)]
pub struct Guard {
    limits: HubLimits,
    buckets: HashMap<PeerId, Bucket>,
    banned: HashMap<PeerId, Instant>,
    ips: HashMap<PeerId, IpAddr>,
    owners: HashMap<String, Owner>,
    rooms_by_peer: HashMap<PeerId, usize>,
    rooms_by_ip: HashMap<IpAddr, usize>,
    /// Messages forwarded (and filed).
    pub admitted: u64,
    /// Messages not forwarded for being over the limit.
    pub over_limit: u64,
    /// Peers disconnected for their score.
    pub disconnected: u64,
    /// Rooms not followed for a per-peer or per-IP limit.
    pub rooms_refused: u64,
}

/// The address a connection came from, as the per-IP limits count it, if it has one (not a
/// relayed circuit, not memory): an IPv4 address, or the /64 network of an IPv6 one (whoever
/// has one IPv6 address usually has its whole /64).
pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    if crate::addr::is_relayed(addr) {
        return None;
    }
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => {
            let network = u128::from(ip) & !((1u128 << 64) - 1);
            Some(IpAddr::V6(std::net::Ipv6Addr::from(network)))
        }
        _ => None,
    })
}

impl Guard {
    /// A guard with these limits.
    pub fn new(limits: HubLimits) -> Self {
        Self {
            limits,
            buckets: HashMap::new(),
            banned: HashMap::new(),
            ips: HashMap::new(),
            owners: HashMap::new(),
            rooms_by_peer: HashMap::new(),
            rooms_by_ip: HashMap::new(),
            admitted: 0,
            over_limit: 0,
            disconnected: 0,
            rooms_refused: 0,
        }
    }

    /// Decides whether a room message of `author`, delivered by the neighbour `source` (a relay of
    /// the network when `relay`), is forwarded (and filed), tells gossipsub, and, when it is over
    /// a limit and `penalise` says so (asked only then), charges the neighbour. A relay is
    /// charged only for going over its own allowance, never for an author it forwards.
    #[allow(clippy::too_many_arguments)]
    pub fn admit<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        author: PeerId,
        id: &MessageId,
        source: &PeerId,
        relay: bool,
        penalise: impl FnOnce() -> bool,
        now: Instant,
    ) -> bool {
        let verdict = self.allow(author, *source, relay, now);
        let allowed = verdict == Verdict::Allowed;
        let acceptance = if allowed {
            MessageAcceptance::Accept
        } else {
            MessageAcceptance::Ignore
        };
        let gossipsub = &mut swarm.behaviour_mut().gossipsub;
        gossipsub.report_message_validation_result(id, source, acceptance);
        if allowed {
            self.admitted += 1;
        } else {
            self.over_limit += 1;
            // The neighbour pays: it is the one gossipsub can graylist and the relay can ban.
            let pays = !relay || verdict == Verdict::NeighbourOver;
            if let Some(bucket) = self.buckets.get_mut(source).filter(|_| pays && penalise()) {
                bucket.penalty += PENALTY_PER_MESSAGE;
                gossipsub.set_application_score(source, -bucket.penalty);
            }
            if self.over_limit.is_power_of_two() {
                tracing::warn!(%author, %source, relay, over_limit = self.over_limit, "room messages over the publish limit dropped");
            }
        }
        allowed
    }

    /// Whether a message of `author` delivered by `source` is within both their buckets. The
    /// neighbour's first: a key made for each batch does not escape it. A relay of the network
    /// (`relay`) forwards the rooms of all its peers: its bucket is the relay allowance.
    fn allow(&mut self, author: PeerId, source: PeerId, relay: bool, now: Instant) -> Verdict {
        let neighbour = if relay {
            Allowance::Relay
        } else {
            Allowance::Neighbour
        };
        if !self.take_token(source, now, neighbour) {
            Verdict::NeighbourOver
        } else if author != source && !self.take_token(author, now, Allowance::Author) {
            Verdict::AuthorOver
        } else {
            Verdict::Allowed
        }
    }

    /// Takes one message's token from `peer`'s bucket; `false` when it is empty. A neighbour is
    /// always tracked (connections bound how many there are); an author that is not one only
    /// while fewer than [`MAX_TRACKED`] are.
    fn take_token(&mut self, peer: PeerId, now: Instant, allowance: Allowance) -> bool {
        let (rate, burst) = self.allowance(allowance);
        if rate == 0.0 {
            return true;
        }
        let always = allowance != Allowance::Author;
        if !always && !self.buckets.contains_key(&peer) && self.buckets.len() >= MAX_TRACKED {
            return true; // more authors than tracked: their neighbours' buckets limit them
        }
        let relay = allowance == Allowance::Relay;
        let bucket = self.buckets.entry(peer).or_insert(Bucket {
            tokens: burst,
            at: now,
            penalty: 0.0,
            relay,
        });
        if bucket.relay != relay {
            // A peer taken for a relay since (or no longer): its bucket starts afresh.
            *bucket = Bucket {
                tokens: burst,
                at: now,
                penalty: bucket.penalty,
                relay,
            };
        }
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Rate per second (0: no limit) and burst of an allowance.
    fn allowance(&self, allowance: Allowance) -> (f64, f64) {
        let (rate, burst) = match allowance {
            Allowance::Relay => (
                self.limits.relay_publish_per_sec,
                self.limits.relay_publish_burst,
            ),
            Allowance::Author | Allowance::Neighbour => {
                (self.limits.publish_per_sec, self.limits.publish_burst)
            }
        };
        (f64::from(rate), f64::from(burst.max(1)))
    }

    /// Every second: neighbours scored at or below [`GRAYLIST_THRESHOLD`] are disconnected and
    /// refused, penalties fade, bans end, idle buckets are forgotten.
    pub fn tick<X: Extension>(&mut self, swarm: &mut Swarm<Behaviour<X>>, now: Instant) {
        // Judged before the penalties fade: a graylisted peer sends nothing more to count.
        let graylisted: Vec<(PeerId, f64)> = swarm
            .connected_peers()
            .filter_map(|peer| {
                let score = swarm.behaviour().gossipsub.peer_score(peer)?;
                (score <= GRAYLIST_THRESHOLD).then_some((*peer, score))
            })
            .collect();
        for (peer, score) in graylisted {
            self.ban(swarm, peer, score, now);
        }
        let client = self.allowance(Allowance::Neighbour);
        let relay = self.allowance(Allowance::Relay);
        self.buckets.retain(|author, bucket| {
            let (rate, full) = if bucket.relay { relay } else { client };
            if bucket.penalty > 0.0 {
                bucket.penalty *= PENALTY_KEPT_PER_SEC;
                if bucket.penalty < 0.5 {
                    bucket.penalty = 0.0;
                }
                swarm
                    .behaviour_mut()
                    .gossipsub
                    .set_application_score(author, -bucket.penalty);
            }
            let idle = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.penalty > 0.0 || bucket.tokens + idle * rate < full
        });
        let ended: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| now >= **until)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in ended {
            self.banned.remove(&peer);
            swarm
                .behaviour_mut()
                .gossipsub
                .remove_blacklisted_peer(&peer);
            tracing::info!(%peer, "ban ended");
        }
    }

    fn ban<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        peer: PeerId,
        score: f64,
        now: Instant,
    ) {
        self.disconnected += 1;
        self.banned.insert(peer, now + self.limits.ban);
        swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
        let _ = swarm.disconnect_peer_id(peer);
        tracing::warn!(
            %peer,
            score,
            ban_secs = self.limits.ban.as_secs(),
            ip = ?self.ips.get(&peer),
            "peer disconnected for its gossip score (flooding or invalid messages); refused for a while"
        );
    }

    /// A connection from `peer` opened at `addr`: `false` when the peer is refused (banned).
    pub fn on_connected(&mut self, peer: PeerId, addr: &Multiaddr, now: Instant) -> bool {
        if self.banned.get(&peer).is_some_and(|until| now < *until) {
            return false;
        }
        if let Some(ip) = ip_of(addr) {
            self.ips.insert(peer, ip);
        }
        true
    }

    /// The address (an IPv6 /64) `peer` is connected from, if known.
    pub fn ip(&self, peer: &PeerId) -> Option<IpAddr> {
        self.ips.get(peer).copied()
    }

    /// `peer`'s last connection closed.
    pub fn on_gone(&mut self, peer: &PeerId) {
        self.ips.remove(peer);
    }

    /// Whether the hub may follow a new room because `peer` subscribed to it.
    pub fn may_follow(&mut self, peer: PeerId) -> bool {
        let by_peer = self.rooms_by_peer.get(&peer).copied().unwrap_or(0);
        let ip = self.ips.get(&peer).copied();
        let by_ip = ip
            .and_then(|ip| self.rooms_by_ip.get(&ip).copied())
            .unwrap_or(0);
        let ok = by_peer < self.limits.rooms_per_peer && by_ip < self.limits.rooms_per_ip;
        if !ok {
            self.rooms_refused += 1;
            if self.rooms_refused.is_power_of_two() {
                tracing::warn!(%peer, ?ip, by_peer, by_ip, refused = self.rooms_refused, "new rooms refused: per-peer or per-IP limit");
            }
        }
        ok
    }

    /// The hub follows `room` because `peer` subscribed first.
    pub fn followed(&mut self, room: &str, peer: PeerId) {
        let ip = self.ips.get(&peer).copied();
        *self.rooms_by_peer.entry(peer).or_default() += 1;
        if let Some(ip) = ip {
            *self.rooms_by_ip.entry(ip).or_default() += 1;
        }
        self.owners.insert(room.to_owned(), Owner { peer, ip });
    }

    /// The hub left `room`.
    pub fn unfollowed(&mut self, room: &str) {
        let Some(owner) = self.owners.remove(room) else {
            return;
        };
        if let Some(count) = self.rooms_by_peer.get_mut(&owner.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.rooms_by_peer.remove(&owner.peer);
            }
        }
        if let Some(ip) = owner.ip {
            if let Some(count) = self.rooms_by_ip.get_mut(&ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.rooms_by_ip.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut guard = Guard::new(HubLimits {
            publish_per_sec: 10,
            publish_burst: 5,
            ..HubLimits::default()
        });
        let author = PeerId::random();
        let t0 = Instant::now();
        let allowed = (0..8)
            .filter(|_| guard.take_token(author, t0, Allowance::Neighbour))
            .count();
        assert_eq!(allowed, 5, "the burst");
        let later = t0 + std::time::Duration::from_millis(300);
        let allowed = (0..8)
            .filter(|_| guard.take_token(author, later, Allowance::Neighbour))
            .count();
        assert_eq!(allowed, 3, "0.3 s at 10 per second");
        let other = PeerId::random();
        assert!(
            guard.take_token(other, later, Allowance::Neighbour),
            "authors do not share a bucket"
        );
    }

    #[test]
    fn a_neighbour_signing_each_message_with_a_new_key_is_limited_all_the_same() {
        let mut guard = Guard::new(HubLimits {
            publish_per_sec: 10,
            publish_burst: 5,
            ..HubLimits::default()
        });
        let (neighbour, now) = (PeerId::random(), Instant::now());
        let allowed = (0..100)
            .filter(|_| guard.allow(PeerId::random(), neighbour, false, now) == Verdict::Allowed)
            .count();
        assert_eq!(allowed, 5, "the neighbour's burst, whatever the keys");
        let honest = PeerId::random();
        assert_eq!(
            guard.allow(honest, honest, false, now),
            Verdict::Allowed,
            "another neighbour is not affected"
        );
    }

    #[test]
    fn a_relay_forwards_many_authors_and_each_author_keeps_its_own_limit() {
        let mut guard = Guard::new(HubLimits {
            publish_per_sec: 10,
            publish_burst: 5,
            relay_publish_per_sec: 100,
            relay_publish_burst: 60,
            ..HubLimits::default()
        });
        let (relay, now) = (PeerId::random(), Instant::now());
        let authors: Vec<PeerId> = (0..10).map(|_| PeerId::random()).collect();
        let verdicts: Vec<Verdict> = (0..6)
            .flat_map(|_| {
                authors
                    .iter()
                    .map(|a| guard.allow(*a, relay, true, now))
                    .collect::<Vec<_>>()
            })
            .collect();
        let allowed = verdicts.iter().filter(|v| **v == Verdict::Allowed).count();
        assert_eq!(
            allowed, 50,
            "each author's burst of 5, within the relay's 60"
        );
        assert!(
            verdicts.contains(&Verdict::AuthorOver),
            "the sixth of each author"
        );
        assert_eq!(
            guard.allow(PeerId::random(), relay, true, now),
            Verdict::NeighbourOver,
            "and then the relay's own allowance"
        );
    }

    #[test]
    fn an_ipv6_network_counts_as_one_address() {
        let a: Multiaddr = "/ip6/2001:db8:1:2::1/tcp/1".parse().expect("test setup");
        let b: Multiaddr = "/ip6/2001:db8:1:2:ffff::9/tcp/1"
            .parse()
            .expect("test setup");
        let c: Multiaddr = "/ip6/2001:db8:1:3::1/tcp/1".parse().expect("test setup");
        assert_eq!(ip_of(&a), ip_of(&b));
        assert_ne!(ip_of(&a), ip_of(&c));
    }

    #[test]
    fn rooms_are_bounded_per_peer_and_per_ip() {
        let mut guard = Guard::new(HubLimits {
            rooms_per_peer: 2,
            rooms_per_ip: 3,
            ..HubLimits::default()
        });
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().expect("test setup");
        let now = Instant::now();
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        for peer in &peers {
            assert!(guard.on_connected(*peer, &addr, now));
        }
        assert!(guard.may_follow(peers[0]));
        guard.followed("a", peers[0]);
        guard.followed("b", peers[0]);
        assert!(!guard.may_follow(peers[0]), "per peer");
        assert!(guard.may_follow(peers[1]));
        guard.followed("c", peers[1]);
        assert!(!guard.may_follow(peers[2]), "per IP");
        guard.unfollowed("a");
        assert!(guard.may_follow(peers[2]), "a room left frees its place");
        let elsewhere: Multiaddr = "/ip6/::1/tcp/1".parse().expect("test setup");
        let stranger = PeerId::random();
        guard.on_connected(stranger, &elsewhere, now);
        guard.followed("b2", peers[1]);
        assert!(
            guard.may_follow(stranger),
            "another address has its own share"
        );
    }
}
