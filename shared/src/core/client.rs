//! The handle a user interface holds: [`Client`], a cloneable sender of [`Command`]s to the event
//! loop. Every command carries a `oneshot` for its reply, so the UI awaits exactly what it asked.

use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::SinkExt;
use libp2p::{Multiaddr, PeerId};

use super::error::{
    AddrError, ConnectError, DmError, FindError, JoinError, NickError, PingError, RoomError,
    SendError, Stopped,
};
#[cfg(not(target_arch = "wasm32"))]
use super::event::Stats;
use super::event::{DmReceipt, Info, Member, PeersInfo, RoomInfo, Sent};
use crate::files::FileOffer;
use crate::text::now_unix_ms;
#[cfg(not(target_arch = "wasm32"))]
use {super::error::ReachError, crate::files::Hash};

/// Reply channel of a command: its result, or why it failed.
pub type Reply<T, E = Stopped> = oneshot::Sender<Result<T, E>>;

/// A request from a user interface to the chat core.
#[derive(Debug)]
pub enum Command {
    /// Join a room: subscribe to its topic, announce ourselves, and catch up from a store on
    /// what we missed since `mark` (the newest message the UI already holds).
    Join {
        /// The room.
        room: String,
        /// What the user interface already holds of it.
        mark: Option<HistoryMark>,
        /// Joined, or why not.
        reply: Reply<(), JoinError>,
    },
    /// Leave a room: announce it and unsubscribe.
    Leave {
        /// The room.
        room: String,
        /// Left, or why not.
        reply: Reply<(), RoomError>,
    },
    /// Send a text message, or a file offer, to a room we are in.
    Send {
        /// The room.
        room: String,
        /// The text (ignored with a file: the body then names the file).
        text: String,
        /// A file on offer.
        file: Option<FileOffer>,
        /// The message as sent, or why not.
        reply: Reply<Sent, SendError>,
    },
    /// Change our nickname (announced to every room we are in).
    SetNick {
        /// The new nickname, as typed.
        nick: String,
        /// The nickname as cleaned, or why it was refused.
        reply: Reply<String, NickError>,
    },
    /// Send a direct message; the reply comes with the acknowledgement or the failure.
    Dm {
        /// The recipient.
        peer: PeerId,
        /// The text (ignored with a file: the body then names the file).
        text: String,
        /// A file on offer.
        file: Option<FileOffer>,
        /// Delivered (or kept by the relay), or why not.
        reply: Reply<DmReceipt, DmError>,
    },
    /// Dial an address; the reply comes once connected or failed.
    Connect {
        /// The address.
        addr: Multiaddr,
        /// The peer reached, or why not.
        reply: Reply<PeerId, ConnectError>,
    },
    /// Listen on an address (a relay circuit address makes a reservation).
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Listening, or why not.
        reply: Reply<(), AddrError>,
    },
    /// Use a relay: reserve a `/p2p-circuit` slot on it and keep it reserved, reconnecting.
    /// Its addresses are tried in order.
    UseRelay {
        /// The relay's addresses, best first, each ending in `/p2p/<relay id>`.
        addrs: Vec<Multiaddr>,
        /// Taken, or why not.
        reply: Reply<(), AddrError>,
    },
    /// Add a Kademlia bootstrap node and dial it.
    Bootstrap {
        /// Its address, ending in `/p2p/<peer id>`.
        addr: Multiaddr,
        /// Added, or why not.
        reply: Reply<(), AddrError>,
    },
    /// Look a peer up in the DHT.
    Find {
        /// The peer.
        peer: PeerId,
        /// Its addresses, or why not.
        reply: Reply<Vec<Multiaddr>, FindError>,
    },
    /// Connect to a peer (directly and through relay circuits at once) unless connected: file
    /// streams then open on that connection.
    #[cfg(not(target_arch = "wasm32"))]
    Reach {
        /// The peer.
        peer: PeerId,
        /// Connected, or why not.
        reply: Reply<(), ReachError>,
    },
    /// Announce in the DHT that we have a file (nothing where there is no DHT).
    #[cfg(not(target_arch = "wasm32"))]
    Provide {
        /// The file's id.
        file: Hash,
    },
    /// Look up in the DHT who has a file.
    #[cfg(not(target_arch = "wasm32"))]
    Providers {
        /// The file's id.
        file: Hash,
        /// The providers found (maybe none), or why there is no lookup.
        reply: Reply<Vec<PeerId>, FindError>,
    },
    /// Send a request of the store protocol to `peer` (a relay of the network, for a relay's
    /// reconciliation of history) and hand back its answer (an error answer when it failed).
    #[cfg(not(target_arch = "wasm32"))]
    AskStore {
        /// The store.
        peer: PeerId,
        /// The request.
        request: crate::store::StoreRequest,
        /// Its answer.
        reply: Reply<crate::store::StoreResponse>,
    },
    /// The relays named by the operator connected now, each with the addresses it told us
    /// (identify): where a page of ours can go when we are down.
    #[cfg(not(target_arch = "wasm32"))]
    RelayPeerAddrs {
        /// Relays and their addresses.
        reply: Reply<Vec<(PeerId, Vec<Multiaddr>)>>,
    },
    /// Tell `peer`, when it is connected, that mail waits for it here (a relay that took mail
    /// for it from another relay): whether it was told.
    #[cfg(not(target_arch = "wasm32"))]
    NotifyMail {
        /// The recipient.
        peer: PeerId,
        /// Whether it was connected and told.
        reply: Reply<bool>,
    },
    /// The relays named by the operator connected now (those whose history a relay takes), and
    /// the rooms the hub follows (nothing on a chat peer).
    #[cfg(not(target_arch = "wasm32"))]
    Federation {
        /// Relays, and rooms.
        reply: Reply<(Vec<PeerId>, Vec<String>)>,
    },
    /// Round-trip time to a peer (dials it if needed).
    Ping {
        /// The peer.
        peer: PeerId,
        /// The round trip, or why not.
        reply: Reply<Duration, PingError>,
    },
    /// Our identity, addresses and NAT status.
    Info {
        /// The answer.
        reply: Reply<Info>,
    },
    /// Our connection, room and traffic figures.
    #[cfg(not(target_arch = "wasm32"))]
    Stats {
        /// The answer.
        reply: Reply<Stats>,
    },
    /// The rooms we are in.
    Rooms {
        /// The answer.
        reply: Reply<Vec<RoomInfo>>,
    },
    /// Members of a room, as the core knows them.
    Members {
        /// The room.
        room: String,
        /// The members (ourselves excluded), or why not.
        reply: Reply<Vec<Member>, RoomError>,
    },
    /// Members of a room (every room when `None`) and the peers we are connected to.
    Peers {
        /// The room.
        room: Option<String>,
        /// The answer, or why not.
        reply: Reply<PeersInfo, RoomError>,
    },
    /// Say goodbye in every room and stop the loop.
    Shutdown {
        /// Answered once the loop stopped.
        reply: Reply<()>,
    },
}

/// What a user interface already holds of a room, so that catch-up asks only for the rest and
/// shows nothing twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryMark {
    /// Where the newest message held sits in the room's stored history, unix ms
    /// ([`crate::core::ChatMessage::filed_at`]).
    pub newest_ts: u64,
    /// (author, id) of the messages held from the last few minutes before `newest_ts`.
    pub recent: Vec<(PeerId, String)>,
}

impl HistoryMark {
    /// The mark for what a user interface holds of a room, given as (author, id, filed at)
    /// newest first; reads only as far back as the catch-up overlap reaches. Entries filed in
    /// the future (kept by an older version under their sender's clock) are passed over: they
    /// would move the mark past what was missed.
    pub fn from_newest_first(
        held: impl IntoIterator<Item = (PeerId, String, u64)>,
    ) -> Option<Self> {
        let future = now_unix_ms().saturating_add(crate::store::MAX_CLOCK_SKEW_MS);
        let mut held = held
            .into_iter()
            .skip_while(|(_, _, ts)| *ts > future)
            .peekable();
        let newest_ts = held.peek()?.2;
        let recent = held
            .take_while(|(_, _, ts)| ts.saturating_add(super::CATCH_UP_OVERLAP_MS) >= newest_ts)
            .map(|(author, id, _)| (author, id))
            .collect();
        Some(Self { newest_ts, recent })
    }
}

/// Cloneable handle to a running chat core.
#[derive(Clone)]
pub struct Client {
    sender: mpsc::Sender<Command>,
    #[cfg(not(target_arch = "wasm32"))]
    streams: Option<libp2p_stream::Control>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

macro_rules! request {
    ($self:ident, $variant:ident { $($field:ident),* }) => {{
        let (reply, rx) = oneshot::channel();
        $self.send(Command::$variant { $($field,)* reply }).await?;
        rx.await.map_err(|_| Stopped)?
    }};
}

impl Client {
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn new(
        sender: mpsc::Sender<Command>,
        streams: Option<libp2p_stream::Control>,
    ) -> Self {
        Self { sender, streams }
    }

    #[cfg(target_arch = "wasm32")]
    pub(crate) fn new(sender: mpsc::Sender<Command>) -> Self {
        Self { sender }
    }

    async fn send(&self, command: Command) -> Result<(), Stopped> {
        self.sender.clone().send(command).await.map_err(|_| Stopped)
    }

    /// Joins a room (catching up on its recent history).
    pub async fn join(&self, room: impl Into<String>) -> Result<(), JoinError> {
        self.join_after(room, None).await
    }

    /// Joins a room, catching up on what came after `mark`.
    pub async fn join_after(
        &self,
        room: impl Into<String>,
        mark: Option<HistoryMark>,
    ) -> Result<(), JoinError> {
        let room = room.into();
        request!(self, Join { room, mark })
    }

    /// Leaves a room.
    pub async fn leave(&self, room: impl Into<String>) -> Result<(), RoomError> {
        let room = room.into();
        request!(self, Leave { room })
    }

    /// Sends a message to a room.
    pub async fn send_message(
        &self,
        room: impl Into<String>,
        text: impl Into<String>,
    ) -> Result<Sent, SendError> {
        let (room, text) = (room.into(), text.into());
        let file = None;
        request!(self, Send { room, text, file })
    }

    /// Offers a file in a room.
    pub async fn offer_file(
        &self,
        room: impl Into<String>,
        offer: FileOffer,
    ) -> Result<Sent, SendError> {
        let (room, text, file) = (room.into(), String::new(), Some(offer));
        request!(self, Send { room, text, file })
    }

    /// Sets our nickname; returns it as cleaned.
    pub async fn set_nick(&self, nick: impl Into<String>) -> Result<String, NickError> {
        let nick = nick.into();
        request!(self, SetNick { nick })
    }

    /// Sends a direct message and waits for its acknowledgement.
    pub async fn dm(&self, peer: PeerId, text: impl Into<String>) -> Result<DmReceipt, DmError> {
        let (text, file) = (text.into(), None);
        request!(self, Dm { peer, text, file })
    }

    /// Offers a file in a direct message and waits for its acknowledgement.
    pub async fn dm_file(&self, peer: PeerId, offer: FileOffer) -> Result<DmReceipt, DmError> {
        let (text, file) = (String::new(), Some(offer));
        request!(self, Dm { peer, text, file })
    }

    /// Connects to `peer` unless connected (directly, or through a relay circuit).
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn reach(&self, peer: PeerId) -> Result<(), ReachError> {
        request!(self, Reach { peer })
    }

    /// Announces that we have `file` (in the DHT, where there is one).
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn provide(&self, file: Hash) -> Result<(), Stopped> {
        self.send(Command::Provide { file }).await
    }

    /// Who announced `file`.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn providers(&self, file: Hash) -> Result<Vec<PeerId>, FindError> {
        request!(self, Providers { file })
    }

    /// Sends a store request to `peer` and waits for its answer (a relay reconciling history
    /// with another: [`Command::AskStore`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn ask_store(
        &self,
        peer: PeerId,
        request: crate::store::StoreRequest,
    ) -> Result<crate::store::StoreResponse, Stopped> {
        request!(self, AskStore { peer, request })
    }

    /// The named relays connected now and their addresses ([`Command::RelayPeerAddrs`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn relay_peer_addrs(&self) -> Result<Vec<(PeerId, Vec<Multiaddr>)>, Stopped> {
        request!(self, RelayPeerAddrs {})
    }

    /// Tells `peer`, when connected, that mail waits for it here ([`Command::NotifyMail`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn notify_mail(&self, peer: PeerId) -> Result<bool, Stopped> {
        request!(self, NotifyMail { peer })
    }

    /// The named relays connected now, and the rooms the hub follows ([`Command::Federation`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn federation(&self) -> Result<(Vec<PeerId>, Vec<String>), Stopped> {
        request!(self, Federation {})
    }

    /// A handle for the file protocol's streams: open them to peers, accept them
    /// ([`crate::files`]); `None` on a node without them.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn streams(&self) -> Option<libp2p_stream::Control> {
        self.streams.clone()
    }

    /// Dials an address and waits for the connection.
    pub async fn connect(&self, addr: Multiaddr) -> Result<PeerId, ConnectError> {
        request!(self, Connect { addr })
    }

    /// Starts listening on an address.
    pub async fn listen(&self, addr: Multiaddr) -> Result<(), AddrError> {
        request!(self, Listen { addr })
    }

    /// Keeps a reservation on a relay, reached at the first of `addrs` that works (each must
    /// end in `/p2p/<relay id>`).
    pub async fn use_relay(&self, addrs: Vec<Multiaddr>) -> Result<(), AddrError> {
        request!(self, UseRelay { addrs })
    }

    /// Adds a DHT bootstrap node (its address must end in `/p2p/<peer id>`).
    pub async fn bootstrap(&self, addr: Multiaddr) -> Result<(), AddrError> {
        request!(self, Bootstrap { addr })
    }

    /// Finds a peer's addresses in the DHT.
    pub async fn find(&self, peer: PeerId) -> Result<Vec<Multiaddr>, FindError> {
        request!(self, Find { peer })
    }

    /// Measures the round trip to a peer.
    pub async fn ping(&self, peer: PeerId) -> Result<Duration, PingError> {
        request!(self, Ping { peer })
    }

    /// Our identity, addresses and NAT status.
    pub async fn info(&self) -> Result<Info, Stopped> {
        request!(self, Info {})
    }

    /// Our connection, room and traffic figures.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn stats(&self) -> Result<Stats, Stopped> {
        request!(self, Stats {})
    }

    /// The rooms we are in.
    pub async fn rooms(&self) -> Result<Vec<RoomInfo>, Stopped> {
        request!(self, Rooms {})
    }

    /// Members of `room`, by nickname (ourselves excluded).
    pub async fn members(&self, room: impl Into<String>) -> Result<Vec<Member>, RoomError> {
        let room = room.into();
        request!(self, Members { room })
    }

    /// Members of `room` (all rooms when `None`) and connected peers.
    pub async fn peers(&self, room: Option<String>) -> Result<PeersInfo, RoomError> {
        request!(self, Peers { room })
    }

    /// Leaves every room with a goodbye and stops the event loop.
    pub async fn shutdown(&self) -> Result<(), Stopped> {
        request!(self, Shutdown {})
    }
}
