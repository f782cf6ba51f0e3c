//! Starting a native node: a relay or a chat peer, its swarm built, listening, and its chat core
//! running on the tokio runtime. The binary and the integration tests both start nodes here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::channel::mpsc;
use libp2p::{core::multiaddr::Protocol, identity::Keypair, Multiaddr, PeerId};
use libp2p_webrtc::tokio::Certificate;
use p2p_chat_shared::behaviour::Role;
use p2p_chat_shared::core::{self, Client, CoreConfig, Event};
use p2p_chat_shared::store::StoreHandle;
use tokio::task::JoinHandle;

use crate::native::NativeOptions;
use crate::swarm::{self, BuildError};

/// A running node: its identity, its command handle, its events and its task.
pub struct Node {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Commands to the chat core.
    pub client: Client,
    /// What the chat core reports.
    pub events: mpsc::Receiver<Event>,
    /// The event loop's task; it ends after a shutdown or once every client is dropped.
    pub task: JoinHandle<()>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Building the swarm failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// An address could not be listened on.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
}

/// Ports and addresses of a relay.
#[derive(Debug, Clone)]
pub struct RelayPorts {
    /// Address to listen on (`0.0.0.0` for every IPv4 interface).
    pub ip: IpAddr,
    /// Also listen on every IPv6 interface.
    pub ipv6: bool,
    /// TCP and QUIC port.
    pub port: u16,
    /// WebSocket port.
    pub ws_port: u16,
    /// WebRTC-direct (UDP) port.
    pub webrtc_port: u16,
    /// WebSocket over TLS (`/tls/ws`) port, when the relay has a certificate.
    pub wss_port: Option<u16>,
}

impl RelayPorts {
    /// Every address the relay listens on.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        let mut ips = vec![self.ip];
        if self.ipv6 && !ips.contains(&IpAddr::V6(Ipv6Addr::UNSPECIFIED)) {
            ips.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        }
        ips.into_iter()
            .flat_map(|ip| {
                let base = Multiaddr::empty().with(match ip {
                    IpAddr::V4(v4) => Protocol::Ip4(v4),
                    IpAddr::V6(v6) => Protocol::Ip6(v6),
                });
                let wss = self.wss_port.map(|port| {
                    let tls_ws = base.clone().with(Protocol::Tcp(port)).with(Protocol::Tls);
                    tls_ws.with(Protocol::Ws("/".into()))
                });
                let quic = base
                    .clone()
                    .with(Protocol::Udp(self.port))
                    .with(Protocol::QuicV1);
                let ws = base
                    .clone()
                    .with(Protocol::Tcp(self.ws_port))
                    .with(Protocol::Ws("/".into()));
                let webrtc = base
                    .clone()
                    .with(Protocol::Udp(self.webrtc_port))
                    .with(Protocol::WebRTCDirect);
                [base.with(Protocol::Tcp(self.port)), quic, ws, webrtc]
                    .into_iter()
                    .chain(wss)
            })
            .collect()
    }

    /// Loopback with OS-chosen ports: for tests.
    pub fn loopback_ephemeral() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ipv6: false,
            port: 0,
            ws_port: 0,
            webrtc_port: 0,
            wss_port: None,
        }
    }
}

/// Starts a relay: circuit relay server (`rate_per_ip`: see [`crate::native::relay_config`]),
/// gossipsub hub, DHT server, and the store protocol answered from `store` (see
/// [`crate::store::open`]).
pub async fn start_relay(
    key: Keypair,
    certificate: Certificate,
    tls: Option<libp2p::websocket::tls::Config>,
    ports: &RelayPorts,
    external_addrs: &[Multiaddr],
    store: Option<StoreHandle>,
    rate_per_ip: u32,
) -> Result<Node, StartError> {
    let options = NativeOptions {
        relay_server: true,
        rate_per_ip,
        dcutr: false,
        autonat: true,
        mdns: false,
        upnp: false,
    };
    let mut swarm = swarm::build(key, certificate, tls, Role::Relay, &options).await?;
    for addr in ports.listen_addrs() {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| StartError::Listen {
                addr,
                reason: e.to_string(),
            })?;
    }
    for addr in external_addrs {
        swarm.add_external_address(addr.clone());
    }
    let config = CoreConfig {
        store,
        ..CoreConfig::relay(external_addrs.is_empty())
    };
    Ok(spawn(swarm, config))
}

/// How a chat peer starts.
#[derive(Debug, Clone)]
pub struct PeerSetup {
    /// Nickname (random when empty).
    pub nick: String,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// mDNS on the local network.
    pub mdns: bool,
    /// UPnP port mapping.
    pub upnp: bool,
    /// DCUtR hole punching.
    pub dcutr: bool,
}

impl PeerSetup {
    /// A peer for tests: loopback only, no multicast (mDNS, UPnP), no hole punching.
    pub fn loopback(nick: &str) -> Self {
        Self {
            nick: nick.to_owned(),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
            mdns: false,
            upnp: false,
            dcutr: false,
        }
    }
}

/// Starts a chat peer (it joins nothing yet: see [`Client::join`], [`Client::use_relay`]).
pub async fn start_peer(key: Keypair, setup: &PeerSetup) -> Result<Node, StartError> {
    let options = NativeOptions {
        relay_server: false,
        rate_per_ip: crate::native::DEFAULT_RATE_PER_IP,
        dcutr: setup.dcutr,
        autonat: true,
        mdns: setup.mdns,
        upnp: setup.upnp,
    };
    let certificate = swarm::new_certificate()?;
    let config = CoreConfig {
        identity: Some(key.clone()),
        ..CoreConfig::peer(&setup.nick)
    };
    let mut swarm = swarm::build(key, certificate, None, Role::Peer, &options).await?;
    for addr in &setup.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| StartError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
    }
    Ok(spawn(swarm, config))
}

fn spawn(swarm: swarm::NativeSwarm, config: CoreConfig) -> Node {
    let peer_id = *swarm.local_peer_id();
    let (client, events, event_loop) = core::new(swarm, config);
    let task = tokio::spawn(event_loop.run());
    Node {
        peer_id,
        client,
        events,
        task,
    }
}
