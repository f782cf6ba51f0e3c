//! The wire contract's names and limits: every protocol id, topic rule and size cap that two
//! p2p-chat peers must agree on, defined once.
//!
//! Rooms are gossipsub topics whose topic string is the room name itself (`lobby` → topic
//! `lobby`, an [`IdentTopic`]). Payloads on a room topic are [`crate::envelope::Envelope`]s
//! (or plain UTF-8 from other libp2p chats); direct messages travel over [`DM_PROTOCOL`].

use std::time::Duration;

use libp2p::{gossipsub::IdentTopic, StreamProtocol};

/// Direct messages: request-response, one JSON [`crate::envelope::Envelope`] of kind `dm` per
/// request, answered by a JSON [`crate::dm::DmAck`].
pub const DM_PROTOCOL: StreamProtocol = StreamProtocol::new("/p2p-chat/dm/1.0.0");

/// The store protocol ([`crate::store`]): room history, receipts and the mailbox, served by
/// relays. The id says `history`, the protocol's first part, for peers that shipped with it.
pub const STORE_PROTOCOL: StreamProtocol = StreamProtocol::new("/p2p-chat/history/1.0.0");

/// Identify protocol version string every p2p-chat peer announces.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/p2p-chat/1.0.0";

/// Prefix of the identify agent string: `p2p-chat/<version>`.
pub const AGENT_PREFIX: &str = "p2p-chat/";

/// The identify agent string of this build.
pub fn agent_version() -> String {
    format!("{AGENT_PREFIX}{}", env!("CARGO_PKG_VERSION"))
}

/// The room a peer joins when it is told nothing else.
pub const DEFAULT_ROOM: &str = "lobby";

/// Largest accepted room name, in bytes.
pub const MAX_ROOM_NAME_BYTES: usize = 64;

/// Largest accepted nickname, in characters (longer ones are cut, never rejected).
pub const MAX_NICK_CHARS: usize = 32;

/// Largest message body, in bytes of UTF-8.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Largest encoded room or DM payload, in bytes; anything bigger is dropped before decoding.
pub const MAX_PAYLOAD_BYTES: usize = 20 * 1024;

/// Largest gossipsub message (a payload plus signature, topic and framing) a relay takes.
pub const MAX_TRANSMIT_BYTES: usize = 64 * 1024;

/// Largest gossipsub RPC read or sent, subscriptions and control included. A relay greets each
/// new neighbour with all its subscriptions in one RPC: with gossipsub's defaults (64 KiB, and
/// 16 KiB of subscriptions and control) a newcomer dropped the greeting of a relay following a
/// few hundred rooms, and could not use a room the relay already followed. 256 KiB holds the
/// greeting of about 3,500 rooms with 64-byte names, 14,000 with 12-byte ones. Messages stay
/// within [`MAX_TRANSMIT_BYTES`]: a relay refuses bigger ones (`hub::Hub::admit`).
pub const MAX_RPC_BYTES: usize = 256 * 1024;

/// Largest DM request or acknowledgement accepted from the network, in bytes.
pub const MAX_DM_FRAME_BYTES: u64 = MAX_PAYLOAD_BYTES as u64;

/// How long a direct message waits for its acknowledgement before it is reported failed.
pub const DM_TIMEOUT: Duration = Duration::from_secs(20);

/// How long reaching a peer (for file streams) may take before it is reported failed.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(20);

/// Ping period; a connection whose ping fails is closed (dead peers must not linger).
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

/// How long a ping may wait for its answer.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection with no protocol in use is closed after this long.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a member re-announces itself to each room it is in.
pub const PRESENCE_INTERVAL: Duration = Duration::from_secs(30);

/// A member not heard from for this long is dropped from the member list.
pub const PRESENCE_EXPIRY: Duration = Duration::from_secs(95);

/// Most rooms a relay hubs at once (each is a topic a remote peer asked for).
pub const MAX_HUB_ROOMS: usize = 10_000;

/// Most rooms a relay follows for one peer (gossipsub subscriptions it accepts from it).
pub const MAX_ROOMS_PER_PEER: usize = 100;

/// Most members remembered per room.
pub const MAX_MEMBERS_PER_ROOM: usize = 10_000;

/// Messages remembered per peer to drop duplicates by envelope id.
pub const DEDUP_CAPACITY: usize = 16_384;

/// Messages held per room while no peer is subscribed yet (sent once one is).
pub const MAX_QUEUED_PER_ROOM: usize = 100;

/// Addresses remembered per remote peer (identify, mDNS and the DHT can all report some).
pub const MAX_ADDRS_PER_PEER: usize = 16;

/// Error for a room name that cannot be a room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomNameError {
    /// The name was empty (or only spaces).
    #[error("a room name cannot be empty")]
    Empty,
    /// The name was longer than [`MAX_ROOM_NAME_BYTES`].
    #[error("room name is {0} bytes; the limit is {MAX_ROOM_NAME_BYTES}")]
    TooLong(usize),
    /// The name had whitespace or control characters.
    #[error(
        "room name {0:?} has spaces or control characters; use letters, digits, '-', '_' or '.'"
    )]
    BadCharacter(String),
}

/// Checks a room name from a user or the network: 1 to [`MAX_ROOM_NAME_BYTES`] bytes, no
/// whitespace or control characters. Returns the name unchanged, since it *is* the topic.
pub fn validate_room(name: &str) -> Result<&str, RoomNameError> {
    if name.trim().is_empty() {
        return Err(RoomNameError::Empty);
    }
    if name.len() > MAX_ROOM_NAME_BYTES {
        return Err(RoomNameError::TooLong(name.len()));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RoomNameError::BadCharacter(name.to_owned()));
    }
    Ok(name)
}

/// The gossipsub topic of a room: the room name itself.
pub fn room_topic(room: &str) -> IdentTopic {
    IdentTopic::new(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_checked() {
        assert_eq!(validate_room("lobby"), Ok("lobby"));
        assert_eq!(validate_room(""), Err(RoomNameError::Empty));
        assert!(matches!(
            validate_room("a b"),
            Err(RoomNameError::BadCharacter(_))
        ));
        assert!(matches!(
            validate_room(&"x".repeat(65)),
            Err(RoomNameError::TooLong(65))
        ));
    }

    #[test]
    fn topic_string_is_the_room_name() {
        assert_eq!(room_topic("lobby").hash().as_str(), "lobby");
    }
}
