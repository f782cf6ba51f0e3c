//! The direct-message protocol, [`crate::protocol::DM_PROTOCOL`]: one request-response
//! exchange per message (the codec is in [`crate::rpc`]).
//!
//! # Bytes
//!
//! Request: a JSON [`crate::envelope::Envelope`] of type `dm` (at most [`crate::protocol::MAX_DM_FRAME_BYTES`]).
//! Response: a JSON [`DmAck`], for example `{"id":"9f0c…","status":"delivered"}` or
//! `{"id":"9f0c…","status":"rejected","reason":"malformed envelope: …"}`.
//! The sender is the authenticated remote peer of the stream, never a field.

use serde::{Deserialize, Serialize};

/// Whether the recipient took the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckStatus {
    /// The recipient's chat core accepted the message and handed it to its user interface.
    Delivered,
    /// The recipient refused the message (see `reason`).
    Rejected,
}

/// The answer to a direct message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmAck {
    /// The id of the message answered.
    pub id: String,
    /// Delivered or rejected.
    pub status: AckStatus,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
