//! p2p-chat's library: the wire contract, the chat core, and native nodes to run it.
//!
//! A chat peer is a libp2p swarm whose [`behaviour::Behaviour`] speaks gossipsub (rooms), a DM
//! protocol, the store protocol and the usual libp2p ones, driven by one event loop
//! ([`core::EventLoop`]) that a user interface commands through a [`core::Client`] and hears
//! from through a stream of [`core::Event`]s. The browser (crate `p2p-chat-web`) and the terminal
//! (`p2p-chat peer`) are two such interfaces; a bot is a third:
//!
//! ```no_run
//! use futures::StreamExt;
//! use p2p_chat_shared::core::Event;
//! use p2p_chat_shared::native::{self, PeerSetup};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! native::install_crypto_provider();
//! let key = libp2p::identity::Keypair::generate_ed25519();
//! let mut node = native::start_peer(key, &PeerSetup::behind_relay("echo")).await?;
//! let relay = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
//! node.client.use_relay(vec![relay.parse()?]).await?;
//! node.client.join("lobby").await?;
//! while let Some(event) = node.events.next().await {
//!     if let Event::Message(m) = event {
//!         node.client.send_message(&m.room, format!("{} said {}", m.nick, m.text)).await?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! `examples/bot.rs` is a complete one.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`protocol`] | protocol ids, the room/topic rule and every size limit |
//! | [`envelope`] | the bytes of a chat message (versioned JSON); decoding untrusted payloads |
//! | [`files`] | file sharing: offers, the file protocol, serving and fetching verified pieces |
//! | [`dm`] | the direct-message protocol and its acknowledgement |
//! | [`store`] | the store protocol: room history, receipts, the mailbox of sealed DMs |
//! | [`seal`] | sealing a DM to its recipient's identity key |
//! | [`rpc`] | the one request-response codec of the DM and store protocols |
//! | [`behaviour`] | the libp2p behaviour every peer runs, with a slot for platform extras |
//! | [`core`] | the runtime-agnostic chat core: rooms, dedup, catch-up, DMs, relays |
//! | [`hub`] | what a relay does with its peers' rooms and the store |
//! | [`native`] | transports and native behaviours, starting peers and relays (not in the browser) |
//! | [`dht`] | the Kademlia slot (native only; empty in the browser build) |
//! | [`addr`], [`text`] | multiaddr helpers; nicknames, display-safe text, times |
//!
//! Builds for native targets and for `wasm32-unknown-unknown`.

#![warn(missing_docs)]

pub mod addr;
pub mod behaviour;
pub mod core;
pub mod dht;
pub mod dm;
pub mod envelope;
pub mod files;
pub mod greeter;
pub mod hub;
pub mod liveness;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod protocol;
pub mod rpc;
pub mod seal;
pub mod store;
pub mod text;
