//! Flags of `p2p-chat relay`. Most also read a `P2P_CHAT_*` environment variable, as a server
//! operator expects.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use libp2p::Multiaddr;
use p2p_chat_shared::hub::limits;

use crate::cli::{parse_duration, parse_size};

/// A `--peer` address: it must name the relay (`/p2p/<peer id>` at the end), so that the
/// connection is authenticated and the relay is known before it answers.
fn parse_relay_peer(text: &str) -> Result<Multiaddr, String> {
    if text.trim().is_empty() {
        return Err(
            "an empty address (an extra comma?): give e.g. /ip4/203.0.113.7/tcp/4001/p2p/12D3Koo..."
                .into(),
        );
    }
    let addr: Multiaddr = text.parse().map_err(|e| {
        format!("not a multiaddr ({e}): give e.g. /ip4/203.0.113.7/tcp/4001/p2p/12D3Koo...")
    })?;
    if p2p_chat_shared::addr::peer_at_end(&addr).is_none() {
        return Err(format!(
            "{addr} does not end in /p2p/<peer id>: copy the full address the other relay prints              (its \"listening:\" lines)"
        ));
    }
    Ok(addr)
}

/// An `--external-addr`: an address, never an empty one (which the relay would announce, and
/// which would keep it from announcing its listen addresses).
fn parse_external_addr(text: &str) -> Result<Multiaddr, String> {
    if text.trim().is_empty() {
        return Err(
            "an empty address (an extra comma?): give e.g. /dns4/chat.example.org/tcp/4001".into(),
        );
    }
    text.parse()
        .map_err(|e| format!("not a multiaddr ({e}): give e.g. /dns4/chat.example.org/tcp/4001"))
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
        value_delimiter = ',',
        value_parser = parse_external_addr
    )]
    pub external_addrs: Vec<Multiaddr>,
    /// Address of the HTTP server: the web app, config.json (the addresses browsers dial) and
    /// /healthz.
    #[arg(long, default_value = "127.0.0.1:8080", env = "P2P_CHAT_HTTP_ADDR")]
    pub http_addr: std::net::SocketAddr,
    /// Address of the operator's HTTP server: the monitor page (/) and /metrics (Prometheus).
    /// Keep it private (the default is loopback); the public --http-addr never serves them.
    #[arg(long, default_value = "127.0.0.1:8081", env = "P2P_CHAT_ADMIN_ADDR")]
    pub admin_addr: std::net::SocketAddr,
    /// A host name the operator's address also answers to (besides IP addresses and
    /// localhost), e.g. the name Prometheus scrapes it by; repeatable. Other names are refused,
    /// so that no web page can read the monitor by DNS rebinding.
    #[arg(
        long = "admin-host",
        value_name = "NAME",
        env = "P2P_CHAT_ADMIN_HOSTS",
        value_delimiter = ','
    )]
    pub admin_hosts: Vec<String>,
    /// Record no metrics and serve no operator address (no monitor page, no /metrics;
    /// --admin-addr is ignored).
    #[arg(long, env = "P2P_CHAT_NO_METRICS")]
    pub no_metrics: bool,
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
    /// Most direct messages kept for one offline peer. When full, a new one takes the place of
    /// the oldest of whoever holds the most there (if more than its own sender), else it is
    /// refused.
    #[arg(long, default_value_t = 1000, env = "P2P_CHAT_MAILBOX_MAX_PER_PEER")]
    pub mailbox_max_per_peer: u64,
    /// Most direct messages one peer may have waiting at the relay for all its recipients.
    #[arg(
        long,
        default_value_t = 500,
        env = "P2P_CHAT_MAILBOX_MAX_PER_DEPOSITOR"
    )]
    pub mailbox_max_per_depositor: u64,
    /// Most bytes of room messages and waiting direct messages the store keeps in all (e.g. 1G,
    /// 512M; 0: no limit). Over it, whoever holds the most loses their oldest first, down to
    /// 90 % of it.
    #[arg(long, default_value = "1G", value_parser = parse_size, env = "P2P_CHAT_STORE_MAX_BYTES")]
    pub store_max_bytes: u64,
    /// Bytes of history pages and mailboxes the peers of one IP address may have on their way
    /// at once (0: no limit but the relay's 256M in all). Raise it behind a reverse proxy.
    #[arg(long, default_value = "32M", value_parser = parse_size, env = "P2P_CHAT_ANSWER_BYTES_PER_IP")]
    pub answer_bytes_per_ip: u64,
    /// Relay reservations (and, separately, relayed circuits) one IP address may open per
    /// minute. Raise it when many peers share an address: behind a reverse proxy or a NAT.
    #[arg(long, default_value_t = p2p_chat_shared::native::DEFAULT_RATE_PER_IP, env = "P2P_CHAT_RATE_PER_IP")]
    pub rate_per_ip: u32,
    /// Bytes one relayed circuit may carry, both ways together (e.g. 16M, 64M). A file larger
    /// than this goes on over a new circuit, a little later; raise it where files are shared
    /// between peers that can only meet through the relay.
    #[arg(long, default_value = "16M", value_parser = parse_size, env = "P2P_CHAT_MAX_CIRCUIT_BYTES")]
    pub max_circuit_bytes: u64,
    /// Connections one IP address may hold open to the relay (0: no limit). Raise it behind a
    /// reverse proxy, where every peer shares the proxy's address.
    #[arg(long, default_value_t = p2p_chat_shared::native::DEFAULT_CONNECTIONS_PER_IP, env = "P2P_CHAT_CONNECTIONS_PER_IP")]
    pub connections_per_ip: usize,
    /// Room messages one peer may publish per second, sustained (0: no limit). Messages over it
    /// are neither forwarded nor stored, and a peer that keeps going is disconnected.
    #[arg(long, default_value_t = limits::DEFAULT_PUBLISH_PER_SEC, env = "P2P_CHAT_PUBLISH_PER_SEC")]
    pub publish_per_sec: u32,
    /// Room messages one peer may publish at once, after a quiet while.
    #[arg(long, default_value_t = limits::DEFAULT_PUBLISH_BURST, env = "P2P_CHAT_PUBLISH_BURST")]
    pub publish_burst: u32,
    /// Another relay of the same network (repeatable), a full address ending in /p2p/<peer id>:
    /// kept connected and redialled with backoff; rooms, then, span both relays. Relays also
    /// find each other in the DHT, so one named relay is enough to join a network.
    #[arg(long = "peer", env = "P2P_CHAT_PEERS", value_delimiter = ',', value_parser = parse_relay_peer)]
    pub peers: Vec<Multiaddr>,
    /// Peer only with the relays named by --peer: look for no others in the DHT, and take no
    /// peer for a relay on its own word (a closed network of relays one operator trusts).
    #[arg(long, env = "P2P_CHAT_PEERS_ONLY")]
    pub peers_only: bool,
    /// Room messages another relay of the network may forward per second, sustained (0: no
    /// limit): the rooms of all its peers. Each author's own limit (--publish-per-sec) applies too.
    #[arg(long, default_value_t = limits::DEFAULT_RELAY_PUBLISH_PER_SEC, env = "P2P_CHAT_RELAY_PUBLISH_PER_SEC")]
    pub relay_publish_per_sec: u32,
    /// Room messages another relay of the network may forward at once.
    #[arg(long, default_value_t = limits::DEFAULT_RELAY_PUBLISH_BURST, env = "P2P_CHAT_RELAY_PUBLISH_BURST")]
    pub relay_publish_burst: u32,
    /// Rooms the relay follows because one peer joined them first.
    #[arg(long, default_value_t = limits::DEFAULT_ROOMS_PER_PEER, env = "P2P_CHAT_ROOMS_PER_PEER")]
    pub rooms_per_peer: usize,
    /// Rooms the relay follows because peers of one IP address joined them first.
    #[arg(long, default_value_t = limits::DEFAULT_ROOMS_PER_IP, env = "P2P_CHAT_ROOMS_PER_IP")]
    pub rooms_per_ip: usize,
    /// How long a peer disconnected for flooding (or for invalid messages) is refused.
    #[arg(long, default_value = "10m", value_parser = parse_duration, env = "P2P_CHAT_BAN")]
    pub ban: Duration,
}
