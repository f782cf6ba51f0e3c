//! What a native node tells Prometheus: libp2p's own metrics (`libp2p-metrics`: connections,
//! dials, identify, ping, Kademlia, gossipsub) and ours, in a `prometheus-client` registry that
//! the relay serves at `/metrics` on its operator address.
//!
//! Labels are bounded: a transport is one of [`crate::addr::TRANSPORTS`], and nothing is
//! labelled by peer or by room.

use libp2p::metrics::{Metrics, Recorder};
use libp2p::Multiaddr;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::addr::{transport_label, TRANSPORTS};
use crate::hub::HubFigures;

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

/// The metrics a chat core records. Cheap to clone: every handle shares its value.
#[derive(Clone)]
pub struct CoreMetrics {
    libp2p: std::sync::Arc<Metrics>,
    connections: Family<TransportLabel, Gauge>,
    peers: Gauge,
    rooms: Gauge,
    messages: Family<OutcomeLabel, Counter>,
    banned: Counter,
    rooms_refused: Counter,
    store_dropped: Counter,
    /// The hub's totals at the last update: counters go up by the difference.
    last: std::sync::Arc<std::sync::Mutex<HubFigures>>,
}

impl std::fmt::Debug for CoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreMetrics").finish_non_exhaustive()
    }
}

impl CoreMetrics {
    /// Registers every metric in `registry`: libp2p's under `libp2p_`, ours under `p2p_chat_`.
    pub fn new(registry: &mut Registry) -> Self {
        let libp2p = std::sync::Arc::new(Metrics::new(registry));
        let ours = registry.sub_registry_with_prefix("p2p_chat");
        let connections = Family::<TransportLabel, Gauge>::default();
        ours.register(
            "connections",
            "Open connections, by transport",
            connections.clone(),
        );
        let peers = Gauge::default();
        ours.register(
            "connected_peers",
            "Peers with at least one open connection",
            peers.clone(),
        );
        let rooms = Gauge::default();
        ours.register(
            "rooms",
            "Rooms the relay follows because a peer joined them",
            rooms.clone(),
        );
        let messages = Family::<OutcomeLabel, Counter>::default();
        ours.register(
            "room_messages",
            "Gossipsub messages on room topics (chat messages and presence notices) the relay \
             received from its peers, by outcome: forwarded, over_limit (over the publish \
             limit: dropped)",
            messages.clone(),
        );
        let banned = Counter::default();
        ours.register(
            "peers_disconnected_for_score",
            "Peers the relay disconnected and banned for their gossipsub score",
            banned.clone(),
        );
        let rooms_refused = Counter::default();
        ours.register(
            "rooms_refused",
            "Rooms the relay did not follow for a per-peer or per-IP limit",
            rooms_refused.clone(),
        );
        let store_dropped = Counter::default();
        ours.register(
            "store_dropped_appends",
            "Room messages the store could not take (its queue was full)",
            store_dropped.clone(),
        );
        for outcome in ["forwarded", "over_limit"] {
            let _ = messages.get_or_create(&OutcomeLabel { outcome });
        }
        Self {
            libp2p,
            connections,
            peers,
            rooms,
            messages,
            banned,
            rooms_refused,
            store_dropped,
            last: Default::default(),
        }
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
    /// identify (the address it sees us at), so their labels would have no bound.
    pub fn record_swarm<E>(&self, event: &libp2p::swarm::SwarmEvent<E>) {
        use libp2p::swarm::SwarmEvent;
        match event {
            SwarmEvent::NewExternalAddrCandidate { .. }
            | SwarmEvent::ExternalAddrConfirmed { .. }
            | SwarmEvent::ExternalAddrExpired { .. } => {}
            other => self.libp2p.record(other),
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

    /// Takes the hub's figures: the rooms gauge, and each counter up by what its total grew.
    pub fn set_hub(&self, now: HubFigures) {
        self.rooms.set(i64::try_from(now.rooms).unwrap_or(i64::MAX));
        let Ok(mut last) = self.last.lock() else {
            return;
        };
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
        self.banned
            .inc_by(grew(now.disconnected, last.disconnected));
        self.rooms_refused
            .inc_by(grew(now.rooms_refused, last.rooms_refused));
        self.store_dropped
            .inc_by(grew(now.dropped_appends, last.dropped_appends));
        *last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_peers_claim_for_us_add_no_labels() {
        let mut registry = Registry::default();
        let metrics = CoreMetrics::new(&mut registry);
        let exposition = |registry: &Registry| {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
            text
        };
        let before = exposition(&registry);
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
        assert_eq!(exposition(&registry), before);
    }
}
