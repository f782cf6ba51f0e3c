//! Relays of one network: a relay keeps a connection to every other relay it knows, so that a
//! room spans them (gossipsub among the relays that follow it) whichever relay each member uses.
//!
//! - **Named relays** (`p2p-chat relay --peer ADDR`) are dialled at start and redialled with
//!   backoff ([`REDIAL_MIN`] doubling to [`REDIAL_MAX`]) for as long as the relay runs.
//! - **Discovered relays**: every relay announces itself in the DHT under [`RELAYS_KEY`] and
//!   looks the key up every [`LOOKUP_EVERY`] (and soon after a relay link comes up), dialling the
//!   relays it finds; a relay that dials us and serves the circuit relay protocol is one too
//!   (not redialled: it dials us). One that cannot be reached [`GIVE_UP_AFTER`] times in a row is
//!   forgotten. At most [`MAX_RELAY_PEERS`] are known, at most [`MAX_RELAYS_PER_IP`] unnamed ones
//!   per address (none over a circuit), so that claiming to be a relay from one address gains no
//!   more than the connections that address may open anyway. [`PeeringConfig::named_only`] turns
//!   discovery off.
//! - A link's backoff starts over only once it has stayed up for [`STABLE_AFTER`]: two relays
//!   that drop each other at once do not redial each other every second.
//!
//! What being a relay changes at the hub: its subscriptions neither make the hub follow a room
//! nor keep one followed (relays would otherwise keep each other in every room forever), it is
//! not a member of any room, and what it forwards is limited by the relay allowance
//! ([`super::HubLimits::relay_publish_per_sec`]) beside each author's own limit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm};

use super::limits::PeeringConfig;
use crate::behaviour::{Behaviour, Extension};
use crate::dht::QueryId;

/// The DHT key under which every relay announces itself (a provider record).
pub const RELAYS_KEY: &[u8] = b"/p2p-chat/relays/1";
/// First wait before redialling a relay; doubled at each failure.
pub const REDIAL_MIN: Duration = Duration::from_secs(1);
/// Longest wait between two dials of a relay.
pub const REDIAL_MAX: Duration = Duration::from_secs(60);
/// How often a relay looks up the others in the DHT.
pub const LOOKUP_EVERY: Duration = Duration::from_secs(60);
/// How often a relay announces itself in the DHT again (the records of a relay that restarted
/// are gone from its own store).
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(10 * 60);
/// Relays known at once, named ones included.
pub const MAX_RELAY_PEERS: usize = 64;
/// Failed dials in a row after which a discovered relay is forgotten (about 8 minutes).
pub const GIVE_UP_AFTER: u32 = 12;
/// Addresses kept per relay.
const MAX_ADDRS: usize = 8;
/// Relays not named by the operator taken from one IP address (an IPv6 /64).
pub const MAX_RELAYS_PER_IP: usize = 2;
/// How long a link must stay up for its backoff to start over.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

/// The protocol only a relay serves: a peer that lists it is a relay.
const HOP: StreamProtocol = StreamProtocol::new("/libp2p/circuit/relay/0.2.0/hop");

/// Reconciliation requests (rounds, pulls, room lists) one relay may send per second, sustained:
/// each costs the store a read of one room. Well above what reconciling every room every minute
/// takes for a few thousand rooms.
pub const SYNC_REQUESTS_PER_SEC: f64 = 50.0;
/// ...and at once.
pub const SYNC_REQUESTS_BURST: f64 = 500.0;

/// One relay we keep a link to.
#[derive(Debug)]
struct Link {
    /// Its reconciliation requests' token bucket: tokens, and when it was filled.
    sync_tokens: (f64, Instant),
    /// Its mail requests' token bucket (the same size, apart: mail never waits on history).
    mail_tokens: (f64, Instant),
    addrs: Vec<Multiaddr>,
    /// Named by the operator: never forgotten.
    named: bool,
    /// Taken for a relay because it dialled us: not redialled, forgotten when it leaves.
    inbound: bool,
    /// The address it connected from, when it was taken for a relay on its word.
    ip: Option<std::net::IpAddr>,
    /// Since when it is connected.
    connected_at: Option<Instant>,
    connected: bool,
    /// Dials since the last link that stayed up [`STABLE_AFTER`] (or since the start).
    failures: u32,
    next_dial: Instant,
}

/// The hub's links to the other relays of its network.
#[derive(Debug)]
pub struct Peering {
    named_only: bool,
    links: HashMap<PeerId, Link>,
    lookup: Option<QueryId>,
    next_lookup: Instant,
    next_announce: Instant,
}

/// How long to wait after `failures` failed dials in a row.
fn backoff(failures: u32) -> Duration {
    REDIAL_MIN
        .saturating_mul(1u32 << failures.min(6))
        .min(REDIAL_MAX)
}

impl Peering {
    /// Links to the relays `config` names (addresses without a peer id are skipped: the relay's
    /// flags refuse them).
    pub fn new(config: &PeeringConfig) -> Self {
        let now = Instant::now();
        let mut links: HashMap<PeerId, Link> = HashMap::new();
        for addr in &config.peers {
            let Some(peer) = crate::addr::peer_at_end(addr) else {
                tracing::warn!(%addr, "relay peer address without /p2p/<peer id>: skipped");
                continue;
            };
            let link = links.entry(peer).or_insert(Link {
                sync_tokens: (SYNC_REQUESTS_BURST, now),
                mail_tokens: (SYNC_REQUESTS_BURST, now),
                addrs: Vec::new(),
                named: true,
                inbound: false,
                ip: None,
                connected_at: None,
                connected: false,
                failures: 0,
                next_dial: now,
            });
            if link.addrs.len() < MAX_ADDRS {
                link.addrs.push(addr.clone());
            }
        }
        Self {
            named_only: config.named_only,
            links,
            lookup: None,
            // Nothing to ask before a relay link is up ([`Self::on_connected`] brings these
            // forward).
            next_lookup: now + LOOKUP_EVERY,
            next_announce: now + ANNOUNCE_EVERY,
        }
    }

    /// Whether `peer` is a relay of the network.
    pub fn is_relay(&self, peer: &PeerId) -> bool {
        self.links.contains_key(peer)
    }

    /// Whether `peer` is a relay the operator named (`--peer`): the only ones a relay exchanges
    /// mail with.
    pub fn is_named(&self, peer: &PeerId) -> bool {
        self.links.get(peer).is_some_and(|l| l.named)
    }

    /// Relays connected now.
    pub fn connected(&self) -> usize {
        self.links.values().filter(|l| l.connected).count()
    }

    /// The relays the operator named (`--peer`) connected now: the ones whose history is taken.
    pub fn connected_named(&self) -> Vec<PeerId> {
        self.links
            .iter()
            .filter(|(_, l)| l.connected && l.named)
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// A connection to `peer` opened.
    pub fn on_connected(&mut self, peer: &PeerId, now: Instant) {
        let Some(link) = self.links.get_mut(peer) else {
            return;
        };
        if !link.connected {
            link.connected = true;
            link.connected_at = Some(now);
            tracing::info!(%peer, named = link.named, "relay peer connected");
            // Announce ourselves and look for the others soon: the DHT has someone to ask.
            self.next_announce = self.next_announce.min(now + Duration::from_secs(1));
            self.next_lookup = self.next_lookup.min(now + Duration::from_secs(2));
        }
    }

    /// The last connection to `peer` closed.
    pub fn on_gone(&mut self, peer: &PeerId, now: Instant) {
        let Some(link) = self.links.get_mut(peer) else {
            return;
        };
        if link.inbound && !link.named {
            tracing::info!(%peer, "relay peer left (it dialled us: not redialled)");
            self.links.remove(peer);
            return;
        }
        link.connected = false;
        let stable = link
            .connected_at
            .take()
            .is_some_and(|at| now.saturating_duration_since(at) >= STABLE_AFTER);
        if stable {
            link.failures = 0;
        }
        let wait = backoff(link.failures);
        link.next_dial = now + wait;
        tracing::warn!(%peer, redial_in_ms = wait.as_millis() as u64, "relay peer lost; redialling");
    }

    /// Identify told us what `peer` (connected from `ip`, `None` over a circuit) serves and
    /// where it listens: `true` when it is newly taken for a relay (it serves circuit relay, we
    /// are not limited to named relays, and its address has not as many relays already).
    pub fn on_identify(
        &mut self,
        peer: PeerId,
        protocols: &[StreamProtocol],
        listen_addrs: &[Multiaddr],
        ip: Option<std::net::IpAddr>,
    ) -> bool {
        let addrs: Vec<Multiaddr> = listen_addrs
            .iter()
            .filter(|a| !crate::addr::is_relayed(a))
            .take(MAX_ADDRS)
            .cloned()
            .collect();
        if let Some(link) = self.links.get_mut(&peer) {
            if !link.named && !addrs.is_empty() {
                link.addrs = addrs;
            }
            link.connected = true;
            return false;
        }
        if self.named_only || !protocols.contains(&HOP) {
            return false;
        }
        let Some(ip) = ip else {
            return false; // a relay is reached directly, never through a circuit
        };
        let from_ip = self.links.values().filter(|l| l.ip == Some(ip)).count();
        if from_ip >= MAX_RELAYS_PER_IP {
            tracing::warn!(%peer, %ip, max = MAX_RELAYS_PER_IP, "a peer says it is a relay, but its address has as many relays as allowed: taken for a peer");
            return false;
        }
        if self.links.len() >= MAX_RELAY_PEERS {
            tracing::warn!(%peer, max = MAX_RELAY_PEERS, "a relay connected, but as many relays as allowed are known: taken for a peer");
            return false;
        }
        tracing::info!(%peer, %ip, "relay peer connected (it serves circuit relay)");
        self.links.insert(
            peer,
            Link {
                sync_tokens: (SYNC_REQUESTS_BURST, Instant::now()),
                mail_tokens: (SYNC_REQUESTS_BURST, Instant::now()),
                addrs,
                named: false,
                inbound: true,
                ip: Some(ip),
                connected_at: Some(Instant::now()),
                connected: true,
                failures: 0,
                next_dial: Instant::now(),
            },
        );
        true
    }

    /// Takes one reconciliation request from `peer`'s allowance; `false` when it is spent (or
    /// `peer` is no relay).
    pub fn take_sync_request(&mut self, peer: &PeerId, now: Instant) -> bool {
        self.links
            .get_mut(peer)
            .is_some_and(|link| take_token(&mut link.sync_tokens, now))
    }

    /// Whether the relay `peer` may send a mail request now (its own bucket, of the same size
    /// as reconciliation's); takes a token.
    pub fn take_mail_request(&mut self, peer: &PeerId, now: Instant) -> bool {
        self.links
            .get_mut(peer)
            .is_some_and(|link| take_token(&mut link.mail_tokens, now))
    }

    /// Whether `query` is our lookup of the other relays.
    pub fn is_lookup(&self, query: &QueryId) -> bool {
        self.lookup.as_ref() == Some(query)
    }

    /// Relays found by our lookup: dialled at once (the DHT knows their addresses while the
    /// lookup runs).
    pub fn on_found<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        found: Vec<PeerId>,
        last: bool,
    ) {
        let me = *swarm.local_peer_id();
        let now = Instant::now();
        for peer in found {
            if peer == me || self.links.contains_key(&peer) || self.links.len() >= MAX_RELAY_PEERS {
                continue;
            }
            let connected = swarm.is_connected(&peer);
            self.links.insert(
                peer,
                Link {
                    sync_tokens: (SYNC_REQUESTS_BURST, now),
                    mail_tokens: (SYNC_REQUESTS_BURST, now),
                    addrs: Vec::new(),
                    named: false,
                    inbound: false,
                    ip: None,
                    connected_at: connected.then_some(now),
                    connected,
                    failures: 0,
                    next_dial: now,
                },
            );
            if connected {
                tracing::info!(%peer, "relay found in the DHT (connected already)");
            } else {
                tracing::info!(%peer, "relay found in the DHT; dialling");
                self.dial(swarm, peer, now);
            }
        }
        if last {
            self.lookup = None;
        }
    }

    /// Every second: redials relays that are due, announces us and looks for other relays when
    /// due.
    pub fn tick<X: Extension>(&mut self, swarm: &mut Swarm<Behaviour<X>>, now: Instant) {
        let me = *swarm.local_peer_id();
        self.links.remove(&me);
        let due: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(peer, l)| !l.connected && now >= l.next_dial && !swarm.is_connected(peer))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in due {
            self.dial(swarm, peer, now);
        }
        self.links.retain(|peer, l| {
            let keep = l.named || l.connected || l.failures < GIVE_UP_AFTER;
            if !keep {
                tracing::info!(%peer, failures = l.failures, "relay unreachable; forgotten");
            }
            keep
        });
        if self.named_only || self.connected() == 0 {
            return;
        }
        let dht = &mut swarm.behaviour_mut().kad;
        if now >= self.next_announce {
            self.next_announce = now + ANNOUNCE_EVERY;
            if let Err(e) = dht.start_providing(RELAYS_KEY.to_vec().into()) {
                tracing::debug!(error = %e, "relay announcement not started");
            }
        }
        if now >= self.next_lookup && self.lookup.is_none() {
            self.next_lookup = now + LOOKUP_EVERY;
            self.lookup = Some(dht.get_providers(RELAYS_KEY.to_vec().into()));
        }
    }

    fn dial<X: Extension>(&mut self, swarm: &mut Swarm<Behaviour<X>>, peer: PeerId, now: Instant) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        link.next_dial = now + backoff(link.failures);
        link.failures = link.failures.saturating_add(1);
        let opts = DialOpts::peer_id(peer)
            .addresses(link.addrs.clone())
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = swarm.dial(opts) {
            tracing::debug!(%peer, error = %e, "relay peer not dialled");
        }
    }
}

/// Takes a token from a bucket of [`SYNC_REQUESTS_BURST`] filled at [`SYNC_REQUESTS_PER_SEC`].
fn take_token((tokens, at): &mut (f64, Instant), now: Instant) -> bool {
    let elapsed = now.saturating_duration_since(*at).as_secs_f64();
    *tokens = (*tokens + elapsed * SYNC_REQUESTS_PER_SEC).min(SYNC_REQUESTS_BURST);
    *at = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redials_back_off_to_a_minute() {
        let waits: Vec<u64> = (0..9).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn named_relays_need_a_peer_id_and_only_hop_servers_are_taken_for_relays() {
        let named = PeerId::random();
        let config = PeeringConfig {
            peers: vec![
                format!("/ip4/127.0.0.1/tcp/4001/p2p/{named}")
                    .parse()
                    .expect("test setup"),
                "/ip4/127.0.0.1/tcp/4002".parse().expect("test setup"),
            ],
            named_only: false,
        };
        let mut peering = Peering::new(&config);
        assert!(peering.is_relay(&named));
        assert_eq!(
            peering.links.len(),
            1,
            "the address without a peer id is skipped"
        );
        let (peer, relay) = (PeerId::random(), PeerId::random());
        let chat = [StreamProtocol::new("/meshsub/1.1.0")];
        let ip = Some(std::net::IpAddr::from([192, 0, 2, 1]));
        assert!(!peering.on_identify(peer, &chat, &[], ip));
        assert!(!peering.is_relay(&peer));
        assert!(
            !peering.on_identify(relay, &[HOP], &[], None),
            "not over a circuit"
        );
        assert!(peering.on_identify(relay, &[HOP], &[], ip));
        assert!(peering.is_relay(&relay));
        let second = PeerId::random();
        assert!(peering.on_identify(second, &[HOP], &[], ip));
        assert!(
            !peering.on_identify(PeerId::random(), &[HOP], &[], ip),
            "a third from one address is taken for a peer"
        );
        peering.on_gone(&second, Instant::now());
        assert!(
            !peering.is_relay(&second),
            "one that dialled us is not redialled"
        );

        let mut closed = Peering::new(&PeeringConfig {
            named_only: true,
            ..config
        });
        assert!(
            !closed.on_identify(relay, &[HOP], &[], ip),
            "named relays only"
        );
        assert!(closed.is_relay(&named));
    }
}
