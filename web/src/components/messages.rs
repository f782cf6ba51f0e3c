//! The current room's messages: where the page draws a message (time, nickname, short peer id,
//! ✓ sent, ✓✓ kept by the relay, history shown apart) and a join or leave notice.

use leptos::prelude::*;
use p2p_chat_shared::text::short_peer_id;

use super::chat;
use crate::state::Line;

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
            <For each=lines key=|l| (l.from, l.id.clone(), l.queued, l.stored) children=line_view/>
        </ul>
    }
}
