//! What the core knows about other peers: open connections (with their remote addresses), the
//! addresses learned from identify, mDNS and the DHT (bounded), and identify agent strings.

use std::collections::HashMap;

use std::time::Duration;

use libp2p::{core::multiaddr::Protocol, swarm::ConnectionId, Multiaddr, PeerId};
use web_time::Instant;

use super::event::ConnectedPeer;
use crate::protocol::MAX_ADDRS_PER_PEER;

/// Most peers whose addresses are remembered.
const MAX_KNOWN_PEERS: usize = 50_000;

/// Whether an address goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// Whether an address is over a transport browsers use (WebRTC-direct, WebSocket).
fn is_browser_transport(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| {
        matches!(
            p,
            Protocol::WebRTCDirect | Protocol::Ws(_) | Protocol::Wss(_)
        )
    })
}

/// Peer bookkeeping of the event loop.
#[derive(Debug, Default)]
pub struct Peers {
    /// Remote address of each connection, whether it is relayed, and when it opened.
    connections: HashMap<PeerId, HashMap<ConnectionId, (Multiaddr, bool, Instant)>>,
    addresses: HashMap<PeerId, Vec<Multiaddr>>,
    agents: HashMap<PeerId, String>,
    /// When each peer's connections were last all closed to let it start afresh.
    resets: HashMap<PeerId, Instant>,
}

/// Shortest time between two fresh starts forced on one peer.
pub const RESET_COOLDOWN: Duration = Duration::from_secs(10);

impl Peers {
    /// Records an open connection.
    pub fn connected(&mut self, peer: PeerId, id: ConnectionId, addr: Multiaddr, relayed: bool) {
        self.connections
            .entry(peer)
            .or_default()
            .insert(id, (addr, relayed, Instant::now()));
    }

    /// Records a closed connection; `true` when it was the peer's last.
    pub fn disconnected(&mut self, peer: &PeerId, id: ConnectionId) -> bool {
        let Some(conns) = self.connections.get_mut(peer) else {
            return true;
        };
        conns.remove(&id);
        if conns.is_empty() {
            self.connections.remove(peer);
            self.agents.remove(peer);
            return true;
        }
        false
    }

    /// Whether any connection to the peer is open.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.connections.contains_key(peer)
    }

    /// Whether the peer has a connection over a browser transport (WebRTC-direct, WebSocket).
    pub fn has_browser_connection(&self, peer: &PeerId) -> bool {
        self.connections.get(peer).is_some_and(|conns| {
            conns
                .values()
                .any(|(addr, _, _)| is_browser_transport(addr))
        })
    }

    /// Records that all of `peer`'s connections are being closed to let it start afresh;
    /// `false` (and nothing recorded) when that was already done within [`RESET_COOLDOWN`], so
    /// that a peer that keeps two connections on purpose is not cut off again and again.
    pub fn reset_allowed(&mut self, peer: PeerId) -> bool {
        let now = Instant::now();
        self.resets
            .retain(|_, at| now.duration_since(*at) < RESET_COOLDOWN);
        if self.resets.contains_key(&peer) || self.resets.len() >= MAX_KNOWN_PEERS {
            return false;
        }
        self.resets.insert(peer, now);
        true
    }

    /// Records a fresh start forced on `peer` regardless of the cooldown.
    pub fn note_reset(&mut self, peer: PeerId) {
        if self.resets.len() < MAX_KNOWN_PEERS {
            self.resets.insert(peer, Instant::now());
        }
    }

    /// Whether connection `id` of `peer` is over a browser transport and older than the
    /// peer's other connections (the one gossipsub greeted).
    pub fn is_oldest_browser_connection(&self, peer: &PeerId, id: ConnectionId) -> bool {
        let Some(conns) = self.connections.get(peer) else {
            return false;
        };
        let Some((addr, _, since)) = conns.get(&id) else {
            return false;
        };
        is_browser_transport(addr) && conns.values().all(|(_, _, other)| other >= since)
    }

    /// Whether the given connection goes through a relay.
    pub fn connection_is_relayed(&self, peer: &PeerId, id: ConnectionId) -> bool {
        self.connections
            .get(peer)
            .and_then(|c| c.get(&id))
            .is_some_and(|(_, relayed, _)| *relayed)
    }

    /// Remembers an address of a peer, bounded per peer and in total.
    pub fn add_address(&mut self, peer: PeerId, addr: Multiaddr) {
        if !self.addresses.contains_key(&peer) && self.addresses.len() >= MAX_KNOWN_PEERS {
            return;
        }
        let addrs = self.addresses.entry(peer).or_default();
        if !addrs.contains(&addr) && addrs.len() < MAX_ADDRS_PER_PEER {
            addrs.push(addr);
        }
    }

    /// Forgets one address (mDNS expiry).
    pub fn remove_address(&mut self, peer: &PeerId, addr: &Multiaddr) {
        if let Some(addrs) = self.addresses.get_mut(peer) {
            addrs.retain(|a| a != addr);
        }
    }

    /// Known addresses of a peer, direct ones first.
    pub fn addresses_of(&self, peer: &PeerId) -> Vec<Multiaddr> {
        let mut addrs = self.addresses.get(peer).cloned().unwrap_or_default();
        addrs.sort_by_key(is_relayed);
        addrs
    }

    /// Records a peer's identify agent.
    pub fn set_agent(&mut self, peer: PeerId, agent: String) {
        if self.connections.contains_key(&peer) {
            self.agents.insert(peer, agent);
        }
    }

    /// Every connected peer.
    pub fn connected_peers(&self) -> Vec<ConnectedPeer> {
        let mut list: Vec<ConnectedPeer> = self
            .connections
            .iter()
            .map(|(peer, conns)| ConnectedPeer {
                peer: *peer,
                addrs: conns.values().map(|(addr, _, _)| addr.clone()).collect(),
                agent: self.agents.get(peer).cloned(),
            })
            .collect();
        list.sort_by_key(|p| p.peer.to_base58());
        list
    }

    /// Number of connected peers.
    pub fn connected_count(&self) -> usize {
        self.connections.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_addresses_come_before_circuits() {
        let mut peers = Peers::default();
        let peer = PeerId::random();
        let circuit: Multiaddr = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit"
            .parse()
            .expect("valid");
        let direct: Multiaddr = "/ip4/127.0.0.1/tcp/2".parse().expect("valid");
        peers.add_address(peer, circuit.clone());
        peers.add_address(peer, direct.clone());
        peers.add_address(peer, direct.clone());
        assert_eq!(peers.addresses_of(&peer), vec![direct, circuit]);
    }

    #[test]
    fn addresses_per_peer_are_bounded() {
        let mut peers = Peers::default();
        let peer = PeerId::random();
        for port in 0..100u16 {
            peers.add_address(
                peer,
                format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("valid"),
            );
        }
        assert_eq!(peers.addresses_of(&peer).len(), MAX_ADDRS_PER_PEER);
    }

    #[test]
    fn a_browsers_first_connection_is_known_and_fresh_starts_are_rationed() {
        let mut peers = Peers::default();
        let page = PeerId::random();
        let webrtc: Multiaddr = "/ip4/127.0.0.1/udp/9/webrtc-direct".parse().expect("valid");
        let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/9".parse().expect("valid");
        let (old, new) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        assert!(!peers.has_browser_connection(&page));
        peers.connected(page, old, webrtc.clone(), false);
        assert!(peers.has_browser_connection(&page));
        std::thread::sleep(Duration::from_millis(2));
        peers.connected(page, new, webrtc, false);
        assert!(peers.is_oldest_browser_connection(&page, old));
        assert!(!peers.is_oldest_browser_connection(&page, new));
        let native = PeerId::random();
        peers.connected(native, ConnectionId::new_unchecked(3), tcp, false);
        assert!(!peers.has_browser_connection(&native));

        assert!(peers.reset_allowed(page));
        assert!(
            !peers.reset_allowed(page),
            "a second fresh start waits for the cooldown"
        );
        assert!(peers.reset_allowed(native));
    }
}
