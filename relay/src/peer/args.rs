//! Flags of `p2p-chat peer`.

use std::path::PathBuf;

use clap::Args;
use libp2p::Multiaddr;

/// Flags of `p2p-chat peer`.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// A relay to reserve a /p2p-circuit slot on and to chat through (its full address, ending
    /// in /p2p/<peer id>, as the relay prints it).
    #[arg(long, env = "P2P_CHAT_RELAY")]
    pub relay: Option<Multiaddr>,
    /// A DHT bootstrap node (repeatable), ending in /p2p/<peer id>.
    #[arg(long)]
    pub bootstrap: Vec<Multiaddr>,
    /// Room to join at start.
    #[arg(long, default_value = p2p_chat_shared::protocol::DEFAULT_ROOM)]
    pub room: String,
    /// Nickname [default: the last one used, or a random user-NNNN].
    #[arg(long)]
    pub nick: Option<String>,
    /// Address to listen on (repeatable) [default: /ip4/0.0.0.0/tcp/0 and /ip4/0.0.0.0/udp/0/quic-v1].
    #[arg(long)]
    pub listen: Vec<Multiaddr>,
    /// Where identity, nickname and history are kept [default: ~/.local/share/p2p-chat/peer;
    /// a second peer started the same way gets peer-2, and so on].
    #[arg(long, env = "P2P_CHAT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Identity key file [default: DATA_DIR/identity.key, created on first start].
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Do not discover peers on the local network with mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Do not ask the router for a port mapping with UPnP.
    #[arg(long)]
    pub no_upnp: bool,
    /// Machine mode: one JSON command per input line, one JSON event per output line.
    #[arg(long)]
    pub json: bool,
}
