//! What a native node tells Prometheus: libp2p's own metrics (`libp2p-metrics`: connections,
//! dials, bandwidth by transport, ping, Kademlia, gossipsub, the relay server, DCUtR) and ours,
//! in a `prometheus-client` registry that the relay serves at `/metrics` on its operator
//! address; and, for the relay's monitor page, the busiest rooms and the latest events.
//!
//! Labels are bounded: a transport is one of [`crate::addr::TRANSPORTS`], and nothing is
//! labelled by peer or by room (the monitor page, which is not scraped, names them).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use libp2p::metrics::{Metrics, Recorder};
use libp2p::{Multiaddr, PeerId};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::addr::{transport_label, TRANSPORTS};
use crate::hub::HubFigures;

/// Latest events the monitor page lists ([`CoreMetrics::recent`]); older ones are dropped.
pub const RECENT_EVENTS: usize = 100;
/// Rooms the monitor page lists, the busiest first ([`CoreMetrics::busiest_rooms`]).
pub const MONITOR_ROOMS: usize = 50;
/// The `transport` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabel {
    /// One of [`crate::addr::TRANSPORTS`].
    pub transport: &'static str,
}

/// The `outcome` label of room messages: `forwarded`, `over_limit`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// What became of the message.
    pub outcome: &'static str,
}

/// An event the monitor page lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recent {
    /// When (unix ms).
    pub at_ms: u64,
    /// What: `connected`, `disconnected`, `reservation`, `reservation-ended`, `reservation-denied`,
    /// `circuit`, `circuit-closed`, `circuit-denied`, `banned`; and on a peer that hole punches
    /// (a relay does not), `hole-punch`, `hole-punch-failed`.
    pub kind: &'static str,
    /// The peer, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The rest: a transport, the other end of a circuit, an error.
    pub detail: String,
}

/// A room the hub follows, with its members: for the monitor page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomMembers {
    /// The room's name.
    pub room: String,
    /// Peers of this relay in it.
    pub members: usize,
}

/// Our figures at one moment: what the monitor page samples.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Open connections by transport (every one of [`TRANSPORTS`]).
    pub connections: Vec<(&'static str, i64)>,
    /// Peers with an open connection.
    pub peers: i64,
    /// Rooms the hub follows.
    pub rooms: i64,
    /// Room messages forwarded, in all.
    pub forwarded: u64,
    /// Room messages over the publish limit, in all.
    pub over_limit: u64,
    /// Reservations held now.
    pub reservations: i64,
    /// Circuits open now.
    pub circuits: i64,
}

/// Reservations held (by peer: one per connection that reserved), and circuits open (by pair):
/// gauges that a repeated or lost event cannot send below zero. Bounded by the relay server's
/// own limits on both.
#[derive(Debug, Default)]
struct Relayed {
    reserved: HashMap<PeerId, u32>,
    circuits: HashMap<(PeerId, PeerId), u32>,
}

/// Takes one from `key`'s count, forgetting it at zero.
fn take_one<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

/// What the monitor page shows besides the figures.
#[derive(Debug, Default)]
struct Monitored {
    recent: VecDeque<Recent>,
    busiest: Vec<RoomMembers>,
    /// The hub's totals at the last update: counters go up by the difference.
    last: HubFigures,
    relayed: Relayed,
}

/// Locks `mutex`, poisoned or not (what it guards is figures, whole after any panic).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The metrics a chat core records. Cheap to clone: every handle shares its value.
#[derive(Clone)]
pub struct CoreMetrics {
    registry: Arc<Mutex<Registry>>,
    libp2p: Arc<Metrics>,
    connections: Family<TransportLabel, Gauge>,
    peers: Gauge,
    rooms: Gauge,
    messages: Family<OutcomeLabel, Counter>,
    banned: Counter,
    rooms_refused: Counter,
    store_dropped: Counter,
    over_subscribed: Counter,
    reservations: Gauge,
    circuits: Gauge,
    relay_peers: Gauge,
    monitored: Arc<Mutex<Monitored>>,
}

impl std::fmt::Debug for CoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreMetrics").finish_non_exhaustive()
    }
}

impl CoreMetrics {
    /// Registers every metric in `registry` (which may already hold others, such as the
    /// store's): libp2p's under `libp2p_`, ours under `p2p_chat_`. The registry is kept: the
    /// swarm adds its bandwidth counters when it is built, and [`Self::encode`] exposes it all.
    pub fn new(mut registry: Registry) -> Self {
        let libp2p = Arc::new(Metrics::new(&mut registry));
        let ours = registry.sub_registry_with_prefix("p2p_chat");
        let connections = Family::<TransportLabel, Gauge>::default();
        ours.register(
            "connections",
            "Open connections, by transport",
            connections.clone(),
        );
        let gauges = [
            ("connected_peers", "Peers with at least one open connection"),
            (
                "rooms",
                "Rooms the relay follows because a peer joined them",
            ),
            (
                "reservations",
                "Circuit relay reservations held by peers now",
            ),
            ("circuits", "Circuits relayed between two peers now"),
            (
                "relay_peers",
                "Other relays of the network connected now (named by --peer or found in the DHT)",
            ),
        ]
        .map(|(name, help)| {
            let gauge = Gauge::default();
            ours.register(name, help, gauge.clone());
            gauge
        });
        let [peers, rooms, reservations, circuits, relay_peers] = gauges;
        let messages = Family::<OutcomeLabel, Counter>::default();
        ours.register(
            "room_messages",
            "Gossipsub messages on room topics (chat messages and presence notices) the relay \
             received from its peers, by outcome: forwarded, over_limit (over the publish \
             limit: dropped)",
            messages.clone(),
        );
        let counters = [
            (
                "peers_disconnected_for_score",
                "Peers the relay disconnected and banned for their gossipsub score",
            ),
            (
                "rooms_refused",
                "Rooms the relay did not follow for a per-peer or per-IP limit",
            ),
            (
                "store_dropped_appends",
                "Room messages the store could not take (its queue was full)",
            ),
            (
                "peers_disconnected_for_rooms",
                "Peers (not relays) the relay disconnected for subscribing to more rooms than a \
                 peer may",
            ),
        ]
        .map(|(name, help)| {
            let counter = Counter::default();
            ours.register(name, help, counter.clone());
            counter
        });
        let [banned, rooms_refused, store_dropped, over_subscribed] = counters;
        for outcome in ["forwarded", "over_limit"] {
            let _ = messages.get_or_create(&OutcomeLabel { outcome });
        }
        Self {
            registry: Arc::new(Mutex::new(registry)),
            libp2p,
            connections,
            peers,
            rooms,
            messages,
            banned,
            rooms_refused,
            store_dropped,
            over_subscribed,
            reservations,
            circuits,
            relay_peers,
            monitored: Arc::default(),
        }
    }

    /// Every metric of the registry, in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &lock(&self.registry))?;
        Ok(text)
    }

    /// Lends the registry to `register` (the swarm builder's bandwidth counters).
    pub fn register<T>(&self, register: impl FnOnce(&mut Registry) -> T) -> T {
        register(&mut lock(&self.registry))
    }

    /// Records a protocol's event, as libp2p-metrics counts it.
    pub fn record<E>(&self, event: &E)
    where
        Metrics: Recorder<E>,
    {
        self.libp2p.record(event);
    }

    /// Records a swarm event, except candidates for our external address: libp2p-metrics
    /// labels those by the address's protocols, and any peer can send new ones through
    /// identify (the address it sees us at), so their labels would have no bound. A peer's
    /// first connection and its last going are listed on the monitor page.
    pub fn record_swarm<E>(&self, event: &libp2p::swarm::SwarmEvent<E>) {
        use libp2p::swarm::SwarmEvent;
        match event {
            SwarmEvent::NewExternalAddrCandidate { .. }
            | SwarmEvent::ExternalAddrConfirmed { .. }
            | SwarmEvent::ExternalAddrExpired { .. } => return,
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } if num_established.get() == 1 => {
                let transport = transport_label(endpoint.get_remote_address());
                self.note("connected", Some(peer_id), transport.to_owned());
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                let why = cause.as_ref().map_or_else(String::new, ToString::to_string);
                self.note("disconnected", Some(peer_id), why);
            }
            _ => {}
        }
        self.libp2p.record(event);
    }

    /// Records the circuit relay server's event: libp2p-metrics' counters, our gauges of
    /// reservations and circuits, and the monitor page's list.
    pub fn record_relay(&self, event: &libp2p::relay::Event) {
        use libp2p::relay::Event;
        self.libp2p.record(event);
        let mut monitored = lock(&self.monitored);
        let relayed = &mut monitored.relayed;
        let listed = match event {
            Event::ReservationReqAccepted {
                src_peer_id,
                renewed,
            } => {
                // Renewed: on a connection that holds one already.
                (!renewed).then(|| {
                    *relayed.reserved.entry(*src_peer_id).or_default() += 1;
                    ("reservation", src_peer_id, String::new())
                })
            }
            Event::ReservationClosed { src_peer_id }
            | Event::ReservationTimedOut { src_peer_id } => {
                take_one(&mut relayed.reserved, src_peer_id);
                Some(("reservation-ended", src_peer_id, String::new()))
            }
            Event::ReservationReqDenied {
                src_peer_id,
                status,
            } => Some(("reservation-denied", src_peer_id, format!("{status:?}"))),
            Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => {
                *relayed
                    .circuits
                    .entry((*src_peer_id, *dst_peer_id))
                    .or_default() += 1;
                Some(("circuit", src_peer_id, format!("to {dst_peer_id}")))
            }
            Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                error,
            } => {
                // libp2p-relay may report one circuit closed twice (by its connection, and by
                // its handler): two circuits between one pair may then read as one.
                take_one(&mut relayed.circuits, &(*src_peer_id, *dst_peer_id));
                let why = error
                    .as_ref()
                    .map_or_else(String::new, |e| format!(": {e}"));
                Some((
                    "circuit-closed",
                    src_peer_id,
                    format!("to {dst_peer_id}{why}"),
                ))
            }
            Event::CircuitReqDenied {
                src_peer_id,
                dst_peer_id,
                status,
            } => Some((
                "circuit-denied",
                src_peer_id,
                format!("to {dst_peer_id}: {status:?}"),
            )),
            _ => None,
        };
        let held: u32 = relayed.reserved.values().sum();
        let open: u32 = relayed.circuits.values().sum();
        self.reservations.set(i64::from(held));
        self.circuits.set(i64::from(open));
        if let Some((kind, peer, detail)) = listed {
            push_recent(&mut monitored.recent, kind, Some(peer), detail);
        }
    }

    /// Records a hole punch's outcome (DCUtR, on a peer).
    pub fn record_hole_punch(&self, event: &libp2p::dcutr::Event) {
        self.libp2p.record(event);
        let (kind, detail) = match &event.result {
            Ok(_) => ("hole-punch", String::new()),
            Err(e) => ("hole-punch-failed", e.to_string()),
        };
        self.note(kind, Some(&event.remote_peer_id), detail);
    }

    /// Adds an event to the monitor page's list.
    fn note(&self, kind: &'static str, peer: Option<&PeerId>, detail: String) {
        push_recent(&mut lock(&self.monitored).recent, kind, peer, detail);
    }

    /// The latest events, oldest first (at most [`RECENT_EVENTS`]).
    pub fn recent(&self) -> Vec<Recent> {
        lock(&self.monitored).recent.iter().cloned().collect()
    }

    /// The busiest rooms the hub follows (at most [`MONITOR_ROOMS`]), as of the last update.
    pub fn busiest_rooms(&self) -> Vec<RoomMembers> {
        lock(&self.monitored).busiest.clone()
    }

    /// Our figures now.
    pub fn figures(&self) -> Figures {
        let outcome = |outcome| self.messages.get_or_create(&OutcomeLabel { outcome }).get();
        Figures {
            connections: TRANSPORTS
                .iter()
                .map(|&transport| {
                    let gauge = self
                        .connections
                        .get_or_create(&TransportLabel { transport });
                    (transport, gauge.get())
                })
                .collect(),
            peers: self.peers.get(),
            rooms: self.rooms.get(),
            forwarded: outcome("forwarded"),
            over_limit: outcome("over_limit"),
            reservations: self.reservations.get(),
            circuits: self.circuits.get(),
        }
    }

    /// Sets the connection gauges from the remote addresses of every open connection, and the
    /// number of peers they belong to.
    pub fn set_connections<'a>(&self, addrs: impl Iterator<Item = &'a Multiaddr>, peers: usize) {
        let mut counts = [0i64; TRANSPORTS.len()];
        for addr in addrs {
            let transport = transport_label(addr);
            if let Some(i) = TRANSPORTS.iter().position(|t| *t == transport) {
                counts[i] += 1;
            }
        }
        for (transport, count) in TRANSPORTS.iter().zip(counts) {
            self.connections
                .get_or_create(&TransportLabel { transport })
                .set(count);
        }
        self.peers.set(i64::try_from(peers).unwrap_or(i64::MAX));
    }

    /// Takes the hub's figures: the rooms gauge, each counter up by what its total grew, and
    /// the busiest rooms (`rooms`: every room the hub follows, with its members).
    pub fn set_hub<'a>(&self, now: HubFigures, rooms: impl Iterator<Item = (&'a str, usize)>) {
        self.rooms.set(i64::try_from(now.rooms).unwrap_or(i64::MAX));
        self.relay_peers
            .set(i64::try_from(now.relay_peers).unwrap_or(i64::MAX));
        let mut busiest: Vec<(&str, usize)> = rooms.collect();
        if busiest.len() > MONITOR_ROOMS {
            busiest.select_nth_unstable_by(MONITOR_ROOMS - 1, |a, b| b.1.cmp(&a.1));
            busiest.truncate(MONITOR_ROOMS);
        }
        busiest.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut monitored = lock(&self.monitored);
        monitored.busiest = busiest
            .into_iter()
            .map(|(room, members)| RoomMembers {
                room: room.to_owned(),
                members,
            })
            .collect();
        let last = monitored.last;
        let grew = |new: u64, old: u64| new.saturating_sub(old);
        self.messages
            .get_or_create(&OutcomeLabel {
                outcome: "forwarded",
            })
            .inc_by(grew(now.forwarded, last.forwarded));
        self.messages
            .get_or_create(&OutcomeLabel {
                outcome: "over_limit",
            })
            .inc_by(grew(now.over_limit, last.over_limit));
        let banned = grew(now.disconnected, last.disconnected);
        self.banned.inc_by(banned);
        if banned > 0 {
            let detail = format!("{banned} peer(s) disconnected and banned for their score");
            push_recent(&mut monitored.recent, "banned", None, detail);
        }
        self.rooms_refused
            .inc_by(grew(now.rooms_refused, last.rooms_refused));
        self.over_subscribed
            .inc_by(grew(now.over_subscribed, last.over_subscribed));
        self.store_dropped
            .inc_by(grew(now.dropped_appends, last.dropped_appends));
        monitored.last = now;
    }
}

/// Adds an event to `recent`, dropping the oldest beyond [`RECENT_EVENTS`].
fn push_recent(
    recent: &mut VecDeque<Recent>,
    kind: &'static str,
    peer: Option<&PeerId>,
    detail: String,
) {
    if recent.len() >= RECENT_EVENTS {
        recent.pop_front();
    }
    recent.push_back(Recent {
        at_ms: crate::text::now_unix_ms(),
        kind,
        peer: peer.map(ToString::to_string),
        detail,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_peers_claim_for_us_add_no_labels() {
        let metrics = CoreMetrics::new(Registry::default());
        let exposition = |metrics: &CoreMetrics| metrics.encode().expect("encode");
        let before = exposition(&metrics);
        // What a peer can make up: a new protocol stack for each identify push.
        for i in 0..200u32 {
            let mut address: Multiaddr = "/ip4/203.0.113.9".parse().expect("address");
            for _ in 0..(i % 20) {
                address.push(libp2p::core::multiaddr::Protocol::Udp(1));
            }
            address.push(libp2p::core::multiaddr::Protocol::Tcp(
                u16::try_from(i).unwrap_or(0),
            ));
            let event = libp2p::swarm::SwarmEvent::<()>::NewExternalAddrCandidate { address };
            metrics.record_swarm(&event);
        }
        assert_eq!(exposition(&metrics), before);
    }
}
