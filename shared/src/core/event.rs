//! What the chat core tells a user interface: the [`Event`] stream, and the reply types of
//! commands. Everything here is plain data, serialisable for the CLI's JSON mode.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::Serialize;

/// Where a room message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A p2p-chat envelope.
    Envelope,
    /// Plain text from another libp2p chat (its nickname is the short peer id).
    Text,
}

/// A message in a room, as shown to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// The room.
    pub room: String,
    /// Unique message id (the envelope's, or the gossipsub id of a plain-text message).
    pub id: String,
    /// The author: the gossipsub message's signed source.
    pub from: PeerId,
    /// The author's display name.
    pub nick: String,
    /// The text.
    pub text: String,
    /// The author's clock, unix ms (0 for plain text).
    pub sent_at: u64,
    /// Where the message sits in its room's stored history, unix ms: the time a store filed it
    /// under, or, for a live message, the time a store would ([`crate::store::store_time`]: the
    /// author's clock unless it is more than a minute off ours). Front ends keep messages by it
    /// and make their [`crate::core::HistoryMark`] of it, so that no author's clock can move
    /// where the next catch-up starts.
    pub filed_at: u64,
    /// Envelope or plain text.
    pub origin: Origin,
    /// A file on offer, to fetch with [`crate::files`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<crate::files::FileOffer>,
}

impl ChatMessage {
    /// What identifies the message: its author and its id.
    pub fn key(&self) -> MessageKey {
        MessageKey {
            author: self.from,
            id: self.id.clone(),
        }
    }
}

/// What identifies a message everywhere: its author and its id. Senders choose their ids, so an
/// id alone could be reused by someone else to hide a message; the core shows a message once per
/// key, and front ends keep it once per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageKey {
    /// The author: the signed source of a room message, the sender of a DM.
    pub author: PeerId,
    /// The id its author gave it.
    pub id: String,
}

/// A direct message received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectMessage {
    /// Message id.
    pub id: String,
    /// The sender: the authenticated remote peer.
    pub from: PeerId,
    /// The sender's display name.
    pub nick: String,
    /// The text.
    pub text: String,
    /// The sender's clock, unix ms.
    pub sent_at: u64,
    /// Kept by a relay while we were offline, delivered from its mailbox.
    pub stored: bool,
    /// A file on offer, to fetch with [`crate::files`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<crate::files::FileOffer>,
}

/// Why a member left a room's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// It said goodbye.
    Left,
    /// It was not heard from for [`crate::protocol::PRESENCE_EXPIRY`].
    TimedOut,
    /// Its relay saw its connection close (a closed tab, a lost network).
    Disconnected,
}

impl LeftReason {
    /// What to add to "… left": nothing, " (not heard from)" or " (disconnected)".
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Left => "",
            Self::TimedOut => " (not heard from)",
            Self::Disconnected => " (disconnected)",
        }
    }
}

/// Something the user interface may show. Handed out through a bounded queue: when the UI
/// falls behind, the core never waits; it drops and then reports [`Event::Lagged`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A message arrived in a room.
    Message(ChatMessage),
    /// A direct message arrived (and was acknowledged).
    DirectMessage(DirectMessage),
    /// Messages of a room we missed, from a store, oldest first; already deduplicated against
    /// everything shown before. `done` on the last batch of a catch-up.
    History {
        /// The room.
        room: String,
        /// The messages not shown before, oldest first.
        messages: Vec<ChatMessage>,
        /// The catch-up is over.
        done: bool,
    },
    /// A catch-up could not finish (the store refused or did not answer); what came before it
    /// was shown, and it is tried again after [`crate::core::CATCH_UP_RETRY`] or when a store
    /// connects.
    HistoryFailed {
        /// The room.
        room: String,
        /// Why, as the store or the network said.
        reason: String,
    },
    /// A message we sent is durably stored by our relay.
    Stored {
        /// Its room.
        room: String,
        /// Its id.
        id: String,
    },
    /// A message we sent was published but the relay did not confirm storing it.
    NotStored {
        /// Its room.
        room: String,
        /// Its id.
        id: String,
        /// Why, as the relay or the network said.
        reason: String,
    },
    /// A direct message the relay kept for an offline recipient was fetched by it.
    DmDelivered {
        /// The message id.
        id: String,
        /// The recipient.
        peer: PeerId,
    },
    /// A member appeared in a room.
    MemberJoined {
        /// The room.
        room: String,
        /// The member.
        peer: PeerId,
        /// Its display name.
        nick: String,
    },
    /// A member left a room (or timed out).
    MemberLeft {
        /// The room.
        room: String,
        /// The member.
        peer: PeerId,
        /// Its display name.
        nick: String,
        /// How we know.
        reason: LeftReason,
    },
    /// A member changed its nickname.
    NickChanged {
        /// The room.
        room: String,
        /// The member.
        peer: PeerId,
        /// Its display name before.
        old: String,
        /// Its display name now.
        new: String,
    },
    /// A room can now carry messages: a neighbour (usually the relay) is subscribed.
    RoomReady {
        /// The room.
        room: String,
    },
    /// A room can no longer carry messages (its last subscribed neighbour went away); what is
    /// sent now is queued until [`Event::RoomReady`].
    RoomNotReady {
        /// The room.
        room: String,
    },
    /// Messages queued while a room was not ready have been published.
    QueuedSent {
        /// The room.
        room: String,
        /// The messages' ids.
        ids: Vec<String>,
    },
    /// We listen on a new address.
    Listening {
        /// The address.
        addr: Multiaddr,
    },
    /// We stopped listening on an address.
    ListenerClosed {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// An address of ours was confirmed reachable from outside.
    ExternalAddr {
        /// The address.
        addr: Multiaddr,
    },
    /// A connection to a peer opened (the first one to it).
    Connected {
        /// The peer.
        peer: PeerId,
        /// Its address on this connection.
        addr: Multiaddr,
        /// Over a `/p2p-circuit`.
        relayed: bool,
    },
    /// The last connection to a peer closed.
    Disconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A dial failed.
    DialFailed {
        /// The peer dialled, when known.
        peer: Option<PeerId>,
        /// Why, address by address.
        error: String,
    },
    /// A relay accepted our reservation: we are reachable through it.
    ReservationAccepted {
        /// The relay.
        relay: PeerId,
        /// Our address through it.
        addr: Multiaddr,
    },
    /// A hole punch (DCUtR) finished.
    HolePunch {
        /// The remote peer.
        peer: PeerId,
        /// A direct connection replaced the relayed one.
        ok: bool,
        /// Why not.
        error: Option<String>,
    },
    /// Our NAT status changed (AutoNAT).
    NatStatus {
        /// `public <addr>`, `private` or `unknown`.
        status: String,
    },
    /// Peers found on the local network (mDNS).
    Discovered {
        /// The peers.
        peers: Vec<PeerId>,
    },
    /// A relay we use went away; retrying after `retry_in_ms`.
    RelayLost {
        /// The relay's address.
        relay: Multiaddr,
        /// When the core tries again, in milliseconds.
        retry_in_ms: u64,
        /// Which attempt that will be: 1 just after the relay was lost, more while it cannot be
        /// reached.
        attempt: u32,
    },
    /// The UI fell behind and this many events were dropped.
    Lagged {
        /// Events dropped.
        missed: u64,
    },
}

/// A message handed to [`super::Client::send_message`], as the core sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sent {
    /// The message as published: our peer id and nickname, its id, and the time the core
    /// stamped on it (the one every member shows and the store files it under).
    pub message: ChatMessage,
    /// No neighbour is subscribed yet: it goes out as soon as one is ([`Event::QueuedSent`]).
    pub queued: bool,
}

impl Sent {
    /// The message id.
    pub fn id(&self) -> &str {
        &self.message.id
    }
}

/// The acknowledgement of a direct message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DmReceipt {
    /// Message id.
    pub id: String,
    /// The recipient.
    pub peer: PeerId,
    /// Whether the connection it went over was a relay circuit.
    pub relayed: bool,
    /// Time from sending to the acknowledgement.
    pub round_trip: Duration,
    /// The recipient was unreachable: the message is sealed to it and kept by our relay until
    /// it returns ([`Event::DmDelivered`] follows then).
    pub stored: bool,
}

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The room.
    pub room: String,
    /// The member.
    pub peer: PeerId,
    /// Its display name.
    pub nick: String,
}

/// A peer we have a connection to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectedPeer {
    /// The peer.
    pub peer: PeerId,
    /// The remote address of each connection.
    pub addrs: Vec<Multiaddr>,
    /// Whether one of them is direct (not through a relay circuit): after a hole punch, say.
    pub direct: bool,
    /// Its identify agent string, once known.
    pub agent: Option<String>,
}

/// Reply to [`super::Command::Peers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeersInfo {
    /// Room members (ourselves excluded).
    pub members: Vec<Member>,
    /// Peers we are connected to.
    pub connected: Vec<ConnectedPeer>,
}

/// A room we are in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomInfo {
    /// Room name.
    pub room: String,
    /// Members besides us.
    pub members: usize,
    /// Whether messages can be published right now.
    pub ready: bool,
}

/// Reply to [`super::Command::Stats`]: this peer's connections, rooms and traffic (native
/// peers: the page has no use for it, and every byte of the browser build counts).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Seconds since the chat core started.
    pub uptime_secs: u64,
    /// Peers with an open connection.
    pub connected_peers: usize,
    /// Open connections by transport ([`crate::addr::TRANSPORTS`]), those with any.
    pub connections: std::collections::BTreeMap<&'static str, usize>,
    /// Our rooms.
    pub rooms: Vec<RoomInfo>,
    /// Room messages we sent.
    pub messages_sent: u64,
    /// Room messages received live (what a catch-up brings is not counted).
    pub messages_received: u64,
    /// Direct messages we asked to send (whatever became of them).
    pub dms_sent: u64,
    /// Direct messages we received (directly, or kept for us by the relay).
    pub dms_received: u64,
}

/// Reply to [`super::Command::Info`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Info {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Our nickname.
    pub nick: String,
    /// Addresses we listen on.
    pub listen_addrs: Vec<Multiaddr>,
    /// Addresses confirmed reachable from outside.
    pub external_addrs: Vec<Multiaddr>,
    /// AutoNAT's verdict: `unknown`, `public <addr>` or `private`.
    pub nat_status: String,
    /// Number of connected peers.
    pub connected_peers: usize,
    /// Room payloads dropped because they did not decode.
    pub dropped_payloads: u64,
}
