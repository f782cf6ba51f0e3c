//! p2p-chat's shared crate: the wire contract and the chat core.
//!
//! - [`protocol`]: protocol ids, the room/topic rule and every size limit.
//! - [`envelope`]: the bytes of a chat message (versioned JSON), decoding of untrusted payloads.
//! - [`dht`]: the Kademlia slot (native only; empty in the browser build).
//! - [`dm`]: the direct-message protocol and its acknowledgement.
//! - [`behaviour`]: the libp2p behaviour every peer runs, with a slot for native extras.
//! - [`core`]: the runtime-agnostic event loop, its [`core::Client`] and [`core::Event`]s.
//! - [`rpc`]: the one request-response codec of the DM and store protocols.
//! - [`store`]: the store protocol (history, receipts, mailbox of sealed DMs).
//! - [`seal`]: sealing a DM to its recipient's identity key.
//! - [`text`]: nicknames, display-safe text, times.
//!
//! Builds for native targets and for `wasm32-unknown-unknown`.

pub mod addr;
pub mod behaviour;
pub mod core;
pub mod dht;
pub mod dm;
pub mod envelope;
pub mod hub;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod protocol;
pub mod rpc;
pub mod seal;
pub mod store;
pub mod text;
