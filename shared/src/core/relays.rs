//! Relays we use: a `/p2p-circuit` reservation on each, kept alive across relay restarts and
//! network loss by re-listening with exponential backoff.

use std::time::Duration;

use libp2p::{core::multiaddr::Protocol, core::transport::ListenerId, Multiaddr, PeerId};
use web_time::Instant;

use super::{ChatError, Event, EventLoop};
use crate::behaviour::Extension;

/// First retry delay after a relay is lost; doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two attempts to reach a relay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Slot {
    /// The relay's address, ending in `/p2p/<relay>`.
    addr: Multiaddr,
    peer: PeerId,
    listener: Option<ListenerId>,
    reserved: bool,
    failures: u32,
    retry_at: Option<Instant>,
}

/// The relays this peer keeps a reservation on.
#[derive(Debug, Default)]
pub struct Relays {
    slots: Vec<Slot>,
}

impl Relays {
    /// Whether `peer` is one of our relays.
    pub fn is_relay(&self, peer: &PeerId) -> bool {
        self.slots.iter().any(|s| s.peer == *peer)
    }
}

/// The peer id at the end of an address, or a clear error.
pub fn peer_of(addr: &Multiaddr) -> Result<PeerId, ChatError> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Ok(peer),
        _ => Err(ChatError::Address {
            addr: addr.to_string(),
            reason: "it must end with /p2p/<peer id> (copy the full address the relay printed)"
                .into(),
        }),
    }
}

impl<X: Extension> EventLoop<X> {
    /// Starts keeping a reservation on the relay at `addr`.
    pub(super) fn use_relay(&mut self, addr: Multiaddr) -> Result<(), ChatError> {
        let peer = peer_of(&addr)?;
        if addr.iter().any(|p| p == Protocol::P2pCircuit) {
            return Err(ChatError::Address {
                addr: addr.to_string(),
                reason: "give the relay's own address, without /p2p-circuit".into(),
            });
        }
        if self.relays.is_relay(&peer) {
            return Ok(());
        }
        self.peers.add_address(peer, addr.clone());
        self.relays.slots.push(Slot {
            addr,
            peer,
            listener: None,
            reserved: false,
            failures: 0,
            retry_at: None,
        });
        let index = self.relays.slots.len() - 1;
        self.reserve(index);
        Ok(())
    }

    fn reserve(&mut self, index: usize) {
        let circuit = self.relays.slots[index]
            .addr
            .clone()
            .with(Protocol::P2pCircuit);
        match self.swarm.listen_on(circuit) {
            Ok(id) => {
                let slot = &mut self.relays.slots[index];
                slot.listener = Some(id);
                slot.retry_at = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen through relay");
                self.relay_lost(index);
            }
        }
    }

    fn relay_lost(&mut self, index: usize) {
        let slot = &mut self.relays.slots[index];
        slot.listener = None;
        slot.reserved = false;
        let backoff = FIRST_BACKOFF
            .saturating_mul(2u32.saturating_pow(slot.failures))
            .min(MAX_BACKOFF);
        slot.failures = slot.failures.saturating_add(1);
        slot.retry_at = Some(Instant::now() + backoff);
        let relay = slot.addr.clone();
        tracing::info!(%relay, ?backoff, "relay lost; will retry");
        self.emit(Event::RelayLost {
            relay,
            retry_in_ms: backoff.as_millis() as u64,
        });
    }

    /// A listener closed: when it was a relay's, schedule a retry.
    pub(super) fn relay_listener_closed(&mut self, listener: ListenerId) {
        if let Some(index) = self
            .relays
            .slots
            .iter()
            .position(|s| s.listener == Some(listener))
        {
            self.relay_lost(index);
        }
    }

    /// The last connection to `peer` closed: when it is a relay, its reservation is gone.
    pub(super) fn relay_disconnected(&mut self, peer: &PeerId) {
        if let Some(index) = self.relays.slots.iter().position(|s| s.peer == *peer) {
            if let Some(listener) = self.relays.slots[index].listener {
                self.swarm.remove_listener(listener);
                self.relay_lost(index);
            }
        }
    }

    /// A relay accepted our reservation.
    pub(super) fn relay_reserved(&mut self, relay: PeerId) {
        if let Some(slot) = self.relays.slots.iter_mut().find(|s| s.peer == relay) {
            slot.reserved = true;
            slot.failures = 0;
            let addr = slot.addr.clone().with(Protocol::P2pCircuit);
            self.emit(Event::ReservationAccepted { relay, addr });
        }
    }

    /// Retries relays whose backoff has passed.
    pub(super) fn relays_tick(&mut self, now: Instant) {
        for index in 0..self.relays.slots.len() {
            let slot = &self.relays.slots[index];
            if slot.listener.is_none() && slot.retry_at.is_some_and(|at| at <= now) {
                self.reserve(index);
            }
        }
    }

    /// Circuit addresses to reach `target` through each relay we are reserved on.
    pub(super) fn circuit_addrs(&self, target: PeerId) -> Vec<Multiaddr> {
        self.relays
            .slots
            .iter()
            .filter(|s| s.reserved || self.peers.is_connected(&s.peer))
            .map(|s| {
                s.addr
                    .clone()
                    .with(Protocol::P2pCircuit)
                    .with(Protocol::P2p(target))
            })
            .collect()
    }
}
