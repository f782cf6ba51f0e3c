//! What the components ask for: connecting to a relay, joining, switching and leaving rooms,
//! sending, renaming, direct messages. Each calls the chat core and mirrors its answer.

use leptos::prelude::*;
use leptos::task::spawn_local;
use libp2p::{Multiaddr, PeerId};
use p2p_chat_shared::addr::peer_at_end;
use p2p_chat_shared::core::HistoryMark;
use p2p_chat_shared::protocol::validate_room;

use crate::relay_addr::{self, RelayAddrError};
use crate::state::{clock, Chat, DmLine, DmState, Line, RoomView, Status};
use crate::storage;

/// Connects to a relay (addresses best first); the core keeps reconnecting.
pub async fn use_relay(chat: Chat, addrs: Vec<Multiaddr>) {
    let Some(client) = chat.client() else { return };
    if let Some(relay) = addrs.first().and_then(peer_at_end) {
        chat.relay.set(Some(relay));
    }
    chat.status.set(Status::Connecting);
    if let Err(e) = client.use_relay(addrs).await {
        chat.status.set(Status::NoRelay(e.to_string()));
    }
}

/// Parses a pasted relay address and connects to it.
pub fn connect_pasted(chat: Chat, text: String) -> Result<(), RelayAddrError> {
    let addrs = relay_addr::parse_all(&[text])?;
    if addrs.first().and_then(peer_at_end).is_none() {
        return Err(RelayAddrError::NoPeerId);
    }
    spawn_local(use_relay(chat, addrs));
    Ok(())
}

/// Joins a room and makes it current: shows what this browser kept of it, and catches up from
/// the relay on the rest.
pub async fn join(chat: Chat, room: String) {
    let Some(client) = chat.client() else { return };
    if let Err(e) = validate_room(&room) {
        chat.error.set(Some(e.to_string()));
        return;
    }
    let me = chat.me.get_untracked();
    let (lines, mark) = chat
        .kept
        .try_update_value(|k| {
            let kept = k.room(&room);
            let lines: Vec<Line> = kept.iter().map(|kept| Line::kept(kept, me)).collect();
            (lines, mark(kept))
        })
        .unwrap_or_default();
    chat.rooms.update(|rooms| {
        if !rooms.iter().any(|r| r.name == room) {
            let mut view = RoomView::new(room.clone());
            view.lines = lines;
            rooms.push(view);
        }
    });
    match client.join_after(room.clone(), mark).await {
        Ok(()) => {
            select_room(chat, room);
            save_rooms(chat);
        }
        Err(e) => {
            chat.rooms.update(|rooms| rooms.retain(|r| r.name != room));
            chat.error.set(Some(e.to_string()));
        }
    }
}

/// Where a catch-up starts: what this browser kept of the room.
fn mark(kept: &[storage::Kept]) -> Option<HistoryMark> {
    let mut held: Vec<(PeerId, String, u64)> = kept
        .iter()
        .filter_map(|k| Some((k.from.parse().ok()?, k.id.clone(), k.filed_at())))
        .collect();
    held.sort_unstable_by(|a, b| (b.2, &b.1).cmp(&(a.2, &a.1)));
    HistoryMark::from_newest_first(held)
}

/// Leaves a room.
pub async fn leave(chat: Chat, room: String) {
    let Some(client) = chat.client() else { return };
    let _ = client.leave(room.clone()).await;
    chat.rooms.update(|rooms| rooms.retain(|r| r.name != room));
    if chat.current.get_untracked().as_deref() == Some(room.as_str()) {
        let next = chat.rooms.get_untracked().first().map(|r| r.name.clone());
        chat.current.set(next);
    }
    save_rooms(chat);
}

fn save_rooms(chat: Chat) {
    let names: Vec<String> = chat
        .rooms
        .get_untracked()
        .into_iter()
        .map(|r| r.name)
        .collect();
    if let Err(full) = storage::set_rooms(&names) {
        chat.error.set(Some(full));
    }
}

/// Shows a room and clears its unread count.
pub fn select_room(chat: Chat, room: String) {
    chat.rooms.update(|rooms| {
        if let Some(r) = rooms.iter_mut().find(|r| r.name == room) {
            r.unread = 0;
        }
    });
    chat.current.set(Some(room));
}

/// Sends the composer's text to the current room.
pub async fn send(chat: Chat, text: String) {
    let (Some(client), Some(room)) = (chat.client(), chat.current.get_untracked()) else {
        return;
    };
    match client.send_message(room.clone(), text).await {
        Ok(sent) => {
            chat.keep(&room, std::slice::from_ref(&sent.message));
            chat.push_line(&room, Line::own(&sent.message, sent.queued));
        }
        Err(e) => chat.error.set(Some(e.to_string())),
    }
}

/// Changes the nickname.
pub async fn set_nick(chat: Chat, nick: String) {
    let Some(client) = chat.client() else { return };
    match client.set_nick(nick).await {
        Ok(nick) => {
            if let Err(full) = storage::set_nick(&nick) {
                chat.error.set(Some(full));
            }
            chat.nick.set(nick);
        }
        Err(e) => chat.error.set(Some(e.to_string())),
    }
}

/// Sends a direct message and tracks its delivery.
pub async fn send_dm(chat: Chat, peer: PeerId, nick: String, text: String) {
    let Some(client) = chat.client() else { return };
    let key = chat.key();
    chat.dms.update(|dms| {
        dms.push(DmLine {
            key,
            id: None,
            peer,
            nick,
            text: text.clone(),
            time: clock(0),
            state: DmState::Sending,
        })
    });
    let (state, id) = match client.dm(peer, text).await {
        Ok(r) if r.stored => (DmState::Stored, Some(r.id)),
        Ok(r) => (DmState::Delivered, Some(r.id)),
        Err(e) => (DmState::Failed(e.to_string()), None),
    };
    chat.dms.update(|dms| {
        if let Some(line) = dms.iter_mut().find(|d| d.key == key) {
            line.state = state;
            line.id = id;
        }
    });
}
