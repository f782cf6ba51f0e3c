//! The status bar: where the page stands with its relay, who we are, our nickname.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{chat, on_enter};
use crate::actions;

/// Connection state, our identity and nickname.
#[component]
pub fn StatusBar() -> impl IntoView {
    let chat = chat();
    let nick_draft = RwSignal::new(String::new());
    let save_nick = move || {
        let nick = nick_draft.get_untracked();
        if !nick.trim().is_empty() {
            spawn_local(actions::set_nick(chat, nick));
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
