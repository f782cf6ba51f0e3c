//! The members of the current room, each with a button to message them directly.

use leptos::prelude::*;
use p2p_chat_shared::text::short_peer_id;

use super::chat;

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
