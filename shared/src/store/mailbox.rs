//! The mailbox in the store protocol: direct messages sealed to a recipient who was offline
//! ([`crate::seal`]), deposited by their sender and fetched by their recipient.

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::protocol::MAX_PAYLOAD_BYTES;

/// Largest sealed DM a store keeps (base64 of the sealed bytes). The sealed plaintext holds the
/// envelope's JSON as a JSON string, escaped a second time: up to twice its size (a body of
/// quotes), plus the sender's key and signature.
pub const MAX_SEALED_CHARS: usize = 4 * (2 * MAX_PAYLOAD_BYTES + 1024) / 3 + 4;

/// A sealed direct message, as deposited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    /// The recipient.
    pub to: PeerId,
    /// Message id (the sealed envelope's).
    pub id: String,
    /// The sealed bytes, base64 ([`crate::seal`]).
    pub sealed: String,
}

/// A sealed direct message waiting in its recipient's mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxDm {
    /// Message id.
    pub id: String,
    /// Who deposited it.
    pub from: PeerId,
    /// The sealed bytes, base64.
    pub sealed: String,
    /// When the store took it, unix ms.
    pub stored_at: u64,
}
