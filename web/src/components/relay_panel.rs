//! The relay panel: a pasted relay address, for pages not served by a relay.

use leptos::prelude::*;

use super::{chat, on_enter};
use crate::actions;

/// A pasted relay address, for pages not served by a relay.
#[component]
pub fn RelayPanel() -> impl IntoView {
    let chat = chat();
    let draft = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let connect = move || match actions::connect_pasted(chat, draft.get_untracked()) {
        Ok(()) => problem.set(None),
        Err(e) => problem.set(Some(e.to_string())),
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
