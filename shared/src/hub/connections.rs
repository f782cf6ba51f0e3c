//! Peers connecting to the hub: each is an explicit gossipsub peer while connected (the hub
//! forwards every message of a room to every member: `behaviour::NO_MESH`), peers that
//! come back over a new connection while the old one lingers, and the DHT table in which every
//! peer can be found through the relay.
//!
//! Gossipsub shares one queue of messages between all the connections of a peer, so a dead one
//! takes messages meant for the live one; and it tells a peer the hub's subscriptions only on
//! that peer's first connection (rust-libp2p issue #5097). Neither side of a WebRTC-direct
//! connection notices promptly that the other closed it, so a reloaded page meets its own ghost.
//! The hub closes a peer's older connections when it connects again, and [`crate::greeter`]
//! has gossipsub greet the new one.

use libp2p::core::ConnectedPoint;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, Swarm};

use super::guard::ip_of;
use super::state::Hub;
use crate::addr::is_browser_transport;
use crate::behaviour::{Behaviour, Extension};
use crate::dht::DhtSlot;
use crate::protocol::MAX_ADDRS_PER_PEER;

impl Hub {
    /// A connection opened; `older` are the peer's connections opened before it, with their
    /// remote addresses.
    pub fn on_connection_established<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        peer: PeerId,
        endpoint: &ConnectedPoint,
        older: &[(ConnectionId, Multiaddr)],
    ) {
        let now = std::time::Instant::now();
        if !self
            .guard
            .on_connected(peer, endpoint.get_remote_address(), now)
        {
            tracing::debug!(%peer, "a banned peer connected; closing");
            let _ = swarm.disconnect_peer_id(peer);
            return;
        }
        self.peering.on_connected(&peer, now);
        // Sent every message of the rooms it subscribes to (`behaviour::NO_MESH`), until
        // its last connection closes: gossipsub dials explicit peers it is not connected to.
        swarm.behaviour_mut().gossipsub.add_explicit_peer(&peer);
        if endpoint.is_dialer() {
            return;
        }
        // The peer came back (a reloaded page, a reopened tab, a peer on a new network) while
        // its old connection lingers: close the old one, or gossipsub would hand messages for
        // the peer to a dead connection. Gossipsub then greets the new one
        // ([`crate::greeter`]).
        let new_ip = ip_of(endpoint.get_remote_address());
        for (old, addr) in older {
            // Two relays may dial each other at once: both links stay.
            if lingers(addr, new_ip) && !self.peering.is_relay(&peer) {
                tracing::info!(%peer, %addr, "peer came back; closing its lingering connection");
                swarm.close_connection(*old);
            }
        }
    }

    /// A connection closed; `last` when none is left.
    pub fn on_connection_closed<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        peer: PeerId,
        last: bool,
    ) {
        if last {
            swarm.behaviour_mut().gossipsub.remove_explicit_peer(&peer);
            self.peering.on_gone(&peer, std::time::Instant::now());
            self.guard.on_gone(&peer);
            self.pacing.on_gone(&peer);
            self.on_peer_gone(swarm, peer);
        }
    }

    /// Identify told us `peer`'s listen addresses. The hub puts every peer in its DHT table so
    /// that anyone can be found through it; never with a relayed address: every DHT lookup (one
    /// starts by itself whenever a peer's table is small) dials the peers it is handed, and
    /// through circuits a room's joins would cost the relay one circuit per pair of members.
    ///
    /// A peer that turns out to be a relay of the network (it serves circuit relay: see
    /// [`super::peering`]) stops counting as a member of the rooms it subscribed to.
    pub fn on_identify<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        peer: PeerId,
        listen_addrs: &[Multiaddr],
        protocols: &[libp2p::StreamProtocol],
    ) {
        let ip = self.guard.ip(&peer);
        if self.peering.on_identify(peer, protocols, listen_addrs, ip) {
            self.no_longer_a_member(swarm, peer);
        }
        for addr in listen_addrs.iter().take(MAX_ADDRS_PER_PEER) {
            if !crate::addr::is_relayed(addr) {
                DhtSlot::add_address(&mut swarm.behaviour_mut().kad, &peer, addr.clone());
            }
        }
    }
}

/// Whether a peer's older connection over `addr` is taken to be dead when the same peer connects
/// again from `new_ip`: a browser's always (neither side of WebRTC-direct notices a closed
/// page; a reload is a new page), any other when it comes from another address (the peer moved
/// to a new network; a dead process's TCP or QUIC connection is closed by its kernel). A peer
/// that opens two connections from one address (a CLI peer dialing the relay as its relay and
/// as its bootstrap node) keeps both, and the reservation on the first.
fn lingers(addr: &Multiaddr, new_ip: Option<std::net::IpAddr>) -> bool {
    is_browser_transport(addr) || ip_of(addr) != new_ip
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browsers_old_connection_lingers_and_a_same_address_cli_connection_does_not() {
        let at = |a: &str| a.parse::<Multiaddr>().expect("address");
        let home = ip_of(&at("/ip4/127.0.0.1/tcp/5"));
        assert!(lingers(&at("/ip4/127.0.0.1/udp/7/webrtc-direct"), home));
        assert!(lingers(&at("/ip4/127.0.0.1/tcp/7/ws"), home));
        assert!(!lingers(&at("/ip4/127.0.0.1/tcp/7"), home));
        assert!(!lingers(&at("/ip4/127.0.0.1/udp/7/quic-v1"), home));
        assert!(lingers(&at("/ip6/::1/tcp/7"), home), "moved");
    }
}
