//! Flags of `p2p-chat peer`.

use std::path::PathBuf;

use clap::Args;
use libp2p::Multiaddr;

/// Flags of `p2p-chat peer`.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// A relay to reserve a /p2p-circuit slot on and to chat through (its full address, ending
    /// in /p2p/<peer id>, as the relay prints it). Repeatable: relays of one network, each
    /// holding a reservation, so that the chat goes on when one of them goes down.
    #[arg(long, env = "P2P_CHAT_RELAY", value_delimiter = ',')]
    pub relay: Vec<Multiaddr>,
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
    /// Reach others only through the relay: listen on no address of your own (no mDNS, UPnP or
    /// hole punching either), so that peers never learn your IP address. Needs --relay.
    #[arg(long, requires = "relay")]
    pub relay_only: bool,
    /// Do not discover peers on the local network with mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Do not ask the router for a port mapping with UPnP.
    #[arg(long)]
    pub no_upnp: bool,
    /// Largest file /share offers and /get fetches (e.g. 100M, 2G; at most 4G, the protocol's
    /// limit).
    #[arg(long, default_value = "100M", value_parser = parse_file_size, env = "P2P_CHAT_MAX_FILE_SIZE")]
    pub max_file_size: u64,
    /// Where /get saves files when given no directory [default: the current directory].
    #[arg(long)]
    pub download_dir: Option<PathBuf>,
    /// Machine mode: one JSON command per input line, one JSON event per output line.
    #[arg(long)]
    pub json: bool,
}

/// A file size cap: a size ([`crate::cli::parse_size`]) no larger than the protocol allows.
fn parse_file_size(text: &str) -> Result<u64, String> {
    let bytes = crate::cli::parse_size(text).map_err(|e| e.to_string())?;
    let most = p2p_chat_shared::files::MAX_FILE_BYTES;
    if bytes > most {
        return Err(format!("{text} is over the file protocol's limit of 4G"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse_file_size;

    #[test]
    fn a_file_size_cap_stays_under_the_protocol_limit() {
        assert_eq!(parse_file_size("100M"), Ok(100 << 20));
        assert!(parse_file_size("5G").expect_err("over").contains("4G"));
        assert!(parse_file_size("ten").is_err());
    }
}
