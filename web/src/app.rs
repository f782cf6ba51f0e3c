//! The top of the page: creates the state, starts the chat core, the event pump and the writer
//! of what the page keeps, finds the relay and rejoins the stored rooms.

use futures::StreamExt;
use leptos::prelude::*;
use leptos::task::spawn_local;
use p2p_chat_shared::core::{self, Client, CoreConfig};
use p2p_chat_shared::protocol::DEFAULT_ROOM;
use p2p_chat_shared::text::Nick;

use crate::actions;
use crate::components::{
    Composer, DirectMessages, Members, Messages, RelayPanel, RoomList, StatusBar,
};
use crate::relay_addr;
use crate::state::{Chat, Status};
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

/// Writes what the page keeps; a full storage is shown, not swallowed.
fn flush(chat: Chat) {
    let mut result = Ok(());
    chat.kept.update_value(|k| result = k.flush());
    if let Err(full) = result {
        chat.error.set(Some(full));
    }
}

/// Starts the chat core, then connects and rejoins.
async fn start(chat: Chat) {
    let tab: u64 = rand_tab_id();
    let (key, owner, warning) = storage::identity(tab);
    if warning.is_some() {
        chat.error.set(warning);
    }
    if owner {
        spawn_local(async move {
            loop {
                futures_timer::Delay::new(storage::LEASE_RENEW).await;
                storage::renew_lease(tab);
            }
        });
    }
    let nick = Nick::first_usable([storage::nick().as_deref()]);
    if let Err(full) = storage::set_nick(nick.as_str()) {
        chat.error.set(Some(full));
    }
    chat.me.set(Some(key.public().to_peer_id()));
    chat.nick.set(nick.to_string());
    let config = CoreConfig {
        identity: Some(key.clone()),
        ..CoreConfig::peer(nick)
    };
    let swarm = match crate::transport::build(key) {
        Ok(swarm) => swarm,
        Err(e) => {
            chat.error.set(Some(format!("cannot start libp2p: {e}")));
            return;
        }
    };
    let (client, mut events, event_loop) = core::new(swarm, config);
    on_close(chat, client.clone(), owner.then_some(tab));
    chat.client.set_value(Some(client));
    spawn_local(event_loop.run());
    spawn_local(async move {
        while let Some(event) = events.next().await {
            chat.apply(event);
        }
    });
    spawn_local(async move {
        loop {
            futures_timer::Delay::new(storage::FLUSH_EVERY).await;
            flush(chat);
        }
    });

    let mut rooms = storage::rooms();
    if rooms.is_empty() {
        rooms.push(DEFAULT_ROOM.to_owned());
    }
    for room in rooms {
        actions::join(chat, room).await;
    }

    let addrs = match relay_addr::from_query() {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => relay_addr::from_origin().await,
        Err(e) => Err(e),
    };
    match addrs {
        Ok(addrs) if !addrs.is_empty() => actions::use_relay(chat, addrs).await,
        Ok(_) => chat
            .status
            .set(Status::NoRelay("the relay published no address".into())),
        Err(e) => chat.status.set(Status::NoRelay(e.to_string())),
    }
}

/// When the tab closes: write what the page keeps, let the browser's identity go, and leave
/// every room with a goodbye (the members see the tab go at once instead of when the relay's
/// ping gives up on it). The work runs in microtasks, which the browser finishes before it
/// tears the page down.
fn on_close(chat: Chat, client: Client, lease: Option<u64>) {
    use wasm_bindgen::{closure::Closure, JsCast};
    let Some(window) = web_sys::window() else {
        return;
    };
    let handler = Closure::<dyn FnMut()>::new(move || {
        flush(chat);
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
