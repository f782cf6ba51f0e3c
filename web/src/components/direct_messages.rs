//! Direct messages in and out, with their delivery state, and the DM composer.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{chat, on_enter};
use crate::actions;
use crate::state::DmState;

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
            spawn_local(actions::send_dm(chat, peer, nick, text));
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
