//! Stores and the store protocol ([`crate::store`]).
//!
//! As a peer: catch-up of a room when it is joined and whenever a store (one of our relays)
//! connects, from the newest message the user interface holds; receipts for what we publish;
//! DMs sealed and deposited for unreachable recipients, with their delivery status; our own
//! mailbox. As a relay: room messages and requests go to the store backend, answers come back
//! through a queue of futures; the swarm never waits on the database.
//!
//! Exactly once, in order: every message shown, live or stored, goes through one seen-set; live
//! messages that arrive while a room catches up are held back and shown after its history.

use std::collections::HashMap;

use futures::channel::oneshot;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::FutureExt;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;
use web_time::Instant;

use super::client::HistoryMark;
use super::direct::Outgoing;
use super::event::{ChatMessage, DirectMessage, DmReceipt, Origin};
use super::{ChatError, Event, EventLoop};
use crate::behaviour::{Extension, Role};
use crate::envelope::{decode_room_payload, Kind, Payload};
use crate::protocol::HISTORY_PROTOCOL;
use crate::rpc::{Request, Response};
use crate::store::{
    Cursor, Deposit, HistoryItem, HistoryQuery, StoreHandle, StoreJob, StoreRequest, StoreResponse,
    MAX_CLOCK_SKEW_MS, MAX_IDS_PER_REQUEST,
};
use crate::text::{now_unix_ms, short_peer_id};

/// How far before the newest message held a catch-up starts: messages from senders whose clocks
/// run behind, or that reached the store late, are still found (duplicates are dropped).
pub const CATCH_UP_OVERLAP_MS: u64 = 5 * 60 * 1000;
/// Messages shown from the store on joining a room the user interface holds nothing of.
pub const FIRST_JOIN_HISTORY: u32 = 50;
/// Most pages one catch-up reads (100 messages each).
const MAX_CATCH_UP_PAGES: usize = 1000;
/// Most live messages held back while a room catches up; beyond, they are shown at once.
const MAX_HELD: usize = 1000;
/// How often a peer looks in its mailbox while connected, besides on every (re)connect.
const MAILBOX_POLL: std::time::Duration = std::time::Duration::from_secs(60);
/// How often a peer asks whether its deposited DMs were fetched.
const STATUS_POLL: std::time::Duration = std::time::Duration::from_secs(3);
/// Most receipt requests out at once (the rest wait and go in batches).
const MAX_RECEIPTS_IN_FLIGHT: usize = 4;
/// How long the ids of sent messages gather before one receipt request asks for all of them: a
/// busy sender then costs the relay one request per this period, not one per message (the
/// relay's store commits every 10 ms anyway, so "kept" is hardly later).
const RECEIPT_GATHER: std::time::Duration = std::time::Duration::from_millis(20);
/// Most deposited DMs whose delivery we follow.
const MAX_TRACKED_DEPOSITS: usize = 1000;

type Answer = BoxFuture<'static, (ResponseChannel<Response>, StoreResponse)>;

/// A catch-up under way in one room.
#[derive(Debug, Default)]
pub struct CatchUp {
    /// Live messages held back until the history is shown.
    held: Vec<ChatMessage>,
    pages: usize,
}

#[derive(Debug)]
enum Outstanding {
    Page { room: String, query: HistoryQuery },
    Receipt { room: String, ids: Vec<String> },
    Deposit { outgoing: Outgoing, reason: String },
    Fetch,
    Ack,
    Status,
}

#[derive(Debug)]
struct Deposited {
    to: PeerId,
    store: PeerId,
    since: Instant,
}

/// Store-related state of the loop.
#[derive(Default)]
pub struct Stores {
    /// The relay's backend.
    backend: Option<StoreHandle>,
    /// Answers from the backend, in the order they come.
    pub(super) answers: FuturesUnordered<Answer>,
    /// Stores we use (our relays that serve the protocol), connected.
    connected: Vec<PeerId>,
    outstanding: HashMap<OutboundRequestId, Outstanding>,
    deposited: HashMap<String, Deposited>,
    next_mailbox_poll: Option<Instant>,
    next_status_poll: Option<Instant>,
    fetching: bool,
    /// Message ids waiting for a receipt request, by room.
    receipts_due: HashMap<String, Vec<String>>,
    receipts_in_flight: usize,
    /// Armed by the first id due: when the due ids go out.
    pub(super) receipt_timer: Option<futures_timer::Delay>,
    /// Room messages the backend could not take (its queue was full).
    pub(super) dropped_appends: u64,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("backend", &self.backend.is_some())
            .field("answers", &self.answers.len())
            .field("connected", &self.connected)
            .field("outstanding", &self.outstanding.len())
            .field("deposited", &self.deposited.len())
            .finish()
    }
}

impl Stores {
    /// A relay's stores, with its backend.
    pub fn with_backend(backend: Option<StoreHandle>) -> Self {
        Self {
            backend,
            ..Self::default()
        }
    }
}

/// The message a stored item holds, if it is one to show.
fn history_message(room: &str, item: HistoryItem) -> Option<ChatMessage> {
    match decode_room_payload(item.payload.as_bytes()).ok()? {
        Payload::Envelope(env) if env.kind == Kind::Message => Some(ChatMessage {
            room: room.to_owned(),
            nick: if env.nick.is_empty() {
                short_peer_id(&item.from)
            } else {
                env.nick
            },
            id: env.id,
            from: item.from,
            text: env.body,
            sent_at: env.ts,
            origin: Origin::Envelope,
        }),
        Payload::Envelope(_) => None,
        Payload::Text(text) => Some(ChatMessage {
            room: room.to_owned(),
            id: item.id,
            nick: short_peer_id(&item.from),
            from: item.from,
            text,
            sent_at: item.ts,
            origin: Origin::Text,
        }),
    }
}

/// The time a store files a message under: the sender's clock unless it is missing or ahead.
pub fn store_time(sent_at: u64, now: u64) -> u64 {
    if sent_at == 0 || sent_at > now.saturating_add(MAX_CLOCK_SKEW_MS) {
        now
    } else {
        sent_at
    }
}

impl<X: Extension> EventLoop<X> {
    // ----- showing room messages -----

    /// Shows a live room message, or holds it while its room catches up.
    pub(super) fn show_live(&mut self, msg: ChatMessage) {
        let Some(state) = self.rooms.get_mut(&msg.room) else {
            return;
        };
        // A sender's clock far ahead must not move where the next catch-up starts.
        state.newest_ts = state.newest_ts.max(store_time(msg.sent_at, now_unix_ms()));
        match state.catch_up.as_mut() {
            Some(catch_up) if catch_up.held.len() < MAX_HELD => catch_up.held.push(msg),
            _ => self.emit(Event::Message(msg)),
        }
    }

    /// Seeds what the user interface already holds of a room, then catches up on the rest.
    pub(super) fn start_history(&mut self, room: &str, mark: Option<HistoryMark>) {
        if let Some(mark) = mark {
            for (author, id) in &mark.recent {
                self.seen.first_time(*author, id);
            }
            if let Some(state) = self.rooms.get_mut(room) {
                let newest = store_time(mark.newest_ts, now_unix_ms());
                state.newest_ts = state.newest_ts.max(newest);
                state.holds_history = true;
            }
        }
        self.catch_up(room);
    }

    /// Asks a store for what `room` missed, unless one is already asked or none is connected.
    fn catch_up(&mut self, room: &str) {
        let Some(store) = self.stores.connected.first().copied() else {
            return;
        };
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        if state.catch_up.is_some() {
            return;
        }
        state.catch_up = Some(CatchUp::default());
        let query = if state.holds_history || state.newest_ts > 0 {
            HistoryQuery {
                room: room.to_owned(),
                start: Some(state.newest_ts.saturating_sub(CATCH_UP_OVERLAP_MS)),
                ..Default::default()
            }
        } else {
            HistoryQuery {
                room: room.to_owned(),
                limit: Some(FIRST_JOIN_HISTORY),
                newest: true,
                ..Default::default()
            }
        };
        self.ask_page(store, room.to_owned(), query);
    }

    fn ask_page(&mut self, store: PeerId, room: String, query: HistoryQuery) {
        let request = StoreRequest::Query(query.clone());
        self.ask_store(store, request, Outstanding::Page { room, query });
    }

    /// Sends a request to a store and remembers what its answer is for.
    fn ask_store(&mut self, store: PeerId, request: StoreRequest, outstanding: Outstanding) {
        let id = self
            .swarm
            .behaviour_mut()
            .store
            .send_request(&store, Request::Store(Ok(request)));
        self.stores.outstanding.insert(id, outstanding);
    }

    fn on_page(
        &mut self,
        store: PeerId,
        room: String,
        query: HistoryQuery,
        items: Vec<HistoryItem>,
        next: Option<Cursor>,
    ) {
        let mut messages = Vec::new();
        for item in items {
            if let Some(msg) = history_message(&room, item) {
                if self.seen.first_time(msg.from, &msg.id) {
                    messages.push(msg);
                }
            }
        }
        messages
            .sort_unstable_by(|a, b| (a.sent_at, &a.id, a.from).cmp(&(b.sent_at, &b.id, b.from)));
        let Some(state) = self.rooms.get_mut(&room) else {
            return; // left meanwhile
        };
        let now = now_unix_ms();
        if let Some(last) = messages.iter().map(|m| store_time(m.sent_at, now)).max() {
            state.newest_ts = state.newest_ts.max(last);
        }
        state.holds_history = true;
        let pages = state.catch_up.as_mut().map_or(0, |c| {
            c.pages += 1;
            c.pages
        });
        let more = match next {
            Some(cursor) if !query.newest && pages < MAX_CATCH_UP_PAGES => Some(cursor),
            _ => None,
        };
        if !messages.is_empty() || more.is_none() {
            self.emit(Event::History {
                room: room.clone(),
                messages,
                done: more.is_none(),
            });
        }
        match more {
            Some(cursor) => {
                let query = HistoryQuery {
                    after: Some(cursor),
                    ..query
                };
                self.ask_page(store, room, query);
            }
            None => self.end_catch_up(&room),
        }
    }

    /// Shows what was held back during a catch-up.
    fn end_catch_up(&mut self, room: &str) {
        let held = self
            .rooms
            .get_mut(room)
            .and_then(|s| s.catch_up.take())
            .map(|c| c.held)
            .unwrap_or_default();
        for msg in held {
            self.emit(Event::Message(msg));
        }
    }

    // ----- receipts -----

    /// Asks our store to confirm it keeps message `id` of `room`. Receipts are batched: at most
    /// [`MAX_RECEIPTS_IN_FLIGHT`] requests are out at a time, and ids wait for the next one.
    pub(super) fn request_receipt(&mut self, room: &str, id: &str) {
        if self.stores.connected.is_empty() {
            return;
        }
        self.stores
            .receipts_due
            .entry(room.to_owned())
            .or_default()
            .push(id.to_owned());
        if self.stores.receipt_timer.is_none() {
            self.stores.receipt_timer = Some(futures_timer::Delay::new(RECEIPT_GATHER));
        }
    }

    /// The gathered ids are due: ask for their receipts.
    pub(super) fn on_receipt_timer(&mut self) {
        self.stores.receipt_timer = None;
        self.send_receipts();
    }

    fn send_receipts(&mut self) {
        let Some(store) = self.stores.connected.first().copied() else {
            return;
        };
        while self.stores.receipts_in_flight < MAX_RECEIPTS_IN_FLIGHT {
            let Some(room) = self.stores.receipts_due.keys().next().cloned() else {
                return;
            };
            let Some(due) = self.stores.receipts_due.get_mut(&room) else {
                return;
            };
            let take = due.len().min(MAX_IDS_PER_REQUEST);
            let ids: Vec<String> = due.drain(..take).collect();
            if due.is_empty() {
                self.stores.receipts_due.remove(&room);
            }
            let request = StoreRequest::Receipt {
                room: room.clone(),
                ids: ids.clone(),
            };
            self.stores.receipts_in_flight += 1;
            self.ask_store(store, request, Outstanding::Receipt { room, ids });
        }
    }

    // ----- direct messages for offline peers -----

    /// A DM could not be delivered: keep it at our relay, sealed, or report `error`.
    pub(super) fn deposit_or_fail(&mut self, outgoing: Outgoing, error: ChatError) {
        let store = self.stores.connected.first().copied();
        let (Some(store), Some(key)) = (store, self.identity.as_ref()) else {
            let _ = outgoing.reply.send(Err(error));
            return;
        };
        let reason = error.to_string();
        let sealed = match crate::seal::seal(key, &outgoing.peer, &outgoing.envelope) {
            Ok(sealed) => sealed,
            Err(e) => {
                let reason = format!("{reason}; it could not be sealed for the relay: {e}");
                let _ = outgoing.reply.send(Err(ChatError::DmFailed(reason)));
                return;
            }
        };
        let request = StoreRequest::Deposit(Deposit {
            to: outgoing.peer,
            id: outgoing.envelope.id.clone(),
            sealed,
        });
        tracing::debug!(peer = %outgoing.peer, %reason, "depositing a DM at the relay");
        self.ask_store(store, request, Outstanding::Deposit { outgoing, reason });
    }

    fn fetch_mailbox(&mut self) {
        let Some(store) = self.stores.connected.first().copied() else {
            return;
        };
        if self.stores.fetching || self.identity.is_none() {
            return;
        }
        self.stores.fetching = true;
        self.stores.next_mailbox_poll = Some(Instant::now() + MAILBOX_POLL);
        self.ask_store(store, StoreRequest::Fetch, Outstanding::Fetch);
    }

    fn on_mailbox(&mut self, store: PeerId, dms: Vec<crate::store::StoredDm>) {
        let Some(key) = self.identity.clone() else {
            return;
        };
        let full = dms.len() >= MAX_IDS_PER_REQUEST;
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
                }));
            }
        }
        if ids.is_empty() {
            return;
        }
        self.ask_store(store, StoreRequest::Ack { ids }, Outstanding::Ack);
        if full {
            // More are waiting: ask again once this batch is forgotten.
            self.stores.next_mailbox_poll = Some(Instant::now());
        }
    }

    fn poll_status(&mut self, now: Instant) {
        if self.stores.deposited.is_empty() || self.stores.next_status_poll.is_some_and(|t| now < t)
        {
            return;
        }
        self.stores.next_status_poll = Some(now + STATUS_POLL);
        let mut by_store: HashMap<PeerId, Vec<String>> = HashMap::new();
        for (id, d) in &self.stores.deposited {
            if self.stores.connected.contains(&d.store) {
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

    // ----- connection bookkeeping -----

    /// Identify told us `peer` serves the store protocol.
    pub(super) fn stores_on_identify(
        &mut self,
        peer: PeerId,
        protocols: &[libp2p::StreamProtocol],
    ) {
        if self.role != Role::Peer
            || !protocols.contains(&HISTORY_PROTOCOL)
            || !self.relays.is_relay(&peer)
            || self.stores.connected.contains(&peer)
        {
            return;
        }
        tracing::info!(%peer, "store connected");
        self.stores.connected.push(peer);
        self.send_receipts();
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        for room in rooms {
            self.catch_up(&room);
        }
        self.fetch_mailbox();
    }

    /// The last connection to `peer` closed.
    pub(super) fn stores_on_disconnected(&mut self, peer: &PeerId) {
        self.stores.connected.retain(|p| p != peer);
    }

    /// Periodic: mailbox and delivery-status polls.
    pub(super) fn stores_tick(&mut self, now: Instant) {
        if self.role != Role::Peer || self.stores.connected.is_empty() {
            return;
        }
        if self.stores.next_mailbox_poll.is_some_and(|t| now >= t) {
            self.fetch_mailbox();
        }
        self.poll_status(now);
    }

    // ----- the protocol's events -----

    pub(super) fn on_store_event(&mut self, event: request_response::Event<Request, Response>) {
        use request_response::{Event as E, Message};
        match event {
            E::Message {
                peer,
                message:
                    Message::Request {
                        request: Request::Store(request),
                        channel,
                        ..
                    },
                ..
            } => self.serve_store_request(peer, request, channel),
            E::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response: Response::Store(response),
                    },
                ..
            } => {
                if let Some(outstanding) = self.stores.outstanding.remove(&request_id) {
                    self.on_store_response(peer, outstanding, response);
                }
            }
            E::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                if let Some(outstanding) = self.stores.outstanding.remove(&request_id) {
                    let reason = format!("store {peer}: {error}");
                    self.on_store_response(peer, outstanding, StoreResponse::error(reason));
                }
            }
            E::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "store request failed");
            }
            // DMs never come over the store protocol (the codec reads by protocol).
            E::Message { .. } | E::ResponseSent { .. } => {}
        }
    }

    fn on_store_response(
        &mut self,
        store: PeerId,
        outstanding: Outstanding,
        response: StoreResponse,
    ) {
        match (outstanding, response) {
            (Outstanding::Page { room, query }, StoreResponse::Page { messages, next }) => {
                self.on_page(store, room, query, messages, next);
            }
            (Outstanding::Page { room, .. }, other) => {
                tracing::warn!(room, answer = ?other, "history catch-up failed");
                self.emit(Event::History {
                    room: room.clone(),
                    messages: Vec::new(),
                    done: true,
                });
                self.end_catch_up(&room);
            }
            (Outstanding::Receipt { room, ids }, response) => {
                self.stores.receipts_in_flight = self.stores.receipts_in_flight.saturating_sub(1);
                let (stored, reason) = match response {
                    StoreResponse::Stored { ids } => (ids, None),
                    StoreResponse::Error { reason } => (Vec::new(), Some(reason)),
                    other => (Vec::new(), Some(format!("unexpected answer {other:?}"))),
                };
                for id in ids {
                    if stored.contains(&id) {
                        self.emit(Event::Stored {
                            room: room.clone(),
                            id,
                        });
                    } else {
                        let reason = reason
                            .clone()
                            .unwrap_or_else(|| "the relay did not receive it in time".to_owned());
                        self.emit(Event::NotStored {
                            room: room.clone(),
                            id,
                            reason,
                        });
                    }
                }
                self.send_receipts();
            }
            (Outstanding::Deposit { outgoing, .. }, StoreResponse::Deposited { id }) => {
                if self.stores.deposited.len() >= MAX_TRACKED_DEPOSITS {
                    let oldest = self
                        .stores
                        .deposited
                        .iter()
                        .min_by_key(|(_, d)| d.since)
                        .map(|(id, _)| id.clone());
                    if let Some(oldest) = oldest {
                        self.stores.deposited.remove(&oldest);
                    }
                }
                self.stores.deposited.insert(
                    id.clone(),
                    Deposited {
                        to: outgoing.peer,
                        store,
                        since: Instant::now(),
                    },
                );
                self.stores.next_status_poll = Some(Instant::now() + STATUS_POLL);
                let _ = outgoing.reply.send(Ok(DmReceipt {
                    id,
                    peer: outgoing.peer,
                    relayed: false,
                    round_trip: outgoing.started.elapsed(),
                    stored: true,
                }));
            }
            (Outstanding::Deposit { outgoing, reason }, other) => {
                let why = match other {
                    StoreResponse::Error { reason } => reason,
                    other => format!("unexpected answer {other:?}"),
                };
                let reason = format!("{reason}; the relay did not keep it either: {why}");
                let _ = outgoing.reply.send(Err(ChatError::DmFailed(reason)));
            }
            (Outstanding::Fetch, StoreResponse::Mailbox { dms }) => {
                self.stores.fetching = false;
                self.on_mailbox(store, dms);
            }
            (Outstanding::Fetch, other) => {
                self.stores.fetching = false;
                tracing::debug!(answer = ?other, "mailbox fetch failed");
            }
            (Outstanding::Ack, other) => {
                if let StoreResponse::Error { reason } = other {
                    tracing::debug!(reason, "mailbox ack failed");
                }
            }
            (Outstanding::Status, StoreResponse::Status { delivered }) => {
                for id in delivered {
                    if let Some(d) = self.stores.deposited.remove(&id) {
                        self.emit(Event::DmDelivered { id, peer: d.to });
                    }
                }
            }
            (Outstanding::Status, other) => {
                tracing::debug!(answer = ?other, "DM status poll failed");
            }
        }
    }

    // ----- serving (the relay) -----

    fn serve_store_request(
        &mut self,
        from: PeerId,
        request: Result<StoreRequest, String>,
        channel: ResponseChannel<Response>,
    ) {
        if cfg!(target_arch = "wasm32") {
            return; // the browser serves no store (its codec refuses before this)
        }
        let request = match request {
            Ok(request) => request,
            Err(reason) => {
                tracing::debug!(%from, reason, "refused a store request");
                self.respond_store(channel, StoreResponse::error(reason));
                return;
            }
        };
        let Some(backend) = self.stores.backend.as_mut() else {
            self.respond_store(channel, StoreResponse::error("this peer keeps no store"));
            return;
        };
        let (reply, answer) = oneshot::channel();
        let job = StoreJob::Request {
            from,
            request,
            reply,
        };
        if let Err(e) = backend.try_send(job) {
            let reason = if e.is_full() {
                "the store is busy; try again shortly"
            } else {
                "the store has stopped"
            };
            self.respond_store(channel, StoreResponse::error(reason));
            return;
        }
        self.stores.answers.push(
            async move {
                let response = answer
                    .await
                    .unwrap_or_else(|_| StoreResponse::error("the store dropped the request"));
                (channel, response)
            }
            .boxed(),
        );
    }

    pub(super) fn respond_store(
        &mut self,
        channel: ResponseChannel<Response>,
        response: StoreResponse,
    ) {
        if self
            .swarm
            .behaviour_mut()
            .store
            .send_response(channel, Response::Store(response))
            .is_err()
        {
            tracing::debug!("store requester went away before the answer");
        }
    }

    /// The hub saw a room message: hand it to the store backend.
    pub(super) fn store_room_message(
        &mut self,
        room: &str,
        item_of: impl FnOnce(u64) -> Option<HistoryItem>,
    ) {
        let Some(backend) = self.stores.backend.as_mut() else {
            return;
        };
        let Some(item) = item_of(now_unix_ms()) else {
            return;
        };
        let job = StoreJob::Append {
            room: room.to_owned(),
            item,
        };
        if backend.try_send(job).is_err() {
            self.stores.dropped_appends += 1;
            if self.stores.dropped_appends.is_power_of_two() {
                tracing::warn!(
                    dropped = self.stores.dropped_appends,
                    "the store is not keeping up; room messages were not stored"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;

    #[test]
    fn stored_items_become_messages_and_notices_are_skipped() {
        let from = PeerId::random();
        let env = Envelope::message("ann", "hello").expect("test setup");
        let item = HistoryItem {
            id: env.id.clone(),
            from,
            ts: env.ts,
            payload: String::from_utf8(env.to_bytes()).expect("test setup"),
        };
        let msg = history_message("lobby", item).expect("test setup");
        assert_eq!((msg.text.as_str(), msg.nick.as_str()), ("hello", "ann"));
        assert_eq!(msg.id, env.id);
        let join = Envelope::notice(Kind::Join, "ann");
        let item = HistoryItem {
            id: join.id.clone(),
            from,
            ts: 1,
            payload: String::from_utf8(join.to_bytes()).expect("test setup"),
        };
        assert!(history_message("lobby", item).is_none());
        let text = HistoryItem {
            id: "x-1".into(),
            from,
            ts: 7,
            payload: "plain".into(),
        };
        let msg = history_message("lobby", text).expect("test setup");
        assert_eq!((msg.origin, msg.sent_at), (Origin::Text, 7));
    }

    #[test]
    fn the_store_clock_replaces_a_missing_or_future_sender_clock() {
        assert_eq!(store_time(0, 1_000_000), 1_000_000);
        assert_eq!(store_time(999_000, 1_000_000), 999_000);
        assert_eq!(
            store_time(1_000_000 + MAX_CLOCK_SKEW_MS + 1, 1_000_000),
            1_000_000
        );
    }
}
