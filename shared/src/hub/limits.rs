//! What one peer may ask of a hub: the limits a relay on the open internet sets, each with a
//! default fit for chat and a flag of `p2p-chat relay` to change it. Plain data, so that a
//! [`crate::core::CoreConfig`] can carry it in every build.

use std::time::Duration;

use libp2p::Multiaddr;

/// Room messages (chat, announcements, plain text) one author may have the hub forward per
/// second, sustained: far above what a person types.
pub const DEFAULT_PUBLISH_PER_SEC: u32 = 20;
/// ...and at once, after a quiet while: a pasted burst, a queue sent on reconnecting.
pub const DEFAULT_PUBLISH_BURST: u32 = 200;
/// Rooms the hub follows because peers of one IP address asked first: throwaway identities
/// behind one address cannot take the hub's [`crate::protocol::MAX_HUB_ROOMS`].
pub const DEFAULT_ROOMS_PER_IP: usize = 500;
/// Rooms the hub follows because one peer asked first: as many as a peer may join.
pub const DEFAULT_ROOMS_PER_PEER: usize = crate::protocol::MAX_ROOMS_PER_PEER;
/// How long a peer disconnected for flooding is refused.
pub const DEFAULT_BAN: Duration = Duration::from_secs(10 * 60);
/// Room messages a relay of the same network may forward to the hub per second, sustained: the
/// rooms of all its peers together. Each author's own limit applies as well.
pub const DEFAULT_RELAY_PUBLISH_PER_SEC: u32 = 1_000;
/// ...and at once.
pub const DEFAULT_RELAY_PUBLISH_BURST: u32 = 10_000;
/// How long a neighbour subscribed to more rooms than a peer may
/// ([`crate::protocol::MAX_ROOMS_PER_PEER`]) has to show it is a relay of the network (in its
/// identify answer, which may come after its subscriptions) before it is disconnected.
pub const RELAY_PROOF_GRACE: Duration = Duration::from_secs(5);
/// Bytes of store answers (history pages, mailboxes) the peers of one IP address may have on
/// their way at once ([`crate::hub`]'s pacing): about 31 pages. Raise it behind a reverse proxy.
pub const DEFAULT_ANSWER_BYTES_PER_IP: u64 = 32 << 20;

/// What one peer may ask of a hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubLimits {
    /// Room messages one author may publish through the hub per second, sustained (0: no limit).
    pub publish_per_sec: u32,
    /// Room messages one author may publish at once.
    pub publish_burst: u32,
    /// Room messages one relay of the network may forward per second, sustained (0: no limit).
    pub relay_publish_per_sec: u32,
    /// Room messages one relay of the network may forward at once.
    pub relay_publish_burst: u32,
    /// Rooms the hub follows because one peer subscribed first.
    pub rooms_per_peer: usize,
    /// Rooms the hub follows because peers of one IP address subscribed first.
    pub rooms_per_ip: usize,
    /// How long a peer disconnected for flooding is refused.
    pub ban: Duration,
    /// Bytes of store answers the peers of one IP address may have on their way at once (0: no
    /// limit but the relay's own).
    pub answer_bytes_per_ip: u64,
}

impl Default for HubLimits {
    fn default() -> Self {
        Self {
            publish_per_sec: DEFAULT_PUBLISH_PER_SEC,
            publish_burst: DEFAULT_PUBLISH_BURST,
            relay_publish_per_sec: DEFAULT_RELAY_PUBLISH_PER_SEC,
            relay_publish_burst: DEFAULT_RELAY_PUBLISH_BURST,
            rooms_per_peer: DEFAULT_ROOMS_PER_PEER,
            rooms_per_ip: DEFAULT_ROOMS_PER_IP,
            ban: DEFAULT_BAN,
            answer_bytes_per_ip: DEFAULT_ANSWER_BYTES_PER_IP,
        }
    }
}

/// How a relay joins the other relays of its network ([`crate::hub`]'s peering).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeeringConfig {
    /// Relays the operator named, each a full address ending in `/p2p/<peer id>`: kept connected,
    /// redialled with backoff.
    pub peers: Vec<Multiaddr>,
    /// Peer only with the relays named: look for no others in the DHT, and take no peer for a
    /// relay on its own word.
    pub named_only: bool,
}
