//! Reservations on the relays we use: a `/p2p-circuit` reservation on each, kept alive across
//! relay restarts and network loss by re-listening with exponential backoff. A relay may be
//! given several addresses (a browser: WebRTC-direct, then WebSocket): when one fails before a
//! reservation, the next is tried at once; after a full round, or after losing a working one,
//! the first again, with backoff.

use std::time::Duration;

use futures_timer::Delay;
use libp2p::{core::multiaddr::Protocol, core::transport::ListenerId, Multiaddr, PeerId};
use web_time::Instant;

use super::error::{AddrError, AddressError};

/// Why [`EventLoop::dial_every_route`] started no dial.
pub(super) enum DialNotStarted {
    /// Not connected, no known address, no relay.
    NoRoute,
    /// The swarm refused the dial, saying why.
    Refused(String),
}
use super::{Event, EventLoop};
use crate::behaviour::Extension;

/// First retry delay after a relay is lost; doubled per failure up to [`QUICK_BACKOFF`], then
/// [`MAX_BACKOFF`] (each delay is then shortened by up to half at random, so that the peers of a
/// relay that restarts do not all come back in the same instant).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How long a relay may take to tell us its rooms after we connect.
const GREETING_WAIT: Duration = Duration::from_secs(2);
/// Longest wait between two attempts at a relay lost a moment ago.
const QUICK_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two attempts to reach a relay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// For this long after a relay is lost (a restart, a short outage), attempts come at most
/// [`QUICK_BACKOFF`] apart, so that a page chats again within about a second of the relay's
/// return; after that the backoff grows.
const QUICK_RETRIES_FOR: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Slot {
    /// The relay's addresses, each ending in `/p2p/<relay>`, best first.
    addrs: Vec<Multiaddr>,
    /// The one in use.
    current: usize,
    peer: PeerId,
    listener: Option<ListenerId>,
    reserved: bool,
    failures: u32,
    retry_at: Option<Instant>,
    /// When the relay was lost, until a reservation is accepted again.
    lost_at: Option<Instant>,
    /// When the current connection to the relay opened, until gossipsub greeted us on it.
    awaiting_greeting: Option<Instant>,
    /// Not used until the relays in use are lost: the next of them then takes over.
    standby: bool,
    /// Given as a fallback (a relay's peers): back on standby once one of ours holds a
    /// reservation again.
    spare: bool,
}

/// The relays this peer keeps a reservation on.
#[derive(Debug, Default)]
pub struct Reservations {
    slots: Vec<Slot>,
    /// Fires at the earliest retry (the housekeeping tick is too coarse for it).
    pub(super) retry_timer: Option<Delay>,
    retry_timer_at: Option<Instant>,
}

impl Slot {
    fn addr(&self) -> &Multiaddr {
        &self.addrs[self.current]
    }
}

impl Reservations {
    /// Whether `peer` is one of the relays we use (not one on standby).
    pub fn is_relay(&self, peer: &PeerId) -> bool {
        self.slots.iter().any(|s| s.peer == *peer && !s.standby)
    }
}

/// The wait before the next attempt at a relay lost `lost_for` ago, after `failures` failed
/// attempts: [`FIRST_BACKOFF`], doubling up to [`QUICK_BACKOFF`] during [`QUICK_RETRIES_FOR`],
/// then up to [`MAX_BACKOFF`]; shortened by up to half at random.
fn backoff(failures: u32, lost_for: Duration) -> Duration {
    let cap = if lost_for < QUICK_RETRIES_FOR {
        QUICK_BACKOFF
    } else {
        MAX_BACKOFF
    };
    let full = FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(failures))
        .min(cap);
    full.mul_f64(1.0 - rand::random::<f64>() / 2.0)
}

/// The peer id at the end of an address, or a clear error.
pub fn peer_of(addr: &Multiaddr) -> Result<PeerId, AddressError> {
    crate::addr::peer_at_end(addr).ok_or_else(|| AddressError {
        addr: addr.to_string(),
        reason: "it must end with /p2p/<peer id> (copy the full address the relay printed)".into(),
    })
}

impl<X: Extension> EventLoop<X> {
    /// Starts keeping a reservation on the relay reachable at `addrs` (best first). Addresses of
    /// other relays (each ending in its own `/p2p/<id>`, after the first relay's) make those
    /// relays standbys: the next takes over when the relays in use are lost (a page given its
    /// relay's peers by `config.json`).
    pub(super) fn use_relay(&mut self, addrs: Vec<Multiaddr>) -> Result<(), AddrError> {
        if addrs.is_empty() {
            return Err(AddressError {
                addr: String::new(),
                reason: "no relay address given".into(),
            }
            .into());
        }
        // By relay, in the order given.
        let mut relays: Vec<(PeerId, Vec<Multiaddr>)> = Vec::new();
        for addr in addrs {
            let peer = peer_of(&addr)?;
            if crate::addr::is_relayed(&addr) {
                return Err(AddressError {
                    addr: addr.to_string(),
                    reason: "give the relay's own address, without /p2p-circuit".into(),
                }
                .into());
            }
            match relays.iter_mut().find(|(p, _)| *p == peer) {
                Some((_, addrs)) => addrs.push(addr),
                None => relays.push((peer, vec![addr])),
            }
        }
        for (n, (peer, addrs)) in relays.into_iter().enumerate() {
            let known = self.reservations.slots.iter().position(|s| s.peer == peer);
            if let Some(index) = known {
                // Asked for first (pasted): one on standby is used now.
                let slot = &mut self.reservations.slots[index];
                if n == 0 && slot.standby {
                    slot.standby = false;
                    self.reserve(index);
                }
                continue;
            }
            #[cfg(not(target_arch = "wasm32"))]
            self.swarm.behaviour_mut().ext.using_relay(peer, &addrs);
            for addr in &addrs {
                self.peers.add_address(peer, addr.clone());
            }
            self.reservations.slots.push(Slot {
                addrs,
                current: 0,
                peer,
                listener: None,
                reserved: false,
                failures: 0,
                retry_at: None,
                lost_at: None,
                awaiting_greeting: None,
                standby: n > 0,
                spare: n > 0,
            });
            if n == 0 {
                self.reserve(self.reservations.slots.len() - 1);
            }
        }
        Ok(())
    }

    fn reserve(&mut self, index: usize) {
        let circuit = self.reservations.slots[index]
            .addr()
            .clone()
            .with(Protocol::P2pCircuit);
        match self.swarm.listen_on(circuit) {
            Ok(id) => {
                let slot = &mut self.reservations.slots[index];
                slot.listener = Some(id);
                slot.retry_at = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen through relay");
                self.reservation_lost(index);
            }
        }
    }

    fn reservation_lost(&mut self, index: usize) {
        let slot = &mut self.reservations.slots[index];
        slot.listener = None;
        let was_reserved = std::mem::replace(&mut slot.reserved, false);
        if !was_reserved && slot.current + 1 < slot.addrs.len() {
            // This address never worked: try the next one now.
            slot.current += 1;
            tracing::info!(next = %slot.addr(), "relay address failed; trying the next");
            self.reserve(index);
            return;
        }
        slot.current = 0;
        let now = Instant::now();
        let lost_at = *slot.lost_at.get_or_insert(now);
        let backoff = backoff(slot.failures, now.duration_since(lost_at));
        slot.failures = slot.failures.saturating_add(1);
        slot.retry_at = Some(now + backoff);
        self.schedule_retry(now + backoff);
        let slot = &self.reservations.slots[index];
        let relay = slot.addr().clone();
        tracing::info!(%relay, ?backoff, attempt = slot.failures, "relay lost; will retry");
        let retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX);
        let attempt = slot.failures;
        self.emit(Event::RelayLost {
            relay,
            retry_in_ms,
            attempt,
        });
        // When no relay in use holds a reservation any more, and none taken over is still
        // trying, the next relay on standby takes over at once (a dial of a dead relay can take
        // many seconds to fail); this one is still retried, and taken back when it is.
        let slots = &mut self.reservations.slots;
        let trying = slots
            .iter()
            .enumerate()
            .any(|(j, s)| j != index && s.spare && !s.standby && s.listener.is_some());
        if !trying && !slots.iter().any(|s| s.reserved) {
            if let Some(next) = slots.iter().position(|s| s.standby) {
                slots[next].standby = false;
                tracing::info!(relay = %slots[next].peer, "relay down; going on with the next one");
                self.reserve(next);
            }
        }
    }

    /// A listener closed: when it was a relay's, schedule a retry.
    pub(super) fn reservation_listener_closed(&mut self, listener: ListenerId) {
        let slots = &self.reservations.slots;
        if let Some(index) = slots.iter().position(|s| s.listener == Some(listener)) {
            self.reservation_lost(index);
        }
    }

    /// The last connection to `peer` closed: when it is a relay, its reservation is gone.
    pub(super) fn reservation_on_disconnected(&mut self, peer: &PeerId) {
        if let Some(index) = self.reservations.slots.iter().position(|s| s.peer == *peer) {
            self.reservations.slots[index].awaiting_greeting = None;
            if let Some(listener) = self.reservations.slots[index].listener {
                self.swarm.remove_listener(listener);
                self.reservation_lost(index);
            }
        }
    }

    /// A connection to `peer` opened: when it is a relay, it should greet us soon. (The backoff
    /// starts over only once a reservation is accepted: a relay that takes connections and drops
    /// them is tried less and less often.)
    pub(super) fn reservation_on_connected(&mut self, peer: &PeerId, first: bool) {
        if let Some(slot) = self.reservations.slots.iter_mut().find(|s| s.peer == *peer) {
            if first {
                slot.awaiting_greeting = Some(Instant::now());
            }
        }
    }

    /// Gossipsub heard `peer`'s subscriptions: when it is a relay, it greeted us.
    pub(super) fn reservation_greeted(&mut self, peer: &PeerId) {
        if let Some(slot) = self.reservations.slots.iter_mut().find(|s| s.peer == *peer) {
            slot.awaiting_greeting = None;
        }
    }

    /// A p2p-chat relay that has not greeted us (told us its rooms) soon after we connected
    /// still holds an older connection of ours (a reloaded or reopened page): gossipsub greets a
    /// peer only on its first connection, and this one would never learn the relay's rooms.
    /// Start afresh: drop the connection; the relay has closed the old one meanwhile.
    fn check_greetings(&mut self, now: Instant) {
        if self.rooms.is_empty() {
            return;
        }
        for index in 0..self.reservations.slots.len() {
            let slot = &self.reservations.slots[index];
            let late = slot
                .awaiting_greeting
                .is_some_and(|at| now.duration_since(at) >= GREETING_WAIT);
            // A relay known to be another program may have no rooms to tell; one that has not
            // even identified itself by now is on a connection that does not work.
            if !late || self.peers.is_other_program(&slot.peer) {
                continue;
            }
            let peer = slot.peer;
            self.reservations.slots[index].awaiting_greeting = None;
            tracing::info!(relay = %peer, "the relay did not greet us; reconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// A relay accepted our reservation.
    pub(super) fn reservation_accepted(&mut self, relay: PeerId) {
        let Some(index) = self.reservations.slots.iter().position(|s| s.peer == relay) else {
            return;
        };
        let slot = &mut self.reservations.slots[index];
        slot.reserved = true;
        slot.failures = 0;
        slot.lost_at = None;
        let (spare, addr) = (slot.spare, slot.addr().clone().with(Protocol::P2pCircuit));
        self.emit(Event::ReservationAccepted { relay, addr });
        // One relay is enough: the spares taken over go back on standby (all of them once one
        // of ours is back, the others still trying when a spare got in).
        for j in 0..self.reservations.slots.len() {
            let s = &self.reservations.slots[j];
            let idle = s.spare && !s.standby && j != index && (!spare || !s.reserved);
            if !idle {
                continue;
            }
            let s = &mut self.reservations.slots[j];
            s.standby = true;
            s.reserved = false;
            s.retry_at = None;
            s.failures = 0;
            s.lost_at = None;
            s.current = 0;
            let (peer, listener) = (s.peer, s.listener.take());
            tracing::info!(relay = %peer, "back on standby");
            if let Some(listener) = listener {
                self.swarm.remove_listener(listener);
            }
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Housekeeping: relays that did not greet us, and retries that are due.
    pub(super) fn reservations_tick(&mut self, now: Instant) {
        self.check_greetings(now);
        self.retry_due(now);
    }

    /// Arms the retry timer for `at`, unless it fires earlier already.
    fn schedule_retry(&mut self, at: Instant) {
        let reservations = &mut self.reservations;
        if reservations.retry_timer.is_some()
            && reservations.retry_timer_at.is_some_and(|armed| armed <= at)
        {
            return;
        }
        reservations.retry_timer = Some(Delay::new(at.saturating_duration_since(Instant::now())));
        reservations.retry_timer_at = Some(at);
    }

    /// The retry timer fired: retries what is due, and waits for the next one.
    pub(super) fn on_retry_timer(&mut self) {
        self.reservations.retry_timer = None;
        self.reservations.retry_timer_at = None;
        self.retry_due(Instant::now());
        let next = self
            .reservations
            .slots
            .iter()
            .filter(|s| s.listener.is_none())
            .filter_map(|s| s.retry_at)
            .min();
        if let Some(at) = next {
            self.schedule_retry(at);
        }
    }

    /// Retries relays whose backoff has passed.
    fn retry_due(&mut self, now: Instant) {
        for index in 0..self.reservations.slots.len() {
            let slot = &self.reservations.slots[index];
            if slot.listener.is_none() && slot.retry_at.is_some_and(|at| at <= now) {
                self.reserve(index);
            }
        }
    }

    /// Every way to dial `target`: its known addresses, direct ones first, then a circuit
    /// through each relay we use. Dialled one at a time in this order.
    pub(super) fn routes_to(&self, target: PeerId) -> Vec<Multiaddr> {
        // `--relay-only`: only circuits through our relays, at the addresses we were given for
        // them (a peer's own address would show it ours; a circuit address someone told could
        // name one of our relays at their own address).
        #[cfg(not(target_arch = "wasm32"))]
        if self.relay_only {
            return self.circuit_addrs(target);
        }
        let mut addrs = self.peers.addresses_of(&target);
        addrs.extend(self.circuit_addrs(target));
        addrs
    }

    /// Dials `target` at every route at once ([`Self::routes_to`]) unless connected: its own
    /// dial, even while another is under way (a DHT query's tries only the addresses the peer
    /// announced, never the circuit). The dial's id, or why none started (no event follows).
    pub(super) fn dial_every_route(
        &mut self,
        target: PeerId,
    ) -> Result<libp2p::swarm::ConnectionId, DialNotStarted> {
        use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
        let addrs = self.routes_to(target);
        if addrs.is_empty() {
            return Err(DialNotStarted::NoRoute);
        }
        let opts = DialOpts::peer_id(target)
            .condition(PeerCondition::Disconnected)
            .addresses(addrs)
            .build();
        let dial = opts.connection_id();
        self.swarm
            .dial(opts)
            .map_err(|e| DialNotStarted::Refused(e.to_string()))?;
        Ok(dial)
    }

    /// Circuit addresses to reach `target` through each relay we are reserved on.
    fn circuit_addrs(&self, target: PeerId) -> Vec<Multiaddr> {
        let usable = |s: &&Slot| s.reserved || self.peers.is_connected(&s.peer);
        let through = |s: &Slot| {
            s.addr()
                .clone()
                .with(Protocol::P2pCircuit)
                .with(Protocol::P2p(target))
        };
        self.reservations
            .slots
            .iter()
            .filter(usable)
            .map(through)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_lost_a_moment_ago_is_tried_at_once_then_about_every_second_then_less_often() {
        let first = backoff(0, Duration::ZERO);
        assert!(
            first <= FIRST_BACKOFF && first >= FIRST_BACKOFF / 2,
            "{first:?}"
        );
        for failures in 4..10 {
            let quick = backoff(failures, Duration::from_secs(5));
            assert!(
                quick <= QUICK_BACKOFF && quick >= QUICK_BACKOFF / 2,
                "{quick:?}"
            );
        }
        let later = backoff(10, QUICK_RETRIES_FOR);
        assert!(
            later <= MAX_BACKOFF && later >= MAX_BACKOFF / 2,
            "{later:?}"
        );
        let fifth = backoff(5, QUICK_RETRIES_FOR * 2);
        assert!(
            fifth <= FIRST_BACKOFF * 32 && fifth >= FIRST_BACKOFF * 16,
            "{fifth:?}"
        );
    }
}
