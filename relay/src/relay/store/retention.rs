//! Retention: room messages older than [`super::Retention::max_age`] or beyond
//! [`super::Retention::max_per_room`], sealed DMs not fetched within
//! [`super::Retention::mailbox_max_age`], and delivery notes as old, are deleted at start and
//! every minute, at most [`PRUNE_LIMIT`] rows per table a pass.
//!
//! **Fair by author.** A room over its count loses the oldest messages of the authors who hold
//! the most of it, never simply its oldest: one peer's flood erases its own messages first, and
//! everyone else's messages of the retention window stay as long as they fit.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use p2p_chat_shared::text::now_unix_ms;
use redb::ReadableTable;

use super::bytes::{dm_bytes, message_bytes};
use super::mailbox::{
    count_deposit, forget_origins, DELIVERED, DEPOSITORS, MAILBOX, MAILBOX_IDS, MAIL_ORIGIN,
    MAIL_REPORTS,
};
use super::rooms::{MESSAGES, MESSAGE_IDS, ROOM_COUNTS};
use super::{after, Store};

/// Most rows one retention pass deletes per table (the rest next time).
const PRUNE_LIMIT: usize = 50_000;

/// How many of the messages of `room` filed since `cutoff` each author loses so that at most
/// `max` are left: always from the authors who hold the most (by one, from the largest).
fn fair_cuts(
    messages: &redb::Table<super::rooms::RoomKey<'static>, (&'static str, &'static str)>,
    room: &str,
    cutoff: u64,
    max: u64,
) -> Result<HashMap<String, u64>, redb::Error> {
    // Per author: messages held, and the time of its oldest (rows come oldest first).
    let mut held: HashMap<String, (u64, u64)> = HashMap::new();
    for entry in messages.range((room, cutoff, "")..(after(room).as_str(), 0, ""))? {
        let (key, value) = entry?;
        held.entry(value.value().0.to_owned())
            .or_insert((0, key.value().1))
            .0 += 1;
    }
    let excess = held
        .values()
        .map(|(n, _)| n)
        .sum::<u64>()
        .saturating_sub(max);
    // Ties between authors holding as many go to the one whose messages are oldest.
    let mut heap: BinaryHeap<(u64, Reverse<u64>, String)> = held
        .into_iter()
        .map(|(author, (n, oldest))| (n, Reverse(oldest), author))
        .collect();
    let mut cuts: HashMap<String, u64> = HashMap::new();
    for _ in 0..excess {
        let Some((n, oldest, author)) = heap.pop() else {
            break;
        };
        *cuts.entry(author.clone()).or_default() += 1;
        if n > 1 {
            heap.push((n - 1, oldest, author));
        }
    }
    Ok(cuts)
}

impl Store {
    /// Applies the retention policy.
    pub(super) fn prune(&mut self) -> Result<(), redb::Error> {
        let now = now_unix_ms();
        let cutoff = now.saturating_sub(self.retention.max_age.as_millis() as u64);
        let mailbox_cutoff = now.saturating_sub(self.retention.mailbox_max_age.as_millis() as u64);
        let retention = self.retention;
        let tx = self.db()?.begin_write()?;
        let mut deleted = 0usize;
        let mut freed = 0u64;
        {
            let mut messages = tx.open_table(MESSAGES)?;
            let mut ids = tx.open_table(MESSAGE_IDS)?;
            let mut counts = tx.open_table(ROOM_COUNTS)?;
            let rooms: Vec<(String, u64)> = counts
                .iter()?
                .filter_map(|e| e.ok())
                .map(|(k, v)| (k.value().to_owned(), v.value()))
                .collect();
            for (room, count) in rooms {
                let max = retention.max_per_room;
                let mut quotas = if count > max {
                    fair_cuts(&messages, &room, cutoff, max)?
                } else {
                    HashMap::new()
                };
                let mut to_cut: u64 = quotas.values().sum();
                let mut doomed: Vec<(u64, String, u64)> = Vec::new();
                for entry in
                    messages.range((room.as_str(), 0, "")..(after(&room).as_str(), 0, ""))?
                {
                    let (key, value) = entry?;
                    let (_, ts, id) = key.value();
                    let (author, payload) = value.value();
                    let size = message_bytes(&room, id, author, payload);
                    let cut = quotas.get_mut(author).filter(|left| **left > 0);
                    if ts < cutoff {
                        doomed.push((ts, id.to_owned(), size));
                    } else if let Some(left) = cut {
                        *left -= 1;
                        to_cut -= 1;
                        doomed.push((ts, id.to_owned(), size));
                    } else if to_cut == 0 {
                        break;
                    }
                    if deleted + doomed.len() >= PRUNE_LIMIT {
                        break;
                    }
                }
                for (ts, id, size) in &doomed {
                    messages.remove((room.as_str(), *ts, id.as_str()))?;
                    ids.remove((room.as_str(), id.as_str()))?;
                    freed += size;
                }
                deleted += doomed.len();
                let left = count.saturating_sub(doomed.len() as u64);
                if left == 0 {
                    counts.remove(room.as_str())?;
                } else {
                    counts.insert(room.as_str(), left)?;
                }
            }
            let mut mailbox = tx.open_table(MAILBOX)?;
            let mut mailbox_ids = tx.open_table(MAILBOX_IDS)?;
            let mut depositors = tx.open_table(DEPOSITORS)?;
            let old: Vec<(String, u64, String, String, u64)> = mailbox
                .iter()?
                .filter_map(|e| e.ok())
                .filter(|(k, _)| k.value().1 < mailbox_cutoff)
                .map(|(k, v)| {
                    let ((to, at, id), (depositor, sealed)) = (k.value(), v.value());
                    let size = dm_bytes(to, id, depositor, sealed);
                    (to.to_owned(), at, id.to_owned(), depositor.to_owned(), size)
                })
                .take(PRUNE_LIMIT)
                .collect();
            let mut origins = tx.open_table(MAIL_ORIGIN)?;
            for (to, at, id, depositor, size) in &old {
                mailbox.remove((to.as_str(), *at, id.as_str()))?;
                mailbox_ids.remove((to.as_str(), id.as_str()))?;
                forget_origins(&mut origins, to, id)?;
                count_deposit(&mut depositors, depositor, -1)?;
                freed += size;
            }
            let mut delivered = tx.open_table(DELIVERED)?;
            let stale: Vec<(String, String)> = delivered
                .iter()?
                .filter_map(|e| e.ok())
                .filter(|(_, v)| v.value() < mailbox_cutoff)
                .map(|(k, _)| {
                    let (from, id) = k.value();
                    (from.to_owned(), id.to_owned())
                })
                .take(PRUNE_LIMIT)
                .collect();
            for (from, id) in &stale {
                delivered.remove((from.as_str(), id.as_str()))?;
            }
            // Reports to a relay that never took them: it has forgotten those DMs by now.
            let mut reports = tx.open_table(MAIL_REPORTS)?;
            let unreported: Vec<(String, String, String)> = reports
                .iter()?
                .filter_map(|e| e.ok())
                .filter(|(_, v)| v.value() < mailbox_cutoff)
                .map(|(k, _)| {
                    let (origin, to, id) = k.value();
                    (origin.to_owned(), to.to_owned(), id.to_owned())
                })
                .take(PRUNE_LIMIT)
                .collect();
            for (origin, to, id) in &unreported {
                reports.remove((origin.as_str(), to.as_str(), id.as_str()))?;
            }
            if deleted + old.len() + stale.len() > 0 {
                tracing::info!(
                    messages = deleted,
                    dms = old.len(),
                    receipts = stale.len(),
                    "retention removed old entries"
                );
            }
        }
        tx.commit()?;
        self.bytes = self.bytes.saturating_sub(freed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{append_items, page, store, temp};
    use super::super::Retention;
    use p2p_chat_shared::store::HistoryQuery;
    use p2p_chat_shared::text::now_unix_ms;

    #[test]
    fn retention_keeps_the_newest_per_room_and_drops_old_ones() {
        let dir = temp();
        let retention = Retention {
            max_per_room: 3,
            max_age: Duration::from_secs(3600),
            ..Retention::default()
        };
        let mut store = store(&dir, retention);
        let now = now_unix_ms();
        let ancient = now - 2 * 3600 * 1000;
        append_items(&mut store, "lobby", [(ancient, "old")]);
        append_items(
            &mut store,
            "lobby",
            [
                (now + 1, "m1"),
                (now + 2, "m2"),
                (now + 3, "m3"),
                (now + 4, "m4"),
            ],
        );
        store.prune().expect("prune");
        let (kept, _) = page(
            &mut store,
            HistoryQuery {
                room: "lobby".into(),
                ..Default::default()
            },
        );
        assert_eq!(kept, ["m2", "m3", "m4"]);
        // A pruned message may be stored again (its id is forgotten too).
        append_items(&mut store, "lobby", [(now + 5, "old")]);
        let (kept, _) = page(
            &mut store,
            HistoryQuery {
                room: "lobby".into(),
                ..Default::default()
            },
        );
        assert_eq!(kept, ["m2", "m3", "m4", "old"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_flood_from_one_author_erases_its_own_messages_not_the_others() {
        let dir = temp();
        let retention = Retention {
            max_per_room: 100,
            ..Retention::default()
        };
        let mut store = store(&dir, retention);
        let now = now_unix_ms();
        let honest: Vec<String> = (0..30).map(|i| format!("honest-{i}")).collect();
        let honest_items: Vec<(u64, &'static str)> = honest
            .iter()
            .enumerate()
            .map(|(i, id)| (now + i as u64, &*Box::leak(id.clone().into_boxed_str())))
            .collect();
        append_items(&mut store, "lobby", honest_items);
        let flood: Vec<(u64, &'static str)> = (0..1000)
            .map(|i| {
                let id: &'static str = Box::leak(format!("spam-{i}").into_boxed_str());
                (now + 100 + i as u64, id)
            })
            .collect();
        append_items(&mut store, "lobby", flood);
        store.prune().expect("prune");
        let mut kept = Vec::new();
        let mut after = None;
        loop {
            let (ids, next) = page(
                &mut store,
                HistoryQuery {
                    room: "lobby".into(),
                    after,
                    ..Default::default()
                },
            );
            kept.extend(ids);
            match next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        assert_eq!(kept.len(), 100);
        assert_eq!(
            kept.iter().filter(|id| id.starts_with("honest")).count(),
            30,
            "every honest message stays"
        );
        assert_eq!(kept.last().map(String::as_str), Some("spam-999"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
