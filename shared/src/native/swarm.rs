//! Builds the native swarm around the chat [`Behaviour`] with the [`Native`] extension: on the
//! network (TCP, QUIC, WebRTC-direct, DNS, WebSocket, optionally WebSocket over TLS) or in
//! memory (libp2p's memory transport: nodes of one process, for tests), plus the relay client
//! transport either way.

use libp2p::{
    core::upgrade::Version,
    core::{
        muxing::StreamMuxerBox,
        transport::{Boxed, MemoryTransport, OptionalTransport, TransportError},
    },
    dns,
    identity::Keypair,
    noise, quic, tcp, websocket, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder, Transport,
};

use super::extension::{Native, NativeOptions};
use super::webrtc_hold::HoldOutbound;
use crate::behaviour::{Behaviour, Role};
use crate::protocol::IDLE_CONNECTION_TIMEOUT;

pub use libp2p_webrtc::tokio::Certificate;

/// The native chat swarm.
pub type NativeSwarm = Swarm<Behaviour<Native>>;

/// Which transports a node runs.
#[expect(
    clippy::large_enum_variant,
    reason = "made once per node and moved into the swarm builder"
)]
pub enum Transports {
    /// The network: TCP, QUIC, WebRTC-direct with this certificate (a relay keeps its own so
    /// that its certhash survives restarts), DNS, WebSocket, and WebSocket over TLS (`/tls/ws`,
    /// what browsers on an `https` page need) when a TLS configuration is given.
    Network {
        /// The WebRTC-direct certificate.
        certificate: Certificate,
        /// Certificate and key for `/tls/ws`.
        tls: Option<websocket::tls::Config>,
    },
    /// libp2p's in-process memory transport (`/memory/<port>` addresses): for tests.
    Memory,
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Network { tls, .. } => f
                .debug_struct("Network")
                .field("tls", &tls.is_some())
                .finish_non_exhaustive(),
            Self::Memory => f.write_str("Memory"),
        }
    }
}

/// Why the swarm could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A transport failed to initialise.
    #[error("transport: {0}")]
    Transport(String),
    /// A behaviour failed to initialise.
    #[error("behaviour: {0}")]
    Behaviour(String),
}

fn transport_err(e: impl std::fmt::Display) -> BuildError {
    BuildError::Transport(e.to_string())
}

type BoxedError = Box<dyn std::error::Error + Send + Sync>;

/// How often a chat peer's QUIC connections send a keep-alive when otherwise silent.
pub const QUIC_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);
/// A chat peer's QUIC connection with nothing heard for this long (ms) is closed.
pub const QUIC_IDLE_TIMEOUT_MS: u32 = 4_000;

/// Builds a swarm for `role` with these transports and native behaviours; with `metrics`, its
/// network transports count their bytes (libp2p-metrics' bandwidth counters).
pub async fn build(
    key: Keypair,
    transports: Transports,
    role: Role,
    options: &NativeOptions,
    metrics: Option<&super::metrics::CoreMetrics>,
) -> Result<NativeSwarm, BuildError> {
    let native = Native::new(&key, options).map_err(|e| BuildError::Behaviour(e.to_string()))?;
    let behaviour = |key: &Keypair, relay_client| -> Result<_, BoxedError> {
        Ok(Behaviour::new(key, relay_client, native, role)?)
    };
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT);
    let (certificate, tls) = match transports {
        Transports::Network { certificate, tls } => (certificate, tls),
        Transports::Memory => {
            return Ok(SwarmBuilder::with_existing_identity(key)
                .with_tokio()
                .with_other_transport(|key| -> Result<_, BoxedError> {
                    Ok(MemoryTransport::default()
                        .upgrade(Version::V1)
                        .authenticate(noise::Config::new(key)?)
                        .multiplex(yamux::Config::default()))
                })
                .map_err(transport_err)?
                .with_relay_client(noise::Config::new, yamux::Config::default)
                .map_err(transport_err)?
                .with_behaviour(behaviour)
                .map_err(|e| BuildError::Behaviour(e.to_string()))?
                .with_swarm_config(idle)
                .build());
        }
    };
    let transport = network_transport(&key, role, certificate, tls).map_err(transport_err)?;
    let transport = match metrics {
        // Counted once, around every network transport (the relay client's circuits run over
        // them, so their bytes are counted where they flow). libp2p's
        // `SwarmBuilder::with_bandwidth_metrics` would do this, but its result borrows the
        // registry for as long as the swarm lives.
        Some(metrics) => {
            let counted = metrics.register(|registry| {
                libp2p::metrics::BandwidthTransport::new(transport, registry)
                    .map(boxed)
                    .boxed()
            });
            KnownStacks(counted).boxed()
        }
        None => transport,
    };
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(move |_| Ok::<_, BoxedError>(transport))
        .map_err(transport_err)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(transport_err)?
        .with_behaviour(behaviour)
        .map_err(|e| BuildError::Behaviour(e.to_string()))?
        .with_swarm_config(idle)
        .build();
    Ok(swarm)
}

/// The protocol stacks our network transports dial, after the IP address or DNS name and
/// before any `/p2p` (libp2p-metrics labels bandwidth by the whole stack).
const DIALABLE_STACKS: [&[&str]; 8] = [
    &["tcp"],
    &["tcp", "ws"],
    &["tcp", "wss"],
    &["tcp", "tls", "ws"],
    &["udp", "quic-v1"],
    &["udp", "webrtc-direct"],
    &["udp", "webrtc-direct", "certhash"],
    &["udp", "webrtc-direct", "certhash", "certhash"],
];

/// Whether `addr` has one of the [`DIALABLE_STACKS`].
fn dialable_stack(addr: &Multiaddr) -> bool {
    let mut tags: Vec<&str> = addr.protocol_stack().collect();
    if tags.last() == Some(&"p2p") {
        tags.pop();
    }
    let Some((first, rest)) = tags.split_first() else {
        return false;
    };
    ["ip4", "ip6", "dns", "dns4", "dns6"].contains(first) && DIALABLE_STACKS.contains(&rest)
}

/// Refuses to dial an address with a protocol stack none of our transports handles, before the
/// bandwidth counters inside see it: they make a series for every stack they are asked to dial,
/// and peers choose what the relay dials (AutoNAT dial-backs, Kademlia's lookups), so without
/// this a peer could add series to `/metrics` without end.
struct KnownStacks<T>(T);

impl<T: Transport + Unpin> Transport for KnownStacks<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: libp2p::core::transport::ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.0.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: libp2p::core::transport::ListenerId) -> bool {
        self.0.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: libp2p::core::transport::DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        if !dialable_stack(&addr) {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        self.0.dial(addr, opts)
    }

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<libp2p::core::transport::TransportEvent<Self::ListenerUpgrade, Self::Error>>
    {
        std::pin::Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

/// A connection with its muxer boxed, as the swarm takes it.
fn boxed<M>((peer, muxer): (PeerId, M), _: libp2p::core::ConnectedPoint) -> (PeerId, StreamMuxerBox)
where
    M: libp2p::core::muxing::StreamMuxer + Send + 'static,
    M::Substream: Send + 'static,
    M::Error: Send + Sync + 'static,
{
    (peer, StreamMuxerBox::new(muxer))
}

/// One of two transports' connection.
fn either_one<A>(output: futures::future::Either<A, A>) -> A {
    match output {
        futures::future::Either::Left(a) | futures::future::Either::Right(a) => a,
    }
}

/// The network transports, composed as libp2p's `SwarmBuilder` would (`with_tcp`,
/// `with_quic_config`, `with_other_transport`, `with_dns`, `with_websocket`, in that order),
/// so that their bytes can be counted in one place: TCP, QUIC, WebRTC-direct and WebSocket
/// over TLS behind DNS resolution, and plain WebSocket (which resolves names itself, for its
/// `Host`) first.
fn network_transport(
    key: &Keypair,
    role: Role,
    certificate: Certificate,
    tls: Option<websocket::tls::Config>,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, BoxedError> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default())
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .map(boxed);
    let mut quic = quic::Config::new(key);
    if role == Role::Peer {
        // Notice a relay that died (a killed process says nothing over UDP) in seconds, not
        // after QUIC's default 10 s of silence; the relay's side follows, as the shorter of the
        // two idle timeouts applies.
        quic.keep_alive_interval = QUIC_KEEP_ALIVE;
        quic.max_idle_timeout = QUIC_IDLE_TIMEOUT_MS;
    }
    let quic = quic::tokio::Transport::new(quic).map(boxed);
    let webrtc = libp2p_webrtc::tokio::Transport::new(key.clone(), certificate).map(
        |(peer, conn), endpoint| {
            // Browsers dial in; see webrtc_hold for why their first streams must wait.
            let muxer = if endpoint.is_listener() {
                StreamMuxerBox::new(HoldOutbound::new(conn))
            } else {
                StreamMuxerBox::new(conn)
            };
            (peer, muxer)
        },
    );
    // `/tls/ws` with a certificate (plain `/ws` is the WebSocket transport's below, which is
    // asked first).
    let wss = match tls {
        Some(tls) => {
            let mut ws = websocket::Config::new(tcp::tokio::Transport::new(tcp::Config::default()));
            ws.set_tls_config(tls);
            OptionalTransport::some(
                ws.upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default())
                    .map(boxed),
            )
        }
        None => OptionalTransport::none(),
    };
    let direct = tcp
        .or_transport(quic)
        .map(|either, _| either_one(either))
        .or_transport(webrtc)
        .map(|either, _| either_one(either))
        .or_transport(wss)
        .map(|either, _| either_one(either));
    let direct = dns::tokio::Transport::system(direct)?;
    let ws = websocket::Config::new(dns::tokio::Transport::system(tcp::tokio::Transport::new(
        tcp::Config::default(),
    ))?)
    .upgrade(Version::V1Lazy)
    .authenticate(noise::Config::new(key)?)
    .multiplex(yamux::Config::default())
    .map(boxed);
    Ok(ws
        .or_transport(direct)
        .map(|either, _| either_one(either))
        .boxed())
}

/// A fresh WebRTC certificate (peers, and relays on first start).
pub fn new_certificate() -> Result<Certificate, BuildError> {
    Certificate::generate(&mut rand::rng()).map_err(transport_err)
}
