//! The composer: types a message to the current room; Enter sends.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{chat, on_enter};
use crate::actions;

/// Types a message; Enter sends. Disabled until the room can carry messages.
#[component]
pub fn Composer() -> impl IntoView {
    let chat = chat();
    let draft = RwSignal::new(String::new());
    let ready = move || chat.with_current(|r| r.ready);
    let send = move || {
        let text = draft.get_untracked();
        if !text.trim().is_empty() {
            spawn_local(actions::send(chat, text));
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
