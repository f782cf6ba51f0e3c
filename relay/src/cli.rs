//! Command-line flags of `p2p-chat`. Parsed once in `main`; the subcommands get these structs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use libp2p::Multiaddr;

/// A peer-to-peer chat on libp2p: a relay for browsers and peers behind NAT, and a terminal chat.
#[derive(Debug, Parser)]
#[command(name = "p2p-chat", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a relay: circuit relay v2, gossipsub hub for every room, Kademlia DHT server, store of
    /// room history and of direct messages for offline peers.
    Relay(RelayArgs),
    /// Chat from this terminal.
    Peer(PeerArgs),
    /// Print a new Ed25519 identity key (and its peer id) in the form --key-file reads.
    Genkey,
    /// Measure: start a relay (its own process) and chat peers on loopback, drive a workload,
    /// print a table and a JSON line of results.
    Bench(BenchArgs),
}

/// Flags of `p2p-chat bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Stop the scenario after this long, whatever it has done (e.g. 110s, 5m).
    #[arg(long, global = true, default_value = "110s", value_parser = parse_duration)]
    pub time_limit: Duration,
}

/// Benchmark scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Two peers through the relay: publish-to-delivery latency one message at a time, at a
    /// steady rate, then the most messages per second the pair sustains.
    Latency {
        /// Messages in each of the first two phases.
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
        /// Messages per second in the steady phase.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        /// Messages in the throughput phase (sent as fast as the window allows; 0 skips it).
        #[arg(long, default_value_t = 40_000)]
        burst: u64,
    },
    /// One room of N peers, all sending: deliveries per second and the delivery ratio.
    Fanout {
        /// Peers in the room.
        #[arg(long, default_value_t = 50)]
        peers: usize,
        /// Messages sent in all (spread over the peers).
        #[arg(long, default_value_t = 2_000)]
        messages: u64,
    },
    /// Many rooms at once, every peer sending in its own room.
    Rooms {
        /// Rooms.
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        /// Peers per room.
        #[arg(long, default_value_t = 5)]
        room_size: usize,
        /// Messages sent in all (spread over the peers).
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
    },
    /// N idle peers connected to the relay (in rooms of --room-size): the relay's memory per
    /// connection and its CPU at rest.
    Idle {
        /// Peers.
        #[arg(long, default_value_t = 1_000)]
        peers: usize,
        /// Peers per room.
        #[arg(long, default_value_t = 5)]
        room_size: usize,
        /// How long the relay is watched at rest once everyone is connected (e.g. 10s).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        rest: Duration,
    },
    /// A peer catching up on N stored messages of a room: time to complete.
    History {
        /// Messages stored before the catch-up.
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
    },
}

/// Flags of `p2p-chat relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// TCP and QUIC port.
    #[arg(long, default_value_t = 4001, env = "P2P_CHAT_PORT")]
    pub port: u16,
    /// WebSocket (/ws) port [default: --port + 1, or 0 when --port is 0].
    #[arg(long, env = "P2P_CHAT_WS_PORT")]
    pub ws_port: Option<u16>,
    /// WebRTC-direct (UDP) port [default: --port + 2, or 0 when --port is 0].
    #[arg(long, env = "P2P_CHAT_WEBRTC_PORT")]
    pub webrtc_port: Option<u16>,
    /// IP address to listen on (0.0.0.0: every IPv4 interface).
    #[arg(long, default_value = "0.0.0.0", env = "P2P_CHAT_LISTEN_ADDR")]
    pub listen_addr: IpAddr,
    /// Also listen on every IPv6 interface.
    #[arg(long)]
    pub ipv6: bool,
    /// Deterministic identity from this seed (0-255), for tests and local setups. Never use on a
    /// public relay: anyone can derive the key.
    #[arg(long, conflicts_with = "key_file")]
    pub secret_key_seed: Option<u8>,
    /// Identity key file [default: DATA_DIR/identity.key, created on first start].
    #[arg(long, env = "P2P_CHAT_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Where the identity and WebRTC certificate are kept [default: ~/.local/share/p2p-chat/relay].
    #[arg(long, env = "P2P_CHAT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A public address of this relay (repeatable), e.g. /ip4/203.0.113.7/tcp/4001. Peers learn
    /// it; without any, the relay still serves reservations on every address it listens on.
    #[arg(
        long = "external-addr",
        env = "P2P_CHAT_EXTERNAL_ADDR",
        value_delimiter = ','
    )]
    pub external_addrs: Vec<Multiaddr>,
    /// Address of the HTTP server: the web app, config.json (the addresses browsers dial) and
    /// /healthz.
    #[arg(long, default_value = "127.0.0.1:8080", env = "P2P_CHAT_HTTP_ADDR")]
    pub http_addr: std::net::SocketAddr,
    /// TLS certificate chain (PEM) for WebSocket over TLS (`/tls/ws`), which browsers on an
    /// https page need. Use with --tls-key.
    #[arg(long, requires = "tls_key", env = "P2P_CHAT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM, PKCS#8 or PKCS#1) for --tls-cert.
    #[arg(long, requires = "tls_cert", env = "P2P_CHAT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// WebSocket-over-TLS port [default: --port + 3, or 0 when --port is 0]; used with --tls-cert.
    #[arg(long, env = "P2P_CHAT_WSS_PORT")]
    pub wss_port: Option<u16>,
    /// Directory of the built web app (trunk's output).
    #[arg(long, default_value = "dist", env = "P2P_CHAT_WEB_DIR")]
    pub web_dir: PathBuf,
    /// Room messages older than this are deleted from the store (e.g. 30d, 12h, 90m, 45s).
    #[arg(long, default_value = "30d", value_parser = parse_duration, env = "P2P_CHAT_HISTORY_MAX_AGE")]
    pub history_max_age: Duration,
    /// Most messages the store keeps per room; the oldest go first.
    #[arg(long, default_value_t = 10_000, env = "P2P_CHAT_HISTORY_MAX_PER_ROOM")]
    pub history_max_per_room: u64,
    /// Direct messages kept for an offline peer are deleted after this (e.g. 30d).
    #[arg(long, default_value = "30d", value_parser = parse_duration, env = "P2P_CHAT_MAILBOX_MAX_AGE")]
    pub mailbox_max_age: Duration,
    /// Most direct messages kept for one offline peer; further ones are refused.
    #[arg(long, default_value_t = 1000, env = "P2P_CHAT_MAILBOX_MAX_PER_PEER")]
    pub mailbox_max_per_peer: u64,
    /// Relay reservations (and, separately, relayed circuits) one IP address may open per
    /// minute. Raise it when many peers share an address: behind a reverse proxy or a NAT.
    #[arg(long, default_value_t = crate::native::DEFAULT_RATE_PER_IP, env = "P2P_CHAT_RATE_PER_IP")]
    pub rate_per_ip: u32,
}

/// A duration: a whole number and a unit, `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: s, m, h or d (e.g. 30d)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} must start with a whole number (e.g. 30d)"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use s, m, h or d"
            ))
        }
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_durations_parse_with_clear_errors() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 45s "), Ok(Duration::from_secs(45)));
        assert!(parse_duration("30")
            .expect_err("no unit")
            .contains("needs a unit"));
        assert!(parse_duration("d")
            .expect_err("no number")
            .contains("whole number"));
        assert!(parse_duration("3w")
            .expect_err("bad unit")
            .contains("unknown unit"));
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
