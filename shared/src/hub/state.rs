//! The hub's state: the rooms it follows, its store backend and the answers on their way.

use std::collections::{HashMap, HashSet};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::request_response::{InboundRequestId, ResponseChannel};
use libp2p::PeerId;

use libp2p::gossipsub::{self, MessageId};
use libp2p::Swarm;

use super::guard::Guard;
use super::pacing::Pacing;
use super::{HubLimits, PeeringConfig};
use crate::behaviour::{Behaviour, Extension, Role};
use crate::rpc::Response;
use crate::store::{StoreHandle, StoreResponse};

/// A store backend's answer on its way back to the requester.
type Answer = BoxFuture<'static, (ResponseChannel<Response>, StoreResponse)>;

/// The relay's part of the chat core.
pub struct Hub {
    /// Rooms subscribed because a peer did, with the peers subscribed to each.
    pub(super) rooms: HashMap<String, HashSet<PeerId>>,
    /// The store backend; `None` for a relay that keeps nothing.
    pub(super) backend: Option<StoreHandle>,
    /// Answers from the backend, in the order they come.
    pub(super) answers: FuturesUnordered<Answer>,
    /// Room messages the backend could not take (its queue was full).
    pub(super) dropped_appends: u64,
    /// Limits on what one peer may ask ([`super::guard`]).
    pub(crate) guard: Guard,
    /// Store requests in flight and waiting ([`super::pacing`]).
    pub(super) pacing: Pacing<InboundRequestId, ResponseChannel<Response>>,
    /// The provider records kept in the DHT, by peer ([`super::providers`]).
    pub(crate) providers: super::providers::ProviderRecords,
    /// Links to the other relays of the network ([`super::peering`]).
    pub(crate) peering: super::peering::Peering,
    /// The rooms each neighbour is subscribed to ([`super::rooms`]).
    pub(super) subscriptions: HashMap<PeerId, Held>,
    /// Peers disconnected for holding more rooms than a peer may.
    pub(super) over_subscribed: u64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("rooms", &self.rooms.len())
            .field("backend", &self.backend.is_some())
            .field("answers", &self.answers.len())
            .field("dropped_appends", &self.dropped_appends)
            .finish()
    }
}

/// The rooms one neighbour is subscribed to.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Their topics.
    pub(super) topics: HashSet<libp2p::gossipsub::TopicHash>,
    /// Since when it holds more than a peer may.
    pub(super) over_since: Option<std::time::Instant>,
}

/// The hub's running totals, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubFigures {
    /// Rooms followed now.
    pub rooms: usize,
    /// Room messages forwarded (and filed).
    pub forwarded: u64,
    /// Room messages dropped for being over the publish limit.
    pub over_limit: u64,
    /// Peers disconnected for their score.
    pub disconnected: u64,
    /// Rooms not followed for a per-peer or per-IP limit.
    pub rooms_refused: u64,
    /// Room messages the store could not take (its queue was full).
    pub dropped_appends: u64,
    /// Relays of the network connected now.
    pub relay_peers: usize,
    /// Peers disconnected for subscribing to more rooms than a peer may.
    pub over_subscribed: u64,
}

impl Hub {
    /// The hub's figures now.
    pub fn figures(&self) -> HubFigures {
        HubFigures {
            rooms: self.rooms.len(),
            forwarded: self.guard.admitted,
            over_limit: self.guard.over_limit,
            disconnected: self.guard.disconnected,
            rooms_refused: self.guard.rooms_refused,
            dropped_appends: self.dropped_appends,
            relay_peers: self.peering.connected(),
            over_subscribed: self.over_subscribed,
        }
    }

    /// The hub of a core running as `role`: a relay's, filing into `backend` (and answering the
    /// store protocol from it), if any, and linked to the relays `peering` names. `None` for a
    /// chat peer, and always in the browser build.
    pub fn for_role(
        role: Role,
        backend: Option<StoreHandle>,
        limits: HubLimits,
        peering: &PeeringConfig,
    ) -> Option<Self> {
        (role == Role::Relay).then(|| Self {
            rooms: HashMap::new(),
            backend,
            answers: FuturesUnordered::new(),
            dropped_appends: 0,
            guard: Guard::new(limits),
            pacing: Pacing::new(limits.answer_bytes_per_ip),
            providers: Default::default(),
            peering: super::peering::Peering::new(peering),
            subscriptions: HashMap::new(),
            over_subscribed: 0,
        })
    }

    /// A room message of `author`, delivered by `source`: whether it is forwarded and filed
    /// (within its author's publish limit). Gossipsub is told either way.
    pub fn admit<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        author: PeerId,
        message: &gossipsub::Message,
        id: &MessageId,
        source: &PeerId,
    ) -> bool {
        // Over the limit, a notice (join, presence, leave) is dropped without a penalty: an
        // honest peer rejoining many rooms at once must not be banned for it. Decoded only then:
        // filing decodes every message anyway.
        let chat = || {
            !matches!(
                crate::envelope::decode_room_payload(&message.data),
                Ok(crate::envelope::Payload::Envelope(env)) if env.kind != crate::envelope::Kind::Message
            )
        };
        // Within one message's limit (gossipsub reads whole RPCs of up to MAX_RPC_BYTES, for
        // the greetings of relays that follow many rooms); a bigger one is dropped. Its author
        // pays; a neighbour that only passed it on does not (chat peers forward what they get,
        // so an attacker could otherwise have an honest peer banned).
        if message.data.len() > crate::protocol::MAX_TRANSMIT_BYTES {
            let acceptance = if author == *source {
                gossipsub::MessageAcceptance::Reject
            } else {
                gossipsub::MessageAcceptance::Ignore
            };
            swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(id, source, acceptance);
            tracing::debug!(%author, %source, bytes = message.data.len(), "room message over the size limit rejected");
            return false;
        }
        let now = std::time::Instant::now();
        let relay = self.peering.is_relay(source);
        self.guard
            .admit(swarm, author, id, source, relay, chat, now)
    }

    /// Every second: the guard's penalties, bans and disconnections; redials of relays of the
    /// network, and looking for new ones.
    pub fn tick<X: Extension>(&mut self, swarm: &mut Swarm<Behaviour<X>>) {
        let now = std::time::Instant::now();
        self.guard.tick(swarm, now);
        self.peering.tick(swarm, now);
        self.disconnect_over_subscribed(swarm, now);
        for (peer, key) in self.providers.prune(web_time::Instant::now()) {
            use libp2p::kad::store::RecordStore;
            swarm
                .behaviour_mut()
                .kad
                .store_mut()
                .remove_provider(&key, &peer);
        }
    }

    /// Every room the hub follows, with how many of its peers are in it.
    pub fn room_members(&self) -> impl Iterator<Item = (&str, usize)> {
        self.rooms
            .iter()
            .map(|(room, members)| (room.as_str(), members.len()))
    }

    /// The rooms the hub follows.
    pub fn followed_rooms(&self) -> Vec<String> {
        self.rooms.keys().cloned().collect()
    }

    /// Whether the hub is subscribed to `room` for its peers.
    pub fn serves(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }
}
