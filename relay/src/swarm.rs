//! Builds the native swarm: TCP, QUIC, WebRTC-direct, DNS, WebSocket and the relay client
//! transport, around the shared chat [`Behaviour`] with the [`Native`] extension.

use libp2p::{
    core::{muxing::StreamMuxerBox, transport::OptionalTransport, upgrade::Version},
    identity::Keypair,
    noise, tcp, websocket, yamux, Swarm, SwarmBuilder, Transport,
};
use libp2p_webrtc::tokio::Certificate;
use p2p_chat_shared::behaviour::{Behaviour, Role};
use p2p_chat_shared::protocol::IDLE_CONNECTION_TIMEOUT;

use crate::native::{Native, NativeOptions};
use crate::webrtc_hold::HoldOutbound;

/// The native chat swarm.
pub type NativeSwarm = Swarm<Behaviour<Native>>;

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

/// Builds a swarm for `role`. `certificate` is the WebRTC-direct certificate (persisted by the
/// relay so its certhash survives restarts); `tls`, when given, lets WebSocket listen on
/// `/tls/ws` (what browsers on an `https` page need).
pub async fn build(
    key: Keypair,
    certificate: Certificate,
    tls: Option<websocket::tls::Config>,
    role: Role,
    options: &NativeOptions,
) -> Result<NativeSwarm, BuildError> {
    let native = Native::new(&key, options).map_err(|e| BuildError::Behaviour(e.to_string()))?;
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(transport_err)?
        .with_quic()
        .with_other_transport(|key| {
            libp2p_webrtc::tokio::Transport::new(key.clone(), certificate).map(
                |(peer, conn), endpoint| {
                    // Browsers dial in; see webrtc_hold for why their first streams must wait.
                    let muxer = if endpoint.is_listener() {
                        StreamMuxerBox::new(HoldOutbound::new(conn))
                    } else {
                        StreamMuxerBox::new(conn)
                    };
                    (peer, muxer)
                },
            )
        })
        .map_err(transport_err)?
        .with_other_transport(
            |key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                // Ahead of the plain WebSocket transport: with a certificate, this one serves both
                // `/ws` and `/tls/ws`.
                let Some(tls) = tls else {
                    return Ok(OptionalTransport::none());
                };
                let mut ws =
                    websocket::Config::new(tcp::tokio::Transport::new(tcp::Config::default()));
                ws.set_tls_config(tls);
                Ok(OptionalTransport::some(
                    ws.upgrade(Version::V1Lazy)
                        .authenticate(noise::Config::new(key)?)
                        .multiplex(yamux::Config::default()),
                ))
            },
        )
        .map_err(transport_err)?
        .with_dns()
        .map_err(transport_err)?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .map_err(transport_err)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(transport_err)?
        .with_behaviour(|key, relay_client| {
            Behaviour::new(key, relay_client, native, role)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })
        })
        .map_err(|e| BuildError::Behaviour(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

/// A fresh WebRTC certificate (peers, and relays on first start).
pub fn new_certificate() -> Result<Certificate, BuildError> {
    Certificate::generate(&mut rand::rng()).map_err(transport_err)
}
