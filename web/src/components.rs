//! The page's components. Each reads the [`Chat`] state from context and calls the actions in
//! [`crate::app`]; `data-testid` marks what the end-to-end tests touch.

use leptos::prelude::*;
use leptos::task::spawn_local;
use p2p_chat_shared::text::short_peer_id;

use crate::app;
use crate::state::{Chat, DmState, Line};

fn chat() -> Chat {
    expect_context::<Chat>()
}

fn on_enter(ev: &web_sys::KeyboardEvent) -> bool {
    ev.key() == "Enter" && !ev.shift_key()
}

/// Connection state, our identity and nickname.
#[component]
pub fn StatusBar() -> impl IntoView {
    let chat = chat();
    let nick_draft = RwSignal::new(String::new());
    let save_nick = move || {
        let nick = nick_draft.get_untracked();
        if !nick.trim().is_empty() {
            spawn_local(app::set_nick(chat, nick));
            nick_draft.set(String::new());
        }
    };
    view! {
        <header class="status-bar">
            <span class="brand">"p2p-chat"</span>
            <span class=move || format!("status {}", chat.status.get().kind())
                data-testid="status" data-state=move || chat.status.get().kind()>
                {move || chat.status.get().text()}
            </span>
            <span class="me">
                "you are "
                <strong data-testid="nick">{move || chat.nick.get()}</strong>
                " "
                <code data-testid="peer-id" title="your peer id">
                    {move || chat.me.get().map(|p| p.to_string()).unwrap_or_default()}
                </code>
            </span>
            <input class="nick-input" data-testid="nick-input" placeholder="new nickname"
                prop:value=move || nick_draft.get()
                on:input=move |ev| nick_draft.set(event_target_value(&ev))
                on:keydown=move |ev| if on_enter(&ev) { save_nick() }/>
            <Show when=move || chat.error.get().is_some()>
                <span class="error" data-testid="error" on:click=move |_| chat.error.set(None)>
                    {move || chat.error.get().unwrap_or_default()}
                </span>
            </Show>
        </header>
    }
}

/// Rooms with unread counts; join and leave.
#[component]
pub fn RoomList() -> impl IntoView {
    let chat = chat();
    let draft = RwSignal::new(String::new());
    let join = move || {
        let room = draft.get_untracked().trim().to_owned();
        if !room.is_empty() {
            spawn_local(app::join(chat, room));
            draft.set(String::new());
        }
    };
    view! {
        <nav class="rooms">
            <h2>"Rooms"</h2>
            <ul>
                <For each=move || chat.rooms.get() key=|r| (r.name.clone(), r.unread, r.ready) let:room>
                    {
                        let name = room.name.clone();
                        let select = name.clone();
                        let leave = name.clone();
                        let current = name.clone();
                        view! {
                            <li class:current=move || chat.current.get().as_deref() == Some(current.as_str())
                                data-testid="room" data-room=name.clone()>
                                <button class="room-name" on:click=move |_| app::select_room(chat, select.clone())>
                                    "#" {name.clone()}
                                </button>
                                <Show when=move || { room.unread > 0 }>
                                    <span class="unread" data-testid="unread">{room.unread}</span>
                                </Show>
                                <button class="leave" title="leave" data-testid="leave"
                                    on:click=move |_| spawn_local(app::leave(chat, leave.clone()))>"×"</button>
                            </li>
                        }
                    }
                </For>
            </ul>
            <input data-testid="join-input" placeholder="join a room…"
                prop:value=move || draft.get()
                on:input=move |ev| draft.set(event_target_value(&ev))
                on:keydown=move |ev| if on_enter(&ev) { join() }/>
        </nav>
    }
}

/// A pasted relay address, for pages not served by a relay.
#[component]
pub fn RelayPanel() -> impl IntoView {
    let chat = chat();
    let draft = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let connect = move || match app::connect_pasted(chat, draft.get_untracked()) {
        Ok(()) => problem.set(None),
        Err(e) => problem.set(Some(e)),
    };
    view! {
        <details class="relay-panel" open=move || chat.status.get().kind() == "no-relay">
            <summary>"Relay"</summary>
            <input data-testid="relay-input" placeholder="/ip4/…/p2p/12D3KooW…"
                prop:value=move || draft.get()
                on:input=move |ev| draft.set(event_target_value(&ev))
                on:keydown=move |ev| if on_enter(&ev) { connect() }/>
            <button data-testid="relay-connect" on:click=move |_| connect()>"Connect"</button>
            <Show when=move || problem.get().is_some()>
                <p class="error" data-testid="relay-error">{move || problem.get().unwrap_or_default()}</p>
            </Show>
        </details>
    }
}

fn line_view(line: Line) -> impl IntoView {
    let who = line.from.map(|p| short_peer_id(&p)).unwrap_or_default();
    if line.notice {
        return view! { <li class="notice" data-testid="notice">{line.time} " · " {line.text}</li> }.into_any();
    }
    let (mark, title) = match line.stored {
        Some(true) => (
            "✓✓",
            "kept by the relay: members who are away get it when they return",
        ),
        Some(false) => ("!", "the relay did not confirm keeping it"),
        None if line.own && !line.history => ("✓", "sent"),
        None => ("", ""),
    };
    view! {
        <li class="message" class:own=line.own class:queued=line.queued class:history=line.history
            data-testid="message" data-own=line.own.to_string()
            data-history=line.history.to_string()
            title=if line.history { "from history" } else { "" }>
            <span class="time">{line.time}</span>
            <span class="nick" data-testid="message-nick">{line.nick}</span>
            <span class="short-id">{who}</span>
            <span class="stored" data-testid="stored" title=title>{mark}</span>
            <span class="text" data-testid="message-text">{line.text}</span>
        </li>
    }
    .into_any()
}

/// The current room's messages.
#[component]
pub fn Messages() -> impl IntoView {
    let chat = chat();
    let lines = move || chat.with_current(|r| r.lines.clone());
    view! {
        <h2 class="room-title">{move || chat.current.get().map(|r| format!("#{r}")).unwrap_or_else(|| "no room".into())}</h2>
        <ul class="messages" data-testid="messages">
            <For each=lines key=|l| (l.id.clone(), l.queued, l.stored) children=line_view/>
        </ul>
    }
}

/// Types a message; Enter sends. Disabled until the room can carry messages.
#[component]
pub fn Composer() -> impl IntoView {
    let chat = chat();
    let draft = RwSignal::new(String::new());
    let ready = move || chat.with_current(|r| r.ready);
    let send = move || {
        let text = draft.get_untracked();
        if !text.trim().is_empty() {
            spawn_local(app::send(chat, text));
            draft.set(String::new());
        }
    };
    view! {
        <div class="composer">
            <input data-testid="composer" data-ready=move || ready().to_string()
                placeholder=move || if ready() { "message…" } else { "joining the room…" }
                prop:value=move || draft.get()
                on:input=move |ev| draft.set(event_target_value(&ev))
                on:keydown=move |ev| if on_enter(&ev) { send() }/>
            <button data-testid="send" on:click=move |_| send()>"Send"</button>
        </div>
    }
}

/// Members of the current room, each with a button to message them directly.
#[component]
pub fn Members() -> impl IntoView {
    let chat = chat();
    let members = move || chat.with_current(|r| r.members.clone());
    view! {
        <h2>"Members"</h2>
        <ul class="members" data-testid="members">
            <For each=members key=|(p, n)| (*p, n.clone()) let:member>
                {
                    let (peer, nick) = member;
                    let label = nick.clone();
                    view! {
                        <li data-testid="member" data-peer=peer.to_string()>
                            <span class="nick">{label}</span>
                            <span class="short-id">{short_peer_id(&peer)}</span>
                            <button data-testid="dm-button" title="direct message"
                                on:click=move |_| chat.dm_target.set(Some((peer, nick.clone())))>"✉"</button>
                        </li>
                    }
                }
            </For>
        </ul>
    }
}

/// Direct messages in and out, with their delivery state, and the DM composer.
#[component]
pub fn DirectMessages() -> impl IntoView {
    let chat = chat();
    let draft = RwSignal::new(String::new());
    let send = move || {
        let text = draft.get_untracked();
        if let (Some((peer, nick)), false) =
            (chat.dm_target.get_untracked(), text.trim().is_empty())
        {
            spawn_local(app::send_dm(chat, peer, nick, text));
            draft.set(String::new());
        }
    };
    view! {
        <h2>"Direct messages"</h2>
        <ul class="dms" data-testid="dms">
            <For each=move || chat.dms.get() key=|d| (d.key, format!("{:?}", d.state)) let:dm>
                {
                    let (label, class) = match &dm.state {
                        DmState::Received => ("from".to_owned(), "received"),
                        DmState::ReceivedKept => (
                            "from, while you were away".to_owned(),
                            "received-kept",
                        ),
                        DmState::Sending => ("sending".to_owned(), "sending"),
                        DmState::Stored => (
                            "stored: delivered when they are back".to_owned(),
                            "stored",
                        ),
                        DmState::Delivered => ("delivered".to_owned(), "delivered"),
                        DmState::Failed(e) => (format!("failed: {e}"), "failed"),
                    };
                    view! {
                        <li class=format!("dm {class}") data-testid="dm" data-state=class>
                            <span class="time">{dm.time}</span>
                            <span class="nick">{dm.nick}</span>
                            <span class="text" data-testid="dm-text">{dm.text}</span>
                            <span class="dm-state" data-testid="dm-status">{label}</span>
                        </li>
                    }
                }
            </For>
        </ul>
        <Show when=move || chat.dm_target.get().is_some()>
            <div class="composer">
                <input data-testid="dm-input"
                    placeholder=move || format!("message {}…", chat.dm_target.get().map(|t| t.1).unwrap_or_default())
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                    on:keydown=move |ev| if on_enter(&ev) { send() }/>
            </div>
        </Show>
    }
}
