//! What the page keeps in `localStorage`: the identity key (same peer id after a reload), the
//! nickname and the joined rooms. A damaged entry is replaced, never fatal: the page must load.

use gloo_storage::{LocalStorage, Storage};
use libp2p::identity::Keypair;

const IDENTITY: &str = "p2p-chat/identity";
const NICK: &str = "p2p-chat/nick";
const ROOMS: &str = "p2p-chat/rooms";

/// The stored identity, or a new one (stored).
pub fn identity() -> Keypair {
    let stored: Option<Vec<u8>> = LocalStorage::get(IDENTITY).ok();
    if let Some(key) = stored.and_then(|bytes| Keypair::from_protobuf_encoding(&bytes).ok()) {
        return key;
    }
    let key = Keypair::generate_ed25519();
    if let Ok(bytes) = key.to_protobuf_encoding() {
        let _ = LocalStorage::set(IDENTITY, bytes);
    }
    key
}

/// The stored nickname.
pub fn nick() -> Option<String> {
    LocalStorage::get(NICK).ok()
}

/// Stores the nickname.
pub fn set_nick(nick: &str) {
    let _ = LocalStorage::set(NICK, nick);
}

/// The stored rooms.
pub fn rooms() -> Vec<String> {
    LocalStorage::get(ROOMS).unwrap_or_default()
}

/// Stores the rooms.
pub fn set_rooms(rooms: &[String]) {
    let _ = LocalStorage::set(ROOMS, rooms);
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
}

/// The messages kept for `room`, oldest first.
pub fn history(room: &str) -> Vec<Kept> {
    LocalStorage::get(format!("{HISTORY_PREFIX}{room}")).unwrap_or_default()
}

/// Keeps `new` messages of `room` (ids already kept are skipped), dropping the oldest beyond the
/// caps.
pub fn keep(room: &str, new: Vec<Kept>) {
    if new.is_empty() {
        return;
    }
    let mut kept = history(room);
    for message in new {
        if !kept.iter().any(|k| k.id == message.id) {
            kept.push(message);
        }
    }
    if kept.len() > HISTORY_PER_ROOM {
        let extra = kept.len() - HISTORY_PER_ROOM;
        kept.drain(..extra);
    }
    while serde_json::to_string(&kept).map_or(0, |s| s.len()) > HISTORY_BYTES_PER_ROOM {
        let tenth = (kept.len() / 10).max(1);
        kept.drain(..tenth.min(kept.len()));
    }
    if LocalStorage::set(format!("{HISTORY_PREFIX}{room}"), &kept).is_err() {
        // Full storage: keep the newest half rather than nothing.
        let half = kept.len() / 2;
        kept.drain(..half);
        let _ = LocalStorage::set(format!("{HISTORY_PREFIX}{room}"), &kept);
    }
}
