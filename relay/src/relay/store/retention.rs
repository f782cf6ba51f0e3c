//! Retention: room messages older than [`super::Retention::max_age`] or beyond
//! [`super::Retention::max_per_room`] (oldest first), sealed DMs not fetched within
//! [`super::Retention::mailbox_max_age`], and delivery notes as old, are deleted at start and
//! every minute, at most [`PRUNE_LIMIT`] rows per table a pass.

use p2p_chat_shared::text::now_unix_ms;
use redb::ReadableTable;

use super::mailbox::{DELIVERED, MAILBOX, MAILBOX_IDS};
use super::rooms::{MESSAGES, MESSAGE_IDS, ROOM_COUNTS};
use super::{after, Store};

/// Most rows one retention pass deletes per table (the rest next time).
const PRUNE_LIMIT: usize = 50_000;

impl Store {
    /// Applies the retention policy.
    pub(super) fn prune(&self) -> Result<(), redb::Error> {
        let now = now_unix_ms();
        let cutoff = now.saturating_sub(self.retention.max_age.as_millis() as u64);
        let mailbox_cutoff = now.saturating_sub(self.retention.mailbox_max_age.as_millis() as u64);
        let tx = self.db.begin_write()?;
        let mut deleted = 0usize;
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
                let excess = count.saturating_sub(self.retention.max_per_room);
                let mut doomed: Vec<(u64, String)> = Vec::new();
                for entry in
                    messages.range((room.as_str(), 0, "")..(after(&room).as_str(), 0, ""))?
                {
                    let (key, _) = entry?;
                    let (_, ts, id) = key.value();
                    if (doomed.len() as u64) < excess || ts < cutoff {
                        doomed.push((ts, id.to_owned()));
                    } else {
                        break;
                    }
                    if deleted + doomed.len() >= PRUNE_LIMIT {
                        break;
                    }
                }
                for (ts, id) in &doomed {
                    messages.remove((room.as_str(), *ts, id.as_str()))?;
                    ids.remove((room.as_str(), id.as_str()))?;
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
            let old: Vec<(String, u64, String)> = mailbox
                .iter()?
                .filter_map(|e| e.ok())
                .map(|(k, _)| {
                    let (to, at, id) = k.value();
                    (to.to_owned(), at, id.to_owned())
                })
                .filter(|(_, at, _)| *at < mailbox_cutoff)
                .take(PRUNE_LIMIT)
                .collect();
            for (to, at, id) in &old {
                mailbox.remove((to.as_str(), *at, id.as_str()))?;
                mailbox_ids.remove((to.as_str(), id.as_str()))?;
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
            &store,
            HistoryQuery {
                room: "lobby".into(),
                ..Default::default()
            },
        );
        assert_eq!(kept, ["m2", "m3", "m4"]);
        // A pruned message may be stored again (its id is forgotten too).
        append_items(&mut store, "lobby", [(now + 5, "old")]);
        let (kept, _) = page(
            &store,
            HistoryQuery {
                room: "lobby".into(),
                ..Default::default()
            },
        );
        assert_eq!(kept, ["m2", "m3", "m4", "old"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
