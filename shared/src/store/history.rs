//! Room history in the store protocol: the query a peer sends, the messages a page holds, the
//! cursor that pages on, and the time a store files a message under.

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// Most messages in a history page.
pub const MAX_PAGE_MESSAGES: usize = 100;
/// Most bytes of a history page's messages as sent (JSON, escapes included): a page stops early
/// rather than go over, so whatever the payloads a page stays readable
/// ([`super::MAX_STORE_RESPONSE_BYTES`]). One message always fits: the largest a peer can
/// publish, every byte escaped, is far smaller.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// A sender clock further from the store's than this (ahead or behind) is replaced by the
/// store's: such a message is filed under the time the store received it.
pub const MAX_CLOCK_SKEW_MS: u64 = 60_000;

/// Bytes a stored item takes in a page, at most: its fields escaped the worst JSON way (six
/// bytes for a control byte), plus the field names and the separators.
pub const MAX_ITEM_JSON_BYTES: usize =
    6 * (crate::protocol::MAX_TRANSMIT_BYTES + crate::envelope::MAX_ID_CHARS) + 256;
const _: () = assert!(MAX_ITEM_JSON_BYTES < MAX_PAGE_BYTES);

/// A position in a room's history: the (time, id) of a message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cursor {
    /// Message time, unix ms.
    pub ts: u64,
    /// Message id.
    pub id: String,
}

/// A history query.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HistoryQuery {
    /// The room.
    pub room: String,
    /// Earliest message time, unix ms, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    /// Latest message time, unix ms, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
    /// Forward paging: only messages after this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Cursor>,
    /// Backward paging (`newest`): only messages before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Cursor>,
    /// Most messages wanted (capped at [`MAX_PAGE_MESSAGES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The newest messages of the range instead of the oldest.
    #[serde(default)]
    pub newest: bool,
}

impl HistoryQuery {
    /// The page size this query gets.
    pub fn page_size(&self) -> usize {
        self.limit
            .map_or(MAX_PAGE_MESSAGES, |l| (l as usize).min(MAX_PAGE_MESSAGES))
    }
}

/// A stored room message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// Message id (the envelope's, or `<source>-<seqno>` for plain text).
    pub id: String,
    /// The author (the verified gossipsub source).
    pub from: PeerId,
    /// Message time, unix ms.
    pub ts: u64,
    /// The room payload as published.
    pub payload: String,
}

impl HistoryItem {
    /// Bytes it takes in a page's JSON, with the comma that separates it from the next.
    pub fn json_len(&self) -> usize {
        serde_json::to_vec(self).map_or(MAX_ITEM_JSON_BYTES, |json| json.len() + 1)
    }

    /// Its position.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            ts: self.ts,
            id: self.id.clone(),
        }
    }
}

/// The time a store files a message under: the sender's clock (`sent_at`, unix ms) unless it is
/// missing (0) or more than [`MAX_CLOCK_SKEW_MS`] away from `now`, the store's clock (then
/// `now`). One sender's clock, honest or not, can thus neither date a message in the future
/// (where it would stay "the newest" and move every catch-up mark past what was missed) nor
/// slip it into the past behind what peers already caught up on.
pub fn store_time(sent_at: u64, now: u64) -> u64 {
    if sent_at == 0 || sent_at.abs_diff(now) > MAX_CLOCK_SKEW_MS {
        now
    } else {
        sent_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_clock_replaces_a_missing_future_or_past_sender_clock() {
        let now = 10_000_000;
        assert_eq!(store_time(0, now), now);
        assert_eq!(store_time(now - 1000, now), now - 1000);
        assert_eq!(store_time(now + 1000, now), now + 1000);
        assert_eq!(store_time(now + MAX_CLOCK_SKEW_MS + 1, now), now);
        assert_eq!(store_time(now - MAX_CLOCK_SKEW_MS - 1, now), now);
        assert_eq!(store_time(u64::MAX, now), now);
    }
}
