//! The store: what a relay keeps for its peers, and the protocol to ask it,
//! [`crate::protocol::STORE_PROTOCOL`]. Modelled on Waku's Store. Three parts, one protocol:
//!
//! - **history** ([`history`]): the room messages the relay saw, by time range and cursor, page
//!   by page; a peer catches up on what it missed with it;
//! - **receipts**: the relay's confirmation that it durably keeps a message a peer published;
//! - **mailbox** ([`mailbox`]): direct messages sealed to a recipient who was offline, kept until
//!   it fetches them.
//!
//! The peer's side is in the chat core, the relay's side in [`crate::hub`]; the database is the
//! relay's (`p2p-chat relay`), behind [`StoreHandle`].
//!
//! # Bytes
//!
//! One request and one response per stream, each a single JSON object (a request at most
//! [`MAX_STORE_REQUEST_BYTES`], a response at most [`MAX_STORE_RESPONSE_BYTES`]). The requester is
//! the authenticated remote peer of the stream, never a field.
//!
//! | request | answer |
//! | --- | --- |
//! | `{"query":{"room":"lobby","start":0,"end":null,"after":{"ts":…,"id":"…"},"limit":100,"newest":false}}` | `{"page":{"messages":[{"id":"…","from":"12D3…","ts":…,"payload":"…"}],"next":{"ts":…,"id":"…"}}}` |
//! | `{"receipt":{"room":"lobby","ids":["…"]}}`: answered once these messages are durably stored (or after a wait, with those that are) | `{"stored":{"ids":["…"]}}` |
//! | `{"deposit":{"to":"12D3…","id":"…","sealed":"base64"}}`: keep a sealed DM for `to` | `{"deposited":{"id":"…"}}` |
//! | `"fetch"`: the sealed DMs kept for me, oldest first | `{"mailbox":{"dms":[{"id":"…","from":"12D3…","sealed":"base64","stored_at":…}]}}` |
//! | `{"ack":{"ids":["…"]}}`: I have these; forget them | `{"acked":{"count":1}}` |
//! | `{"status":{"ids":["…"]}}`: which DMs I deposited were fetched | `{"status":{"delivered":["…"]}}` |
//! | `{"reconcile":{"room":"lobby","since":…,"msg":"base64"}}`: a round of negentropy over the room's messages filed since `since` (relays of one network only) | `{"reconciled":{"msg":"base64"}}` |
//! | `"rooms"`: the rooms the store keeps (relays only) | `{"rooms":{"rooms":["lobby"]}}` |
//! | `{"pull":{"room":"lobby","ids":["64 hex digits"]}}`: messages by sync id (SHA-256 of the message id; relays only) | `{"page":{"messages":[…]}}` |
//! | `{"mail_waiting":{"to":["12D3…"]}}`: I keep mail for these peers (relays only) | `{"acked":{"count":1}}` |
//! | `{"mail_for":{"to":"12D3…"}}`: the sealed DMs you keep for `to`, kept there (relays only) | `{"mailbox":{"dms":[…]}}` |
//! | `{"mail_delivered":{"to":"12D3…","ids":["…"]}}`: `to` fetched these here; forget them (relays only) | `{"acked":{"count":1}}` |
//! | anything malformed, oversized or refused | `{"error":{"reason":"…"}}` |
//!
//! **Query.** `room` is required. `start` / `end` bound the message time (unix ms, inclusive).
//! Pages hold at most [`MAX_PAGE_MESSAGES`] messages (fewer when `limit` says so or the page
//! would take over [`MAX_PAGE_BYTES`] as JSON, escapes included), in (time, id) order. With `newest: false` (the default) a
//! page starts after the `after` cursor and `next` is the cursor to pass as `after` for the
//! following page; with `newest: true` a page holds the newest messages before the `before`
//! cursor and `next` is the cursor to pass as `before` for the older page. `next` is absent on
//! the last page. A message's time is its sender's clock (`ts` of the envelope), or the store's
//! clock when the sender's is missing or more than [`MAX_CLOCK_SKEW_MS`] away from it. `payload` is the
//! room payload exactly as published (an envelope, or plain text from another libp2p chat), and
//! `from` its author, the signed gossipsub source the store verified.

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

pub mod history;
pub mod mailbox;

pub use history::{
    store_time, Cursor, HistoryItem, HistoryQuery, MAX_CLOCK_SKEW_MS, MAX_PAGE_BYTES,
    MAX_PAGE_MESSAGES,
};
pub use mailbox::{Deposit, MailboxDm, MAX_SEALED_CHARS};

use crate::envelope::MAX_ID_CHARS;
use crate::protocol::{validate_room, RoomNameError};

/// Largest request a store reads (a deposit carries a sealed DM).
pub const MAX_STORE_REQUEST_BYTES: usize = 64 * 1024;
/// Largest response a peer reads. A page's messages take at most [`MAX_PAGE_BYTES`] as sent, and
/// a mailbox answer stops at the DM that takes it past as much.
pub const MAX_STORE_RESPONSE_BYTES: usize = 4 * MAX_PAGE_BYTES;
const _: () = assert!(
    MAX_PAGE_BYTES + MAX_SEALED_CHARS + 6 * MAX_ID_CHARS + 1024 < MAX_STORE_RESPONSE_BYTES
        && MAX_SEALED_CHARS + 1024 < MAX_STORE_REQUEST_BYTES
);
/// Most ids in one `ack` or `status` request, and most DMs in one `mailbox` answer.
pub const MAX_IDS_PER_REQUEST: usize = 100;

/// A request to a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreRequest {
    /// A page of room history.
    Query(HistoryQuery),
    /// Answer once these messages of `room` are durably stored (after a bounded wait, with
    /// those that are).
    Receipt {
        /// The room.
        room: String,
        /// Message ids.
        ids: Vec<String>,
    },
    /// Keep a sealed DM for an offline recipient.
    Deposit(Deposit),
    /// The sealed DMs kept for the requester.
    Fetch,
    /// The requester has these DMs: forget them.
    Ack {
        /// Message ids.
        ids: Vec<String>,
    },
    /// Which of the requester's deposits were fetched by their recipients.
    Status {
        /// Message ids.
        ids: Vec<String>,
    },
    /// One round of reconciling a room's history (relays of one network only): a negentropy
    /// message over the room's messages filed since `since` (unix ms).
    Reconcile {
        /// The room.
        room: String,
        /// Only messages filed at or after this time take part.
        since: u64,
        /// The negentropy message, base64.
        msg: String,
    },
    /// The rooms the store keeps messages of (relays of one network only: each reconciles
    /// every room another keeps).
    Rooms,
    /// The room's messages with these sync ids (relays of one network only): what a
    /// reconciliation found missing here.
    Pull {
        /// The room.
        room: String,
        /// Sync ids ([`sync_id`]), hex.
        ids: Vec<String>,
    },
    /// The requester keeps mail for these peers (relays of one network only): a relay that has
    /// one of them connected takes it ([`StoreRequest::MailFor`]). Answered
    /// [`StoreResponse::Acked`] with how many were noted.
    #[cfg(not(target_arch = "wasm32"))]
    MailWaiting {
        /// The recipients, at most [`MAX_IDS_PER_REQUEST`].
        to: Vec<PeerId>,
    },
    /// The sealed DMs kept for `to`, oldest first, as a fetch by `to` would get them, but kept
    /// (relays of one network only): a relay that has `to` connected takes them to it.
    #[cfg(not(target_arch = "wasm32"))]
    MailFor {
        /// The recipient.
        to: PeerId,
    },
    /// `to` has these DMs, fetched at the requester: forget them, as if `to` acknowledged them
    /// here (relays of one network only).
    #[cfg(not(target_arch = "wasm32"))]
    MailDelivered {
        /// The recipient.
        to: PeerId,
        /// Message ids.
        ids: Vec<String>,
    },
}

/// Largest negentropy message in a [`StoreRequest::Reconcile`] or its answer, in bytes before
/// base64: a round that would take more is split over more rounds.
pub const MAX_SYNC_FRAME_BYTES: usize = 32 * 1024;
const _: () = assert!(MAX_SYNC_FRAME_BYTES * 4 / 3 + 1024 < MAX_STORE_REQUEST_BYTES);

/// A message in reconciliation: the time it is filed under (unix ms) and its sync id
/// ([`sync_id`]).
pub type SyncItem = (u64, [u8; 32]);

/// A message's id in reconciliation: SHA-256 of its id (negentropy wants 32 bytes; ids of
/// envelopes and of plain text differ in length), hex in requests.
pub fn sync_id(message_id: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(message_id.as_bytes()).into()
}

/// A store's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreResponse {
    /// History, in (time, id) order.
    Page {
        /// The messages.
        messages: Vec<HistoryItem>,
        /// Where the next page starts; absent on the last one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Cursor>,
    },
    /// These messages are durably stored.
    Stored {
        /// Message ids.
        ids: Vec<String>,
        /// Why the ids asked for and left out are not stored; absent when the relay has not
        /// received them in time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The DM is durably stored for its recipient.
    Deposited {
        /// Message id.
        id: String,
    },
    /// DMs kept for the requester.
    Mailbox {
        /// Oldest first.
        dms: Vec<MailboxDm>,
    },
    /// This many DMs were forgotten.
    Acked {
        /// How many.
        count: u32,
    },
    /// Deposits fetched by their recipients.
    Status {
        /// Message ids.
        delivered: Vec<String>,
    },
    /// The rooms the store keeps messages of, at most [`crate::protocol::MAX_HUB_ROOMS`].
    Rooms {
        /// Their names.
        rooms: Vec<String>,
    },
    /// The store's answer in a reconciliation round: the next negentropy message, base64.
    Reconciled {
        /// The message.
        msg: String,
    },
    /// The request was refused.
    Error {
        /// Why, for a person.
        reason: String,
    },
}

impl StoreResponse {
    /// An error answer.
    pub fn error(reason: impl Into<String>) -> Self {
        Self::Error {
            reason: reason.into(),
        }
    }
}

/// Why a store refuses a request before looking at its data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Bigger than [`MAX_STORE_REQUEST_BYTES`].
    #[error("request is over {MAX_STORE_REQUEST_BYTES} bytes")]
    TooLarge,
    /// Not a store request in JSON.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A bad room name.
    #[error(transparent)]
    Room(#[from] RoomNameError),
    /// A time range that ends before it starts.
    #[error("start {start} is after end {end}")]
    Backwards {
        /// The range's start.
        start: u64,
        /// The range's end.
        end: u64,
    },
    /// A query with both paging cursors.
    #[error("give `after` or `before`, not both")]
    TwoCursors,
    /// More ids than [`MAX_IDS_PER_REQUEST`].
    #[error("{0} ids in one request; the limit is {MAX_IDS_PER_REQUEST}")]
    TooManyIds(usize),
    /// A sealed DM over [`MAX_SEALED_CHARS`].
    #[error("sealed message is {0} characters; the limit is {MAX_SEALED_CHARS}")]
    SealedTooLarge(usize),
    /// A deposit whose id is empty or too long.
    #[error("a deposit needs an id of 1 to {MAX_ID_CHARS} characters")]
    BadDepositId,
    /// A reconciliation message over [`MAX_SYNC_FRAME_BYTES`].
    #[error("a reconciliation message over {MAX_SYNC_FRAME_BYTES} bytes")]
    SyncTooLarge,
    /// A sync id that is not 64 hex digits.
    #[error("a sync id is 64 hex digits")]
    BadSyncId,
}

impl StoreRequest {
    /// Checks what the JSON shape cannot: sizes, counts, room names.
    pub fn validate(&self) -> Result<(), RequestError> {
        let ids_ok = |ids: &Vec<String>| {
            if ids.len() > MAX_IDS_PER_REQUEST {
                Err(RequestError::TooManyIds(ids.len()))
            } else {
                Ok(())
            }
        };
        match self {
            Self::Query(q) => {
                validate_room(&q.room)?;
                if let (Some(start), Some(end)) = (q.start, q.end) {
                    if start > end {
                        return Err(RequestError::Backwards { start, end });
                    }
                }
                if q.after.is_some() && q.before.is_some() {
                    return Err(RequestError::TwoCursors);
                }
                Ok(())
            }
            Self::Receipt { room, ids } => {
                validate_room(room)?;
                ids_ok(ids)
            }
            Self::Deposit(d) => {
                if d.sealed.len() > MAX_SEALED_CHARS {
                    return Err(RequestError::SealedTooLarge(d.sealed.len()));
                }
                if d.id.is_empty() || d.id.len() > MAX_ID_CHARS {
                    return Err(RequestError::BadDepositId);
                }
                Ok(())
            }
            Self::Fetch | Self::Rooms => Ok(()),
            Self::Ack { ids } | Self::Status { ids } => ids_ok(ids),
            #[cfg(not(target_arch = "wasm32"))]
            Self::MailFor { .. } => Ok(()),
            #[cfg(not(target_arch = "wasm32"))]
            Self::MailDelivered { ids, .. } => ids_ok(ids),
            #[cfg(not(target_arch = "wasm32"))]
            Self::MailWaiting { to } if to.len() > MAX_IDS_PER_REQUEST => {
                Err(RequestError::TooManyIds(to.len()))
            }
            #[cfg(not(target_arch = "wasm32"))]
            Self::MailWaiting { .. } => Ok(()),
            Self::Reconcile { room, msg, .. } => {
                validate_room(room)?;
                if msg.len() > MAX_SYNC_FRAME_BYTES.div_ceil(3) * 4 {
                    return Err(RequestError::SyncTooLarge);
                }
                Ok(())
            }
            Self::Pull { room, ids } => {
                validate_room(room)?;
                ids_ok(ids)?;
                if ids
                    .iter()
                    .any(|id| id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    return Err(RequestError::BadSyncId);
                }
                Ok(())
            }
        }
    }
}

/// Work for a store backend (the relay's database), handed over by the chat core so that the
/// swarm never waits on a disk.
#[derive(Debug)]
pub enum StoreJob {
    /// Keep a room message the hub saw.
    Append {
        /// The room.
        room: String,
        /// The message.
        item: HistoryItem,
    },
    /// Answer a peer's request through `reply` (a receipt waits until its message is durable).
    Request {
        /// The requester, authenticated by its connection.
        from: PeerId,
        /// What it asked.
        request: StoreRequest,
        /// Where the answer goes.
        reply: futures::channel::oneshot::Sender<StoreResponse>,
    },
    /// A room's messages filed since `since`, as reconciliation sees them: the relay's own side
    /// of a reconciliation it starts.
    SyncSet {
        /// The room.
        room: String,
        /// Unix ms.
        since: u64,
        /// The ids, or why the store could not read them.
        reply: futures::channel::oneshot::Sender<Result<Vec<SyncItem>, String>>,
    },
    /// The rooms the store keeps messages of.
    Rooms {
        /// The rooms, or why the store could not read them.
        reply: futures::channel::oneshot::Sender<Result<Vec<String>, String>>,
    },
    /// Keep these DMs, taken from the relay `origin` for a recipient connected here, each as its
    /// depositor's, and tell `origin` once the recipient has them (a DM already here is not
    /// kept twice; one fetched here before is reported to `origin` at once). How many were new
    /// and how many were reported, or why the store could not keep them.
    #[cfg(not(target_arch = "wasm32"))]
    TakeMail {
        /// The relay the DMs came from.
        origin: PeerId,
        /// Their recipient.
        to: PeerId,
        /// The DMs.
        dms: Vec<MailboxDm>,
        /// (new, reported).
        reply: futures::channel::oneshot::Sender<Result<(usize, usize), String>>,
    },
    /// The peers the store keeps mail for, in order, after `after`, at most `limit`.
    #[cfg(not(target_arch = "wasm32"))]
    MailRecipients {
        /// Where the previous list stopped.
        after: Option<PeerId>,
        /// Most recipients.
        limit: usize,
        /// The recipients, or why the store could not read them.
        reply: futures::channel::oneshot::Sender<Result<Vec<PeerId>, String>>,
    },
    /// What `origin` is still to be told was fetched here (DMs taken from it): by recipient, at
    /// most `limit` ids in all.
    #[cfg(not(target_arch = "wasm32"))]
    MailReports {
        /// The relay.
        origin: PeerId,
        /// Most ids.
        limit: usize,
        /// (recipient, ids), or why the store could not read them.
        reply: futures::channel::oneshot::Sender<Result<MailReports, String>>,
    },
    /// `origin` took these reports: forget them.
    #[cfg(not(target_arch = "wasm32"))]
    MailReported {
        /// The relay.
        origin: PeerId,
        /// The recipient.
        to: PeerId,
        /// Message ids.
        ids: Vec<String>,
        /// Whether they are forgotten (the store wrote it).
        reply: futures::channel::oneshot::Sender<bool>,
    },
}

/// Delivery reports for a relay, by recipient ([`StoreJob::MailReports`]).
#[cfg(not(target_arch = "wasm32"))]
pub type MailReports = Vec<(PeerId, Vec<String>)>;

/// The chat core's end of a store backend: bounded, never waited on.
pub type StoreHandle = futures::channel::mpsc::Sender<StoreJob>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_documented_shape() {
        let fetch = serde_json::to_string(&StoreRequest::Fetch).expect("test setup");
        assert_eq!(fetch, r#""fetch""#);
        let query = StoreRequest::Query(HistoryQuery {
            room: "lobby".into(),
            limit: Some(5),
            ..Default::default()
        });
        let json = serde_json::to_string(&query).expect("test setup");
        assert_eq!(
            json,
            r#"{"query":{"room":"lobby","limit":5,"newest":false}}"#
        );
        let back: StoreRequest =
            serde_json::from_str(r#"{"query":{"room":"lobby"}}"#).expect("test setup");
        assert!(matches!(back, StoreRequest::Query(q) if q.page_size() == MAX_PAGE_MESSAGES));
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let bad_room = StoreRequest::Query(HistoryQuery {
            room: String::new(),
            ..Default::default()
        });
        assert!(bad_room.validate().is_err());
        let backwards = StoreRequest::Query(HistoryQuery {
            room: "lobby".into(),
            start: Some(10),
            end: Some(5),
            ..Default::default()
        });
        assert_eq!(
            backwards.validate(),
            Err(RequestError::Backwards { start: 10, end: 5 })
        );
        assert!(backwards
            .validate()
            .expect_err("should fail")
            .to_string()
            .contains("after end"));
        let many = StoreRequest::Ack {
            ids: vec!["x".into(); MAX_IDS_PER_REQUEST + 1],
        };
        assert!(many
            .validate()
            .expect_err("should fail")
            .to_string()
            .contains("limit"));
    }
}
