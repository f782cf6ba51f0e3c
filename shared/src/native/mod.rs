//! Native nodes (everything but the browser): the transports ([`swarm`]), the behaviours only a
//! native peer runs ([`extension`]: circuit relay server, DCUtR, AutoNAT, mDNS, UPnP, connection
//! limits), and starting a chat peer or a relay with its chat core on the tokio runtime
//! ([`node`]). Not in the browser build; the page builds its own swarm (WebRTC-direct,
//! WebSocket) around the same [`crate::behaviour::Behaviour`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use p2p_chat_shared::native::{self, PeerSetup};
//!
//! native::install_crypto_provider();
//! let key = libp2p::identity::Keypair::generate_ed25519();
//! let node = native::start_peer(key, &PeerSetup::new("bot")).await?;
//! node.client.use_relay(vec!["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...".parse()?]).await?;
//! node.client.join("lobby").await?;
//! # Ok(()) }
//! ```

pub mod extension;
pub mod ip_limit;
pub mod metrics;
pub mod node;
pub mod relay_only;
pub mod swarm;
pub mod webrtc_hold;

pub use extension::{Native, NativeOptions, DEFAULT_CIRCUIT_BYTES, DEFAULT_RATE_PER_IP};
pub use ip_limit::DEFAULT_CONNECTIONS_PER_IP;
pub use node::{
    spawn, start_peer, start_relay, Node, PeerSetup, RelayPorts, RelaySetup, StartError,
};
pub use swarm::{new_certificate, BuildError, Certificate, NativeSwarm, Transports};

/// Installs the process-wide rustls crypto provider. QUIC brings rustls with aws-lc-rs and
/// WebSocket with ring; WebRTC's DTLS then cannot pick one and panics on the first browser
/// handshake. Call once, first thing in `main` (and in tests); later calls are no-ops.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
