//! `p2p-chat peer`: the terminal chat. Starts a chat peer, reserves a slot on the relay, joins
//! the room, then turns typed lines (or JSON commands) into [`Client`] calls and prints what
//! comes back. Waiting commands (`/dm`, `/ping`, `/find`, `/connect`) run in their own tasks so
//! the prompt never blocks; everything else runs in order.

pub mod history;
pub mod input;
pub mod output;

use std::path::Path;

use anyhow::Context;
use futures::StreamExt;
use history::LocalHistory;
use libp2p::Multiaddr;
use libp2p::PeerId;
use p2p_chat_shared::core::{ChatMessage, Client, Event, Origin, SendOutcome};
use p2p_chat_shared::protocol::validate_room;
use p2p_chat_shared::text::{clean_nick, random_nick};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio::sync::mpsc;

use crate::cli::PeerArgs;
use crate::identity::{claim_data_dir, default_data_dir, load_key, load_or_create_key};
use crate::node::{start_peer, PeerSetup};
use input::{parse_json, parse_line, Input, HELP};
use output::{Printer, Reply};

/// Longest accepted input line, in bytes; longer lines are refused, not cut.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Runs the CLI peer until `/quit`, end of input, Ctrl-C or SIGTERM.
pub async fn run(args: PeerArgs) -> anyhow::Result<()> {
    let room = validate_room(&args.room).context("--room")?.to_owned();
    let base = args
        .data_dir
        .clone()
        .unwrap_or_else(|| default_data_dir("peer"));
    let data = claim_data_dir(&base, args.data_dir.is_none())?;
    let key = match &args.key_file {
        Some(path) => load_key(path)?,
        None => load_or_create_key(&data.path.join("identity.key"))?,
    };
    let nick = choose_nick(args.nick.as_deref(), &data.path);
    let listen = if args.listen.is_empty() {
        vec![
            "/ip4/0.0.0.0/tcp/0".parse()?,
            "/ip4/0.0.0.0/udp/0/quic-v1".parse()?,
        ]
    } else {
        args.listen.clone()
    };
    let setup = PeerSetup {
        nick,
        listen,
        mdns: !args.no_mdns,
        upnp: !args.no_upnp,
        dcutr: true,
    };
    let node = start_peer(key, &setup).await?;
    let client = node.client.clone();
    let mut printer = Printer {
        json: args.json,
        verbose: false,
    };

    if let Some(relay) = &args.relay {
        client
            .use_relay(vec![relay.clone()])
            .await
            .context("--relay")?;
    }
    for addr in &args.bootstrap {
        client
            .bootstrap(addr.clone())
            .await
            .context("--bootstrap")?;
    }
    let info = client.info().await?;
    printer.reply(&Reply::Ready {
        peer_id: node.peer_id,
        nick: info.nick.clone(),
        data_dir: data.path.display().to_string(),
    });
    let history = match LocalHistory::open(&data.path.join("history.redb")) {
        Ok(history) => Some(history),
        Err(e) => {
            printer.reply(&Reply::Error {
                message: format!(
                    "history is off: cannot open {}: {e}",
                    data.path.join("history.redb").display()
                ),
            });
            None
        }
    };
    let mut session = Session {
        client,
        current: None,
        data_dir: data.path.clone(),
        history,
        me: node.peer_id,
        nick: info.nick.clone(),
    };
    let (background_tx, mut background) = mpsc::channel::<Reply>(64);
    if let Some(reply) = session.execute(Input::Join(room), &background_tx).await {
        printer.reply(&reply);
    }

    let mut lines = spawn_stdin_reader();
    let mut events = node.events;
    let mut terminate = terminate_signal()?;
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                let parsed = match line {
                    Err(message) => Err(message),
                    Ok(line) if args.json && line.trim().is_empty() => Ok(None),
                    Ok(line) if args.json => parse_json(&line).map(Some),
                    Ok(line) => parse_line(&line),
                };
                match parsed {
                    Ok(Some(Input::Quit)) => break,
                    Ok(Some(Input::Verbose)) => {
                        printer.verbose = !printer.verbose;
                        printer.reply(&Reply::Verbose { on: printer.verbose });
                    }
                    Ok(Some(input)) => {
                        if let Some(reply) = session.execute(input, &background_tx).await {
                            printer.reply(&reply);
                        }
                    }
                    Ok(None) => {}
                    Err(message) => printer.reply(&Reply::Error { message }),
                }
            }
            Some(reply) = background.recv() => printer.reply(&reply),
            event = events.next() => match event {
                Some(event) => {
                    session.keep(&event);
                    printer.event(&event, session.current.as_deref());
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    // Say goodbye in every room; the core stops after a short grace period.
    let _ = session.client.shutdown().await;
    printer.reply(&Reply::Bye);
    Ok(())
}

/// The CLI's own state: the current room, where to keep the nickname, the local history.
struct Session {
    client: Client,
    current: Option<String>,
    data_dir: std::path::PathBuf,
    history: Option<LocalHistory>,
    me: PeerId,
    nick: String,
}

/// Messages shown when joining a room, from the local history.
const SHOWN_ON_JOIN: usize = 10;
/// Default count of `/history`.
const HISTORY_DEFAULT: usize = 50;

impl Session {
    /// Keeps the room messages an event carries in the local history.
    fn keep(&self, event: &Event) {
        let messages = match event {
            Event::Message(m) => std::slice::from_ref(m),
            Event::History { messages, .. } => messages.as_slice(),
            _ => return,
        };
        self.save(messages);
    }

    fn save(&self, messages: &[ChatMessage]) {
        if let Some(history) = &self.history {
            if let Err(e) = history.append(messages) {
                tracing::error!(error = %e, "could not keep messages in the local history");
            }
        }
    }

    fn recent(&self, room: &str, n: usize) -> Result<Vec<ChatMessage>, String> {
        match &self.history {
            Some(history) => history
                .last(room, n)
                .map_err(|e| format!("cannot read the local history: {e}")),
            None => Err("the local history is off (see the error at start)".to_owned()),
        }
    }

    /// Runs one command; waiting ones answer later through `background`.
    async fn execute(&mut self, input: Input, background: &mpsc::Sender<Reply>) -> Option<Reply> {
        let error = |e: &dyn std::fmt::Display| Reply::Error {
            message: e.to_string(),
        };
        let client = self.client.clone();
        Some(match input {
            Input::Say { room, text } => {
                let Some(room) = room.or_else(|| self.current.clone()) else {
                    return Some(Reply::Error {
                        message: "you are in no room; /join one first".into(),
                    });
                };
                match client.send_message(room.clone(), text.clone()).await {
                    Ok(outcome) => {
                        let queued = matches!(outcome, SendOutcome::Queued { .. });
                        let id = outcome.id().to_owned();
                        self.save(&[ChatMessage {
                            room: room.clone(),
                            id: id.clone(),
                            from: self.me,
                            nick: self.nick.clone(),
                            text,
                            sent_at: p2p_chat_shared::text::now_unix_ms(),
                            origin: Origin::Envelope,
                        }]);
                        Reply::Sent { room, id, queued }
                    }
                    Err(e) => error(&e),
                }
            }
            Input::Join(room) => {
                // What we hold of the room: shown now, and where the catch-up starts.
                let mark = self
                    .history
                    .as_ref()
                    .and_then(|h| h.mark(&room).ok().flatten());
                match client.join_after(room.clone(), mark).await {
                    Ok(()) => {
                        self.current = Some(room.clone());
                        let recent = self.recent(&room, SHOWN_ON_JOIN).unwrap_or_default();
                        Reply::Joined { room, recent }
                    }
                    Err(e) => error(&e),
                }
            }
            Input::History(count) => {
                let Some(room) = self.current.clone() else {
                    return Some(Reply::Error {
                        message: "you are in no room; /join one first".into(),
                    });
                };
                match self.recent(&room, count.unwrap_or(HISTORY_DEFAULT)) {
                    Ok(messages) => Reply::Recent { room, messages },
                    Err(message) => Reply::Error { message },
                }
            }
            Input::Leave(room) => {
                let Some(room) = room.or_else(|| self.current.clone()) else {
                    return Some(Reply::Error {
                        message: "you are in no room".into(),
                    });
                };
                if let Err(e) = client.leave(room.clone()).await {
                    return Some(error(&e));
                }
                if self.current.as_deref() == Some(room.as_str()) {
                    let rooms = client.rooms().await.unwrap_or_default();
                    self.current = rooms.first().map(|r| r.room.clone());
                }
                Reply::Left {
                    room,
                    current: self.current.clone(),
                }
            }
            Input::Rooms => match client.rooms().await {
                Ok(rooms) => Reply::Rooms {
                    rooms,
                    current: self.current.clone(),
                },
                Err(e) => error(&e),
            },
            Input::Peers(room) => match client.peers(room.or_else(|| self.current.clone())).await {
                Ok(info) => Reply::Peers(info),
                Err(e) => error(&e),
            },
            Input::Name(nick) => match client.set_nick(nick).await {
                Ok(nick) => {
                    save_nick(&self.data_dir, &nick);
                    self.nick = nick.clone();
                    Reply::Nick { nick }
                }
                Err(e) => error(&e),
            },
            Input::Info => match client.info().await {
                Ok(info) => Reply::Info(info),
                Err(e) => error(&e),
            },
            Input::Dm { peer, text } => {
                in_background(background, async move {
                    match client.dm(peer, text).await {
                        Ok(r) if r.stored => Reply::DmStored { peer, id: r.id },
                        Ok(r) => Reply::DmDelivered {
                            peer,
                            id: r.id,
                            relayed: r.relayed,
                            rtt_ms: r.round_trip.as_millis() as u64,
                        },
                        Err(e) => Reply::DmFailed {
                            peer,
                            error: e.to_string(),
                        },
                    }
                });
                return None;
            }
            Input::Find(peer) => {
                in_background(background, async move {
                    match client.find(peer).await {
                        Ok(addrs) => Reply::Found { peer, addrs },
                        Err(e) => Reply::Error {
                            message: e.to_string(),
                        },
                    }
                });
                return None;
            }
            Input::Ping(peer) => {
                in_background(background, async move {
                    match client.ping(peer).await {
                        Ok(rtt) => Reply::Pong {
                            peer,
                            rtt_ms: rtt.as_secs_f64() * 1000.0,
                        },
                        Err(e) => Reply::Error {
                            message: format!("ping {peer}: {e}"),
                        },
                    }
                });
                return None;
            }
            Input::Connect(addr) => {
                in_background(background, connect(client, addr));
                return None;
            }
            Input::Help => Reply::Help {
                text: HELP.to_owned(),
            },
            // Handled by the caller, which owns the printer and the loop.
            Input::Verbose | Input::Quit => return None,
        })
    }
}

async fn connect(client: Client, addr: Multiaddr) -> Reply {
    match client.connect(addr).await {
        Ok(peer) => Reply::Dialed { peer },
        Err(e) => Reply::Error {
            message: e.to_string(),
        },
    }
}

fn in_background(
    background: &mpsc::Sender<Reply>,
    work: impl std::future::Future<Output = Reply> + Send + 'static,
) {
    let background = background.clone();
    tokio::spawn(async move {
        let _ = background.send(work.await).await;
    });
}

/// Reads stdin on its own task, so that the main loop can `select!` on whole lines. Lines that
/// are not UTF-8 or too long arrive as errors.
fn spawn_stdin_reader() -> mpsc::Receiver<Result<String, String>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::new(tokio::io::stdin());
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let limit = MAX_LINE_BYTES as u64 + 1;
            match (&mut reader).take(limit).read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = if buf.len() > MAX_LINE_BYTES {
                // Skip the rest of the over-long line without holding it in memory.
                let mut skipped = buf.len();
                while !buf.ends_with(b"\n") {
                    buf.clear();
                    match (&mut reader).take(limit).read_until(b'\n', &mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => skipped += n,
                    }
                }
                Err(format!(
                    "a line of {skipped} bytes was ignored; the limit is {MAX_LINE_BYTES}"
                ))
            } else {
                String::from_utf8(buf.clone())
                    .map_err(|_| "line ignored: it is not UTF-8 text".to_owned())
            };
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
    rx
}

#[cfg(unix)]
fn terminate_signal() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
}

/// The nickname: the flag, else the one saved last time, else a new random one (saved).
fn choose_nick(flag: Option<&str>, data_dir: &Path) -> String {
    let saved = std::fs::read_to_string(data_dir.join("nick"))
        .ok()
        .and_then(|n| clean_nick(&n));
    let nick = flag
        .and_then(clean_nick)
        .or(saved)
        .unwrap_or_else(random_nick);
    save_nick(data_dir, &nick);
    nick
}

fn save_nick(data_dir: &Path, nick: &str) {
    if let Err(e) = std::fs::write(data_dir.join("nick"), nick) {
        tracing::warn!(error = %e, "could not save the nickname");
    }
}
