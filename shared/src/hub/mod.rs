//! The hub: what a relay does with the rooms of its peers. A relay joins no room of its own; it
//! subscribes to every room one of its peers joins ([`rooms`]), so that browsers that can reach
//! only the relay still meet everyone in the room; tells a room at once when one of its
//! members disconnects; files every chat message it forwards in the store ([`filing`]) and
//! answers the store protocol from it ([`serving`]); and looks after browsers that come back
//! over a new connection ([`connections`]).
//!
//! The chat core's event loop owns a [`Hub`] when it runs as a relay ([`crate::behaviour::Role`])
//! and hands it the swarm events that concern it. The store's database is behind a
//! [`StoreHandle`]: the hub never waits on it.

mod connections;
mod filing;
mod rooms;
mod serving;

pub use serving::respond;

use std::collections::{HashMap, HashSet};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::request_response::ResponseChannel;
use libp2p::PeerId;

use crate::rpc::Response;
use crate::store::{StoreHandle, StoreResponse};

/// A store backend's answer on its way back to the requester.
type Answer = BoxFuture<'static, (ResponseChannel<Response>, StoreResponse)>;

/// The relay's part of the chat core.
pub struct Hub {
    /// Rooms subscribed because a peer did, with the peers subscribed to each.
    rooms: HashMap<String, HashSet<PeerId>>,
    /// The store backend; `None` for a relay that keeps nothing.
    backend: Option<StoreHandle>,
    /// Answers from the backend, in the order they come.
    answers: FuturesUnordered<Answer>,
    /// Room messages the backend could not take (its queue was full).
    dropped_appends: u64,
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

impl Hub {
    /// A hub filing into `backend` (and answering the store protocol from it), if any.
    pub fn new(backend: Option<StoreHandle>) -> Self {
        Self {
            rooms: HashMap::new(),
            backend,
            answers: FuturesUnordered::new(),
            dropped_appends: 0,
        }
    }

    /// Whether the hub is subscribed to `room` for its peers.
    pub fn serves(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }
}
