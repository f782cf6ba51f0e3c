//! Liveness: ping on every connection, and a failed ping closes it (the core's `on_ping`).
//!
//! Neither side of a WebRTC-direct connection notices when the other is gone (libp2p's browser
//! transport does not watch the peer connection's state, rust-libp2p issue #5213; nor does the
//! native one; Chrome itself still called the connection `connected` 4 s after its relay was
//! killed), and a WebSocket behind a proxy may stay open after its page has gone. So direct
//! connections over the transports browsers use are pinged at a fast [`Pace`], and one with no
//! answered ping for its `dead_after` is reported failed (the ping protocol itself forgives the
//! first failure and then waits 10 s for a new stream). A page watches its relay at
//! [`PEER_PACE`]: a relay that died is left within 2 s, so the page is back as soon as the relay
//! is. The relay watches its pages at [`RELAY_PACE`], half as often (it has many): a closed tab
//! leaves within about 4 s. Other connections (TCP: the kernel notices a closed socket; QUIC:
//! its keep-alive, `native::swarm`) and relayed circuits (pings would cost the relay) keep the
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
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{ping, Multiaddr, PeerId};

use crate::addr::is_browser_transport;
use crate::protocol::{PING_INTERVAL, PING_TIMEOUT};

/// How one side pings direct connections over browser transports.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Ping period.
    pub interval: Duration,
    /// How long one ping may wait for its answer.
    pub timeout: Duration,
    /// A connection with no answered ping for this long is reported failed.
    pub dead_after: Duration,
}

/// A chat peer (a page) watching its relay.
pub const PEER_PACE: Pace = Pace {
    interval: Duration::from_millis(500),
    timeout: Duration::from_millis(1_500),
    dead_after: Duration::from_secs(2),
};

/// A relay watching its peers' pages.
pub const RELAY_PACE: Pace = Pace {
    interval: Duration::from_secs(1),
    timeout: Duration::from_secs(3),
    dead_after: Duration::from_secs(4),
};

/// A fast-pinged connection with no answered ping yet is reported failed this long after it
/// opened (a slow link, a stream the relay holds back at first: `native::webrtc_hold`).
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
    fn overdue(&self, now: Instant, dead_after: Duration) -> bool {
        let allowed = if self.answered {
            dead_after
        } else {
            FIRST_PING_GRACE
        };
        now.saturating_duration_since(self.since) >= allowed
    }
}

/// Ping, at the pace each connection needs.
pub struct Liveness {
    pace: Pace,
    fast: ping::Behaviour,
    slow: ping::Behaviour,
    watched: HashMap<ConnectionId, Watch>,
    /// Failures found by the last check, to report.
    overdue: VecDeque<ping::Event>,
    timer: futures_timer::Delay,
    last_check: Instant,
}

impl Liveness {
    /// Liveness that pings direct connections over browser transports at `pace`.
    pub fn new(pace: Pace) -> Self {
        let config = |interval, timeout| {
            ping::Config::new()
                .with_interval(interval)
                .with_timeout(timeout)
        };
        Self {
            pace,
            fast: ping::Behaviour::new(config(pace.interval, pace.timeout)),
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
        addr: &Multiaddr,
        make: impl Fn(&mut ping::Behaviour) -> Result<Handler, ConnectionDenied>,
    ) -> Result<Either<Handler, Handler>, ConnectionDenied> {
        if is_fast(addr) {
            make(&mut self.fast).map(Either::Left)
        } else {
            make(&mut self.slow).map(Either::Right)
        }
    }

    /// Watches a connection once it is established, not when its handler is made: a behaviour
    /// after this one may still deny it, and the swarm then reports it as a failed dial or
    /// listen, never as closed.
    fn established(&mut self, established: &ConnectionEstablished) {
        if is_fast(established.endpoint.get_remote_address()) {
            let watch = Watch {
                peer: established.peer_id,
                since: Instant::now(),
                answered: false,
            };
            self.watched.insert(established.connection_id, watch);
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
            .filter(|(_, watch)| watch.overdue(now, self.pace.dead_after))
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
        self.handler(remote_addr, |ping| {
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
        self.handler(addr, |ping| {
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
        match &event {
            FromSwarm::ConnectionEstablished(established) => self.established(established),
            FromSwarm::ConnectionClosed(closed) => {
                self.watched.remove(&closed.connection_id);
            }
            _ => {}
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
        let pace = PEER_PACE;
        let mut liveness = Liveness::new(pace);
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
        let silent = pace.dead_after - CHECK_EVERY;
        assert!(checks(&mut liveness, start, start + silent).is_empty());
        let mut dead = checks(
            &mut liveness,
            start + silent + CHECK_EVERY,
            start + pace.dead_after,
        );
        dead.sort();
        assert_eq!(dead, [a, b], "both at once, not one per check");
        assert!(
            checks(
                &mut liveness,
                start + pace.dead_after + CHECK_EVERY,
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
        let mut liveness = Liveness::new(RELAY_PACE);
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

    #[test]
    fn a_connection_is_watched_once_established_and_not_when_another_behaviour_denies_it() {
        use libp2p::core::ConnectedPoint;

        let mut liveness = Liveness::new(PEER_PACE);
        let peer = PeerId::random();
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/4002/ws".parse().expect("address");
        let remote: Multiaddr = "/ip4/127.0.0.1/tcp/50000/ws".parse().expect("address");
        for n in [1, 2] {
            let id = ConnectionId::new_unchecked(n);
            liveness
                .handle_established_inbound_connection(id, peer, &local, &remote)
                .expect("a handler");
        }
        assert!(
            liveness.watched.is_empty(),
            "nothing watched before the swarm says so"
        );
        // The first is established; a later behaviour denied the second, so the swarm never
        // reports it.
        let endpoint = ConnectedPoint::Listener {
            local_addr: local.clone(),
            send_back_addr: remote.clone(),
        };
        let first = ConnectionId::new_unchecked(1);
        liveness.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id: peer,
            connection_id: first,
            endpoint: &endpoint,
            failed_addresses: &[],
            other_established: 0,
        }));
        assert_eq!(
            liveness.watched.keys().copied().collect::<Vec<_>>(),
            [first]
        );
        let start = Instant::now();
        liveness.last_check = start;
        let reported = checks(&mut liveness, start, start + FIRST_PING_GRACE);
        assert_eq!(
            reported,
            [first],
            "no failure reported for the denied connection"
        );
    }
}
