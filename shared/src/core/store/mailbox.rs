//! The mailbox: a DM that cannot reach its recipient is sealed to it ([`crate::seal`]) and
//! deposited at our relay; we poll the relay to learn when it was fetched. Our own mailbox is
//! fetched on every (re)connect and every [`MAILBOX_POLL`]; what it holds is shown once and
//! acknowledged, so the relay forgets it and its sender learns it arrived.

use std::time::Duration;

use libp2p::PeerId;
use web_time::Instant;

use super::Outstanding;
use crate::behaviour::Extension;
use crate::core::direct::Outgoing;
use crate::core::event::{DirectMessage, DmReceipt};
use crate::core::{DmError, Event, EventLoop};
use crate::store::{Deposit, StoreRequest, StoreResponse, MAX_IDS_PER_REQUEST};
use crate::text::short_peer_id;

/// How often a peer looks in its mailbox while connected, besides on every (re)connect.
const MAILBOX_POLL: Duration = Duration::from_secs(60);
/// How often a peer asks whether its deposited DMs were fetched.
const STATUS_POLL: Duration = Duration::from_secs(3);
/// Most deposited DMs whose delivery we follow.
const MAX_TRACKED_DEPOSITS: usize = 1000;

/// A deposit on its way: the DM and why it could not be delivered directly.
#[derive(Debug)]
pub(super) struct PendingDeposit {
    outgoing: Outgoing,
    cause: DmError,
}

/// A DM the relay keeps for its recipient, until the recipient fetches it.
#[derive(Debug)]
pub(super) struct Deposited {
    to: PeerId,
    store: PeerId,
    since: Instant,
}

impl<X: Extension> EventLoop<X> {
    /// A DM could not be delivered: keep it at our relay, sealed, or report `error`.
    pub(crate) fn deposit_or_fail(&mut self, outgoing: Outgoing, cause: DmError) {
        let store = self.store.current();
        let (Some(store), Some(key)) = (store, self.identity.as_ref()) else {
            let _ = outgoing.reply.send(Err(cause));
            return;
        };
        let sealed = match crate::seal::seal(key, &outgoing.peer, &outgoing.envelope) {
            Ok(sealed) => sealed,
            Err(e) => {
                let reason = format!("it could not be sealed for the relay: {e}");
                let error = DmError::NotKept {
                    cause: Box::new(cause),
                    reason,
                };
                let _ = outgoing.reply.send(Err(error));
                return;
            }
        };
        let request = StoreRequest::Deposit(Deposit {
            to: outgoing.peer,
            id: outgoing.envelope.id.clone(),
            sealed,
        });
        tracing::debug!(peer = %outgoing.peer, %cause, "depositing a DM at the relay");
        let pending = PendingDeposit { outgoing, cause };
        self.ask_store(store, request, Outstanding::Deposit(Box::new(pending)));
    }

    /// The store answered a deposit.
    pub(super) fn on_deposited(
        &mut self,
        store: PeerId,
        pending: PendingDeposit,
        answer: StoreResponse,
    ) {
        let PendingDeposit { outgoing, cause } = pending;
        let id = match answer {
            StoreResponse::Deposited { id } => id,
            other => {
                let reason = match other {
                    StoreResponse::Error { reason } => reason,
                    other => format!("unexpected answer {other:?}"),
                };
                let error = DmError::NotKept {
                    cause: Box::new(cause),
                    reason,
                };
                let _ = outgoing.reply.send(Err(error));
                return;
            }
        };
        let deposited = &mut self.store.deposited;
        if deposited.len() >= MAX_TRACKED_DEPOSITS {
            let oldest = deposited
                .iter()
                .min_by_key(|(_, d)| d.since)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                deposited.remove(&oldest);
            }
        }
        let now = Instant::now();
        deposited.insert(
            id.clone(),
            Deposited {
                to: outgoing.peer,
                store,
                since: now,
            },
        );
        self.store.next_status_poll = Some(now + STATUS_POLL);
        let _ = outgoing.reply.send(Ok(DmReceipt {
            id,
            peer: outgoing.peer,
            relayed: false,
            round_trip: outgoing.started.elapsed(),
            stored: true,
        }));
    }

    pub(super) fn fetch_mailbox(&mut self) {
        if let Some(store) = self.store.current() {
            self.fetch_mailbox_at(store);
        }
    }

    pub(super) fn fetch_mailbox_at(&mut self, store: PeerId) {
        if self.store.fetching || self.identity.is_none() {
            return;
        }
        self.store.fetching = true;
        self.store.next_mailbox_poll = Some(Instant::now() + MAILBOX_POLL);
        self.ask_store(store, StoreRequest::Fetch, Outstanding::Fetch);
    }

    /// `from` says mail waits for us (it took some from another relay): when it is one of our
    /// stores, fetch now, or right after the fetch under way (the next poll could be a minute
    /// away). Anyone else's word is ignored.
    pub(crate) fn on_mail_notice(&mut self, from: PeerId) {
        if !self.store.connected.contains(&from) {
            return;
        }
        if self.store.fetching {
            self.store.notified = Some(from);
        } else {
            self.fetch_mailbox_at(from);
        }
    }

    /// The store answered a fetch of our mailbox: show what is new, acknowledge it all.
    pub(super) fn on_mailbox(&mut self, store: PeerId, answer: StoreResponse) {
        self.store.fetching = false;
        let StoreResponse::Mailbox { dms } = answer else {
            tracing::debug!(?answer, "mailbox fetch failed");
            if let Some(next) = self.store.notified.take() {
                self.fetch_mailbox_at(next);
            }
            return;
        };
        let Some(key) = self.identity.clone() else {
            return;
        };
        let mut ids = Vec::with_capacity(dms.len());
        for dm in dms {
            ids.push(dm.id.clone());
            let (sender, envelope) = match crate::seal::open(&key, &dm.sealed) {
                Ok(opened) => opened,
                Err(e) => {
                    self.dropped_payloads += 1;
                    tracing::warn!(from = %dm.from, error = %e, "dropped a stored DM");
                    continue;
                }
            };
            if sender != dm.from || envelope.id != dm.id {
                self.dropped_payloads += 1;
                tracing::warn!(depositor = %dm.from, %sender, "dropped a stored DM deposited by someone other than its signer");
                continue;
            }
            if self.seen.first_time(sender, &envelope.id) {
                let nick = if envelope.nick.is_empty() {
                    short_peer_id(&sender)
                } else {
                    envelope.nick
                };
                self.emit(Event::DirectMessage(DirectMessage {
                    id: envelope.id,
                    from: sender,
                    nick,
                    text: envelope.body,
                    sent_at: envelope.ts,
                    stored: true,
                    file: envelope.file,
                }));
            }
        }
        if ids.is_empty() {
            if let Some(next) = self.store.notified.take() {
                self.fetch_mailbox_at(next);
            }
            return;
        }
        // More may be waiting (an answer stops at a count and at a size): once the store has
        // forgotten this batch, ask again, until an answer is empty.
        self.ask_store(store, StoreRequest::Ack { ids }, Outstanding::Ack);
    }

    /// Asks each store which of the DMs we deposited there were fetched.
    pub(super) fn poll_status(&mut self, now: Instant) {
        if self.store.deposited.is_empty() || self.store.next_status_poll.is_some_and(|t| now < t) {
            return;
        }
        self.store.next_status_poll = Some(now + STATUS_POLL);
        let mut by_store: std::collections::HashMap<PeerId, Vec<String>> = Default::default();
        for (id, d) in &self.store.deposited {
            if self.store.connected.contains(&d.store) {
                let ids = by_store.entry(d.store).or_default();
                if ids.len() < MAX_IDS_PER_REQUEST {
                    ids.push(id.clone());
                }
            }
        }
        for (store, ids) in by_store {
            self.ask_store(store, StoreRequest::Status { ids }, Outstanding::Status);
        }
    }

    /// The store answered a status poll.
    pub(super) fn on_status(&mut self, answer: StoreResponse) {
        let StoreResponse::Status { delivered } = answer else {
            tracing::debug!(?answer, "DM status poll failed");
            return;
        };
        for id in delivered {
            if let Some(d) = self.store.deposited.remove(&id) {
                self.emit(Event::DmDelivered { id, peer: d.to });
            }
        }
    }
}
