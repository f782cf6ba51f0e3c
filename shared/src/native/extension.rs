//! The behaviours only a native peer runs, plugged into the shared chat core as its
//! [`Extension`]: connection limits, the circuit relay server, DCUtR hole punching, AutoNAT,
//! mDNS, UPnP, and the file protocol's streams. Each optional one is a `Toggle`, so one type serves the relay, the CLI peer
//! and the tests (which keep mDNS and UPnP off: both send multicast out of the machine).

use std::num::NonZeroU32;
use std::time::Duration;

use crate::behaviour::{Extension, ExtensionEvent};
use libp2p::{
    autonat, connection_limits, dcutr,
    identity::Keypair,
    mdns, relay,
    swarm::{behaviour::toggle::Toggle, NetworkBehaviour},
    upnp,
};

/// Reservations and circuits one IP address may open per minute, by default (the library's).
pub const DEFAULT_RATE_PER_IP: u32 = 60;

/// Bytes one relayed circuit may carry by default (both ways together): plenty for chat; a file
/// transfer larger than this goes on over a new circuit ([`crate::files::fetch`]) or a direct
/// connection.
pub const DEFAULT_CIRCUIT_BYTES: u64 = 16 * 1024 * 1024;

/// Circuit relay v2 limits chosen for chat. The library defaults (2 minutes and 128 KiB per
/// circuit, 16 circuits) would cut a conversation; these let one last an hour and carry
/// `circuit_bytes` ([`DEFAULT_CIRCUIT_BYTES`]), while bounding what one relay lends out. One
/// peer id may reserve or open a circuit 30 times per 2 minutes; one IP address `per_ip` times
/// per minute (a token bucket: that many at once, then one every 60/`per_ip` s).
pub fn relay_config(per_ip: u32, circuit_bytes: u64) -> relay::Config {
    let per_ip = NonZeroU32::new(per_ip).unwrap_or(NonZeroU32::MIN);
    let per_peer = NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN);
    let (minute, two_minutes) = (Duration::from_secs(60), Duration::from_secs(120));
    relay::Config {
        max_reservations: 20_000,
        max_reservations_per_peer: 4,
        reservation_duration: Duration::from_secs(60 * 60),
        reservation_rate_limiters: Vec::new(),
        max_circuits: 1024,
        max_circuits_per_peer: 16,
        max_circuit_duration: Duration::from_secs(60 * 60),
        max_circuit_bytes: circuit_bytes,
        circuit_src_rate_limiters: Vec::new(),
    }
    .reservation_rate_per_peer(per_peer, two_minutes)
    .reservation_rate_per_ip(per_ip, minute)
    .circuit_src_per_peer(per_peer, two_minutes)
    .circuit_src_per_ip(per_ip, minute)
}

/// Connection limits of a relay: enough for a busy public relay, bounded against floods.
pub fn relay_limits() -> connection_limits::ConnectionLimits {
    connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(512))
        .with_max_established_incoming(Some(20_000))
        .with_max_established_per_peer(Some(8))
}

/// Connection limits of a CLI peer.
pub fn peer_limits() -> connection_limits::ConnectionLimits {
    connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(64))
        .with_max_established_incoming(Some(512))
        .with_max_established_per_peer(Some(4))
}

/// Which native behaviours to run.
#[derive(Debug, Clone)]
pub struct NativeOptions {
    /// Serve circuit relay v2 (the relay).
    pub relay_server: bool,
    /// Reservations and circuits one IP address may open per minute (relay server only).
    pub rate_per_ip: u32,
    /// Connections one IP address may hold open (relay server only; 0: no limit).
    pub connections_per_ip: usize,
    /// Bytes one relayed circuit may carry (relay server only).
    pub circuit_bytes: u64,
    /// DCUtR hole punching (peers).
    pub dcutr: bool,
    /// AutoNAT (client on peers; the relay answers probes).
    pub autonat: bool,
    /// mDNS discovery on the local network. Never on in tests.
    pub mdns: bool,
    /// UPnP port mapping. Never on in tests.
    pub upnp: bool,
    /// No direct connection but to our relays ([`crate::native::relay_only`]).
    pub relay_only: bool,
}

pub use derived::{Native, NativeEvent};

/// The extension struct alone: its derive makes [`NativeEvent`], one undocumented variant per
/// field (each is the field's protocol's event).
mod derived {
    #![allow(missing_docs)]

    use super::*;

    /// The native extension.
    #[derive(NetworkBehaviour)]
    pub struct Native {
        /// Caps on pending and established connections.
        pub limits: connection_limits::Behaviour,
        /// Cap on the connections of one IP address.
        pub ip_limit: crate::native::ip_limit::IpLimit,
        /// `--relay-only`: no direct dial but to our relays.
        pub relay_only: crate::native::relay_only::RelayOnly,
        /// Circuit relay v2 server.
        pub circuit_relay: Toggle<relay::Behaviour>,
        /// Hole punching over relayed connections.
        pub dcutr: Toggle<dcutr::Behaviour>,
        /// NAT status probes.
        pub autonat: Toggle<autonat::Behaviour>,
        /// Local network discovery.
        pub mdns: Toggle<mdns::tokio::Behaviour>,
        /// Router port mapping.
        pub upnp: Toggle<upnp::tokio::Behaviour>,
        /// Streams of the file protocol, opened and accepted outside the event loop through
        /// their control ([`crate::core::Client::streams`], [`crate::files`]).
        pub files: libp2p_stream::Behaviour,
    }
}

impl Native {
    /// Builds the extension for `key`.
    pub fn new(key: &Keypair, options: &NativeOptions) -> std::io::Result<Self> {
        let peer_id = key.public().to_peer_id();
        let ip_limit = if options.relay_server {
            options.connections_per_ip
        } else {
            0
        };
        let (circuit_relay, limits) = if options.relay_server {
            let mut server = relay::Behaviour::new(
                peer_id,
                relay_config(options.rate_per_ip, options.circuit_bytes),
            );
            // Advertise the relay protocol even with no confirmed public address: a relay on a
            // LAN or on loopback would otherwise refuse every reservation.
            server.set_status(Some(relay::Status::Enable));
            (Some(server), relay_limits())
        } else {
            (None, peer_limits())
        };
        let mdns = if options.mdns {
            Some(mdns::tokio::Behaviour::new(
                mdns::Config::default(),
                peer_id,
            )?)
        } else {
            None
        };
        let autonat = options.autonat.then(|| {
            autonat::Behaviour::new(
                peer_id,
                autonat::Config {
                    only_global_ips: !options.relay_server,
                    // A relay serves AutoNAT but never asks its own peers to dial it back: its
                    // addresses are given (`--external-addr`) or are its listen addresses. Asked
                    // of its peers, libp2p's client retries at once whenever a peer does not
                    // speak AutoNAT (browsers, most clients), and each try scans every connected
                    // peer against every recently tried one: with 2,000 peers that was over half
                    // of the relay's CPU at rest, and it grows with the square of the peers.
                    use_connected: !options.relay_server,
                    ..Default::default()
                },
            )
        });
        Ok(Self {
            limits: connection_limits::Behaviour::new(limits),
            ip_limit: crate::native::ip_limit::IpLimit::new(ip_limit),
            relay_only: crate::native::relay_only::RelayOnly::new(options.relay_only),
            circuit_relay: circuit_relay.into(),
            dcutr: options.dcutr.then(|| dcutr::Behaviour::new(peer_id)).into(),
            autonat: autonat.into(),
            mdns: mdns.into(),
            upnp: options.upnp.then(upnp::tokio::Behaviour::default).into(),
            files: libp2p_stream::Behaviour::new(),
        })
    }
}

impl Extension for Native {
    /// The relay server's and DCUtR's events: libp2p-metrics' counters, our gauges, the monitor
    /// page's list.
    fn record(event: &NativeEvent, metrics: &crate::native::metrics::CoreMetrics) {
        match event {
            NativeEvent::CircuitRelay(event) => metrics.record_relay(event),
            NativeEvent::Dcutr(event) => metrics.record_hole_punch(event),
            _ => {}
        }
    }

    fn streams(&self) -> Option<libp2p_stream::Control> {
        Some(self.files.new_control())
    }

    fn using_relay(&mut self, relay: libp2p::PeerId, addrs: &[libp2p::Multiaddr]) {
        self.relay_only.allow(relay, addrs);
    }

    fn translate(event: NativeEvent) -> Option<ExtensionEvent> {
        Some(match event {
            // Streams are handed out through their control, not as events.
            NativeEvent::Files(()) => return None,
            NativeEvent::Limits(never)
            | NativeEvent::IpLimit(never)
            | NativeEvent::RelayOnly(never) => match never {},
            NativeEvent::CircuitRelay(event) => {
                ExtensionEvent::Log(format!("circuit relay server: {event:?}"))
            }
            NativeEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            }) => ExtensionEvent::HolePunch {
                peer: remote_peer_id,
                result: result.map(|_| ()).map_err(|e| e.to_string()),
            },
            NativeEvent::Autonat(autonat::Event::StatusChanged { new, .. }) => {
                ExtensionEvent::NatStatus(match new {
                    autonat::NatStatus::Public(addr) => format!("public {addr}"),
                    autonat::NatStatus::Private => "private".to_owned(),
                    autonat::NatStatus::Unknown => "unknown".to_owned(),
                })
            }
            NativeEvent::Autonat(other) => ExtensionEvent::Log(format!("autonat: {other:?}")),
            NativeEvent::Mdns(mdns::Event::Discovered(found)) => ExtensionEvent::Discovered(found),
            NativeEvent::Mdns(mdns::Event::Expired(gone)) => ExtensionEvent::Expired(gone),
            NativeEvent::Upnp(event) => ExtensionEvent::Log(format!("upnp: {event:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use libp2p::core::ConnectedPoint;
    use libp2p::swarm::behaviour::ConnectionEstablished;
    use libp2p::swarm::{ConnectionId, FromSwarm};
    use libp2p::{Multiaddr, PeerId};

    use super::*;
    use crate::behaviour::{Behaviour, Role};

    #[test]
    fn a_connection_the_limits_refuse_leaves_no_trace_in_the_rooms() {
        let key = Keypair::generate_ed25519();
        let options = NativeOptions {
            relay_server: true,
            rate_per_ip: 30,
            connections_per_ip: 1,
            circuit_bytes: DEFAULT_CIRCUIT_BYTES,
            dcutr: false,
            autonat: false,
            mdns: false,
            upnp: false,
            relay_only: false,
        };
        let native = Native::new(&key, &options).expect("extension");
        let (_, relay_client) = relay::client::new(key.public().to_peer_id());
        let mut relay = Behaviour::new(&key, relay_client, native, Role::Relay).expect("behaviour");
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().expect("address");
        let remote = |port: u16| -> Multiaddr {
            format!("/ip4/127.0.0.1/tcp/{port}")
                .parse()
                .expect("address")
        };
        let (alice, mallory) = (PeerId::random(), PeerId::random());
        let first = ConnectionId::new_unchecked(1);
        relay
            .handle_established_inbound_connection(first, alice, &local, &remote(50001))
            .expect("the first connection from an address is accepted");
        let endpoint = ConnectedPoint::Listener {
            local_addr: local.clone(),
            send_back_addr: remote(50001),
        };
        relay.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id: alice,
            connection_id: first,
            endpoint: &endpoint,
            failed_addresses: &[],
            other_established: 0,
        }));
        // A second identity from the same address: refused, and the swarm forgets it.
        let refused = relay.handle_established_inbound_connection(
            ConnectionId::new_unchecked(2),
            mallory,
            &local,
            &remote(50002),
        );
        assert!(refused.is_err(), "one connection per address");
        let peers: Vec<PeerId> = relay.gossipsub.all_peers().map(|(p, _)| *p).collect();
        assert_eq!(peers, [alice], "gossipsub counts only the accepted peer");
    }
}
