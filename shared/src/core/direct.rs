//! Direct messages: sent over a direct connection when one exists or can be dialled, else through
//! a relay circuit; acknowledged by the recipient's core; every outcome reported to the sender.

use std::collections::HashMap;

use libp2p::{
    request_response::{self, OutboundRequestId},
    swarm::ConnectionId,
    PeerId,
};
use web_time::Instant;

use super::client::Reply;
use super::error::DmError;
use super::event::{DirectMessage, DmReceipt};
use super::reservations::DialNotStarted;
use super::{Event, EventLoop};
use crate::behaviour::Extension;
use crate::dm::{AckStatus, DmAck};
use crate::envelope::{Envelope, Kind, RawEnvelope};
use crate::protocol::DM_TIMEOUT;
use crate::rpc::{Request, Response};

/// A direct message on its way, with the reply its sender waits for.
#[derive(Debug)]
pub struct Outgoing {
    pub(super) envelope: Envelope,
    pub(super) peer: PeerId,
    pub(super) started: Instant,
    pub(super) reply: Reply<DmReceipt, DmError>,
    /// Whether it was sent again, once, after its connection closed under it.
    pub(super) resent: bool,
}

/// Direct messages on their way.
#[derive(Default)]
pub struct Dms {
    /// Sent, waiting for the acknowledgement.
    in_flight: HashMap<OutboundRequestId, Outgoing>,
    /// Waiting for a connection to their recipient.
    waiting: HashMap<PeerId, Vec<Outgoing>>,
    /// Our dial to each recipient they wait for: only its failure fails them (other dials, a
    /// DHT query's, try other addresses).
    dials: HashMap<PeerId, ConnectionId>,
}

impl std::fmt::Debug for Dms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dms")
            .field("in_flight", &self.in_flight.len())
            .field("waiting", &self.waiting.len())
            .field("dials", &self.dials.len())
            .finish()
    }
}

impl<X: Extension> EventLoop<X> {
    /// Sends a direct message; `reply` gets the acknowledgement or the failure.
    pub(super) fn send_dm(
        &mut self,
        peer: PeerId,
        text: &str,
        file: Option<crate::files::FileOffer>,
        reply: Reply<DmReceipt, DmError>,
    ) {
        if peer == *self.swarm.local_peer_id() {
            let _ = reply.send(Err(DmError::SelfTarget));
            return;
        }
        let made = match file {
            Some(offer) => Ok(Envelope::offer(Kind::Dm, &self.nick, offer)),
            None => Envelope::dm(&self.nick, text),
        };
        let envelope = match made {
            Ok(envelope) => envelope,
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        let outgoing = Outgoing {
            envelope,
            peer,
            started: Instant::now(),
            reply,
            resent: false,
        };
        if self.peers.is_connected(&peer) {
            self.dispatch_dm(outgoing);
            return;
        }
        // Waits for our dial to it, which is started unless one is under way.
        if !self.pending.dms.dials.contains_key(&peer) {
            // Direct addresses and relay circuits at once: the first connection carries the
            // message. A peer behind a NAT is reachable only through the circuit (its own
            // addresses time out), and DCUtR then upgrades the circuit to a direct connection.
            match self.dial_every_route(peer) {
                Ok(dial) => {
                    self.pending.dms.dials.insert(peer, dial);
                }
                Err(DialNotStarted::NoRoute) => {
                    self.deposit_or_fail(outgoing, DmError::NoRoute(peer));
                    return;
                }
                // No event follows a dial that did not start: the message is kept for the peer
                // (or fails) now, not after the DM timeout.
                Err(DialNotStarted::Refused(e)) => {
                    let reason = format!("the dial did not start: {e}");
                    self.deposit_or_fail(outgoing, DmError::Unreachable { peer, reason });
                    return;
                }
            }
        }
        self.pending
            .dms
            .waiting
            .entry(peer)
            .or_default()
            .push(outgoing);
    }

    /// Tells `peer` that mail waits for it here ([`Kind::Mail`]), when it is connected (a
    /// request to a peer that is not would dial it); whether it was told. Its answer is not
    /// waited for.
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn notify_mail(&mut self, peer: PeerId) -> bool {
        if !self.swarm.is_connected(&peer) {
            return false;
        }
        let notice = Envelope::announcement(Kind::Mail, "");
        self.swarm
            .behaviour_mut()
            .dm
            .send_request(&peer, Request::Dm(RawEnvelope::from(&notice)));
        true
    }

    fn dispatch_dm(&mut self, outgoing: Outgoing) {
        let request = Request::Dm(RawEnvelope::from(&outgoing.envelope));
        let id = self
            .swarm
            .behaviour_mut()
            .dm
            .send_request(&outgoing.peer, request);
        self.pending.dms.in_flight.insert(id, outgoing);
    }

    /// A connection to `peer` opened: send what waited for it.
    pub(super) fn dms_on_connected(&mut self, peer: &PeerId) {
        self.pending.dms.dials.remove(peer);
        for outgoing in self.pending.dms.waiting.remove(peer).unwrap_or_default() {
            self.dispatch_dm(outgoing);
        }
    }

    /// Our dial to `peer` (`dial`) failed, at every address: fail what waited for it.
    pub(super) fn dms_on_dial_failed(&mut self, peer: &PeerId, dial: ConnectionId, error: &str) {
        if self.pending.dms.dials.get(peer) != Some(&dial) {
            return;
        }
        self.pending.dms.dials.remove(peer);
        if self.peers.is_connected(peer) {
            return;
        }
        for outgoing in self.pending.dms.waiting.remove(peer).unwrap_or_default() {
            let reason = error.to_owned();
            self.deposit_or_fail(
                outgoing,
                DmError::Unreachable {
                    peer: *peer,
                    reason,
                },
            );
        }
    }

    /// Times out messages still waiting for a connection.
    pub(super) fn dms_tick(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for list in self.pending.dms.waiting.values_mut() {
            let (late, kept): (Vec<_>, Vec<_>) = list
                .drain(..)
                .partition(|o| now.duration_since(o.started) >= DM_TIMEOUT);
            *list = kept;
            expired.extend(late);
        }
        self.pending.dms.waiting.retain(|_, list| !list.is_empty());
        let waiting = &self.pending.dms.waiting;
        self.pending
            .dms
            .dials
            .retain(|peer, _| waiting.contains_key(peer));
        for outgoing in expired {
            let (peer, secs) = (outgoing.peer, DM_TIMEOUT.as_secs());
            self.deposit_or_fail(outgoing, DmError::Timeout { peer, secs });
        }
    }

    /// Every DM protocol event.
    pub(super) fn on_dm_event(&mut self, event: request_response::Event<Request, Response>) {
        use request_response::{Event as E, Message};
        match event {
            E::Message {
                peer,
                message:
                    Message::Request {
                        request: Request::Dm(request),
                        channel,
                        ..
                    },
                ..
            } => {
                let ack = self.receive_dm(peer, request);
                if self
                    .swarm
                    .behaviour_mut()
                    .dm
                    .send_response(channel, Response::Dm(ack))
                    .is_err()
                {
                    tracing::debug!(%peer, "dm sender went away before the acknowledgement");
                }
            }
            E::Message {
                peer,
                connection_id,
                message:
                    Message::Response {
                        request_id,
                        response: Response::Dm(response),
                    },
            } => {
                let Some(outgoing) = self.pending.dms.in_flight.remove(&request_id) else {
                    return;
                };
                let result = match response.status {
                    AckStatus::Delivered => Ok(DmReceipt {
                        id: outgoing.envelope.id,
                        peer,
                        relayed: self.peers.connection_is_relayed(&peer, connection_id),
                        round_trip: outgoing.started.elapsed(),
                        stored: false,
                    }),
                    AckStatus::Rejected => Err(DmError::Rejected {
                        peer,
                        reason: response.reason.unwrap_or_default(),
                    }),
                };
                let _ = outgoing.reply.send(result);
            }
            E::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                if let Some(mut outgoing) = self.pending.dms.in_flight.remove(&request_id) {
                    // Its connection closed (a relayed one, after a hole punch gave a direct
                    // one), by us or by the other end: once more over the connections left.
                    // The recipient drops a copy it already has (by its id).
                    let closed = matches!(
                        error,
                        request_response::OutboundFailure::ConnectionClosed
                            | request_response::OutboundFailure::Io(_)
                    );
                    if closed && !outgoing.resent && self.peers.is_connected(&peer) {
                        outgoing.resent = true;
                        self.dispatch_dm(outgoing);
                        return;
                    }
                    let unsupported = matches!(
                        error,
                        request_response::OutboundFailure::UnsupportedProtocols
                    );
                    let failed = DmError::Failed {
                        peer,
                        reason: error.to_string(),
                    };
                    if unsupported {
                        let _ = outgoing.reply.send(Err(failed));
                    } else {
                        self.deposit_or_fail(outgoing, failed);
                    }
                }
            }
            E::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound direct message failed");
            }
            // Store messages never come over the DM protocol (the codec reads by protocol).
            E::Message { .. } | E::ResponseSent { .. } => {}
        }
    }

    fn receive_dm(&mut self, from: PeerId, request: RawEnvelope) -> DmAck {
        let envelope = match request.validate() {
            Ok(env) if env.kind == Kind::Dm => env,
            Ok(env) if env.kind == Kind::Mail => {
                self.on_mail_notice(from);
                return DmAck {
                    id: env.id,
                    status: AckStatus::Delivered,
                    reason: None,
                };
            }
            Ok(env) => {
                let reason = format!("expected a `dm` envelope, got `{}`", env.kind.as_str());
                return DmAck {
                    id: env.id,
                    status: AckStatus::Rejected,
                    reason: Some(reason),
                };
            }
            Err(e) => {
                self.dropped_payloads += 1;
                let reason = Some(e.to_string());
                return DmAck {
                    id: String::new(),
                    status: AckStatus::Rejected,
                    reason,
                };
            }
        };
        let id = envelope.id.clone();
        // A retried message is acknowledged again but shown once.
        if self.seen.first_time(from, &id) {
            let nick = if envelope.nick.is_empty() {
                crate::text::short_peer_id(&from)
            } else {
                envelope.nick
            };
            self.emit(Event::DirectMessage(DirectMessage {
                id: id.clone(),
                from,
                nick,
                text: envelope.body,
                sent_at: envelope.ts,
                stored: false,
                file: envelope.file,
            }));
        }
        DmAck {
            id,
            status: AckStatus::Delivered,
            reason: None,
        }
    }
}
