//! The chat core: one runtime-agnostic event loop that owns the swarm, driven by both the
//! browser and the CLI.
//!
//! [`new`] returns a [`Client`] (commands in, replies through `oneshot`s), a bounded stream of
//! [`Event`]s and the [`EventLoop`] to run. The loop never spawns: the native crate runs it with
//! `tokio::spawn`, the browser with `spawn_local`. It never waits on its user interface: events
//! go out through a bounded queue, and when that is full they are dropped and counted
//! ([`Event::Lagged`]).

mod client;
mod commands;
mod direct;
mod event;
mod event_loop;
mod gossip;
mod peers;
mod reservations;
mod rooms;
mod store;
mod swarm_events;

use futures::channel::mpsc;
use libp2p::Swarm;

pub use client::{Client, Command, HistoryMark, Reply};
pub use event::*;
pub use event_loop::EventLoop;
pub use store::{CATCH_UP_OVERLAP_MS, FIRST_JOIN_HISTORY};

use crate::behaviour::{Behaviour, Extension, Role};
use crate::envelope::EnvelopeError;
use crate::protocol::RoomNameError;

/// How the core is set up.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Peer or relay.
    pub role: Role,
    /// Our nickname.
    pub nick: crate::text::Nick,
    /// Capacity of the event queue to the user interface.
    pub event_capacity: usize,
    /// Treat every listen address as reachable from outside. A relay with no configured public
    /// address needs this: it only hands out reservations that carry an address of its own.
    pub listen_addrs_are_external: bool,
    /// Our identity key: seals DMs for offline recipients and opens those kept for us. Without
    /// it, a DM to an unreachable peer fails instead of being kept by the relay.
    pub identity: Option<libp2p::identity::Keypair>,
    /// A relay's store backend: room messages and requests of the store protocol go there.
    pub store: Option<crate::store::StoreHandle>,
}

impl CoreConfig {
    /// A chat peer with this nickname.
    pub fn peer(nick: crate::text::Nick) -> Self {
        Self {
            role: Role::Peer,
            nick,
            event_capacity: 1024,
            listen_addrs_are_external: false,
            identity: None,
            store: None,
        }
    }

    /// A relay (hub); `listen_addrs_are_external` when it was given no public address.
    pub fn relay(listen_addrs_are_external: bool) -> Self {
        Self {
            role: Role::Relay,
            nick: crate::text::Nick::first_usable([Some("relay")]),
            event_capacity: 1024,
            listen_addrs_are_external,
            identity: None,
            store: None,
        }
    }
}

/// Why a command failed. Every message says what was wrong and, where it helps, what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// The event loop is gone.
    #[error("the chat core has stopped")]
    Stopped,
    /// A bad room name.
    #[error(transparent)]
    Room(#[from] RoomNameError),
    /// A command for a room we are not in.
    #[error("you are not in room {0:?}; /join it first")]
    NotInRoom(String),
    /// A message that cannot be sent as it is.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The room's queue of unsent messages is full.
    #[error("room {0:?} has no connected members yet and its queue of unsent messages is full")]
    QueueFull(String),
    /// Gossipsub refused the message.
    #[error("could not publish: {0}")]
    Publish(String),
    /// A bad or unusable address.
    #[error("bad address {addr}: {reason}")]
    Address {
        /// The address given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A dial or listen failed.
    #[error("{0}")]
    Network(String),
    /// No way to reach a peer.
    #[error("no route to {0}: not connected, no known address and no relay to reach it through")]
    NoRoute(libp2p::PeerId),
    /// The DHT does not know the peer.
    #[error("{0} was not found in the DHT")]
    NotFound(libp2p::PeerId),
    /// A lookup on a peer without a DHT (the browser build).
    #[error("this peer has no DHT to look anyone up in; reach peers through the relay")]
    NoDht,
    /// A nickname with nothing visible in it.
    #[error("a nickname needs at least one visible character")]
    BadNick,
    /// A command aimed at ourselves.
    #[error("that is your own peer id")]
    SelfTarget,
    /// A direct message was not delivered.
    #[error("direct message not delivered: {0}")]
    DmFailed(String),
    /// No answer in time.
    #[error("timed out after {0} s")]
    Timeout(u64),
}

/// Creates the chat core around a built swarm.
pub fn new<X: Extension>(
    swarm: Swarm<Behaviour<X>>,
    config: CoreConfig,
) -> (Client, mpsc::Receiver<Event>, EventLoop<X>) {
    let (command_tx, command_rx) = mpsc::channel(64);
    let (event_tx, event_rx) = mpsc::channel(config.event_capacity);
    let event_loop = EventLoop::new(swarm, command_rx, event_tx, config);
    (Client::new(command_tx), event_rx, event_loop)
}
