//! The direct-message protocol, [`DM_PROTOCOL`]: one request-response exchange per message.
//!
//! # Bytes
//!
//! Request: a JSON [`crate::envelope::Envelope`] of type `dm` (at most [`MAX_DM_FRAME_BYTES`]).
//! Response: a JSON [`DmAck`], for example `{"id":"9f0c…","status":"delivered"}` or
//! `{"id":"9f0c…","status":"rejected","reason":"malformed envelope: …"}`.
//! The sender is the authenticated remote peer of the stream, never a field.

use libp2p::request_response::{self, json, ProtocolSupport};
use serde::{Deserialize, Serialize};

use crate::envelope::RawEnvelope;
use crate::protocol::{DM_PROTOCOL, DM_TIMEOUT, MAX_DM_FRAME_BYTES};

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

/// The request-response behaviour for direct messages, with our size caps on both directions.
pub type DmBehaviour = json::Behaviour<RawEnvelope, DmAck>;

/// Builds the DM behaviour.
pub fn dm_behaviour() -> DmBehaviour {
    let codec = json::codec::Codec::default()
        .set_request_size_maximum(MAX_DM_FRAME_BYTES)
        .set_response_size_maximum(MAX_DM_FRAME_BYTES);
    request_response::Behaviour::with_codec(
        codec,
        [(DM_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(DM_TIMEOUT),
    )
}
