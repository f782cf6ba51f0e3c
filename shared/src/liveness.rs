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

use std::collections::{HashMap, VecDeque};
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
/// ...and before its first answered ping, this long after it opened (a slow link, a stream the
/// relay holds back at first: `native::webrtc_hold`).
pub const FIRST_PING_GRACE: Duration = Duration::from_secs(10);
/// How often fast-pinged connections are checked.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// A fast-pinged connection.
#[derive(Debug, Clone, Copy)]
struct Watch {
    peer: PeerId,
    /// When a ping was last answered, or the connection opened.
    since: Instant,
    answered: bool,
}

impl Watch {
    fn overdue(&self, now: Instant) -> bool {
        let allowed = if self.answered {
            FAST_DEAD_AFTER
        } else {
            FIRST_PING_GRACE
        };
        now.saturating_duration_since(self.since) >= allowed
    }
}

/// Ping, at the pace each connection needs.
pub struct Liveness {
    fast: ping::Behaviour,
    slow: ping::Behaviour,
    watched: HashMap<ConnectionId, Watch>,
    /// Failures found by the last check, to report.
    overdue: VecDeque<ping::Event>,
    timer: futures_timer::Delay,
    last_check: Instant,
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
            watched: HashMap::new(),
            overdue: VecDeque::new(),
            timer: futures_timer::Delay::new(CHECK_EVERY),
            last_check: Instant::now(),
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
            let watch = Watch {
                peer,
                since: Instant::now(),
                answered: false,
            };
            self.watched.insert(id, watch);
            Ok(Either::Left(handler))
        } else {
            make(&mut self.slow).map(Either::Right)
        }
    }

    /// Checks the fast-pinged connections at `now`: those unanswered too long are queued as
    /// failed pings (and forgotten, so each is reported once). When the check itself comes late
    /// (the event loop stalled: a machine waking up, a busy or hidden page), the delay is
    /// nobody's fault: every clock moves on by it.
    fn check(&mut self, now: Instant) {
        let late = now
            .saturating_duration_since(self.last_check)
            .saturating_sub(CHECK_EVERY);
        self.last_check = now;
        if late > 2 * CHECK_EVERY {
            for watch in self.watched.values_mut() {
                watch.since += late;
            }
        }
        let due: Vec<ConnectionId> = self
            .watched
            .iter()
            .filter(|(_, watch)| watch.overdue(now))
            .map(|(id, _)| *id)
            .collect();
        for connection in due {
            let Some(watch) = self.watched.remove(&connection) else {
                continue;
            };
            tracing::debug!(peer = %watch.peer, ?connection, "no ping answered in time");
            self.overdue.push_back(ping::Event {
                peer: watch.peer,
                connection,
                result: Err(ping::Failure::Timeout),
            });
        }
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
            self.watched.remove(&closed.connection_id);
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
                        if let Some(watch) = self.watched.get_mut(connection) {
                            watch.since = Instant::now();
                            watch.answered = true;
                        }
                    }
                    // A peer without ping (another program) cannot be watched this way.
                    Err(ping::Failure::Unsupported) => {
                        self.watched.remove(connection);
                    }
                    Err(_) => {}
                }
            }
            return Poll::Ready(event.map_in(Either::Left));
        }
        if self.overdue.is_empty() {
            while self.timer.poll_unpin(cx).is_ready() {
                self.timer.reset(CHECK_EVERY);
                self.check(Instant::now());
            }
        }
        if let Some(event) = self.overdue.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(event));
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

    /// Runs the checks every [`CHECK_EVERY`] from `from` to `to`; the connections reported.
    fn checks(liveness: &mut Liveness, from: Instant, to: Instant) -> Vec<ConnectionId> {
        let mut at = from;
        while at <= to {
            liveness.check(at);
            at += CHECK_EVERY;
        }
        liveness.overdue.drain(..).map(|e| e.connection).collect()
    }

    #[test]
    fn connections_with_no_answered_ping_are_reported_failed_once_each() {
        let mut liveness = Liveness::default();
        let start = Instant::now();
        liveness.last_check = start;
        let watch = |answered| Watch {
            peer: PeerId::random(),
            since: start,
            answered,
        };
        let (a, b, c) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        // a and b answered pings and then fell silent; c has not answered one yet.
        liveness.watched.insert(a, watch(true));
        liveness.watched.insert(b, watch(true));
        liveness.watched.insert(c, watch(false));
        assert!(checks(&mut liveness, start, start + FAST_PING_TIMEOUT).is_empty());
        let mut dead = checks(
            &mut liveness,
            start + FAST_PING_TIMEOUT + CHECK_EVERY,
            start + FAST_DEAD_AFTER,
        );
        dead.sort();
        assert_eq!(dead, [a, b], "both at once, not one per check");
        assert!(
            checks(
                &mut liveness,
                start + FAST_DEAD_AFTER + CHECK_EVERY,
                start + FIRST_PING_GRACE - CHECK_EVERY
            )
            .is_empty(),
            "each reported once; the one still opening has its grace"
        );
        assert_eq!(
            checks(
                &mut liveness,
                start + FIRST_PING_GRACE,
                start + FIRST_PING_GRACE
            ),
            [c]
        );
    }

    #[test]
    fn a_stalled_event_loop_fails_no_connection() {
        let mut liveness = Liveness::default();
        let start = Instant::now();
        liveness.last_check = start;
        let id = ConnectionId::new_unchecked(9);
        let watch = Watch {
            peer: PeerId::random(),
            since: start,
            answered: true,
        };
        liveness.watched.insert(id, watch);
        // The next check comes ten seconds late: the loop, not the connection, was stuck.
        liveness.check(start + Duration::from_secs(10));
        assert!(liveness.overdue.is_empty());
        assert!(liveness.watched.contains_key(&id));
    }
}
