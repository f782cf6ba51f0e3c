//! Room history in the store protocol: the query a peer sends, the messages a page holds, the
//! cursor that pages on, and the time a store files a message under.

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// Most messages in a history page.
pub const MAX_PAGE_MESSAGES: usize = 100;
/// Most payload bytes in a history page (a page stops early rather than go over).
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// A sender clock further ahead of the store's than this is replaced by the store's.
pub const MAX_CLOCK_SKEW_MS: u64 = 60_000;

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
    /// Its position.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            ts: self.ts,
            id: self.id.clone(),
        }
    }
}

/// The time a store files a message under: the sender's clock (`sent_at`, unix ms) unless it is
/// missing (0) or more than [`MAX_CLOCK_SKEW_MS`] ahead of `now`, the store's clock.
pub fn store_time(sent_at: u64, now: u64) -> u64 {
    if sent_at == 0 || sent_at > now.saturating_add(MAX_CLOCK_SKEW_MS) {
        now
    } else {
        sent_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_clock_replaces_a_missing_or_future_sender_clock() {
        assert_eq!(store_time(0, 1_000_000), 1_000_000);
        assert_eq!(store_time(999_000, 1_000_000), 999_000);
        assert_eq!(
            store_time(1_000_000 + MAX_CLOCK_SKEW_MS + 1, 1_000_000),
            1_000_000
        );
    }
}
