//! The hub: what a relay does with the rooms of its peers. A relay joins no room of its own; it
//! subscribes to every room one of its peers joins (`hub/rooms.rs`), so that browsers that can
//! reach only the relay still meet everyone in the room; tells a room at once when one of its
//! members disconnects; files every chat message it forwards in the store (`hub/filing.rs`) and
//! answers the store protocol from it (`hub/serving.rs`); looks after browsers that come
//! back over a new connection (`hub/connections.rs`); keeps the DHT's provider records of
//! its peers within bounds (`hub/providers.rs`); and keeps links to the other relays of its
//! network, so that rooms span relays (`hub/peering.rs`).
//!
//! The chat core's event loop owns a [`Hub`] (`hub/state.rs`) when it runs as a relay
//! ([`crate::behaviour::Role`]) and hands it the swarm events that concern it. The store's
//! database is behind a [`crate::store::StoreHandle`]: the hub never waits on it. A relay is a
//! native program: in the browser build the hub is a type with no values (`hub/browser.rs`), so
//! none of its code is in the page.

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(not(target_arch = "wasm32"))]
mod connections;
#[cfg(not(target_arch = "wasm32"))]
mod filing;
#[cfg(not(target_arch = "wasm32"))]
pub mod guard;
pub mod limits;
pub mod pacing;
#[cfg(not(target_arch = "wasm32"))]
pub mod peering;
#[cfg(not(target_arch = "wasm32"))]
pub mod providers;
#[cfg(not(target_arch = "wasm32"))]
mod rooms;
#[cfg(not(target_arch = "wasm32"))]
mod serving;
#[cfg(not(target_arch = "wasm32"))]
mod state;

#[cfg(target_arch = "wasm32")]
pub use browser::{respond, Hub};
pub use limits::{HubLimits, PeeringConfig};
#[cfg(not(target_arch = "wasm32"))]
pub use serving::respond;
#[cfg(not(target_arch = "wasm32"))]
pub use state::{Hub, HubFigures};
