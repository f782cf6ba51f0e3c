//! Catch-up: when a room is joined, and whenever a store (one of our relays) connects, the peer
//! asks for what came after the newest message its user interface holds, page by page.
//!
//! Exactly once, in order: every message shown, live or stored, goes through one seen-set keyed
//! by (author, id); live messages that arrive while a room catches up are held back and shown
//! after its history.

use libp2p::PeerId;
use web_time::Instant;

use super::Outstanding;
use crate::behaviour::Extension;
use crate::core::client::HistoryMark;
use crate::core::event::{ChatMessage, Origin};
use crate::core::{Event, EventLoop};
use crate::envelope::{decode_room_payload, Kind, Payload};
use crate::store::{HistoryItem, HistoryQuery, StoreRequest, StoreResponse};
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
/// How long after a failed catch-up it is tried again (sooner when a store connects).
pub const CATCH_UP_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// A catch-up under way in one room.
#[derive(Debug, Default)]
pub struct CatchUp {
    /// Live messages held back until the history is shown.
    held: Vec<ChatMessage>,
    /// A first join's newest messages, gathered page by page (newest page first) until there
    /// are [`FIRST_JOIN_HISTORY`]: a page cut short by its byte limit does not leave a
    /// newcomer with less.
    newest: Vec<ChatMessage>,
    pages: usize,
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
            filed_at: item.ts,
            origin: Origin::Envelope,
            file: env.file,
        }),
        Payload::Envelope(_) => None,
        Payload::Text(text) => Some(ChatMessage {
            room: room.to_owned(),
            id: item.id,
            nick: short_peer_id(&item.from),
            from: item.from,
            text,
            sent_at: item.ts,
            filed_at: item.ts,
            origin: Origin::Text,
            file: None,
        }),
    }
}

impl<X: Extension> EventLoop<X> {
    /// Shows a live room message, or holds it while its room catches up.
    pub(crate) fn show_live(&mut self, msg: ChatMessage) {
        let Some(state) = self.rooms.get_mut(&msg.room) else {
            return;
        };
        // Where a store files it: a sender's clock far off must not move the next catch-up.
        state.newest_ts = state.newest_ts.max(msg.filed_at);
        match state.catch_up.as_mut() {
            Some(catch_up) if catch_up.held.len() < MAX_HELD => catch_up.held.push(msg),
            _ => self.emit(Event::Message(msg)),
        }
    }

    /// Seeds what the user interface already holds of a room, then catches up on the rest.
    pub(crate) fn start_history(&mut self, room: &str, mark: Option<HistoryMark>) {
        if let Some(mark) = mark {
            for (author, id) in &mark.recent {
                self.seen.first_time(*author, id);
            }
            if let Some(state) = self.rooms.get_mut(room) {
                // Never past now: what was missed since cannot be skipped.
                let newest = mark.newest_ts.min(now_unix_ms());
                state.newest_ts = state.newest_ts.max(newest);
                state.holds_history = true;
            }
        }
        self.catch_up(room);
    }

    /// Asks a store for what `room` missed, unless one is already asked or none is connected.
    pub(super) fn catch_up(&mut self, room: &str) {
        let Some(store) = self.store.current() else {
            return;
        };
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        if state.catch_up.is_some() {
            return;
        }
        state.catch_up = Some(CatchUp::default());
        state.catch_up_retry = None;
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

    /// A store answered a history query of `room`.
    pub(super) fn on_page(
        &mut self,
        store: PeerId,
        room: String,
        query: HistoryQuery,
        answer: StoreResponse,
    ) {
        let StoreResponse::Page {
            messages: items,
            next,
        } = answer
        else {
            let reason = match answer {
                StoreResponse::Error { reason } => reason,
                other => format!("unexpected answer {other:?}"),
            };
            tracing::warn!(room, reason, "history catch-up failed; trying again later");
            self.end_catch_up(&room);
            if let Some(state) = self.rooms.get_mut(&room) {
                state.catch_up_retry = Some(Instant::now() + CATCH_UP_RETRY);
            }
            self.emit(Event::HistoryFailed { room, reason });
            return;
        };
        let mut messages = Vec::new();
        for item in items {
            if let Some(msg) = history_message(&room, item) {
                if self.seen.first_time(msg.from, &msg.id) {
                    messages.push(msg);
                }
            }
        }
        messages
            .sort_unstable_by(|a, b| (a.filed_at, &a.id, a.from).cmp(&(b.filed_at, &b.id, b.from)));
        let Some(state) = self.rooms.get_mut(&room) else {
            return; // left meanwhile
        };
        if let Some(last) = messages.iter().map(|m| m.filed_at).max() {
            state.newest_ts = state.newest_ts.max(last);
        }
        state.holds_history = true;
        let pages = state.catch_up.as_mut().map_or(0, |c| {
            c.pages += 1;
            c.pages
        });
        if query.newest {
            self.on_newest_page(store, room, query, messages, next, pages);
            return;
        }
        let more = match next {
            Some(cursor) if pages < MAX_CATCH_UP_PAGES => Some(cursor),
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

    /// A page of a first join's newest messages: gathered until there are
    /// [`FIRST_JOIN_HISTORY`] or the room has no more, then shown, oldest first.
    fn on_newest_page(
        &mut self,
        store: PeerId,
        room: String,
        query: HistoryQuery,
        messages: Vec<ChatMessage>,
        next: Option<crate::store::Cursor>,
        pages: usize,
    ) {
        let Some(catch_up) = self.rooms.get_mut(&room).and_then(|s| s.catch_up.as_mut()) else {
            return;
        };
        catch_up.newest.extend(messages);
        let want = FIRST_JOIN_HISTORY as usize;
        let have = catch_up.newest.len();
        match next {
            Some(cursor) if have < want && pages < MAX_CATCH_UP_PAGES => {
                let query = HistoryQuery {
                    before: Some(cursor),
                    limit: Some((want - have) as u32),
                    ..query
                };
                self.ask_page(store, room, query);
            }
            _ => {
                if have == 0 {
                    self.emit(Event::History {
                        room: room.clone(),
                        messages: Vec::new(),
                        done: true,
                    });
                }
                self.end_catch_up(&room);
            }
        }
    }

    /// Periodic: catch-ups that failed are tried again when due.
    pub(super) fn retry_catch_ups(&mut self, now: Instant) {
        let due: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, state)| state.catch_up_retry.is_some_and(|at| now >= at))
            .map(|(room, _)| room.clone())
            .collect();
        for room in due {
            self.catch_up(&room);
        }
    }

    /// Shows what was held back during a catch-up.
    /// A first join's newest messages gathered so far come first, so that none marked seen is
    /// lost when its catch-up ends early.
    fn end_catch_up(&mut self, room: &str) {
        let Some(CatchUp {
            held,
            newest: mut messages,
            ..
        }) = self.rooms.get_mut(room).and_then(|s| s.catch_up.take())
        else {
            return;
        };
        if !messages.is_empty() {
            messages.sort_unstable_by(|a, b| {
                (a.filed_at, &a.id, a.from).cmp(&(b.filed_at, &b.id, b.from))
            });
            self.emit(Event::History {
                room: room.to_owned(),
                messages,
                done: true,
            });
        }
        for msg in held {
            self.emit(Event::Message(msg));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;

    #[test]
    fn stored_items_become_messages_and_announcements_are_skipped() {
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
        let join = Envelope::announcement(Kind::Join, "ann");
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
}
