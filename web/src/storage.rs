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
