//! A cap on the connections one IP address may hold open to a relay (libp2p's
//! `connection_limits` caps them per peer and in total, not per address): throwaway identities
//! from one machine cannot take every connection slot. The default leaves room for an office
//! behind one NAT. An IPv6 address counts by its /64 ([`ip_of`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::{transport::PortUse, Endpoint};
use libp2p::swarm::{
    dummy, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use crate::hub::guard::ip_of;

/// Connections one IP address may hold open to a relay, by default.
pub const DEFAULT_CONNECTIONS_PER_IP: usize = 64;

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already holds {held} connections; the limit per IP address is {limit}")]
pub struct TooManyFromIp {
    ip: IpAddr,
    held: usize,
    limit: usize,
}

/// The behaviour.
#[derive(Debug)]
pub struct IpLimit {
    limit: usize,
    by_ip: HashMap<IpAddr, usize>,
    connections: HashMap<ConnectionId, IpAddr>,
}

impl IpLimit {
    /// At most `limit` inbound connections per IP address (0: no limit).
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            by_ip: HashMap::new(),
            connections: HashMap::new(),
        }
    }

    fn check(&self, remote: &Multiaddr) -> Result<Option<IpAddr>, ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(None);
        };
        let held = self.by_ip.get(&ip).copied().unwrap_or(0);
        if self.limit > 0 && held >= self.limit {
            tracing::warn!(%ip, held, limit = self.limit, "connection refused: too many from one IP address");
            return Err(ConnectionDenied::new(TooManyFromIp {
                ip,
                held,
                limit: self.limit,
            }));
        }
        Ok(Some(ip))
    }
}

impl NetworkBehaviour for IpLimit {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.check(remote).map(|_| ())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if let Some(ip) = self.check(remote)? {
            *self.by_ip.entry(ip).or_default() += 1;
            self.connections.insert(connection, ip);
        }
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) = event {
            if let Some(ip) = self.connections.remove(&connection_id) {
                if let Some(count) = self.by_ip.get_mut(&ip) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.by_ip.remove(&ip);
                    }
                }
            }
        }
    }

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
