//! What a multiaddr says about the way to a peer: through a relay circuit or not, over a
//! transport browsers use or not, and the peer id at its end.

use libp2p::core::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// Whether an address goes through a relay (`/p2p-circuit`).
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// Whether an address is over a transport browsers use (WebRTC-direct, WebSocket).
pub fn is_browser_transport(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| {
        matches!(
            p,
            Protocol::WebRTCDirect | Protocol::Ws(_) | Protocol::Wss(_)
        )
    })
}

/// Every value [`transport_label`] gives.
pub const TRANSPORTS: [&str; 7] = [
    "tcp",
    "quic",
    "webrtc-direct",
    "ws",
    "wss",
    "circuit",
    "other",
];

/// The transport of an address, as a short label (one of [`TRANSPORTS`]).
pub fn transport_label(addr: &Multiaddr) -> &'static str {
    let mut transport = "other";
    for protocol in addr.iter() {
        transport = match protocol {
            Protocol::P2pCircuit => return "circuit",
            Protocol::WebRTCDirect => return "webrtc-direct",
            Protocol::Wss(_) => return "wss",
            Protocol::Ws(_) if transport == "tls" => return "wss",
            Protocol::Ws(_) => return "ws",
            Protocol::Tls => "tls",
            Protocol::QuicV1 | Protocol::Quic => "quic",
            Protocol::Tcp(_) if transport == "other" => "tcp",
            _ => transport,
        };
    }
    if transport == "tls" {
        "tcp"
    } else {
        transport
    }
}

/// The peer id an address ends with (`/p2p/<id>`), if it ends with one.
pub fn peer_at_end(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_and_circuits_are_told_apart() {
        let webrtc: Multiaddr = "/ip4/127.0.0.1/udp/9/webrtc-direct".parse().expect("valid");
        let ws: Multiaddr = "/ip4/127.0.0.1/tcp/9/ws".parse().expect("valid");
        let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/9".parse().expect("valid");
        assert!(is_browser_transport(&webrtc) && is_browser_transport(&ws));
        assert!(!is_browser_transport(&tcp));
        let relay = PeerId::random();
        let circuit = tcp
            .clone()
            .with(Protocol::P2p(relay))
            .with(Protocol::P2pCircuit);
        assert!(is_relayed(&circuit) && !is_relayed(&tcp));
        assert_eq!(peer_at_end(&tcp.with(Protocol::P2p(relay))), Some(relay));
        assert_eq!(peer_at_end(&circuit), None);
    }

    #[test]
    fn every_address_maps_to_one_of_the_transport_labels() {
        let cases = [
            ("/ip4/1.2.3.4/tcp/4001", "tcp"),
            ("/ip4/1.2.3.4/udp/4001/quic-v1", "quic"),
            ("/ip4/1.2.3.4/udp/4003/webrtc-direct/certhash/uEiAdaTg9v1LVailMjqphqaypGMyBxjMGl-YtjIa0MhO4wA", "webrtc-direct"),
            ("/ip4/1.2.3.4/tcp/4002/ws", "ws"),
            ("/ip4/1.2.3.4/tcp/443/tls/ws", "wss"),
            ("/dns4/relay.example/tcp/443/wss", "wss"),
            (
                "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
                "circuit",
            ),
            ("/memory/7", "other"),
        ];
        for (addr, expected) in cases {
            let addr: Multiaddr = addr.parse().expect(addr);
            assert_eq!(transport_label(&addr), expected, "{addr}");
            assert!(TRANSPORTS.contains(&transport_label(&addr)));
        }
    }
}
