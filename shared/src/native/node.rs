//! Starting a native node: a relay or a chat peer, its swarm built, listening, and its chat core
//! running on the tokio runtime.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::channel::mpsc;
use libp2p::{core::multiaddr::Protocol, identity::Keypair, Multiaddr, PeerId};
use tokio::task::JoinHandle;

use super::extension::{NativeOptions, DEFAULT_CIRCUIT_BYTES, DEFAULT_RATE_PER_IP};
use super::ip_limit::DEFAULT_CONNECTIONS_PER_IP;
use super::swarm::{self, BuildError, Certificate, NativeSwarm, Transports};
use crate::behaviour::Role;
use crate::core::{self, Client, CoreConfig, Event};
use crate::hub::{HubLimits, PeeringConfig};
use crate::store::StoreHandle;
use crate::text::Nick;

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

/// How a relay starts.
#[derive(Debug)]
pub struct RelaySetup {
    /// Its transports. A relay on the network keeps its WebRTC certificate across restarts, so
    /// that browsers that know its address can still dial it.
    pub transports: Transports,
    /// Addresses to listen on ([`RelayPorts::listen_addrs`] makes the usual ones).
    pub listen: Vec<Multiaddr>,
    /// Its public addresses. Without any, every listen address is taken as reachable: a relay
    /// hands out reservations only with an address of its own.
    pub external_addrs: Vec<Multiaddr>,
    /// The store the hub files room messages into and serves the store protocol from
    /// ([`crate::store::StoreJob`]); `None` keeps nothing.
    pub store: Option<StoreHandle>,
    /// Reservations and circuits one IP address may open per minute
    /// ([`super::extension::relay_config`]).
    pub rate_per_ip: u32,
    /// Connections one IP address may hold open ([`super::ip_limit`]; 0: no limit).
    pub connections_per_ip: usize,
    /// Bytes one relayed circuit may carry ([`DEFAULT_CIRCUIT_BYTES`]).
    pub circuit_bytes: u64,
    /// What one peer may ask of the hub: publish rate, rooms, ban ([`crate::hub::guard`]).
    pub limits: HubLimits,
    /// Where to record metrics ([`super::metrics`]); `None` records nothing.
    pub metrics: Option<super::metrics::CoreMetrics>,
    /// The other relays of its network ([`crate::hub::peering`]).
    pub peering: PeeringConfig,
}

impl RelaySetup {
    /// A relay on the network, listening on `ports`.
    pub fn network(certificate: Certificate, ports: &RelayPorts) -> Self {
        Self {
            transports: Transports::Network {
                certificate,
                tls: None,
            },
            listen: ports.listen_addrs(),
            external_addrs: Vec::new(),
            store: None,
            rate_per_ip: DEFAULT_RATE_PER_IP,
            connections_per_ip: DEFAULT_CONNECTIONS_PER_IP,
            circuit_bytes: DEFAULT_CIRCUIT_BYTES,
            limits: HubLimits::default(),
            metrics: None,
            peering: PeeringConfig::default(),
        }
    }

    /// A relay in this process's memory, on a random `/memory` port: for tests.
    pub fn in_memory() -> Self {
        Self {
            transports: Transports::Memory,
            listen: vec![Multiaddr::empty().with(Protocol::Memory(0))],
            external_addrs: Vec::new(),
            store: None,
            rate_per_ip: DEFAULT_RATE_PER_IP,
            connections_per_ip: DEFAULT_CONNECTIONS_PER_IP,
            circuit_bytes: DEFAULT_CIRCUIT_BYTES,
            limits: HubLimits::default(),
            metrics: None,
            peering: PeeringConfig::default(),
        }
    }
}

/// Starts a relay: circuit relay server, gossipsub hub for its peers' rooms, DHT server, and
/// the store protocol answered from `setup.store`.
pub async fn start_relay(key: Keypair, setup: RelaySetup) -> Result<Node, StartError> {
    let options = NativeOptions {
        relay_server: true,
        rate_per_ip: setup.rate_per_ip,
        connections_per_ip: setup.connections_per_ip,
        circuit_bytes: setup.circuit_bytes,
        dcutr: false,
        autonat: true,
        mdns: false,
        upnp: false,
        relay_only: false,
    };
    let metrics = setup.metrics.as_ref();
    let mut swarm = swarm::build(key, setup.transports, Role::Relay, &options, metrics).await?;
    listen(&mut swarm, &setup.listen)?;
    for addr in &setup.external_addrs {
        swarm.add_external_address(addr.clone());
    }
    let config = CoreConfig {
        store: setup.store,
        limits: setup.limits,
        metrics: setup.metrics,
        peering: setup.peering,
        ..CoreConfig::relay(setup.external_addrs.is_empty())
    };
    Ok(spawn(swarm, config))
}

/// How a chat peer starts.
#[derive(Debug, Clone)]
pub struct PeerSetup {
    /// Nickname.
    pub nick: Nick,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// mDNS on the local network.
    pub mdns: bool,
    /// UPnP port mapping.
    pub upnp: bool,
    /// DCUtR hole punching.
    pub dcutr: bool,
    /// libp2p's memory transport instead of the network: for tests.
    pub in_memory: bool,
    /// Open no direct connection but to the relays used: nobody else learns our IP address
    /// ([`crate::native::relay_only`]). Listening on nothing goes with it.
    pub relay_only: bool,
}

impl PeerSetup {
    /// A peer on the network as a person runs it: listening on every interface (TCP and
    /// QUIC), finding peers on the LAN (mDNS), asking the router for a port (UPnP), punching
    /// holes through NATs (DCUtR).
    /// `nick` is cleaned; a random one replaces it when nothing usable is left.
    pub fn new(nick: &str) -> Self {
        Self {
            nick: Nick::first_usable([Some(nick)]),
            listen: ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            mdns: true,
            upnp: true,
            dcutr: true,
            in_memory: false,
            relay_only: false,
        }
    }

    /// A peer that reaches others only through its relay: it listens on nothing and sends no
    /// multicast (no mDNS, no UPnP). What a bot needs; also what tests use.
    pub fn behind_relay(nick: &str) -> Self {
        Self {
            listen: Vec::new(),
            mdns: false,
            upnp: false,
            dcutr: false,
            ..Self::new(nick)
        }
    }

    /// A peer for tests: listening on loopback TCP only, no multicast, no hole punching.
    pub fn loopback(nick: &str) -> Self {
        Self {
            listen: "/ip4/127.0.0.1/tcp/0".parse().into_iter().collect(),
            ..Self::behind_relay(nick)
        }
    }

    /// A peer in this process's memory (listening on a random `/memory` port): for tests.
    pub fn in_memory(nick: &str) -> Self {
        Self {
            listen: vec![Multiaddr::empty().with(Protocol::Memory(0))],
            in_memory: true,
            ..Self::behind_relay(nick)
        }
    }
}

/// Starts a chat peer (it joins nothing yet: see [`Client::join`], [`Client::use_relay`]).
pub async fn start_peer(key: Keypair, setup: &PeerSetup) -> Result<Node, StartError> {
    let options = NativeOptions {
        relay_server: false,
        rate_per_ip: DEFAULT_RATE_PER_IP,
        connections_per_ip: 0,
        circuit_bytes: DEFAULT_CIRCUIT_BYTES,
        dcutr: setup.dcutr,
        // (A relay-only peer has no address of its own to learn about.)
        autonat: !setup.relay_only,
        mdns: setup.mdns,
        upnp: setup.upnp,
        relay_only: setup.relay_only,
    };
    let transports = if setup.in_memory {
        Transports::Memory
    } else {
        Transports::Network {
            certificate: swarm::new_certificate()?,
            tls: None,
        }
    };
    let config = CoreConfig {
        identity: Some(key.clone()),
        relay_only: setup.relay_only,
        ..CoreConfig::peer(setup.nick.clone())
    };
    let mut swarm = swarm::build(key, transports, Role::Peer, &options, None).await?;
    listen(&mut swarm, &setup.listen)?;
    Ok(spawn(swarm, config))
}

fn listen(swarm: &mut NativeSwarm, addrs: &[Multiaddr]) -> Result<(), StartError> {
    for addr in addrs {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| StartError::Listen {
                addr: addr.clone(),
                // Some transports' errors say nothing in their Display (the memory transport's).
                reason: Some(e.to_string())
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| format!("{e:?}")),
            })?;
    }
    Ok(())
}

/// Runs the chat core of a built swarm on the tokio runtime.
pub fn spawn(swarm: NativeSwarm, config: CoreConfig) -> Node {
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
