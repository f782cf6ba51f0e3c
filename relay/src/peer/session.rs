//! What each CLI command does: a [`Session`] turns an [`Input`] into calls on the chat core's
//! [`Client`] and the [`Archive`], and answers with a [`Reply`]. Commands that wait on the
//! network (`/dm`, `/find`, `/ping`, `/connect`) run in tasks of their own and answer later, so
//! the prompt never blocks.

use std::path::{Path, PathBuf};

use libp2p::Multiaddr;
use p2p_chat_shared::core::{ChatMessage, Client, Event};
use p2p_chat_shared::text::Nick;
use tokio::sync::mpsc;

use super::archive::{Archive, ArchiveError};
use super::files::Files;
use super::input::{Input, HELP};
use super::output::Reply;

/// Messages shown when joining a room, from the archive.
const SHOWN_ON_JOIN: usize = 10;
/// Default count of `/history`.
const HISTORY_DEFAULT: usize = 50;
/// The file in the data dir that keeps the nickname.
const NICK_FILE: &str = "nick";

/// The CLI's own state: the current room, where to keep the nickname, the archive.
pub struct Session {
    /// The chat core.
    pub client: Client,
    /// The room typed lines go to.
    pub current: Option<String>,
    /// Where the nickname is kept.
    pub data_dir: PathBuf,
    /// The archive, unless it could not be opened.
    pub archive: Option<Archive>,
    /// Files shared and fetched.
    pub files: Files,
    /// Where `/get` saves when given no directory.
    pub download_dir: PathBuf,
}

impl Session {
    /// Archives the room messages an event carries.
    pub async fn keep(&self, event: Event) {
        let messages = match event {
            Event::Message(m) => vec![m],
            Event::History { messages, .. } => messages,
            Event::DirectMessage(m) => {
                if let Some(offer) = &m.file {
                    self.files.saw_offer(offer, m.from);
                }
                return;
            }
            _ => return,
        };
        for m in &messages {
            if let Some(offer) = &m.file {
                self.files.saw_offer(offer, m.from);
            }
        }
        self.archive_messages(messages).await;
    }

    async fn archive_messages(&self, messages: Vec<ChatMessage>) {
        if let Some(archive) = &self.archive {
            if let Err(e) = archive.keep(messages).await {
                tracing::error!(error = %e, "could not archive messages");
            }
        }
    }

    async fn recent(&self, room: &str, n: usize) -> Result<Vec<ChatMessage>, ArchiveError> {
        match &self.archive {
            Some(archive) => archive.last(room, n).await,
            None => Err(ArchiveError::Off),
        }
    }

    /// Runs one command; waiting ones answer later through `background`.
    pub async fn execute(
        &mut self,
        input: Input,
        background: &mpsc::Sender<Reply>,
    ) -> Option<Reply> {
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
                match client.send_message(room.clone(), text).await {
                    Ok(sent) => {
                        let id = sent.id().to_owned();
                        self.archive_messages(vec![sent.message]).await;
                        Reply::Sent {
                            room,
                            id,
                            queued: sent.queued,
                        }
                    }
                    Err(e) => error(&e),
                }
            }
            Input::Join(room) => {
                // What we hold of the room: shown now, and where the catch-up starts.
                let mark = match &self.archive {
                    Some(archive) => archive.mark(&room).await.ok().flatten(),
                    None => None,
                };
                match client.join_after(room.clone(), mark).await {
                    Ok(()) => {
                        self.current = Some(room.clone());
                        let recent = self.recent(&room, SHOWN_ON_JOIN).await.unwrap_or_default();
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
                match self.recent(&room, count.unwrap_or(HISTORY_DEFAULT)).await {
                    Ok(messages) => Reply::Recent { room, messages },
                    Err(e @ ArchiveError::Off) => error(&e),
                    Err(e) => Reply::Error {
                        message: format!("cannot read the archive: {e}"),
                    },
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
            Input::Stats => match client.stats().await {
                Ok(stats) => Reply::Stats(stats),
                Err(e) => error(&e),
            },
            Input::Name(nick) => match client.set_nick(nick).await {
                Ok(nick) => {
                    save_nick(&self.data_dir, &nick);
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
                            rtt_ms: u64::try_from(r.round_trip.as_millis()).unwrap_or(u64::MAX),
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
            Input::Share { peer, path } => {
                let room = match peer {
                    Some(_) => None,
                    None => match self.current.clone() {
                        Some(room) => Some(room),
                        None => {
                            return Some(Reply::Error {
                                message:
                                    "you are in no room; /join one first, or /share @PEER PATH"
                                        .into(),
                            })
                        }
                    },
                };
                let files = self.files.clone();
                in_background(background, share(files, client, room, peer, path));
                return None;
            }
            Input::Files => Reply::Files {
                files: self.files.list(),
            },
            Input::Get { id, dir } => {
                let dir = dir.unwrap_or_else(|| self.download_dir.clone());
                match self.files.get(&id, dir).await {
                    Ok(reply) => reply,
                    Err(message) => Reply::Error { message },
                }
            }
            Input::Help => Reply::Help {
                text: HELP.to_owned(),
            },
            // Handled by the caller, which owns the printer and the loop.
            Input::Verbose | Input::Quit => return None,
        })
    }
}

/// Hashes a file, then offers it in `room` or to `peer`.
async fn share(
    files: Files,
    client: Client,
    room: Option<String>,
    peer: Option<libp2p::PeerId>,
    path: PathBuf,
) -> Reply {
    let offer = match files.share(path).await {
        Ok(offer) => offer,
        Err(message) => return Reply::Error { message },
    };
    let (id, name, size) = (offer.id.clone(), offer.name.clone(), offer.size);
    let sent = match (peer, &room) {
        (Some(peer), _) => client
            .dm_file(peer, offer)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        (None, Some(room)) => client
            .offer_file(room.clone(), offer)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        (None, None) => Err("nowhere to offer it".to_owned()),
    };
    match sent {
        Ok(()) => Reply::Shared {
            id,
            name,
            size,
            room,
            peer,
        },
        Err(e) => Reply::Error {
            message: format!("{name} is ready to serve, but the offer did not go out: {e}"),
        },
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

/// The nickname: the flag, else the one saved last time, else a new random one; saved.
pub fn choose_nick(flag: Option<&str>, data_dir: &Path) -> Nick {
    let saved = std::fs::read_to_string(data_dir.join(NICK_FILE)).ok();
    let nick = Nick::first_usable([flag, saved.as_deref()]);
    save_nick(data_dir, nick.as_str());
    nick
}

fn save_nick(data_dir: &Path, nick: &str) {
    if let Err(e) = std::fs::write(data_dir.join(NICK_FILE), nick) {
        tracing::warn!(error = %e, "could not save the nickname");
    }
}
