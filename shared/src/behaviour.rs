//! The chat [`Behaviour`]: the protocols every p2p-chat peer runs, with a slot for the
//! behaviours only a native peer has (mDNS, DCUtR, AutoNAT, UPnP, relay server), which the
//! native build plugs in as an [`Extension`] ([`crate::native`]). The browser plugs in
//! [`NoExtension`].

use libp2p::{
    gossipsub, gossipsub::TopicHash, identify, identity::Keypair, relay, swarm::dummy,
    swarm::NetworkBehaviour, Multiaddr, PeerId,
};

use crate::dht::{Dht, DhtSlot};
use crate::greeter::Greeter;
use crate::liveness::{Liveness, PEER_PACE, RELAY_PACE};
use crate::rpc::{dm_behaviour, store_behaviour, RpcBehaviour};

use crate::protocol::{agent_version, IDENTIFY_PROTOCOL_VERSION, MAX_HUB_ROOMS, MAX_RPC_BYTES};

/// What a peer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A chat member: joins rooms, announces itself, sends and receives.
    Peer,
    /// The hub: subscribes to every room its peers join, announces nothing, serves the DHT.
    Relay,
}

/// The hub forwards every message of a room to every member of it: each peer connected to it is
/// an explicit gossipsub peer (`hub::connections`), sent every message of the rooms it
/// subscribed to, so the hub keeps no mesh. A mesh would leave forwarding to the peers in it:
/// the hub would have to graft every member (with the library's 6-12, the rest of a room falls
/// back to lazy gossip, which loses messages), and filling meshes at each heartbeat scans every
/// connected peer for each room: rooms × peers every second, most of a core with 5,000 idle peers
/// in rooms of 5. With no mesh to fill and nobody to gossip to, the hub's heartbeat does neither.
const NO_MESH: usize = 0;

/// What an extension's event means to the chat core.
#[derive(Debug, Clone)]
pub enum ExtensionEvent {
    /// Peers found on the local network, with an address each (mDNS).
    Discovered(Vec<(PeerId, Multiaddr)>),
    /// Local-network peers gone (mDNS).
    Expired(Vec<(PeerId, Multiaddr)>),
    /// AutoNAT's verdict changed.
    NatStatus(String),
    /// A hole punch finished.
    HolePunch {
        /// The remote peer.
        peer: PeerId,
        /// `Err` with the reason when it failed.
        result: Result<(), String>,
    },
    /// Worth a debug log line, nothing more.
    Log(String),
}

/// Behaviours a platform adds around the chat core.
pub trait Extension: NetworkBehaviour<ToSwarm: std::fmt::Debug> {
    /// What the core should learn from one of the extension's events, if anything.
    fn translate(event: Self::ToSwarm) -> Option<ExtensionEvent>;

    /// Records one of the extension's events in the node's metrics (nothing, by default).
    #[cfg(not(target_arch = "wasm32"))]
    fn record(_event: &Self::ToSwarm, _metrics: &crate::native::metrics::CoreMetrics) {}

    /// A handle on the file protocol's streams, where the extension carries them
    /// ([`crate::files`]; none by default).
    #[cfg(not(target_arch = "wasm32"))]
    fn streams(&self) -> Option<libp2p_stream::Control> {
        None
    }

    /// `relay`, at `addrs`, is one of the relays we use (nothing, by default).
    #[cfg(not(target_arch = "wasm32"))]
    fn using_relay(&mut self, _relay: libp2p::PeerId, _addrs: &[libp2p::Multiaddr]) {}
}

/// The browser's extension: nothing.
pub type NoExtension = dummy::Behaviour;

impl Extension for NoExtension {
    fn translate(event: Self::ToSwarm) -> Option<ExtensionEvent> {
        match event {}
    }
}

pub use derived::{Behaviour, BehaviourEvent};

/// The behaviour struct alone: its derive makes [`BehaviourEvent`], one undocumented variant per
/// field (each is the field's protocol's event).
mod derived {
    #![allow(missing_docs)]

    use super::*;

    /// Every protocol of a chat peer. Fields are named after their protocols.
    ///
    /// The swarm asks each field in this order whether to accept a connection, and the
    /// extension's connection limits come first: a behaviour asked before a limit denies the
    /// connection may already have counted it (gossipsub does), and the swarm then reports the
    /// connection as a failed dial or listen, which gossipsub ignores: it would count it forever.
    #[derive(NetworkBehaviour)]
    pub struct Behaviour<X: Extension> {
        /// What the platform adds (on native peers: connection limits first).
        pub ext: X,
        /// Circuit relay v2 client: reservations on relays, dials through them.
        pub relay_client: relay::client::Behaviour,
        /// Identify: agent, listen addresses, observed address.
        pub identify: identify::Behaviour,
        /// Liveness, fast on browser transports ([`Liveness`]); a failed ping closes the
        /// connection.
        pub ping: Liveness,
        /// Rooms (each peer greeted again when its greeted connection closes: [`Greeter`]).
        pub gossipsub: Greeter<gossipsub::Behaviour>,
        /// Peer discovery and lookups (Kademlia; empty in the browser build, see [`crate::dht`]).
        pub kad: Dht,
        /// Direct messages with acknowledgements.
        pub dm: RpcBehaviour,
        /// The store protocol: history, receipts and the mailbox (relays serve it, see
        /// [`crate::store`]).
        pub store: RpcBehaviour,
    }
}

impl<X: Extension> Behaviour<X> {
    /// Whether a neighbour is subscribed to `topic`, so that a message published there goes out.
    pub fn has_subscribed_neighbour(&self, topic: &TopicHash) -> bool {
        self.gossipsub
            .all_peers()
            .any(|(_, topics)| topics.contains(&topic))
    }
}

/// Why the behaviour could not be built.
#[derive(Debug, thiserror::Error)]
#[error("invalid gossipsub configuration: {0}")]
pub struct BehaviourError(String);

impl<X: Extension> Behaviour<X> {
    /// Builds the chat behaviour for `role` around the platform's extension.
    pub fn new(
        key: &Keypair,
        relay_client: relay::client::Behaviour,
        ext: X,
        role: Role,
    ) -> Result<Self, BehaviourError> {
        let peer_id = key.public().to_peer_id();
        #[allow(unused_mut)] // the browser build scores nobody
        let mut gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossipsub_config(role)?,
            subscription_filter(),
        )
        .map_err(|e| BehaviourError(e.to_owned()))?;
        // A hub judges its neighbours (`hub::guard`): the browser is never one.
        #[cfg(not(target_arch = "wasm32"))]
        if role == Role::Relay {
            let (params, thresholds) = crate::hub::guard::score_params();
            gossipsub
                .with_peer_score(params, thresholds)
                .map_err(BehaviourError)?;
        }
        let identify_config =
            identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_owned(), key.public())
                .with_agent_version(agent_version())
                .with_push_listen_addr_updates(true);
        // A page reaches its relay only at the addresses it was given, in their order. Identify's
        // own cache would add every address the relay listens on to each dial of it: a page told
        // to use WebSocket (where UDP is blocked) would fall through to a WebRTC dial whenever
        // its WebSocket dial failed, and that dial would wait for the relay to return. Dials by
        // peer id get the addresses the core passes (identify's among them) or the DHT knows.
        // (On a native peer the DHT still adds the relay's other addresses to a dial of it.)
        let identify_config = identify_config.with_cache_size(0);
        let identify = identify::Behaviour::new(identify_config);
        let kad = Dht::for_role(peer_id, role);
        Ok(Self {
            ext,
            relay_client,
            identify,
            ping: Liveness::new(match role {
                Role::Peer => PEER_PACE,
                Role::Relay => RELAY_PACE,
            }),
            gossipsub: Greeter::new(gossipsub),
            kad,
            dm: dm_behaviour(),
            store: store_behaviour(role == Role::Relay),
        })
    }
}

/// Which subscriptions of a neighbour gossipsub accepts: as many as a hub follows rooms, in all
/// and in one message. The library's default (100 topics, 100 per message) would make a peer
/// ignore every subscription of a hub that serves more than 100 rooms, its own room among them
/// (it could never join), and a hub ignore another relay of the network, which follows the
/// rooms of all its peers. A hub holds a peer that is not a relay to
/// [`crate::protocol::MAX_ROOMS_PER_PEER`] itself (`hub::rooms`): the filter cannot tell who is
/// asking.
fn subscription_filter(
) -> gossipsub::MaxCountSubscriptionFilter<gossipsub::AllowAllSubscriptionFilter> {
    let most = MAX_HUB_ROOMS;
    gossipsub::MaxCountSubscriptionFilter {
        filter: gossipsub::AllowAllSubscriptionFilter {},
        max_subscribed_topics: most,
        max_subscriptions_per_request: most,
    }
}

fn gossipsub_config(role: Role) -> Result<gossipsub::Config, BehaviourError> {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .validation_mode(gossipsub::ValidationMode::Strict)
        .max_transmit_size(MAX_RPC_BYTES)
        .max_control_message_size(MAX_RPC_BYTES);
    if role == Role::Relay {
        // The hub forwards a message only once its guard took it (`hub::guard`).
        builder
            .validate_messages()
            .mesh_n(NO_MESH)
            .mesh_n_low(NO_MESH)
            .mesh_outbound_min(NO_MESH)
            // Lazy gossip (IHAVE) goes to peers outside the mesh that are not explicit: none.
            // Without this, each heartbeat would still scan every connected peer for each room
            // with recent messages to find them.
            .history_gossip(0);
    }
    builder.build().map_err(|e| BehaviourError(e.to_string()))
}
