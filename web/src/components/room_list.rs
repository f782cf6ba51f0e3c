//! The rooms we are in, with unread counts; joining and leaving.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{chat, on_enter};
use crate::actions;

/// Rooms with unread counts; join and leave.
#[component]
pub fn RoomList() -> impl IntoView {
    let chat = chat();
    let draft = RwSignal::new(String::new());
    let join = move || {
        let room = draft.get_untracked().trim().to_owned();
        if !room.is_empty() {
            spawn_local(actions::join(chat, room));
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
                                <button class="room-name" on:click=move |_| actions::select_room(chat, select.clone())>
                                    "#" {name.clone()}
                                </button>
                                <Show when=move || { room.unread > 0 }>
                                    <span class="unread" data-testid="unread">{room.unread}</span>
                                </Show>
                                <button class="leave" title="leave" data-testid="leave"
                                    on:click=move |_| spawn_local(actions::leave(chat, leave.clone()))>"×"</button>
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
