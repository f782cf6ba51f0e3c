//! What the core knows about other peers: open connections (with their remote addresses), the
//! addresses learned from identify, mDNS and the DHT (bounded), and identify agent strings.

use std::collections::HashMap;

use libp2p::{swarm::ConnectionId, Multiaddr, PeerId};

use super::event::ConnectedPeer;
use crate::addr::is_relayed;
use crate::protocol::MAX_ADDRS_PER_PEER;

/// Most peers whose addresses are remembered.
const MAX_KNOWN_PEERS: usize = 50_000;

/// Peer bookkeeping of the event loop.
#[derive(Debug, Default)]
pub struct Peers {
    /// Remote address of each connection, and whether it is relayed.
    connections: HashMap<PeerId, HashMap<ConnectionId, (Multiaddr, bool)>>,
    addresses: HashMap<PeerId, Vec<Multiaddr>>,
    agents: HashMap<PeerId, String>,
}

impl Peers {
    /// Records an open connection.
    pub fn connected(&mut self, peer: PeerId, id: ConnectionId, addr: Multiaddr, relayed: bool) {
        self.connections
            .entry(peer)
            .or_default()
            .insert(id, (addr, relayed));
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

    /// Whether the peer identified itself as something other than p2p-chat.
    pub fn is_other_program(&self, peer: &PeerId) -> bool {
        self.agents
            .get(peer)
            .is_some_and(|agent| !agent.starts_with(crate::protocol::AGENT_PREFIX))
    }

    /// The peer's open connections.
    pub fn connections_of(&self, peer: &PeerId) -> Vec<(ConnectionId, Multiaddr)> {
        self.connections
            .get(peer)
            .map(|conns| {
                conns
                    .iter()
                    .map(|(id, (addr, _))| (*id, addr.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The connections to `peer` through a relay circuit, if it also has a direct one.
    pub fn relayed_beside_direct(&self, peer: &PeerId) -> Vec<ConnectionId> {
        let Some(conns) = self.connections.get(peer) else {
            return Vec::new();
        };
        if conns.values().all(|(_, relayed)| *relayed) {
            return Vec::new();
        }
        conns
            .iter()
            .filter(|(_, (_, relayed))| *relayed)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether the given connection goes through a relay.
    pub fn connection_is_relayed(&self, peer: &PeerId, id: ConnectionId) -> bool {
        self.connections
            .get(peer)
            .and_then(|c| c.get(&id))
            .is_some_and(|(_, relayed)| *relayed)
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
        let addrs = self.addresses.get(peer).cloned().unwrap_or_default();
        let (mut direct, relayed): (Vec<_>, Vec<_>) =
            addrs.into_iter().partition(|a| !is_relayed(a));
        direct.extend(relayed);
        direct
    }

    /// Records a peer's identify agent.
    pub fn set_agent(&mut self, peer: PeerId, agent: String) {
        if self.connections.contains_key(&peer) {
            self.agents.insert(peer, agent);
        }
    }

    /// The remote address of every open connection.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn connection_addrs(&self) -> impl Iterator<Item = &Multiaddr> {
        self.connections
            .values()
            .flat_map(|conns| conns.values().map(|(addr, _)| addr))
    }

    /// How many peers have an open connection.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn peer_count(&self) -> usize {
        self.connections.len()
    }

    /// Every connected peer.
    pub fn connected_peers(&self) -> Vec<ConnectedPeer> {
        let mut list: Vec<ConnectedPeer> = self
            .connections
            .iter()
            .map(|(peer, conns)| ConnectedPeer {
                peer: *peer,
                addrs: conns.values().map(|(addr, _)| addr.clone()).collect(),
                direct: conns.values().any(|(_, relayed)| !relayed),
                agent: self.agents.get(peer).cloned(),
            })
            .collect();
        list.sort_unstable_by_key(|p| p.peer.to_base58());
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
    fn open_connections_are_listed() {
        let webrtc: Multiaddr = "/ip4/127.0.0.1/udp/9/webrtc-direct".parse().expect("valid");
        let mut peers = Peers::default();
        let page = PeerId::random();
        peers.connected(page, ConnectionId::new_unchecked(1), webrtc.clone(), false);
        assert_eq!(
            peers.connections_of(&page),
            vec![(ConnectionId::new_unchecked(1), webrtc)]
        );
    }
}
