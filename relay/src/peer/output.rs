//! What the CLI peer prints: replies to the user's commands and the chat core's events, as
//! human lines (remote text made terminal-safe) or, in `--json` mode, one JSON object a line.

use libp2p::{Multiaddr, PeerId};
use p2p_chat_shared::core::{ChatMessage, Event, Info, PeersInfo, RoomInfo, Stats};
use p2p_chat_shared::files::human_bytes;
use p2p_chat_shared::text::{display_safe, short_peer_id, terminal_message};
use serde::Serialize;

use super::files::{short_id, FileEntry};
use crate::say;

/// The answer to something the user asked.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Reply {
    /// The peer is up.
    Ready {
        peer_id: PeerId,
        nick: String,
        data_dir: String,
    },
    /// A message went out (or waits for the room's first neighbour).
    Sent {
        room: String,
        id: String,
        queued: bool,
    },
    /// We joined a room; it is now the current one. `recent`: its last messages kept here.
    Joined {
        room: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        recent: Vec<ChatMessage>,
    },
    /// We left a room.
    Left {
        room: String,
        current: Option<String>,
    },
    /// Our nickname is now this.
    Nick { nick: String },
    /// A direct message was acknowledged.
    DmDelivered {
        peer: PeerId,
        id: String,
        relayed: bool,
        rtt_ms: u64,
    },
    /// The recipient was unreachable: the relay keeps the message, sealed, until it returns.
    DmStored { peer: PeerId, id: String },
    /// A direct message was not delivered.
    DmFailed { peer: PeerId, error: String },
    /// Messages of a room from the local history (`/history`, and on joining).
    Recent {
        room: String,
        messages: Vec<ChatMessage>,
    },
    /// Our rooms.
    Rooms {
        rooms: Vec<RoomInfo>,
        current: Option<String>,
    },
    /// Members and connections.
    Peers(PeersInfo),
    /// Connection, room and traffic figures.
    Stats(Stats),
    /// Identity and addresses.
    Info(Info),
    /// A DHT lookup's result.
    Found { peer: PeerId, addrs: Vec<Multiaddr> },
    /// A ping's result.
    Pong { peer: PeerId, rtt_ms: f64 },
    /// A `/connect` succeeded.
    Dialed { peer: PeerId },
    /// A file we offered went out (in a room, or in a DM).
    Shared {
        id: String,
        name: String,
        size: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<PeerId>,
    },
    /// What `/files` lists.
    Files { files: Vec<FileEntry> },
    /// A download began (or resumed).
    FileStarted {
        id: String,
        name: String,
        size: u64,
        providers: usize,
    },
    /// A download's progress: bytes checked and kept so far.
    FileProgress {
        id: String,
        name: String,
        have: u64,
        size: u64,
        bytes_per_sec: u64,
        providers: usize,
    },
    /// A provider sent a piece or manifest that did not match; it is not asked again.
    FileBadProvider {
        id: String,
        peer: PeerId,
        reason: String,
    },
    /// A download finished, checked whole, and is saved at `path`; `resumed`: bytes kept from
    /// an earlier attempt.
    FileSaved {
        id: String,
        name: String,
        path: String,
        size: u64,
        resumed: u64,
        secs: f64,
    },
    /// A download stopped; what it kept stays for `/get` to resume.
    FileFailed {
        id: String,
        name: String,
        error: String,
    },
    /// Connection events are now shown or hidden.
    Verbose { on: bool },
    /// The command list.
    Help { text: String },
    /// Something was wrong; the peer goes on.
    Error { message: String },
    /// We are leaving.
    Bye,
}

/// Prints replies and events.
#[derive(Debug, Clone)]
pub struct Printer {
    /// JSON lines instead of text.
    pub json: bool,
    /// Show connection-level events in text mode.
    pub verbose: bool,
}

fn clock(unix_ms: u64) -> String {
    let ms = if unix_ms == 0 {
        chrono::Utc::now().timestamp_millis()
    } else {
        unix_ms as i64
    };
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "--:--:--".to_owned())
}

fn who(nick: &str, peer: &PeerId) -> String {
    format!("{} ({})", display_safe(nick), short_peer_id(peer))
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(line) => say(line),
        Err(e) => tracing::error!(error = %e, "could not encode output"),
    }
}

impl Printer {
    /// Prints the answer to a command.
    pub fn reply(&self, reply: &Reply) {
        if self.json {
            print_json(reply);
            return;
        }
        let text = match reply {
            Reply::Ready { peer_id, nick, data_dir } => format!(
                "p2p-chat peer {peer_id}\nnickname {nick}; data in {data_dir}\ntype /help for commands"
            ),
            Reply::Sent { queued: false, .. } => return,
            Reply::Sent { room, queued: true, .. } => {
                format!("* nobody reachable in {room} yet; your message goes out as soon as someone is")
            }
            Reply::Joined { room, recent } => {
                let mut lines = vec![format!("* joined {room} (now the current room)")];
                if !recent.is_empty() {
                    lines.push(format!("── last {} message(s) kept here ──", recent.len()));
                    lines.extend(recent.iter().map(|m| message_line(m, None)));
                }
                lines.join("\n")
            }
            Reply::Left { room, current: Some(current) } => format!("* left {room}; current room is {current}"),
            Reply::Left { room, current: None } => format!("* left {room}; /join a room to chat"),
            Reply::Nick { nick } => format!("* you are now {}", display_safe(nick)),
            Reply::DmDelivered { peer, relayed, rtt_ms, .. } => format!(
                "* dm to {} delivered in {rtt_ms} ms{}",
                short_peer_id(peer),
                if *relayed { " (through a relay)" } else { "" }
            ),
            Reply::DmStored { peer, .. } => format!(
                "* {} is offline: the relay keeps your dm (sealed) and delivers it when it returns",
                short_peer_id(peer)
            ),
            Reply::DmFailed { peer, error } => format!("! dm to {} failed: {error}", short_peer_id(peer)),
            Reply::Recent { room, messages } if messages.is_empty() => {
                format!("* no messages of {room} kept here yet")
            }
            Reply::Recent { room, messages } => {
                let mut lines = vec![format!("── last {} message(s) of {room} ──", messages.len())];
                lines.extend(messages.iter().map(|m| message_line(m, None)));
                lines.join("\n")
            }
            Reply::Rooms { rooms, current } => rooms_text(rooms, current.as_deref()),
            Reply::Peers(info) => peers_text(info),
            Reply::Stats(stats) => stats_text(stats),
            Reply::Info(info) => info_text(info),
            Reply::Found { peer, addrs } => {
                let list: Vec<String> = addrs.iter().map(|a| format!("  {a}")).collect();
                format!("{peer}:\n{}", list.join("\n"))
            }
            Reply::Pong { peer, rtt_ms } => format!("* {} answered in {rtt_ms:.2} ms", short_peer_id(peer)),
            Reply::Dialed { peer } => format!("* connected to {peer}"),
            Reply::Shared { id, name, size, room, peer } => {
                let to = match (room, peer) {
                    (_, Some(peer)) => format!("to {}", short_peer_id(peer)),
                    (Some(room), None) => format!("in {room}"),
                    (None, None) => String::new(),
                };
                format!(
                    "* offered {} ({}) {to}; others fetch it with /get {}",
                    display_safe(name),
                    human_bytes(*size),
                    short_id(id)
                )
            }
            Reply::Files { files } => files_text(files),
            Reply::FileStarted { name, size, providers, .. } => format!(
                "* fetching {} ({}) from {providers} known provider(s)",
                display_safe(name),
                human_bytes(*size)
            ),
            Reply::FileProgress { name, have, size, bytes_per_sec, providers, .. } => {
                format!(
                    "↓ {} {} {} of {}, {}/s, {providers} provider(s)",
                    display_safe(name),
                    progress_bar(*have, *size),
                    human_bytes(*have),
                    human_bytes(*size),
                    human_bytes(*bytes_per_sec)
                )
            }
            Reply::FileBadProvider { peer, reason, .. } => format!(
                "! {} sent {}: not asked again",
                short_peer_id(peer),
                display_safe(reason)
            ),
            Reply::FileSaved { name, path, size, secs, .. } => format!(
                "* saved {} ({}, SHA-256 checked) in {secs:.1} s: {}",
                display_safe(name),
                human_bytes(*size),
                display_safe(path)
            ),
            Reply::FileFailed { name, error, .. } => {
                format!("! fetching {} stopped: {}", display_safe(name), display_safe(error))
            }
            Reply::Verbose { on } => format!("* connection events {}", if *on { "shown" } else { "hidden" }),
            Reply::Help { text } => text.clone(),
            Reply::Error { message } => format!("! {message}"),
            Reply::Bye => "* bye".to_owned(),
        };
        say(text);
    }

    /// Prints a chat core event (`current` is the current room: others are labelled).
    pub fn event(&self, event: &Event, current: Option<&str>) {
        if self.json {
            print_json(event);
            return;
        }
        let line = match event {
            Event::Message(m) => message_line(m, current),
            Event::History { messages, .. } if messages.is_empty() => return,
            Event::History { room, messages, .. } => {
                let mut lines = vec![format!(
                    "── {} message(s) of {room} you missed ──",
                    messages.len()
                )];
                lines.extend(messages.iter().map(|m| message_line(m, current)));
                lines.join("\n")
            }
            Event::HistoryFailed { room, reason } => format!(
                "* {room}: could not load what you missed ({}); trying again in {} s",
                display_safe(reason),
                p2p_chat_shared::core::CATCH_UP_RETRY.as_secs()
            ),
            Event::DirectMessage(m) => {
                let prefix = format!(
                    "[{}] (dm{}) {}: ",
                    clock(m.sent_at),
                    if m.stored {
                        ", kept while you were away"
                    } else {
                        ""
                    },
                    who(&m.nick, &m.from),
                );
                let mut line = terminal_message(&prefix, &m.text);
                if let Some(file) = &m.file {
                    line.push_str(&format!("  (/get {})", short_id(&file.id)));
                }
                line
            }
            Event::NotStored { room, reason, .. } => {
                format!(
                    "! the relay did not confirm storing your message in {room}: {}",
                    display_safe(reason)
                )
            }
            Event::DmDelivered { peer, .. } => {
                format!("* {} is back: your dm was delivered", short_peer_id(peer))
            }
            Event::MemberJoined { room, peer, nick } => {
                format!("* {} joined {room}", who(nick, peer))
            }
            Event::MemberLeft {
                room,
                peer,
                nick,
                reason,
            } => {
                format!("* {} left {room}{}", who(nick, peer), reason.suffix())
            }
            Event::NickChanged { peer, old, new, .. } => {
                format!("* {} is now {}", who(old, peer), display_safe(new))
            }
            Event::RoomReady { room } => format!("* {room}: connected, messages go out now"),
            Event::RoomNotReady { room } => {
                format!("* {room}: nobody reachable; what you send waits until someone is")
            }
            Event::QueuedSent { room, ids } => {
                format!("* sent {} waiting message(s) to {room}", ids.len())
            }
            Event::ReservationAccepted { addr, .. } => format!("* reachable through relay {addr}"),
            Event::RelayLost {
                relay,
                retry_in_ms,
                attempt,
            } => {
                format!(
                    "* lost relay {relay}; retrying in {} s (attempt {attempt})",
                    retry_in_ms.div_ceil(1000)
                )
            }
            Event::HolePunch { peer, ok: true, .. } => format!(
                "* direct connection to {} (hole punch)",
                short_peer_id(peer)
            ),
            Event::NatStatus { status } => format!("* NAT status: {status}"),
            Event::Discovered { peers } => {
                format!("* found {} peer(s) on the local network", peers.len())
            }
            Event::Lagged { missed } => {
                format!("! the display fell behind; {missed} event(s) not shown")
            }
            other if self.verbose => verbose_text(other),
            _ => return,
        };
        say(line);
    }
}

/// One room message as a line; the room is named when it is not the current one.
/// `[#####.....]  50%`
fn progress_bar(have: u64, size: u64) -> String {
    const WIDTH: u64 = 20;
    let filled = (have * WIDTH).checked_div(size).unwrap_or(WIDTH).min(WIDTH);
    let percent = (have * 100).checked_div(size).unwrap_or(100);
    format!(
        "[{}{}] {percent:>3}%",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize)
    )
}

fn files_text(files: &[FileEntry]) -> String {
    if files.is_empty() {
        return "* no files yet: /share PATH offers one".to_owned();
    }
    let mut lines = vec![format!("{} file(s):", files.len())];
    for f in files {
        let mut line = format!(
            "  {}  {:<11} {} ({})",
            short_id(&f.id),
            f.state,
            display_safe(&f.name),
            human_bytes(f.size)
        );
        if let Some(path) = &f.path {
            line.push_str(&format!(
                " at {}",
                display_safe(&path.display().to_string())
            ));
        }
        if f.served > 0 {
            line.push_str(&format!(", {} served", human_bytes(f.served)));
        }
        lines.push(line);
    }
    lines.join("\n")
}

fn message_line(m: &ChatMessage, current: Option<&str>) -> String {
    let room = if current.is_none_or(|c| c == m.room) {
        String::new()
    } else {
        format!("[{}] ", m.room)
    };
    let prefix = format!("[{}] {room}{}: ", clock(m.sent_at), who(&m.nick, &m.from));
    let mut line = terminal_message(&prefix, &m.text);
    if let Some(file) = &m.file {
        line.push_str(&format!("  (/get {})", short_id(&file.id)));
    }
    line
}

fn verbose_text(event: &Event) -> String {
    match event {
        Event::Connected {
            peer,
            addr,
            relayed,
        } => {
            format!(
                "~ connected {peer} via {addr}{}",
                if *relayed { " (relayed)" } else { "" }
            )
        }
        Event::Disconnected { peer } => format!("~ disconnected {peer}"),
        Event::Listening { addr } => format!("~ listening on {addr}"),
        Event::ListenerClosed { addr, reason } => {
            format!("~ stopped listening on {addr}: {reason}")
        }
        Event::ExternalAddr { addr } => format!("~ reachable at {addr}"),
        Event::DialFailed { peer, error } => match peer {
            Some(peer) => format!("~ dial {peer} failed: {error}"),
            None => format!("~ dial failed: {error}"),
        },
        Event::HolePunch { peer, error, .. } => format!(
            "~ hole punch to {peer} failed: {}",
            error.as_deref().unwrap_or("unknown reason")
        ),
        other => format!("~ {other:?}"),
    }
}

fn rooms_text(rooms: &[RoomInfo], current: Option<&str>) -> String {
    if rooms.is_empty() {
        return "* you are in no room; /join one".to_owned();
    }
    rooms
        .iter()
        .map(|r| {
            let mark = if Some(r.room.as_str()) == current {
                "*"
            } else {
                " "
            };
            let state = if r.ready { "" } else { ", connecting" };
            format!("{mark} {} ({} other member(s){state})", r.room, r.members)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn stats_text(stats: &Stats) -> String {
    let connections = if stats.connections.is_empty() {
        "none".to_owned()
    } else {
        stats
            .connections
            .iter()
            .map(|(transport, n)| format!("{n} {transport}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = vec![
        format!(
            "up {} s; {} peer(s) connected; connections: {connections}",
            stats.uptime_secs, stats.connected_peers
        ),
        format!(
            "messages: {} sent, {} received; direct messages: {} sent, {} received",
            stats.messages_sent, stats.messages_received, stats.dms_sent, stats.dms_received
        ),
    ];
    if !stats.rooms.is_empty() {
        lines.push(rooms_text(&stats.rooms, None));
    }
    lines.join("\n")
}

fn peers_text(info: &PeersInfo) -> String {
    let mut lines = vec![format!("members ({}):", info.members.len())];
    lines.extend(
        info.members
            .iter()
            .map(|m| format!("  {} in {}  {}", display_safe(&m.nick), m.room, m.peer)),
    );
    lines.push(format!("connections ({}):", info.connected.len()));
    lines.extend(info.connected.iter().map(|c| {
        let addrs: Vec<String> = c.addrs.iter().map(ToString::to_string).collect();
        let agent = c.agent.as_deref().map(display_safe).unwrap_or_default();
        let path = if c.direct { "direct" } else { "relayed" };
        format!("  {} {agent} {path} via {}", c.peer, addrs.join(", "))
    }));
    lines.join("\n")
}

fn info_text(info: &Info) -> String {
    let list = |addrs: &[Multiaddr]| {
        if addrs.is_empty() {
            "  (none)".to_owned()
        } else {
            addrs
                .iter()
                .map(|a| format!("  {a}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    format!(
        "peer id: {}\nnickname: {}\nlistening on:\n{}\nexternal addresses:\n{}\nNAT status: {}\nconnected peers: {}\ndropped payloads: {}",
        info.peer_id,
        display_safe(&info.nick),
        list(&info.listen_addrs),
        list(&info.external_addrs),
        info.nat_status,
        info.connected_peers,
        info.dropped_payloads
    )
}
