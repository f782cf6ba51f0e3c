//! What the page shows: a room's lines (messages and notices), the rooms, direct messages.

use libp2p::PeerId;
use p2p_chat_shared::core::ChatMessage;

use crate::storage::Kept;

/// One line in a room.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub id: String,
    pub from: Option<PeerId>,
    pub nick: String,
    pub text: String,
    pub time: String,
    pub own: bool,
    /// A join/leave notice rather than a message.
    pub notice: bool,
    /// Own message waiting for the room to be ready.
    pub queued: bool,
    /// From the relay's history or this browser's, not live.
    pub history: bool,
    /// Own message: `Some(true)` once the relay confirmed keeping it, `Some(false)` if it did not.
    pub stored: Option<bool>,
}

impl Line {
    /// A room message as a line.
    pub fn message(m: &ChatMessage, history: bool) -> Self {
        Self {
            id: m.id.clone(),
            from: Some(m.from),
            nick: m.nick.clone(),
            text: m.text.clone(),
            time: clock(m.sent_at),
            own: false,
            notice: false,
            queued: false,
            history,
            stored: None,
        }
    }

    /// A message we sent, as the core published it.
    pub fn own(m: &ChatMessage, queued: bool) -> Self {
        Self {
            own: true,
            queued,
            ..Self::message(m, false)
        }
    }

    /// A message kept in this browser.
    pub fn kept(k: &Kept, me: Option<PeerId>) -> Self {
        let from = k.from.parse().ok();
        Self {
            id: k.id.clone(),
            own: from.is_some() && from == me,
            from,
            nick: k.nick.clone(),
            text: k.text.clone(),
            time: clock(k.ts),
            notice: false,
            queued: false,
            history: true,
            stored: None,
        }
    }

    /// A join or leave notice.
    pub fn notice(id: String, text: String) -> Self {
        Self {
            id,
            from: None,
            nick: String::new(),
            text,
            time: clock(0),
            own: false,
            notice: true,
            queued: false,
            history: false,
            stored: None,
        }
    }

    /// Whether this line shows the message of `from` with this `id` (the core's dedup key).
    pub fn shows(&self, from: Option<PeerId>, id: &str) -> bool {
        !self.notice && self.from == from && self.id == id
    }
}

/// A room the page is in.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomView {
    pub name: String,
    pub lines: Vec<Line>,
    /// Members as the core knows them, refreshed whenever one joins, leaves or is renamed.
    pub members: Vec<(PeerId, String)>,
    pub unread: usize,
    pub ready: bool,
    /// The last lines came from a catch-up (the next batch needs no heading of its own).
    pub in_history: bool,
}

impl RoomView {
    pub fn new(name: String) -> Self {
        Self {
            name,
            lines: Vec::new(),
            members: Vec::new(),
            unread: 0,
            ready: false,
            in_history: false,
        }
    }
}

/// Delivery state of a direct message.
#[derive(Debug, Clone, PartialEq)]
pub enum DmState {
    Received,
    /// Received from the relay's mailbox: sent while this page was closed.
    ReceivedKept,
    Sending,
    /// The recipient was offline: the relay keeps it, sealed, until it returns.
    Stored,
    Delivered,
    Failed(String),
}

/// One direct message, in or out.
#[derive(Debug, Clone, PartialEq)]
pub struct DmLine {
    pub key: u64,
    /// The message id, once known (for the delivery notice of a stored DM).
    pub id: Option<String>,
    pub peer: PeerId,
    pub nick: String,
    pub text: String,
    pub time: String,
    pub state: DmState,
}

/// `HH:MM:SS` in the browser's time zone (now when `ms` is 0).
pub fn clock(ms: u64) -> String {
    let date = if ms == 0 {
        js_sys::Date::new_0()
    } else {
        js_sys::Date::new(&(ms as f64).into())
    };
    format!(
        "{:02}:{:02}:{:02}",
        date.get_hours(),
        date.get_minutes(),
        date.get_seconds()
    )
}
