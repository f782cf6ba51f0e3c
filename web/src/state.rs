//! The page's state as signals, provided through context, and how each chat core event changes
//! it. Chat logic (membership, dedup, delivery) stays in the core; this only mirrors it for display.

use leptos::prelude::*;
use libp2p::{Multiaddr, PeerId};
use p2p_chat_shared::core::{ChatMessage, Client, Event};
use p2p_chat_shared::text::short_peer_id;

use crate::relay_addr::transport_name;
use crate::storage::{self, Kept};

/// Connection state shown at the top of the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Starting up.
    Starting,
    /// No relay address known: the user must paste one.
    NoRelay(String),
    /// Dialling the relay.
    Connecting,
    /// Connected to the relay over a transport.
    Connected {
        transport: &'static str,
        relay: String,
    },
    /// Lost the relay; retrying.
    Reconnecting { in_ms: u64 },
}

impl Status {
    /// One line for the status bar.
    pub fn text(&self) -> String {
        match self {
            Self::Starting => "starting…".into(),
            Self::NoRelay(why) => format!("no relay: {why}"),
            Self::Connecting => "connecting…".into(),
            Self::Connected { transport, relay } => {
                format!("connected via {transport} to relay {relay}")
            }
            Self::Reconnecting { in_ms } => format!("reconnecting in {} s…", in_ms.div_ceil(1000)),
        }
    }

    /// A CSS class / test id for the state.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Starting | Self::Connecting => "connecting",
            Self::NoRelay(_) => "no-relay",
            Self::Connected { .. } => "connected",
            Self::Reconnecting { .. } => "reconnecting",
        }
    }
}

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
}

/// What the browser keeps of a room message.
pub fn kept(m: &ChatMessage) -> Kept {
    Kept {
        id: m.id.clone(),
        from: m.from.to_string(),
        nick: m.nick.clone(),
        text: m.text.clone(),
        ts: m.sent_at,
    }
}

/// A room the page is in.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomView {
    pub name: String,
    pub lines: Vec<Line>,
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
    next_key: StoredValue<u64>,
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

    /// Appends a line to a room (counting it unread when the room is not shown).
    pub fn push_line(&self, room: &str, line: Line) {
        let shown = self.current.get_untracked().as_deref() == Some(room);
        self.with_room(room, |r| {
            if r.lines.iter().any(|l| l.id == line.id && !line.notice) {
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
        let line = Line {
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
        };
        self.push_line(room, line);
    }

    /// Mirrors one chat core event.
    pub fn apply(&self, event: Event) {
        match event {
            Event::Message(m) => {
                self.with_room(&m.room, |r| r.in_history = false);
                storage::keep(&m.room, vec![kept(&m)]);
                self.push_line(&m.room, Line::message(&m, false));
            }
            Event::History { room, messages, .. } => {
                if messages.is_empty() {
                    return;
                }
                storage::keep(&room, messages.iter().map(kept).collect());
                let mut first_batch = false;
                self.with_room(&room, |r| {
                    first_batch = !r.in_history;
                    r.in_history = true;
                });
                if first_batch {
                    self.notice(&room, "messages from while you were away:".to_owned());
                }
                for m in &messages {
                    self.push_line(&room, Line::message(m, true));
                }
            }
            Event::Stored { room, id } => self.mark_stored(&room, &id, true),
            Event::NotStored { room, id, reason } => {
                self.mark_stored(&room, &id, false);
                self.error
                    .set(Some(format!("the relay did not keep a message: {reason}")));
            }
            Event::DirectMessage(d) => {
                let key = self.key();
                self.dms.update(|dms| {
                    dms.push(DmLine {
                        key,
                        id: Some(d.id),
                        peer: d.from,
                        nick: d.nick,
                        text: d.text,
                        time: clock(d.sent_at),
                        state: if d.stored {
                            DmState::ReceivedKept
                        } else {
                            DmState::Received
                        },
                    })
                });
            }
            Event::DmDelivered { id, .. } => self.dms.update(|dms| {
                for line in dms
                    .iter_mut()
                    .filter(|d| d.id.as_deref() == Some(id.as_str()))
                {
                    line.state = DmState::Delivered;
                }
            }),
            Event::MemberJoined { room, peer, nick } => {
                self.with_room(&room, |r| {
                    r.members.retain(|(p, _)| *p != peer);
                    r.members.push((peer, nick.clone()));
                    r.members
                        .sort_unstable_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
                });
                self.notice(&room, format!("{nick} ({}) joined", short_peer_id(&peer)));
            }
            Event::MemberLeft {
                room,
                peer,
                nick,
                reason,
            } => {
                self.with_room(&room, |r| r.members.retain(|(p, _)| *p != peer));
                let who = short_peer_id(&peer);
                self.notice(&room, format!("{nick} ({who}) left{}", reason.suffix()));
            }
            Event::NickChanged {
                room, peer, new, ..
            } => {
                self.with_room(&room, |r| {
                    for member in r.members.iter_mut().filter(|(p, _)| *p == peer) {
                        member.1 = new.clone();
                    }
                });
            }
            Event::RoomReady { room } => self.with_room(&room, |r| r.ready = true),
            Event::QueuedSent { room, ids } => self.with_room(&room, |r| {
                for line in r.lines.iter_mut().filter(|l| ids.contains(&l.id)) {
                    line.queued = false;
                }
            }),
            Event::Connected { peer, addr, .. } if Some(peer) == self.relay.get_untracked() => {
                self.connected_to_relay(peer, &addr);
            }
            Event::Disconnected { peer } if Some(peer) == self.relay.get_untracked() => {
                self.rooms
                    .update(|rooms| rooms.iter_mut().for_each(|r| r.ready = false));
                self.status.set(Status::Reconnecting { in_ms: 1000 });
            }
            Event::RelayLost { retry_in_ms, .. } => {
                self.rooms
                    .update(|rooms| rooms.iter_mut().for_each(|r| r.ready = false));
                self.status.set(Status::Reconnecting { in_ms: retry_in_ms });
            }
            Event::Lagged { missed } => self.error.set(Some(format!(
                "{missed} events were not shown (the page fell behind)"
            ))),
            _ => {}
        }
    }

    fn mark_stored(&self, room: &str, id: &str, stored: bool) {
        self.with_room(room, |r| {
            for line in r.lines.iter_mut().filter(|l| l.id == id) {
                line.stored = Some(stored);
            }
        });
    }

    fn connected_to_relay(&self, relay: PeerId, addr: &Multiaddr) {
        self.status.set(Status::Connected {
            transport: transport_name(addr),
            relay: short_peer_id(&relay),
        });
    }
}
