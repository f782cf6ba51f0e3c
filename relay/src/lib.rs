//! p2p-chat's native side: the relay server and the CLI peer, both built on the shared chat
//! core. The `p2p-chat` binary (`main.rs`) only parses arguments and wires these together.
//!
//! - [`native`]: behaviours only native peers run (relay server, DCUtR, AutoNAT, mDNS, UPnP).
//! - [`swarm`]: the native transports; [`webrtc_hold`]: a fix for browsers over WebRTC-direct.
//! - [`node`]: starting a relay or a peer.
//! - [`identity`]: key files, the WebRTC certificate, data directories.
//! - [`store`]: the relay's store of room history and sealed DMs (redb).
//! - [`http`]: the web app, `config.json` and `/healthz` over HTTP.
//! - [`cli`]: command-line flags; [`relay_cmd`], [`peer`], [`bench`]: the `relay`, `peer` and
//!   `bench` subcommands.

pub mod bench;
pub mod cli;
pub mod http;
pub mod identity;
pub mod native;
pub mod node;
pub mod peer;
pub mod relay_cmd;
pub mod store;
pub mod swarm;
pub mod webrtc_hold;

/// Installs the process-wide rustls crypto provider. QUIC brings rustls with aws-lc-rs and
/// WebSocket with ring; WebRTC's DTLS then cannot pick one and panics on the first browser
/// handshake. Call once, first thing in `main` (and in tests); later calls are no-ops.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Writes one line to stdout. A closed stdout (`p2p-chat ... | head`) is not worth a panic.
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
