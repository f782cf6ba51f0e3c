//! Room history in the store: filing messages (each (room, id) once) and reading them back a
//! page at a time, both ways, within the page's count and byte limits.

use libp2p::PeerId;
use p2p_chat_shared::store::{
    sync_id, Cursor, HistoryItem, HistoryQuery, StoreResponse, SyncItem, MAX_PAGE_BYTES,
    MAX_PAGE_MESSAGES,
};
use redb::{ReadableTable, TableDefinition};

use super::after;
use super::bytes::message_bytes;

/// A room message's key: (room, time, id).
pub(super) type RoomKey<'a> = (&'a str, u64, &'a str);

/// (room, time, id) → (author, payload).
pub(super) const MESSAGES: TableDefinition<RoomKey, (&str, &str)> =
    TableDefinition::new("messages");
/// (room, id) → time: what is filed, for dedup and receipts.
pub(super) const MESSAGE_IDS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("message_ids");
/// room → messages kept (for retention by count).
pub(super) const ROOM_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("room_counts");

/// Files room messages not filed yet; returns the (room, id) of each one filed, and adds the
/// bytes they take to `bytes`.
pub(super) fn append(
    tx: &redb::WriteTransaction,
    items: &[(String, HistoryItem)],
    bytes: &mut i64,
) -> Result<Vec<(String, String)>, redb::Error> {
    let mut messages = tx.open_table(MESSAGES)?;
    let mut ids = tx.open_table(MESSAGE_IDS)?;
    let mut counts = tx.open_table(ROOM_COUNTS)?;
    let mut appended = Vec::new();
    for (room, item) in items {
        if ids.get((room.as_str(), item.id.as_str()))?.is_some() {
            continue;
        }
        let from = item.from.to_base58();
        messages.insert(
            (room.as_str(), item.ts, item.id.as_str()),
            (from.as_str(), item.payload.as_str()),
        )?;
        ids.insert((room.as_str(), item.id.as_str()), item.ts)?;
        let count = counts.get(room.as_str())?.map_or(0, |c| c.value());
        counts.insert(room.as_str(), count + 1)?;
        *bytes += message_bytes(room, &item.id, &from, &item.payload) as i64;
        appended.push((room.clone(), item.id.clone()));
    }
    Ok(appended)
}

/// One page of a room's history.
pub(super) fn query_page(
    messages: &redb::ReadOnlyTable<RoomKey<'static>, (&'static str, &'static str)>,
    query: &HistoryQuery,
) -> Result<StoreResponse, redb::Error> {
    let room = query.room.as_str();
    let end = query.end.unwrap_or(u64::MAX);
    let start = query.start.unwrap_or(0);
    let next_room = after(room);
    let mut page = Page::new(query.page_size());
    if query.newest {
        let upper = match &query.before {
            Some(c) => (room, c.ts, c.id.as_str()),
            None => (next_room.as_str(), 0, ""),
        };
        for entry in messages.range((room, start, "")..upper)?.rev() {
            let (key, value) = entry?;
            let key = key.value();
            if key.1 <= end && !page.take(key, value.value()) {
                break;
            }
        }
        page.items.reverse();
        let next = page
            .more
            .then(|| page.items.first().map(HistoryItem::cursor))
            .flatten();
        return Ok(StoreResponse::Page {
            messages: page.items,
            next,
        });
    }
    let (lower, skip): (RoomKey, Option<&Cursor>) = match &query.after {
        Some(c) if c.ts >= start => ((room, c.ts, c.id.as_str()), Some(c)),
        _ => ((room, start, ""), None),
    };
    for entry in messages.range(lower..(next_room.as_str(), 0, ""))? {
        let (key, value) = entry?;
        let key = key.value();
        if key.1 > end {
            break;
        }
        if skip.is_some_and(|c| c.ts == key.1 && c.id == key.2) {
            continue;
        }
        if !page.take(key, value.value()) {
            break;
        }
    }
    let next = page
        .more
        .then(|| page.items.last().map(HistoryItem::cursor))
        .flatten();
    Ok(StoreResponse::Page {
        messages: page.items,
        next,
    })
}

/// `room`'s messages filed at or after `since`, as reconciliation sees them.
pub(super) fn sync_set(
    messages: &redb::ReadOnlyTable<RoomKey<'static>, (&'static str, &'static str)>,
    room: &str,
    since: u64,
) -> Result<Vec<SyncItem>, redb::Error> {
    let next_room = after(room);
    let mut items = Vec::new();
    for entry in messages.range((room, since, "")..(next_room.as_str(), 0, ""))? {
        let (key, _) = entry?;
        let (_, ts, id) = key.value();
        items.push((ts, sync_id(id)));
    }
    Ok(items)
}

/// `room`'s messages filed since `since` whose sync ids are `wanted`, as many as a page holds.
pub(super) fn pull(
    messages: &redb::ReadOnlyTable<RoomKey<'static>, (&'static str, &'static str)>,
    room: &str,
    wanted: &std::collections::HashSet<[u8; 32]>,
    since: u64,
) -> Result<StoreResponse, redb::Error> {
    let next_room = after(room);
    let mut page = Page::new(MAX_PAGE_MESSAGES);
    let mut found = 0;
    for entry in messages.range((room, since, "")..(next_room.as_str(), 0, ""))? {
        if found == wanted.len() {
            break;
        }
        let (key, value) = entry?;
        let key = key.value();
        if !wanted.contains(&sync_id(key.2)) {
            continue;
        }
        found += 1;
        if !page.take(key, value.value()) {
            break;
        }
    }
    Ok(StoreResponse::Page {
        messages: page.items,
        next: None,
    })
}

/// The rooms with messages kept.
pub(super) fn rooms(tx: &redb::ReadTransaction) -> Result<Vec<String>, redb::Error> {
    let counts = tx.open_table(ROOM_COUNTS)?;
    let mut rooms = Vec::new();
    for entry in counts.iter()? {
        let (room, count) = entry?;
        if count.value() > 0 {
            rooms.push(room.value().to_owned());
        }
    }
    Ok(rooms)
}

/// A page being filled, within its count and byte limits.
struct Page {
    items: Vec<HistoryItem>,
    size: usize,
    bytes: usize,
    /// Whether a message was left out for lack of room.
    more: bool,
}

impl Page {
    fn new(size: usize) -> Self {
        Self {
            items: Vec::new(),
            size,
            bytes: 0,
            more: false,
        }
    }

    /// Adds a stored row; `false` when the page is full (and there is more). A page is bounded
    /// by the bytes its messages take as sent, escapes included ([`MAX_PAGE_BYTES`]), so
    /// payloads that escape badly make pages shorter, never unreadable.
    fn take(&mut self, key: RoomKey, (from, payload): (&str, &str)) -> bool {
        if self.items.len() == self.size {
            self.more = true;
            return false;
        }
        let (_, ts, id) = key;
        let Ok(from) = from.parse::<PeerId>() else {
            return true;
        };
        let item = HistoryItem {
            id: id.to_owned(),
            from,
            ts,
            payload: payload.to_owned(),
        };
        let len = item.json_len();
        if !self.items.is_empty() && self.bytes + len > MAX_PAGE_BYTES {
            self.more = true;
            return false;
        }
        self.bytes += len;
        self.items.push(item);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{append_items, page, store, temp};
    use super::*;
    use crate::relay::store::Retention;
    use p2p_chat_shared::store::StoreRequest;
    use p2p_chat_shared::text::now_unix_ms;

    #[test]
    fn pages_come_in_time_order_both_ways_and_a_repeat_is_stored_once() {
        let dir = temp();
        let mut store = store(&dir, Retention::default());
        let now = now_unix_ms();
        append_items(
            &mut store,
            "lobby",
            [(now + 3, "c"), (now + 1, "a"), (now + 2, "b")],
        );
        append_items(&mut store, "lobby", [(now + 1, "a")]);
        append_items(&mut store, "lobby2", [(now, "other room")]);
        let query = |limit, after, newest, before| HistoryQuery {
            room: "lobby".into(),
            limit: Some(limit),
            after,
            newest,
            before,
            ..Default::default()
        };
        let (first, next) = page(&mut store, query(2, None, false, None));
        assert_eq!(first, ["a", "b"]);
        let (rest, end) = page(&mut store, query(2, next, false, None));
        assert_eq!((rest, end), (vec!["c".to_owned()], None));
        let (newest, older) = page(&mut store, query(2, None, true, None));
        assert_eq!(newest, ["b", "c"]);
        let (oldest, _) = page(&mut store, query(2, None, true, older));
        assert_eq!(oldest, ["a"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn payloads() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            3 => ".{0,40}",
            1 => proptest::collection::vec(0u8..0x20, 1..p2p_chat_shared::protocol::MAX_PAYLOAD_BYTES)
                .prop_map(|b| String::from_utf8(b).unwrap_or_default()),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Whatever is stored, every page is readable by a peer (its JSON within
        /// `MAX_STORE_RESPONSE_BYTES`, its messages within `MAX_PAGE_BYTES`), and following
        /// `next`, forward or backward, visits every stored message exactly once, in order.
        #[test]
        fn paging_visits_every_message_once_and_every_page_is_readable(
            stored in proptest::collection::vec((0u64..40, payloads()), 1..80),
            limit in 1u32..=100,
        ) {
            use p2p_chat_shared::store::{StoreJob, MAX_STORE_RESPONSE_BYTES};
            let dir = temp();
            let mut store = store(&dir, Retention::default());
            let now = now_unix_ms();
            let from = PeerId::random();
            let jobs = stored
                .iter()
                .enumerate()
                .map(|(i, (ts, payload))| StoreJob::Append {
                    room: "lobby".to_owned(),
                    item: HistoryItem { id: format!("m{i}"), from, ts: now + ts, payload: payload.clone() },
                })
                .collect();
            store.process(jobs);
            let mut expected: Vec<(u64, String)> = stored
                .iter()
                .enumerate()
                .map(|(i, (ts, _))| (now + ts, format!("m{i}")))
                .collect();
            expected.sort();
            let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
            for newest in [false, true] {
                let mut seen = Vec::new();
                let mut cursor = None;
                for _ in 0..1000 {
                    let query = HistoryQuery {
                        room: "lobby".into(),
                        limit: Some(limit),
                        newest,
                        after: if newest { None } else { cursor.clone() },
                        before: if newest { cursor.clone() } else { None },
                        ..Default::default()
                    };
                    let answer = store.read(PeerId::random(), StoreRequest::Query(query));
                    let Ok(page @ StoreResponse::Page { .. }) = answer else {
                        proptest::prop_assert!(false, "not a page: {:?}", answer);
                        break;
                    };
                    let json = serde_json::to_vec(&page).map_or(usize::MAX, |j| j.len());
                    proptest::prop_assert!(json <= MAX_STORE_RESPONSE_BYTES, "{} bytes", json);
                    let StoreResponse::Page { messages, next } = page else { break };
                    let bytes: usize = messages.iter().map(HistoryItem::json_len).sum();
                    proptest::prop_assert!(bytes <= MAX_PAGE_BYTES, "{} bytes of messages", bytes);
                    proptest::prop_assert!(!messages.is_empty() || next.is_none());
                    let ids: Vec<String> = messages.into_iter().map(|m| m.id).collect();
                    if newest {
                        seen.splice(0..0, ids);
                    } else {
                        seen.extend(ids);
                    }
                    match next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                proptest::prop_assert_eq!(&seen, &expected, "newest: {}", newest);
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
