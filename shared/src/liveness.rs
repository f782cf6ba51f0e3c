//! Liveness: ping on every connection, and a failed ping closes it (the core's `on_ping`).
//!
//! Neither side of a WebRTC-direct connection notices when the other is gone (libp2p's browser
//! transport does not watch the peer connection's state, rust-libp2p issue #5213; nor does the
//! native one), and a WebSocket behind a proxy may stay open after its page has gone. So direct
//! connections over the transports browsers use are pinged every [`FAST_PING_INTERVAL`], and one
//! with no answered ping for [`FAST_DEAD_AFTER`] is reported failed (the ping protocol itself
//! forgives the first failure and then waits 10 s for a new stream): a closed tab leaves the
//! relay, and a dead relay leaves the page, within a few seconds. Other connections (TCP, QUIC:
//! the kernel notices a closed socket) and relayed circuits (pings would cost the relay) keep the
//! slower pace.

use std::collections::HashMap;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use web_time::Instant;

use either::Either;
use libp2p::core::multiaddr::Protocol;
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{ping, Multiaddr, PeerId};

use crate::addr::is_browser_transport;
use crate::protocol::{PING_INTERVAL, PING_TIMEOUT};

/// Ping period on a direct connection over a browser transport.
pub const FAST_PING_INTERVAL: Duration = Duration::from_secs(1);
/// How long such a ping may wait for its answer.
pub const FAST_PING_TIMEOUT: Duration = Duration::from_secs(3);
/// A fast-pinged connection with no answered ping for this long is reported failed.
pub const FAST_DEAD_AFTER: Duration = Duration::from_secs(4);
/// How often fast-pinged connections are checked.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Ping, at the pace each connection needs.
pub struct Liveness {
    fast: ping::Behaviour,
    slow: ping::Behaviour,
    /// Fast-pinged connections: their peer, and when a ping was last answered (or they opened).
    answered: HashMap<ConnectionId, (PeerId, Instant)>,
    check: futures_timer::Delay,
}

impl Default for Liveness {
    fn default() -> Self {
        let config = |interval, timeout| {
            ping::Config::new()
                .with_interval(interval)
                .with_timeout(timeout)
        };
        Self {
            fast: ping::Behaviour::new(config(FAST_PING_INTERVAL, FAST_PING_TIMEOUT)),
            slow: ping::Behaviour::new(config(PING_INTERVAL, PING_TIMEOUT)),
            answered: HashMap::new(),
            check: futures_timer::Delay::new(CHECK_EVERY),
        }
    }
}

/// Whether a connection over `addr` is pinged fast.
pub fn is_fast(addr: &Multiaddr) -> bool {
    is_browser_transport(addr) && !addr.iter().any(|p| p == Protocol::P2pCircuit)
}

type Handler = THandler<ping::Behaviour>;

impl Liveness {
    fn handler(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        make: impl Fn(&mut ping::Behaviour) -> Result<Handler, ConnectionDenied>,
    ) -> Result<Either<Handler, Handler>, ConnectionDenied> {
        if is_fast(addr) {
            let handler = make(&mut self.fast)?;
            self.answered.insert(id, (peer, Instant::now()));
            Ok(Either::Left(handler))
        } else {
            make(&mut self.slow).map(Either::Right)
        }
    }

    /// The first fast-pinged connection that has gone unanswered too long, reported as a
    /// failed ping (and forgotten, so it is reported once).
    fn overdue(&mut self, now: Instant) -> Option<ping::Event> {
        let (&connection, &(peer, _)) = self
            .answered
            .iter()
            .find(|(_, (_, at))| now.duration_since(*at) >= FAST_DEAD_AFTER)?;
        self.answered.remove(&connection);
        tracing::debug!(%peer, ?connection, "no ping answered for {FAST_DEAD_AFTER:?}");
        Some(ping::Event {
            peer,
            connection,
            result: Err(ping::Failure::Timeout),
        })
    }
}

impl NetworkBehaviour for Liveness {
    type ConnectionHandler = Either<Handler, Handler>;
    type ToSwarm = ping::Event;

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler(connection_id, peer, remote_addr, |ping| {
            ping.handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)
        })
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler(connection_id, peer, addr, |ping| {
            ping.handle_established_outbound_connection(
                connection_id,
                peer,
                addr,
                role_override,
                port_use,
            )
        })
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionClosed(closed) = &event {
            self.answered.remove(&closed.connection_id);
        }
        self.fast.on_swarm_event(event);
        self.slow.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            Either::Left(e) => self
                .fast
                .on_connection_handler_event(peer, connection_id, e),
            Either::Right(e) => self
                .slow
                .on_connection_handler_event(peer, connection_id, e),
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Poll::Ready(event) = self.fast.poll(cx) {
            if let ToSwarm::GenerateEvent(ping::Event {
                connection, result, ..
            }) = &event
            {
                match result {
                    Ok(_) => {
                        if let Some((_, at)) = self.answered.get_mut(connection) {
                            *at = Instant::now();
                        }
                    }
                    // A peer without ping (another program) cannot be watched this way.
                    Err(ping::Failure::Unsupported) => {
                        self.answered.remove(connection);
                    }
                    Err(_) => {}
                }
            }
            return Poll::Ready(event.map_in(Either::Left));
        }
        while self.check.poll_unpin(cx).is_ready() {
            self.check.reset(CHECK_EVERY);
            if let Some(event) = self.overdue(Instant::now()) {
                return Poll::Ready(ToSwarm::GenerateEvent(event));
            }
        }
        self.slow.poll(cx).map(|event| event.map_in(Either::Right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_browser_transports_are_pinged_fast_and_the_rest_slowly() {
        let fast = [
            "/ip4/127.0.0.1/udp/4003/webrtc-direct",
            "/ip4/127.0.0.1/tcp/4002/ws",
            "/dns4/relay.example/tcp/443/tls/ws",
        ];
        let slow = [
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/127.0.0.1/udp/4001/quic-v1",
            "/ip4/127.0.0.1/tcp/4002/ws/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
        ];
        for addr in fast {
            assert!(is_fast(&addr.parse().expect("address")), "{addr}");
        }
        for addr in slow {
            assert!(!is_fast(&addr.parse().expect("address")), "{addr}");
        }
    }

    #[test]
    fn a_connection_with_no_answered_ping_is_reported_failed_once() {
        let mut liveness = Liveness::default();
        let (peer, id) = (PeerId::random(), ConnectionId::new_unchecked(7));
        let opened = Instant::now();
        liveness.answered.insert(id, (peer, opened));
        assert!(liveness.overdue(opened + FAST_PING_INTERVAL).is_none());
        let event = liveness
            .overdue(opened + FAST_DEAD_AFTER)
            .expect("reported");
        assert_eq!((event.peer, event.connection), (peer, id));
        assert!(matches!(event.result, Err(ping::Failure::Timeout)));
        assert!(
            liveness.overdue(opened + 2 * FAST_DEAD_AFTER).is_none(),
            "once"
        );
    }
}
