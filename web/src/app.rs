//! The top of the page: creates the state, starts the chat core and the event pump, finds the
//! relay, rejoins stored rooms, and offers the actions the components call.

use futures::StreamExt;
use leptos::prelude::*;
use leptos::task::spawn_local;
use libp2p::{Multiaddr, PeerId};
use p2p_chat_shared::core::{self, CoreConfig, HistoryMark, SendOutcome};
use p2p_chat_shared::protocol::{validate_room, DEFAULT_ROOM};
use p2p_chat_shared::text::{clean_nick, random_nick};

use crate::components::{
    Composer, DirectMessages, Members, Messages, RelayPanel, RoomList, StatusBar,
};
use crate::relay_addr;
use crate::state::{clock, Chat, DmLine, DmState, Line, RoomView, Status};
use crate::storage;

#[component]
pub fn App() -> impl IntoView {
    let chat = Chat::new();
    provide_context(chat);
    spawn_local(start(chat));
    view! {
        <main class="app">
            <StatusBar/>
            <div class="body">
                <aside class="sidebar">
                    <RoomList/>
                    <RelayPanel/>
                </aside>
                <section class="room">
                    <Messages/>
                    <Composer/>
                </section>
                <aside class="people">
                    <Members/>
                    <DirectMessages/>
                </aside>
            </div>
        </main>
    }
}

/// Starts the chat core, then connects and rejoins.
async fn start(chat: Chat) {
    let tab: u64 = rand_tab_id();
    let (key, owner) = storage::identity(tab);
    if owner {
        spawn_local(async move {
            loop {
                futures_timer::Delay::new(storage::LEASE_RENEW).await;
                storage::renew_lease(tab);
            }
        });
    }
    let nick = storage::nick()
        .and_then(|n| clean_nick(&n))
        .unwrap_or_else(random_nick);
    storage::set_nick(&nick);
    chat.me.set(Some(key.public().to_peer_id()));
    chat.nick.set(nick.clone());
    let config = CoreConfig {
        identity: Some(key.clone()),
        ..CoreConfig::peer(&nick)
    };
    let swarm = match crate::transport::build(key) {
        Ok(swarm) => swarm,
        Err(e) => {
            chat.error.set(Some(format!("cannot start libp2p: {e}")));
            return;
        }
    };
    let (client, mut events, event_loop) = core::new(swarm, config);
    say_goodbye_on_close(client.clone(), owner.then_some(tab));
    chat.client.set_value(Some(client));
    spawn_local(event_loop.run());
    spawn_local(async move {
        while let Some(event) = events.next().await {
            chat.apply(event);
        }
    });

    let mut rooms = storage::rooms();
    if rooms.is_empty() {
        rooms.push(DEFAULT_ROOM.to_owned());
    }
    for room in rooms {
        join(chat, room).await;
    }

    let addrs = match relay_addr::from_query() {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => relay_addr::from_origin().await,
        Err(e) => Err(e),
    };
    match addrs {
        Ok(addrs) if !addrs.is_empty() => use_relay(chat, addrs).await,
        Ok(_) => chat
            .status
            .set(Status::NoRelay("the relay published no address".into())),
        Err(e) => chat.status.set(Status::NoRelay(e)),
    }
}

/// When the tab closes, let the browser's identity go and leave every room with a goodbye: the
/// members see the tab go at once instead of when the relay's ping gives up on it. The work runs
/// in microtasks, which the browser finishes before it tears the page down.
fn say_goodbye_on_close(client: p2p_chat_shared::core::Client, lease: Option<u64>) {
    use wasm_bindgen::{closure::Closure, JsCast};
    let Some(window) = web_sys::window() else {
        return;
    };
    let handler = Closure::<dyn FnMut()>::new(move || {
        if let Some(tab) = lease {
            storage::release_lease(tab);
        }
        let client = client.clone();
        spawn_local(async move {
            let _ = client.shutdown().await;
        });
    });
    let _ = window.add_event_listener_with_callback("pagehide", handler.as_ref().unchecked_ref());
    // The page lives as long as the handler is needed.
    handler.forget();
}

/// A random id for this tab (which tab holds the browser's identity).
fn rand_tab_id() -> u64 {
    (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64
}

/// Connects to a relay (addresses best first); the core keeps reconnecting.
pub async fn use_relay(chat: Chat, addrs: Vec<Multiaddr>) {
    let Some(client) = chat.client() else { return };
    if let Some(libp2p::core::multiaddr::Protocol::P2p(relay)) =
        addrs.first().and_then(|a| a.iter().last())
    {
        chat.relay.set(Some(relay));
    }
    chat.status.set(Status::Connecting);
    if let Err(e) = client.use_relay(addrs).await {
        chat.status.set(Status::NoRelay(e.to_string()));
    }
}

/// Parses a pasted relay address and connects to it.
pub fn connect_pasted(chat: Chat, text: String) -> Result<(), String> {
    let addrs = relay_addr::parse_all(&[text])?;
    match addrs.first().and_then(|a| a.iter().last()) {
        Some(libp2p::core::multiaddr::Protocol::P2p(_)) => {}
        _ => return Err("the address must end with /p2p/<relay peer id>".into()),
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
    let kept = storage::history(&room);
    let me = chat.me.get_untracked();
    chat.rooms.update(|rooms| {
        if !rooms.iter().any(|r| r.name == room) {
            let mut view = RoomView::new(room.clone());
            view.lines = kept.iter().map(|k| Line::kept(k, me)).collect();
            rooms.push(view);
        }
    });
    match client.join_after(room.clone(), mark(&kept)).await {
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
        .filter_map(|k| Some((k.from.parse().ok()?, k.id.clone(), k.ts)))
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
    storage::set_rooms(&names);
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
    match client.send_message(room.clone(), text.clone()).await {
        Ok(outcome) => {
            let me = chat.me.get_untracked();
            let line = Line {
                id: outcome.id().to_owned(),
                from: me,
                nick: chat.nick.get_untracked(),
                text: text.clone(),
                time: clock(0),
                own: true,
                notice: false,
                queued: matches!(outcome, SendOutcome::Queued { .. }),
                history: false,
                stored: None,
            };
            let kept = storage::Kept {
                id: line.id.clone(),
                from: me.map(|p| p.to_string()).unwrap_or_default(),
                nick: line.nick.clone(),
                text,
                ts: p2p_chat_shared::text::now_unix_ms(),
            };
            storage::keep(&room, vec![kept]);
            chat.push_line(&room, line);
        }
        Err(e) => chat.error.set(Some(e.to_string())),
    }
}

/// Changes the nickname.
pub async fn set_nick(chat: Chat, nick: String) {
    let Some(client) = chat.client() else { return };
    match client.set_nick(nick).await {
        Ok(nick) => {
            storage::set_nick(&nick);
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
