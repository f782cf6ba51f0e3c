//! The `p2p-chat` program: a relay for browsers and for peers behind NAT, the terminal chat, and
//! the benchmark, each in a folder of its own and each built on the chat core of
//! `p2p-chat-shared` (its native nodes: [`p2p_chat_shared::native`]). `main.rs` only parses the
//! command line and runs one of them.
//!
//! - [`relay`]: `p2p-chat relay`: the relay server, its HTTP side ([`relay::http`]: the web app,
//!   `config.json`, `/healthz`) and its store ([`relay::store`]: room history and the mailbox,
//!   in redb).
//! - [`peer`]: `p2p-chat peer`: the terminal chat (input, output, its local archive).
//! - [`bench`]: `p2p-chat bench`: measures a relay under load.
//! - [`health`]: `p2p-chat health`: asks a running relay's `/healthz` (a container's health
//!   check).
//! - What they share: [`cli`] (the subcommands), [`identity`] (key files, the WebRTC
//!   certificate, data directories), [`say`].

pub mod bench;
pub mod cli;
pub mod health;
pub mod identity;
pub mod peer;
pub mod relay;

/// Writes one line to stdout. A closed stdout (`p2p-chat ... | head`) is not worth a panic.
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
