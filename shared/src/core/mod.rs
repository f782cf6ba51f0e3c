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
mod error;
mod event;
mod event_loop;
mod files;
mod gossip;
pub use gossip::NOTICE_MAX_AGE_MS;
mod peers;
mod reservations;
mod rooms;
mod store;
mod swarm_events;

use futures::channel::mpsc;
use libp2p::Swarm;

pub use client::{Client, Command, HistoryMark, Reply};
pub use error::*;
pub use event::*;
pub use event_loop::EventLoop;
pub use store::{CATCH_UP_OVERLAP_MS, CATCH_UP_RETRY, FIRST_JOIN_HISTORY};

use crate::behaviour::{Behaviour, Extension, Role};

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
    /// What one peer may ask of a relay's hub.
    pub limits: crate::hub::HubLimits,
    /// The other relays of a relay's network ([`crate::hub`]).
    pub peering: crate::hub::PeeringConfig,
    /// Where to record metrics (a relay serves them at `/metrics`); `None` records nothing.
    #[cfg(not(target_arch = "wasm32"))]
    pub metrics: Option<crate::native::metrics::CoreMetrics>,
    /// Reach peers only through relay circuits, never at their own addresses (`--relay-only`).
    #[cfg(not(target_arch = "wasm32"))]
    pub relay_only: bool,
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
            limits: crate::hub::HubLimits::default(),
            peering: crate::hub::PeeringConfig::default(),
            #[cfg(not(target_arch = "wasm32"))]
            metrics: None,
            #[cfg(not(target_arch = "wasm32"))]
            relay_only: false,
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
            limits: crate::hub::HubLimits::default(),
            peering: crate::hub::PeeringConfig::default(),
            #[cfg(not(target_arch = "wasm32"))]
            metrics: None,
            #[cfg(not(target_arch = "wasm32"))]
            relay_only: false,
        }
    }
}

/// Creates the chat core around a built swarm.
pub fn new<X: Extension>(
    swarm: Swarm<Behaviour<X>>,
    config: CoreConfig,
) -> (Client, mpsc::Receiver<Event>, EventLoop<X>) {
    let (command_tx, command_rx) = mpsc::channel(64);
    let (event_tx, event_rx) = mpsc::channel(config.event_capacity);
    #[cfg(not(target_arch = "wasm32"))]
    let client = Client::new(command_tx, swarm.behaviour().ext.streams());
    #[cfg(target_arch = "wasm32")]
    let client = Client::new(command_tx);
    let event_loop = EventLoop::new(swarm, command_rx, event_tx, config);
    (client, event_rx, event_loop)
}
