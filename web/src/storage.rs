//! What the page keeps in `localStorage`: the identity key (same peer id after a reload), the
//! nickname, the joined rooms and recent messages per room ([`KeptRooms`], written in batches).
//! A damaged entry is replaced, never fatal: the page must load.

use gloo_storage::{LocalStorage, SessionStorage, Storage};
use libp2p::identity::Keypair;
use serde::de::DeserializeOwned;

const IDENTITY: &str = "p2p-chat/identity";
const NICK: &str = "p2p-chat/nick";
const ROOMS: &str = "p2p-chat/rooms";

/// Who holds the browser's identity: one tab at a time (libp2p has one connection per peer id
/// in mind; two tabs with one id would trip over each other at the relay).
#[derive(serde::Serialize, serde::Deserialize)]
struct Lease {
    tab: u64,
    at: u64,
}

const LEASE: &str = "p2p-chat/identity-lease";
const TAB_IDENTITY: &str = "p2p-chat/tab-identity";
/// A lease not renewed for this long is free (a crashed tab). Long enough for a background tab,
/// whose timers the browser may run only once a minute.
const LEASE_FRESH_MS: u64 = 90_000;
/// How often the holder renews its lease.
pub const LEASE_RENEW: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads the JSON entry `key`; `None` when it is missing or damaged. (Not gloo-storage's `get`:
/// that parses with `serde_json::from_str`, and the chat core parses bytes with `from_slice`; one
/// JSON reader in the browser build instead of two is about 4 KB less to download, compressed.)
fn read<S: Storage, T: DeserializeOwned>(key: &str) -> Option<T> {
    let text = S::raw().get_item(key).ok()??;
    serde_json::from_slice(text.as_bytes()).ok()
}

fn decode(bytes: Option<Vec<u8>>) -> Option<Keypair> {
    bytes.and_then(|bytes| Keypair::from_protobuf_encoding(&bytes).ok())
}

fn generate() -> (Keypair, Option<Vec<u8>>) {
    let key = Keypair::generate_ed25519();
    let bytes = key.to_protobuf_encoding().ok();
    (key, bytes)
}

/// Where a damaged stored identity is kept aside (never overwritten: it may still be repaired,
/// and direct messages kept for it can only be opened with it).
const IDENTITY_DAMAGED: &str = "p2p-chat/identity-damaged";

/// What could not be kept in the browser's storage, for the person to see.
pub fn storage_full(what: &str) -> String {
    format!(
        "this browser's storage is full: {what} could not be saved (free some space for this site, or clear its data)"
    )
}

/// This tab's identity, whether it is the browser's own (kept across reloads and visits), and
/// what the person must be told about it. A second tab open at the same time gets one of its
/// own, kept for its reloads only. A stored identity that no longer decodes is kept aside under
/// `p2p-chat/identity-damaged` and never silently replaced: the page says so.
pub fn identity(tab: u64) -> (Keypair, bool, Option<String>) {
    if let Some(own) = decode(read::<SessionStorage, _>(TAB_IDENTITY)) {
        return (own, false, None);
    }
    let now = p2p_chat_shared::text::now_unix_ms();
    let lease: Option<Lease> = read::<LocalStorage, _>(LEASE);
    if lease.is_some_and(|l| l.tab != tab && now.saturating_sub(l.at) < LEASE_FRESH_MS) {
        let (key, bytes) = generate();
        if let Some(bytes) = bytes {
            let _ = SessionStorage::set(TAB_IDENTITY, bytes);
        }
        return (key, false, None);
    }
    renew_lease(tab);
    let stored = LocalStorage::raw().get_item(IDENTITY).ok().flatten();
    if let Some(key) = stored
        .as_ref()
        .and_then(|text| decode(serde_json::from_slice(text.as_bytes()).ok()))
    {
        return (key, true, None);
    }
    let mut warning = None;
    if let Some(damaged) = stored {
        // One key per damaged identity: one kept aside before is never overwritten.
        let aside = match LocalStorage::raw()
            .get_item(IDENTITY_DAMAGED)
            .ok()
            .flatten()
        {
            None => IDENTITY_DAMAGED.to_owned(),
            Some(_) => format!(
                "{IDENTITY_DAMAGED}-{}",
                p2p_chat_shared::text::now_unix_ms()
            ),
        };
        let kept_aside = LocalStorage::raw().set_item(&aside, &damaged).is_ok();
        warning = Some(if kept_aside {
            format!("the identity saved in this browser was damaged: it is kept aside as {aside}, and this page has a new peer id (direct messages kept for the old one cannot be opened)")
        } else {
            "the identity saved in this browser was damaged and could not be kept aside (storage is full): this page has a new peer id".to_owned()
        });
    }
    let (key, bytes) = generate();
    let saved = bytes.is_some_and(|bytes| LocalStorage::set(IDENTITY, bytes).is_ok());
    if !saved && warning.is_none() {
        warning = Some(storage_full(
            "your identity (a reload will give this page a new peer id)",
        ));
    }
    (key, true, warning)
}

/// Keeps this tab's hold on the browser's identity.
pub fn renew_lease(tab: u64) {
    let at = p2p_chat_shared::text::now_unix_ms();
    let _ = LocalStorage::set(LEASE, Lease { tab, at });
}

/// Lets the browser's identity go (the tab is closing or reloading).
pub fn release_lease(tab: u64) {
    let lease: Option<Lease> = read::<LocalStorage, _>(LEASE);
    if lease.is_some_and(|l| l.tab == tab) {
        LocalStorage::delete(LEASE);
    }
}

/// The stored nickname.
pub fn nick() -> Option<String> {
    read::<LocalStorage, _>(NICK)
}

/// Stores the nickname; the message to show when storage is full.
pub fn set_nick(nick: &str) -> Result<(), String> {
    LocalStorage::set(NICK, nick).map_err(|_| storage_full("your nickname"))
}

/// The stored rooms.
pub fn rooms() -> Vec<String> {
    read::<LocalStorage, _>(ROOMS).unwrap_or_default()
}

/// Stores the rooms; the message to show when storage is full.
pub fn set_rooms(rooms: &[String]) -> Result<(), String> {
    LocalStorage::set(ROOMS, rooms).map_err(|_| storage_full("your rooms"))
}

const HISTORY_PREFIX: &str = "p2p-chat/history/";
/// Most messages kept per room; the oldest are dropped first.
pub const HISTORY_PER_ROOM: usize = 300;
/// Most bytes of JSON kept per room (localStorage holds about 5 MB per origin).
const HISTORY_BYTES_PER_ROOM: usize = 512 * 1024;

/// A room message kept in the browser.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Kept {
    pub id: String,
    pub from: String,
    pub nick: String,
    pub text: String,
    pub ts: u64,
    /// Where it sits in the room's stored history, when not `ts` (kept before this was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filed: Option<u64>,
}

impl Kept {
    /// Where it sits in the room's stored history ([`p2p_chat_shared::core::ChatMessage::filed_at`]).
    pub fn filed_at(&self) -> u64 {
        self.filed.unwrap_or(self.ts)
    }
}

/// What the page keeps of each room, held in memory and written to localStorage in batches
/// ([`KeptRooms::flush`], every [`FLUSH_EVERY`] and when the page closes): a busy room costs one
/// write of its JSON per period, not one per message.
#[derive(Debug, Default)]
pub struct KeptRooms {
    /// Each room's messages, as loaded and kept since (a page is in a handful of rooms).
    rooms: Vec<(String, Vec<Kept>)>,
    /// Rooms changed since the last write.
    dirty: Vec<String>,
}

/// How often the rooms changed since the last write are written.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl KeptRooms {
    /// The messages kept for `room`, oldest first (read from localStorage the first time).
    pub fn room(&mut self, room: &str) -> &[Kept] {
        self.room_mut(room)
    }

    fn room_mut(&mut self, room: &str) -> &mut Vec<Kept> {
        let index = match self.rooms.iter().position(|(name, _)| name == room) {
            Some(index) => index,
            None => {
                let kept = read::<LocalStorage, _>(&format!("{HISTORY_PREFIX}{room}"));
                self.rooms.push((room.to_owned(), kept.unwrap_or_default()));
                self.rooms.len() - 1
            }
        };
        &mut self.rooms[index].1
    }

    /// Keeps `new` messages of `room`, once per (author, id) (the core's dedup key), the newest
    /// [`HISTORY_PER_ROOM`].
    pub fn keep(&mut self, room: &str, new: impl IntoIterator<Item = Kept>) {
        let kept = self.room_mut(room);
        let before = kept.len();
        for message in new {
            if !kept
                .iter()
                .any(|k| k.id == message.id && k.from == message.from)
            {
                kept.push(message);
            }
        }
        if kept.len() == before {
            return;
        }
        if kept.len() > HISTORY_PER_ROOM {
            let extra = kept.len() - HISTORY_PER_ROOM;
            kept.drain(..extra);
        }
        if !self.dirty.iter().any(|r| r == room) {
            self.dirty.push(room.to_owned());
        }
    }

    /// Writes the rooms changed since the last write, within [`HISTORY_BYTES_PER_ROOM`] each,
    /// merged with what another tab of this browser wrote meanwhile. The message to show when
    /// storage is full.
    pub fn flush(&mut self) -> Result<(), String> {
        let mut full = Vec::new();
        for room in std::mem::take(&mut self.dirty) {
            let key = format!("{HISTORY_PREFIX}{room}");
            let stored: Vec<Kept> = read::<LocalStorage, _>(&key).unwrap_or_default();
            let kept = self.room_mut(&room);
            let before = kept.len();
            for other in stored {
                if !kept
                    .iter()
                    .any(|k| k.id == other.id && k.from == other.from)
                {
                    kept.push(other);
                }
            }
            if kept.len() > before {
                kept.sort_unstable_by(|a, b| (a.filed_at(), &a.id).cmp(&(b.filed_at(), &b.id)));
                let extra = kept.len().saturating_sub(HISTORY_PER_ROOM);
                kept.drain(..extra);
            }
            while serde_json::to_string(kept).map_or(0, |s| s.len()) > HISTORY_BYTES_PER_ROOM {
                let tenth = (kept.len() / 10).max(1);
                kept.drain(..tenth.min(kept.len()));
            }
            if LocalStorage::set(&key, &*kept).is_err() {
                // Full storage: keep the newest half rather than nothing, and say so.
                let half = kept.len() / 2;
                kept.drain(..half);
                let kept_half = LocalStorage::set(&key, &*kept).is_ok();
                full.push(if kept_half {
                    format!("the older half of {room}'s messages")
                } else {
                    format!("{room}'s messages")
                });
            }
        }
        if full.is_empty() {
            Ok(())
        } else {
            Err(storage_full(&full.join(", ")))
        }
    }
}
