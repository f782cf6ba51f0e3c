//! `--relay-only`: a peer that opens no direct connection but to the relays it uses, so that
//! nobody else learns its IP address. Listening on nothing is not enough: Kademlia's lookups
//! dial whatever peers the relays' DHT names (the relay keeps peers' direct addresses there, for
//! `/find`), and a DM or a file tries a peer's own addresses before the relay's circuit. This
//! behaviour refuses every such dial before it starts (the chat core, for its part, then tries
//! only circuits: see `routes_to`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::core::{transport::PortUse, Endpoint};
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use crate::addr::is_relayed;

/// Why a dial was refused.
#[derive(Debug, thiserror::Error)]
#[error("relay-only: no direct connection to {0}, only through a relay")]
pub struct NotThroughRelay(String);

/// The behaviour; it lets everything through unless enabled.
#[derive(Debug, Default)]
pub struct RelayOnly {
    enabled: bool,
    /// The relays we use, with the addresses we were given for them: the only peers dialled
    /// directly, and only there (an address someone else told for a relay could be theirs).
    relays: HashMap<PeerId, Vec<Multiaddr>>,
}

impl RelayOnly {
    /// Refuses direct connections to anyone but the relays when `enabled`.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            relays: HashMap::new(),
        }
    }

    /// `peer` is one of our relays, at `addrs`: it may be dialled directly there.
    pub fn allow(&mut self, peer: PeerId, addrs: &[Multiaddr]) {
        let allowed = self.relays.entry(peer).or_default();
        for addr in addrs {
            let bare = without_peer(addr);
            if !allowed.contains(&bare) {
                allowed.push(bare);
            }
        }
    }

    fn check(&self, peer: Option<PeerId>, addrs: &[Multiaddr]) -> Result<(), ConnectionDenied> {
        if !self.enabled {
            return Ok(());
        }
        let direct: Vec<&Multiaddr> = addrs.iter().filter(|a| !is_relayed(a)).collect();
        let fine = match peer.and_then(|p| self.relays.get(&p)) {
            // A relay of ours: at the addresses we were given (or through a circuit).
            Some(allowed) => direct.iter().all(|a| allowed.contains(&without_peer(a))),
            None => !addrs.is_empty() && direct.is_empty(),
        };
        if fine {
            return Ok(());
        }
        let whom = peer.map_or_else(
            || addrs.first().map(ToString::to_string).unwrap_or_default(),
            |p| p.to_string(),
        );
        tracing::debug!(%whom, "relay-only: a direct dial refused");
        Err(ConnectionDenied::new(NotThroughRelay(whom)))
    }
}

/// `addr` without a `/p2p/<id>` at its end.
fn without_peer(addr: &Multiaddr) -> Multiaddr {
    let mut bare = addr.clone();
    if matches!(
        bare.iter().last(),
        Some(libp2p::multiaddr::Protocol::P2p(_))
    ) {
        bare.pop();
    }
    bare
}

impl NetworkBehaviour for RelayOnly {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        addrs: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.check(peer, addrs).map(|()| Vec::new())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // Addresses another behaviour added to a dial are not seen above. A connection to one
        // of our relays is fine at any address: it proved to be that relay, and the addresses
        // added to a dial of it are its own (what it told us, in the DHT).
        if !self.relays.contains_key(&peer) {
            self.check(Some(peer), std::slice::from_ref(addr))?;
        }
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relays_are_dialled_directly_and_anyone_through_a_circuit() {
        let (relay, other) = (PeerId::random(), PeerId::random());
        let direct: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().expect("addr");
        let circuit: Multiaddr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit")
            .parse()
            .expect("addr");
        let mut guard = RelayOnly::new(true);
        let given: Multiaddr = format!("{direct}/p2p/{relay}").parse().expect("addr");
        guard.allow(relay, &[given]);
        // Someone else's word for where our relay is (it would be their address).
        let planted: Multiaddr = "/ip4/192.0.2.7/tcp/1".parse().expect("addr");
        assert!(guard.check(Some(relay), &[planted]).is_err());
        assert!(guard
            .check(Some(relay), std::slice::from_ref(&direct))
            .is_ok());
        assert!(guard
            .check(Some(other), std::slice::from_ref(&circuit))
            .is_ok());
        let refused = guard
            .check(Some(other), &[circuit.clone(), direct.clone()])
            .expect_err("a direct address among them");
        let reason = refused
            .downcast_ref::<NotThroughRelay>()
            .map(ToString::to_string);
        assert!(reason.is_some_and(|r| r.contains("relay-only")));
        assert!(guard.check(Some(other), &[]).is_err(), "addresses unknown");
        assert!(guard.check(None, std::slice::from_ref(&direct)).is_err());
        assert!(RelayOnly::new(false).check(Some(other), &[direct]).is_ok());
    }
}
