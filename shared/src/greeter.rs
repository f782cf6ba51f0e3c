//! Gossipsub greets a peer (sends it the topics we are subscribed to) only on the first
//! connection to it (rust-libp2p issue #5097, open). When that connection closes while a newer
//! one stays, as when a reloaded page or a restarted peer comes back before its old connection
//! is gone, the newer connection was never greeted: the peer never learns our rooms, cannot
//! publish to us, and its own side waits for a greeting that does not come.
//!
//! [`Greeter`] wraps gossipsub and keeps each peer's connections in the order gossipsub does.
//! When the first closes and others remain, it tells gossipsub that the next one has just been
//! established as the first: gossipsub then greets the peer again. By then the closed connection
//! no longer takes messages from the peer's queue (gossipsub shares one queue between all the
//! connections of a peer), so the greeting goes out on a live one.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// A behaviour (gossipsub) whose peers are greeted again on their remaining connection when the
/// greeted one closes.
pub struct Greeter<B> {
    inner: B,
    /// Each peer's connections, oldest first.
    connections: HashMap<PeerId, Vec<(ConnectionId, ConnectedPoint)>>,
    /// Peers greeted again (for tests and logs).
    regreeted: u64,
}

impl<B> Greeter<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            connections: HashMap::new(),
            regreeted: 0,
        }
    }

    /// How many times a peer was greeted again on a newer connection.
    pub fn regreeted(&self) -> u64 {
        self.regreeted
    }
}

impl<B> Deref for Greeter<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.inner
    }
}

impl<B> DerefMut for Greeter<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for Greeter<B> {
    type ConnectionHandler = B::ConnectionHandler;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.inner.on_swarm_event(event);
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connections
                    .entry(e.peer_id)
                    .or_default()
                    .push((e.connection_id, e.endpoint.clone()));
            }
            FromSwarm::AddressChange(e) => {
                let known = self
                    .connections
                    .get_mut(&e.peer_id)
                    .and_then(|list| list.iter_mut().find(|(id, _)| *id == e.connection_id));
                if let Some((_, endpoint)) = known {
                    *endpoint = e.new.clone();
                }
            }
            FromSwarm::ConnectionClosed(e) => {
                let Some(list) = self.connections.get_mut(&e.peer_id) else {
                    return;
                };
                let was_first = list.first().is_some_and(|(id, _)| *id == e.connection_id);
                list.retain(|(id, _)| *id != e.connection_id);
                let next = list.first().cloned();
                if list.is_empty() {
                    self.connections.remove(&e.peer_id);
                }
                if let (true, Some((connection_id, endpoint))) = (was_first, next) {
                    tracing::debug!(peer = %e.peer_id, "greeting a peer again on its newer connection");
                    self.regreeted += 1;
                    self.inner.on_swarm_event(FromSwarm::ConnectionEstablished(
                        ConnectionEstablished {
                            peer_id: e.peer_id,
                            connection_id,
                            endpoint: &endpoint,
                            failed_addresses: &[],
                            other_established: 0,
                        },
                    ));
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer, connection_id, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.inner.poll(cx)
    }
}
