//! The page's state as signals, provided through context. Chat logic (membership, dedup,
//! delivery, readiness) stays in the core: [`events`] only mirrors what the core reports.
//!
//! - [`status`]: the connection state of the status bar;
//! - [`lines`]: rooms, their lines, direct messages;
//! - [`events`]: how each chat core event changes the state.

mod events;
mod lines;
mod status;

use leptos::prelude::*;
use libp2p::PeerId;
use p2p_chat_shared::core::{ChatMessage, Client};

pub use lines::{clock, DmLine, DmState, Line, RoomView};
pub use status::Status;

use crate::storage::{Kept, KeptRooms};

/// Most lines kept per room in the page.
const MAX_LINES: usize = 500;

/// The page's state.
#[derive(Clone, Copy)]
pub struct Chat {
    pub status: RwSignal<Status>,
    pub me: RwSignal<Option<PeerId>>,
    pub nick: RwSignal<String>,
    pub relay: RwSignal<Option<PeerId>>,
    pub rooms: RwSignal<Vec<RoomView>>,
    pub current: RwSignal<Option<String>>,
    pub dms: RwSignal<Vec<DmLine>>,
    pub dm_target: RwSignal<Option<(PeerId, String)>>,
    pub error: RwSignal<Option<String>>,
    pub client: StoredValue<Option<Client>>,
    /// What this browser keeps of each room (written to localStorage in batches).
    pub kept: StoredValue<KeptRooms>,
    next_key: StoredValue<u64>,
}

/// What the browser keeps of a room message.
pub fn kept(m: &ChatMessage) -> Kept {
    Kept {
        id: m.id.clone(),
        from: m.from.to_string(),
        nick: m.nick.clone(),
        text: m.text.clone(),
        ts: m.sent_at,
        filed: (m.filed_at != m.sent_at).then_some(m.filed_at),
    }
}

impl Chat {
    pub fn new() -> Self {
        Self {
            status: RwSignal::new(Status::Starting),
            me: RwSignal::new(None),
            nick: RwSignal::new(String::new()),
            relay: RwSignal::new(None),
            rooms: RwSignal::new(Vec::new()),
            current: RwSignal::new(None),
            dms: RwSignal::new(Vec::new()),
            dm_target: RwSignal::new(None),
            error: RwSignal::new(None),
            client: StoredValue::new(None),
            kept: StoredValue::new(KeptRooms::default()),
            next_key: StoredValue::new(0),
        }
    }

    /// The chat core's handle, once started.
    pub fn client(&self) -> Option<Client> {
        self.client.get_value()
    }

    pub fn key(&self) -> u64 {
        let key = self.next_key.get_value();
        self.next_key.set_value(key + 1);
        key
    }

    /// Keeps room messages in this browser (written in the next batch).
    pub fn keep(&self, room: &str, messages: &[ChatMessage]) {
        self.kept
            .update_value(|k| k.keep(room, messages.iter().map(kept)));
    }

    /// Applies `f` to the room on screen (tracked: reruns when the rooms or the selection change).
    pub fn with_current<T: Default>(&self, f: impl FnOnce(&RoomView) -> T) -> T {
        let current = self.current.get();
        self.rooms.with(|rooms| {
            rooms
                .iter()
                .find(|r| Some(&r.name) == current.as_ref())
                .map(f)
                .unwrap_or_default()
        })
    }

    fn with_room(&self, room: &str, f: impl FnOnce(&mut RoomView)) {
        self.rooms.update(|rooms| {
            if let Some(r) = rooms.iter_mut().find(|r| r.name == room) {
                f(r);
            }
        });
    }

    /// Appends a line to a room (counting it unread when the room is not shown), once per
    /// message: a line for the same (author, id) is already there.
    pub fn push_line(&self, room: &str, line: Line) {
        let shown = self.current.get_untracked().as_deref() == Some(room);
        self.with_room(room, |r| {
            if !line.notice && r.lines.iter().any(|l| l.shows(line.from, &line.id)) {
                return;
            }
            if !shown && !line.own && !line.notice {
                r.unread += 1;
            }
            r.lines.push(line);
            if r.lines.len() > MAX_LINES {
                let extra = r.lines.len() - MAX_LINES;
                r.lines.drain(..extra);
            }
        });
    }

    fn notice(&self, room: &str, text: String) {
        let id = format!("notice-{}", self.key());
        self.push_line(room, Line::notice(id, text));
    }
}
