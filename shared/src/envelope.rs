//! The chat envelope: the bytes of every room message and direct message.
//!
//! # Bytes
//!
//! One UTF-8 JSON object, at most [`MAX_PAYLOAD_BYTES`]:
//!
//! ```json
//! {"v":1,"type":"message","id":"9f0c…(32 hex)","nick":"alice","ts":1763769600000,"body":"hi"}
//! ```
//!
//! | field | meaning |
//! | --- | --- |
//! | `v` | envelope version, `1`. A decoder refuses other versions (counted, not shown). |
//! | `type` | `message`, `join`, `leave`, `presence` (periodic "still here", and the answer to a join), `gone` (from a relay: the peer in `body` disconnected; believed only from one's own relay), `dm`, or `mail` (from a relay over the DM protocol: mail waits for you there). Unknown types are dropped, so new ones can be added. |
//! | `id` | unique message id, 1–64 printable ASCII characters (we send 32 hex digits of randomness). |
//! | `nick` | the sender's display name; never an identity. |
//! | `ts` | sender's clock, unix milliseconds. |
//! | `body` | the text, at most [`MAX_BODY_BYTES`]; required for `message` and `dm`. |
//! | `file` | optional, on `message` and `dm`: a file on offer ([`crate::files`]); the body then names it for peers that show only text (the browser build, for now, among them). An offer that does not validate makes the envelope malformed. |
//!
//! Unknown fields are ignored. The author is never in the envelope: on a room it is the
//! gossipsub message's signed `source`, on a DM the authenticated remote peer.
//!
//! # Other libp2p chats
//!
//! A room payload that is UTF-8 but not a JSON object with a `v` field is plain text from
//! another libp2p chat (libp2p's universal-connectivity peers send raw UTF-8):
//! [`decode_room_payload`] returns it as [`Payload::Text`]. Its id is [`text_message_id`]: the
//! author and the gossipsub sequence number, `<peer id>-<seqno>`.

use serde::{Deserialize, Serialize};

use crate::files::FileOffer;
#[cfg(not(target_arch = "wasm32"))]
use crate::files::{RawOffer, MAX_FILE_BYTES};
use crate::protocol::{MAX_BODY_BYTES, MAX_PAYLOAD_BYTES};
use crate::text::{clean_nick, now_unix_ms};

/// The envelope version this build writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

/// Longest accepted message id.
pub const MAX_ID_CHARS: usize = 64;

/// What an envelope says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A chat message to a room.
    Message,
    /// The sender joined the room.
    Join,
    /// The sender left the room.
    Leave,
    /// The sender is (still) in the room: periodic, and in answer to a join.
    Presence,
    /// A relay's announcement that the peer in the body disconnected.
    Gone,
    /// A direct message (only over the DM protocol).
    Dm,
    /// A relay's word that mail waits for the peer there (only over the DM protocol, believed
    /// only from one's own relay): the peer fetches its mailbox at once.
    Mail,
}

impl Kind {
    /// The `type` string on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Join => "join",
            Self::Leave => "leave",
            Self::Presence => "presence",
            Self::Gone => "gone",
            Self::Dm => "dm",
            Self::Mail => "mail",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Message,
            Self::Join,
            Self::Leave,
            Self::Presence,
            Self::Gone,
            Self::Dm,
            Self::Mail,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A decoded, validated envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// Always [`ENVELOPE_VERSION`] once decoded.
    pub v: u32,
    /// What the envelope says.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Unique message id (dedup key).
    pub id: String,
    /// Sender's display name, cleaned.
    pub nick: String,
    /// Sender's clock, unix ms.
    pub ts: u64,
    /// Text; empty for join / leave / presence.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// A file on offer (messages and DMs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileOffer>,
}

/// What a room payload turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A p2p-chat envelope.
    Envelope(Envelope),
    /// Plain UTF-8 text from another libp2p chat.
    Text(String),
}

/// Why a payload was dropped.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Bigger than [`MAX_PAYLOAD_BYTES`].
    #[error("payload is {0} bytes; the limit is {MAX_PAYLOAD_BYTES}")]
    TooLarge(usize),
    /// Neither an envelope nor UTF-8 text.
    #[error("payload is not UTF-8")]
    NotUtf8,
    /// A JSON object with a `v` field that is not a valid envelope.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// An envelope of a version this build does not speak.
    #[error("envelope version {0} is not supported (this build speaks {ENVELOPE_VERSION})")]
    UnsupportedVersion(u32),
    /// An envelope type this build does not know (a newer peer's).
    #[error("unknown envelope type {0:?}")]
    UnknownKind(String),
}

/// Why an outgoing envelope could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The text is longer than [`MAX_BODY_BYTES`].
    #[error("message is {0} bytes; the limit is {MAX_BODY_BYTES}")]
    BodyTooLarge(usize),
    /// Nothing to send.
    #[error("message is empty")]
    EmptyBody,
    /// The text fits, but its JSON encoding (escapes included) is over [`MAX_PAYLOAD_BYTES`].
    #[error("message encodes to {0} bytes; the limit is {MAX_PAYLOAD_BYTES} (control characters count six times)")]
    EncodedTooLarge(usize),
}

/// An envelope as it arrives, before validation: every field optional, so that a missing one is
/// our error to report. The DM protocol's codec carries this type; call [`RawEnvelope::validate`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawEnvelope {
    v: Option<u32>,
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
    nick: Option<String>,
    ts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    /// Empty when there is none. The browser build fetches no files yet: it reads no offers
    /// (an offer's body names the file) and carries none of their code.
    #[cfg(not(target_arch = "wasm32"))]
    #[serde(default, skip_serializing_if = "RawOffer::is_empty")]
    file: RawOffer,
}

impl RawEnvelope {
    /// Checks every field; see the module doc for the rules.
    pub fn validate(self) -> Result<Envelope, DecodeError> {
        validate(self)
    }
}

impl From<&Envelope> for RawEnvelope {
    fn from(e: &Envelope) -> Self {
        Self {
            v: Some(e.v),
            kind: Some(e.kind.as_str().to_owned()),
            id: Some(e.id.clone()),
            nick: Some(e.nick.clone()),
            ts: Some(e.ts),
            body: (!e.body.is_empty()).then(|| e.body.clone()),
            #[cfg(not(target_arch = "wasm32"))]
            file: e.file.as_ref().map(RawOffer::from).unwrap_or_default(),
        }
    }
}

/// A fresh random message id: 128 bits as 32 hex digits.
pub fn new_message_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Envelope {
    fn new(kind: Kind, nick: &str, body: String) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            kind,
            id: new_message_id(),
            nick: nick.to_owned(),
            ts: now_unix_ms(),
            body,
            file: None,
        }
    }

    /// A room message (`kind` [`Kind::Message`]) or DM ([`Kind::Dm`]) offering `offer`, its body
    /// naming the file.
    pub fn offer(kind: Kind, nick: &str, offer: FileOffer) -> Self {
        let mut envelope = Self::new(kind, nick, offer.summary());
        envelope.file = Some(offer);
        envelope
    }

    /// A chat message, or why the text cannot be sent.
    pub fn message(nick: &str, body: &str) -> Result<Self, EnvelopeError> {
        Self::with_body(Kind::Message, nick, body)
    }

    /// A direct message, or why the text cannot be sent.
    pub fn dm(nick: &str, body: &str) -> Result<Self, EnvelopeError> {
        Self::with_body(Kind::Dm, nick, body)
    }

    fn with_body(kind: Kind, nick: &str, body: &str) -> Result<Self, EnvelopeError> {
        if body.trim().is_empty() {
            return Err(EnvelopeError::EmptyBody);
        }
        if body.len() > MAX_BODY_BYTES {
            return Err(EnvelopeError::BodyTooLarge(body.len()));
        }
        let envelope = Self::new(kind, nick, body.to_owned());
        // JSON escaping can grow a body (control characters become \uXXXX): the cap is on bytes sent.
        let encoded = envelope.to_bytes().len();
        if encoded > MAX_PAYLOAD_BYTES {
            return Err(EnvelopeError::EncodedTooLarge(encoded));
        }
        Ok(envelope)
    }

    /// A relay's announcement that `peer` disconnected.
    pub fn gone(peer: &libp2p::PeerId) -> Self {
        Self::new(Kind::Gone, "relay", peer.to_base58())
    }

    /// A join, leave or presence announcement.
    pub fn announcement(kind: Kind, nick: &str) -> Self {
        Self::new(kind, nick, String::new())
    }

    /// The envelope's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope of strings and integers always serialises")
    }
}

/// The id of a plain-text message from another libp2p chat: its author and gossipsub sequence
/// number (random when there is none), so that a live copy and a stored copy match.
pub fn text_message_id(from: libp2p::PeerId, seq: Option<u64>) -> String {
    seq.map_or_else(
        || format!("{:x}", rand::random::<u64>()),
        |seq| format!("{}-{seq}", from.to_base58()),
    )
}

/// Decodes a room payload: an envelope, or plain text from another chat. Never panics.
pub fn decode_room_payload(bytes: &[u8]) -> Result<Payload, DecodeError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    match serde_json::from_slice::<RawEnvelope>(bytes) {
        Ok(wire) if wire.v.is_some() => validate(wire).map(Payload::Envelope),
        _ => match std::str::from_utf8(bytes) {
            Ok(text) if !text.trim().is_empty() => Ok(Payload::Text(text.to_owned())),
            Ok(_) => Err(DecodeError::Malformed("empty text".into())),
            Err(_) => Err(DecodeError::NotUtf8),
        },
    }
}

/// Decodes an envelope that must be one (a DM): plain text is an error here.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let wire: RawEnvelope =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    validate(wire)
}

fn validate(wire: RawEnvelope) -> Result<Envelope, DecodeError> {
    let missing = |field: &str| DecodeError::Malformed(format!("missing field `{field}`"));
    let v = wire.v.ok_or_else(|| missing("v"))?;
    if v != ENVELOPE_VERSION {
        return Err(DecodeError::UnsupportedVersion(v));
    }
    let kind_name = wire.kind.ok_or_else(|| missing("type"))?;
    let kind = Kind::parse(&kind_name).ok_or(DecodeError::UnknownKind(kind_name))?;
    let id = wire.id.ok_or_else(|| missing("id"))?;
    if id.is_empty()
        || id.chars().count() > MAX_ID_CHARS
        || !id.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(DecodeError::Malformed(
            "`id` must be 1-64 printable ASCII characters".into(),
        ));
    }
    let body = wire.body.unwrap_or_default();
    if body.len() > MAX_BODY_BYTES {
        return Err(DecodeError::Malformed(format!(
            "body is {} bytes; the limit is {MAX_BODY_BYTES}",
            body.len()
        )));
    }
    if kind == Kind::Gone && body.parse::<libp2p::PeerId>().is_err() {
        return Err(DecodeError::Malformed(
            "`gone` needs a peer id as its body".into(),
        ));
    }
    if matches!(kind, Kind::Message | Kind::Dm) && body.trim().is_empty() {
        return Err(DecodeError::Malformed("a message needs a body".into()));
    }
    #[cfg(not(target_arch = "wasm32"))]
    let file = offer_of(kind, wire.file)?;
    #[cfg(target_arch = "wasm32")]
    let file = None;
    Ok(Envelope {
        v,
        kind,
        id,
        nick: wire
            .nick
            .as_deref()
            .and_then(clean_nick)
            .unwrap_or_default(),
        ts: wire.ts.unwrap_or(0),
        body,
        file,
    })
}

/// The offer an envelope of `kind` carries, checked; `None` when `raw` is empty.
#[cfg(not(target_arch = "wasm32"))]
fn offer_of(kind: Kind, raw: RawOffer) -> Result<Option<FileOffer>, DecodeError> {
    if raw.is_empty() {
        return Ok(None);
    }
    if !matches!(kind, Kind::Message | Kind::Dm) {
        return Err(DecodeError::Malformed(format!(
            "a `{}` cannot offer a file",
            kind.as_str()
        )));
    }
    raw.validate(MAX_FILE_BYTES)
        .map(Some)
        .map_err(|e| DecodeError::Malformed(format!("file: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_survives_its_own_bytes() {
        let sent = Envelope::message("alice", "hello").expect("small body");
        match decode_room_payload(&sent.to_bytes()).expect("decodes") {
            Payload::Envelope(got) => assert_eq!(got, sent),
            other => panic!("expected an envelope, got {other:?}"),
        }
    }

    #[test]
    fn the_documented_bytes_decode() {
        let bytes =
            br#"{"v":1,"type":"message","id":"abc","nick":"bob","ts":5,"body":"hi","extra":true}"#;
        let Payload::Envelope(env) = decode_room_payload(bytes).expect("decodes") else {
            panic!("not an envelope")
        };
        assert_eq!(
            (env.kind, env.id.as_str(), env.nick.as_str(), env.ts),
            (Kind::Message, "abc", "bob", 5)
        );
    }

    #[test]
    fn plain_text_from_other_chats_is_a_message() {
        assert_eq!(
            decode_room_payload(b"hello from go").ok(),
            Some(Payload::Text("hello from go".into()))
        );
        // JSON that is not an envelope is still someone's text.
        assert_eq!(
            decode_room_payload(br#"{"hi":1}"#).ok(),
            Some(Payload::Text(r#"{"hi":1}"#.into()))
        );
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        assert!(matches!(
            decode_room_payload(&[0xff, 0xfe, 0x00]),
            Err(DecodeError::NotUtf8)
        ));
        assert!(matches!(
            decode_room_payload(&vec![b'a'; MAX_PAYLOAD_BYTES + 1]),
            Err(DecodeError::TooLarge(_))
        ));
        assert!(matches!(
            decode_room_payload(br#"{"v":2,"type":"message","id":"a","body":"x"}"#),
            Err(DecodeError::UnsupportedVersion(2))
        ));
        assert!(matches!(
            decode_room_payload(br#"{"v":1,"type":"reaction","id":"a"}"#),
            Err(DecodeError::UnknownKind(_))
        ));
        assert!(matches!(
            decode_room_payload(br#"{"v":1,"type":"message","id":"a"}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_room_payload(br#"{"v":1,"type":"message","id":"","body":"x"}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_envelope(b"just text"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_and_empty_messages_are_refused_before_sending() {
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        assert_eq!(
            Envelope::message("a", &big),
            Err(EnvelopeError::BodyTooLarge(big.len()))
        );
        assert_eq!(Envelope::message("a", "  "), Err(EnvelopeError::EmptyBody));
        let max = "x".repeat(MAX_BODY_BYTES);
        let env = Envelope::message(&"n".repeat(32), &max).expect("limit is inclusive");
        assert!(env.to_bytes().len() <= MAX_PAYLOAD_BYTES);
    }

    #[test]
    fn a_file_offer_rides_in_a_message_and_a_bad_one_makes_it_malformed() {
        let mut builder = crate::files::OfferBuilder::default();
        builder.piece(b"hello");
        let (offer, _) = builder.finish("hello.txt", "text/plain");
        let sent = Envelope::offer(Kind::Message, "ann", offer.clone());
        assert_eq!(sent.body, "📎 hello.txt (5 B)");
        let Payload::Envelope(got) = decode_room_payload(&sent.to_bytes()).expect("decodes") else {
            panic!("not an envelope")
        };
        assert_eq!(got.file, Some(offer));
        let bytes =
            br#"{"v":1,"type":"message","id":"a","body":"x","file":{"id":"00","name":"x"}}"#;
        assert!(
            matches!(decode_room_payload(bytes), Err(DecodeError::Malformed(m)) if m.starts_with("file:"))
        );
        let bytes = br#"{"v":1,"type":"join","id":"a","file":{"name":"x"}}"#;
        assert!(matches!(
            decode_room_payload(bytes),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn hostile_nicknames_are_cleaned() {
        let bytes = br#"{"v":1,"type":"join","id":"a","nick":"\u001b[31mevil"}"#;
        let Payload::Envelope(env) = decode_room_payload(bytes).expect("decodes") else {
            panic!("not an envelope")
        };
        assert_eq!(env.nick, "[31mevil");
    }
}
