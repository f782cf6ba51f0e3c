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
}
