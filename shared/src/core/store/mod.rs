//! The peer's side of the store ([`crate::store`]): the stores it uses (its relays that serve
//! the protocol), the requests it has out to them, and where each answer goes.
//!
//! - [`catch_up`]: a room's history since the newest message held, merged with live messages;
//! - [`receipts`]: the relay's confirmation that it keeps what we publish;
//! - [`mailbox`]: DMs sealed for offline recipients, and our own mailbox.
//!
//! A relay's side of the same protocol (filing room messages, serving requests) is the hub's,
//! in [`crate::hub`].

pub mod catch_up;
mod mailbox;
mod receipts;

use std::collections::HashMap;

use libp2p::request_response::{self, OutboundRequestId};
use libp2p::PeerId;
use web_time::Instant;

use super::EventLoop;
use crate::behaviour::Extension;
use crate::protocol::STORE_PROTOCOL;
use crate::rpc::{Request, Response};
use crate::store::{HistoryQuery, StoreRequest, StoreResponse};

pub use catch_up::{CatchUp, CATCH_UP_OVERLAP_MS, CATCH_UP_RETRY, FIRST_JOIN_HISTORY};
use mailbox::Deposited;

/// What an answer from a store is for.
#[derive(Debug)]
enum Outstanding {
    Page {
        room: String,
        query: HistoryQuery,
    },
    Receipt {
        room: String,
        ids: Vec<String>,
    },
    Deposit(Box<mailbox::PendingDeposit>),
    Fetch,
    Ack,
    Status,
    /// Asked through [`crate::core::Client::ask_store`]: the answer goes back as it is.
    #[cfg(not(target_arch = "wasm32"))]
    Asked(super::client::Reply<StoreResponse>),
}

/// The peer's store state.
#[derive(Default)]
pub struct StoreClient {
    /// Stores we use (our relays that serve the protocol), connected.
    connected: Vec<PeerId>,
    outstanding: HashMap<OutboundRequestId, Outstanding>,
    deposited: HashMap<String, Deposited>,
    next_mailbox_poll: Option<Instant>,
    next_status_poll: Option<Instant>,
    fetching: bool,
    /// A store that said mail waits while a fetch was under way: fetched from next.
    notified: Option<PeerId>,
    /// Message ids waiting for a receipt request, by room.
    receipts_due: HashMap<String, Vec<String>>,
    receipts_in_flight: usize,
    /// Armed by the first id due: when the due ids go out.
    pub(super) receipt_timer: Option<futures_timer::Delay>,
}

impl std::fmt::Debug for StoreClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreClient")
            .field("connected", &self.connected)
            .field("outstanding", &self.outstanding.len())
            .field("deposited", &self.deposited.len())
            .finish()
    }
}

impl StoreClient {
    /// The store to ask: the first of our relays that serves the protocol.
    fn current(&self) -> Option<PeerId> {
        self.connected.first().copied()
    }
}

impl<X: Extension> EventLoop<X> {
    /// Sends a request to a store and remembers what its answer is for.
    fn ask_store(&mut self, store: PeerId, request: StoreRequest, outstanding: Outstanding) {
        let id = self
            .swarm
            .behaviour_mut()
            .store
            .send_request(&store, Request::Store(Ok(request)));
        self.store.outstanding.insert(id, outstanding);
    }

    /// A request from the user interface (a relay's reconciliation) to `peer`.
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn ask_store_for(
        &mut self,
        peer: PeerId,
        request: StoreRequest,
        reply: super::client::Reply<StoreResponse>,
    ) {
        self.ask_store(peer, request, Outstanding::Asked(reply));
    }

    /// Identify told us `peer` serves the store protocol: when it is one of our relays, use it.
    pub(super) fn store_on_identify(&mut self, peer: PeerId, protocols: &[libp2p::StreamProtocol]) {
        if !protocols.contains(&STORE_PROTOCOL)
            || !self.reservations.is_relay(&peer)
            || self.store.connected.contains(&peer)
        {
            return;
        }
        tracing::info!(%peer, "store connected");
        self.store.connected.push(peer);
        self.send_receipts();
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        for room in rooms {
            self.catch_up(&room);
        }
        self.fetch_mailbox();
    }

    /// The last connection to `peer` closed.
    pub(super) fn store_on_disconnected(&mut self, peer: &PeerId) {
        self.store.connected.retain(|p| p != peer);
    }

    /// Periodic: mailbox and delivery-status polls.
    pub(super) fn store_tick(&mut self, now: Instant) {
        if self.store.connected.is_empty() {
            return;
        }
        self.retry_catch_ups(now);
        if self.store.next_mailbox_poll.is_some_and(|t| now >= t) {
            self.fetch_mailbox();
        }
        self.poll_status(now);
    }

    /// Every event of the store protocol: answers to our requests, and (on a relay) requests
    /// for the hub to serve.
    pub(super) fn on_store_event(&mut self, event: request_response::Event<Request, Response>) {
        use request_response::{Event as E, Message};
        match event {
            E::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request: Request::Store(request),
                        channel,
                    },
                ..
            } => match self.hub.as_mut() {
                Some(hub) => hub.serve(&mut self.swarm, peer, request_id, request, channel),
                None => tracing::debug!(%peer, "a store request to a peer that keeps no store"),
            },
            E::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response: Response::Store(response),
                    },
                ..
            } => {
                if let Some(outstanding) = self.store.outstanding.remove(&request_id) {
                    self.on_store_answer(peer, outstanding, response);
                }
            }
            E::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                if let Some(outstanding) = self.store.outstanding.remove(&request_id) {
                    let reason = format!("store {peer}: {error}");
                    self.on_store_answer(peer, outstanding, StoreResponse::error(reason));
                }
            }
            E::InboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                tracing::debug!(%peer, %error, "store request failed");
                if let Some(hub) = self.hub.as_mut() {
                    hub.on_request_done(&mut self.swarm, request_id);
                }
            }
            E::ResponseSent { request_id, .. } => {
                if let Some(hub) = self.hub.as_mut() {
                    hub.on_request_done(&mut self.swarm, request_id);
                }
            }
            // DMs never come over the store protocol (the codec reads by protocol).
            E::Message { .. } => {}
        }
    }

    fn on_store_answer(&mut self, store: PeerId, outstanding: Outstanding, answer: StoreResponse) {
        match outstanding {
            Outstanding::Page { room, query } => self.on_page(store, room, query, answer),
            Outstanding::Receipt { room, ids } => self.on_receipt(room, ids, answer),
            Outstanding::Deposit(pending) => self.on_deposited(store, *pending, answer),
            Outstanding::Fetch => self.on_mailbox(store, answer),
            // More may wait there: fetched until an answer is empty.
            Outstanding::Ack => match answer {
                StoreResponse::Acked { count } if count > 0 => self.fetch_mailbox_at(store),
                StoreResponse::Error { reason } => {
                    tracing::debug!(reason, "mailbox ack failed");
                }
                _ => {}
            },
            Outstanding::Status => self.on_status(answer),
            #[cfg(not(target_arch = "wasm32"))]
            Outstanding::Asked(reply) => {
                let _ = reply.send(Ok(answer));
            }
        }
    }
}
