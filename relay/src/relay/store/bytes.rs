//! The store's byte cap ([`super::Retention::max_bytes`]): what room messages and waiting DMs
//! take, counted as they are written and deleted, and shed fairly when over the cap.
//!
//! **Who loses what.** Every stored row has a holder: a room message its author, a waiting DM
//! its depositor. Over the cap, the holders with the most bytes lose their oldest rows down to a
//! common level, until the store is back under [`SHED_TO_PERCENT`] of the cap: a flood, or junk
//! DMs for made-up peers, erases its own sender's rows first, and everyone under the level keeps
//! everything. Shedding runs right after the batch that went over, so the store exceeds its cap
//! by at most one batch.
//!
//! The count is of content (keys and values as stored, in both the table and its id index), not
//! of the file: redb reuses the pages that deletions free, so the file stops growing at a small
//! multiple of the cap; it does not shrink.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use redb::{ReadableDatabase, ReadableTable};

use super::mailbox::{
    count_deposit, forget_origins, DEPOSITORS, MAILBOX, MAILBOX_IDS, MAIL_ORIGIN,
};
use super::rooms::{MESSAGES, MESSAGE_IDS, ROOM_COUNTS};
use super::Store;

/// Shedding stops when the store holds this share of its cap (in percent), so that it does not
/// run again for every batch.
pub const SHED_TO_PERCENT: u64 = 90;
/// Most content one shedding pass deletes, which bounds the memory it needs; the next pass
/// follows while the store is still over.
const SHED_PER_PASS: u64 = 32 << 20;

/// The bytes a room message takes: (room, time, id) → (author, payload), and (room, id) → time.
pub(super) fn message_bytes(room: &str, id: &str, author: &str, payload: &str) -> u64 {
    (2 * (room.len() + id.len()) + author.len() + payload.len() + 16) as u64
}

/// The bytes a waiting DM takes: (recipient, stored at, id) → (depositor, sealed), and
/// (recipient, id) → stored at.
pub(super) fn dm_bytes(to: &str, id: &str, depositor: &str, sealed: &str) -> u64 {
    (2 * (to.len() + id.len()) + depositor.len() + sealed.len() + 16) as u64
}

/// What the store holds, counted from its tables (at open).
pub(super) fn count(db: &redb::Database) -> Result<u64, redb::Error> {
    let tx = db.begin_read()?;
    let mut total = 0;
    for entry in tx.open_table(MESSAGES)?.iter()? {
        let (key, value) = entry?;
        let ((room, _, id), (author, payload)) = (key.value(), value.value());
        total += message_bytes(room, id, author, payload);
    }
    for entry in tx.open_table(MAILBOX)?.iter()? {
        let (key, value) = entry?;
        let ((to, _, id), (depositor, sealed)) = (key.value(), value.value());
        total += dm_bytes(to, id, depositor, sealed);
    }
    Ok(total)
}

/// How many bytes each holder gives up so that `goal` bytes go, all from the holders above a
/// common level (those with the most give the most; nobody goes below the level).
fn level_cuts(held: HashMap<String, u64>, goal: u64) -> HashMap<String, u64> {
    let mut holders: Vec<(String, u64)> = held.into_iter().collect();
    holders.sort_by_key(|(_, bytes)| Reverse(*bytes));
    let mut sum = 0u64;
    let mut level = 0;
    let mut above = holders.len();
    for (k, (_, bytes)) in holders.iter().enumerate() {
        sum += bytes;
        let next = holders.get(k + 1).map_or(0, |(_, b)| *b);
        // With the first k+1 holders cut to `candidate`, exactly `goal` goes (or more).
        let candidate = sum.saturating_sub(goal) / (k as u64 + 1);
        if sum >= goal && candidate >= next {
            level = candidate;
            above = k + 1;
            break;
        }
    }
    holders
        .into_iter()
        .take(above)
        .filter(|(_, bytes)| *bytes > level)
        .map(|(holder, bytes)| (holder, bytes - level))
        .collect()
}

/// Where a row to shed is.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Row {
    Message { room: String, id: String },
    Dm { to: String, id: String },
}

/// A holder's oldest rows that together make its cut: a heap by time, the newest on top, that
/// drops its newest while what is left still makes the cut.
#[derive(Default)]
struct Oldest {
    rows: BinaryHeap<(u64, Row, u64)>,
    bytes: u64,
}

impl Oldest {
    fn offer(&mut self, cut: u64, at: u64, row: Row, size: u64) {
        self.rows.push((at, row, size));
        self.bytes += size;
        while let Some((_, _, newest)) = self.rows.peek() {
            if self.bytes - newest < cut {
                break;
            }
            self.bytes -= newest;
            self.rows.pop();
        }
    }
}

impl Store {
    /// Where shedding stops.
    fn floor(&self) -> u64 {
        self.retention.max_bytes / 100 * SHED_TO_PERCENT
    }

    /// Whether shedding is due: the store went over its cap (0: none), and is not yet back
    /// under [`SHED_TO_PERCENT`] of it.
    pub(super) fn shed_due(&self) -> bool {
        let cap = self.retention.max_bytes;
        cap > 0 && (self.bytes > cap || (self.shedding && self.bytes > self.floor()))
    }

    /// Deletes the oldest rows of the largest holders, at most [`SHED_PER_PASS`] a pass; passes
    /// go on (one per turn of the store thread) until the store is back under
    /// [`SHED_TO_PERCENT`] of its cap.
    pub(super) fn shed(&mut self) -> Result<(), redb::Error> {
        if !self.shed_due() {
            self.shedding = false;
            return Ok(());
        }
        self.shedding = true;
        let goal = self.bytes.saturating_sub(self.floor()).min(SHED_PER_PASS);
        let tx = self.db()?.begin_write()?;
        let mut freed = 0u64;
        let mut rows_freed = 0usize;
        {
            let mut messages = tx.open_table(MESSAGES)?;
            let mut mailbox = tx.open_table(MAILBOX)?;
            let mut held: HashMap<String, u64> = HashMap::new();
            for entry in messages.iter()? {
                let (key, value) = entry?;
                let ((room, _, id), (author, payload)) = (key.value(), value.value());
                *held.entry(author.to_owned()).or_default() +=
                    message_bytes(room, id, author, payload);
            }
            for entry in mailbox.iter()? {
                let (key, value) = entry?;
                let ((to, _, id), (depositor, sealed)) = (key.value(), value.value());
                *held.entry(depositor.to_owned()).or_default() +=
                    dm_bytes(to, id, depositor, sealed);
            }
            let cuts = level_cuts(held, goal);
            let mut oldest: HashMap<&str, Oldest> = HashMap::new();
            for entry in messages.iter()? {
                let (key, value) = entry?;
                let ((room, ts, id), (author, payload)) = (key.value(), value.value());
                if let Some((holder, cut)) = cuts.get_key_value(author) {
                    let row = Row::Message {
                        room: room.to_owned(),
                        id: id.to_owned(),
                    };
                    let size = message_bytes(room, id, author, payload);
                    oldest.entry(holder).or_default().offer(*cut, ts, row, size);
                }
            }
            for entry in mailbox.iter()? {
                let (key, value) = entry?;
                let ((to, at, id), (depositor, sealed)) = (key.value(), value.value());
                if let Some((holder, cut)) = cuts.get_key_value(depositor) {
                    let row = Row::Dm {
                        to: to.to_owned(),
                        id: id.to_owned(),
                    };
                    let size = dm_bytes(to, id, depositor, sealed);
                    oldest.entry(holder).or_default().offer(*cut, at, row, size);
                }
            }
            let mut ids = tx.open_table(MESSAGE_IDS)?;
            let mut counts = tx.open_table(ROOM_COUNTS)?;
            let mut mailbox_ids = tx.open_table(MAILBOX_IDS)?;
            let mut depositors = tx.open_table(DEPOSITORS)?;
            let mut origins = tx.open_table(MAIL_ORIGIN)?;
            for (holder, rows) in oldest {
                for (at, row, size) in rows.rows {
                    match row {
                        Row::Message { room, id } => {
                            messages.remove((room.as_str(), at, id.as_str()))?;
                            ids.remove((room.as_str(), id.as_str()))?;
                            let left = counts
                                .get(room.as_str())?
                                .map_or(0, |c| c.value())
                                .saturating_sub(1);
                            if left == 0 {
                                counts.remove(room.as_str())?;
                            } else {
                                counts.insert(room.as_str(), left)?;
                            }
                        }
                        Row::Dm { to, id } => {
                            mailbox.remove((to.as_str(), at, id.as_str()))?;
                            mailbox_ids.remove((to.as_str(), id.as_str()))?;
                            forget_origins(&mut origins, &to, &id)?;
                            count_deposit(&mut depositors, holder, -1)?;
                        }
                    }
                    freed += size;
                    rows_freed += 1;
                }
            }
        }
        tx.commit()?;
        self.bytes = self.bytes.saturating_sub(freed);
        self.shedding = self.bytes > self.floor();
        if rows_freed == 0 {
            // Nothing to shed although over: the running count was wrong. Count again.
            let counted = count(self.db()?)?;
            tracing::warn!(
                counted,
                held = self.bytes,
                "the store's byte count was off; counted again"
            );
            self.bytes = counted;
            self.shedding = false;
            return Ok(());
        }
        tracing::warn!(
            rows = rows_freed,
            bytes = freed,
            held = self.bytes,
            cap = self.retention.max_bytes,
            "the store was over its byte cap; the oldest rows of its largest holders were deleted"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{append_from, page, store, temp};
    use super::super::Retention;
    use super::*;
    use libp2p::PeerId;
    use p2p_chat_shared::store::{
        Deposit, HistoryItem, HistoryQuery, StoreJob, StoreRequest, StoreResponse,
    };
    use p2p_chat_shared::text::now_unix_ms;

    #[test]
    fn the_level_takes_from_the_largest_holders_only() {
        let held: HashMap<String, u64> = [("flood", 1000), ("chatty", 300), ("quiet", 50)]
            .into_iter()
            .map(|(h, b)| (h.to_owned(), b))
            .collect();
        let cuts = level_cuts(held.clone(), 500);
        assert_eq!(cuts.get("flood"), Some(&500));
        assert_eq!(cuts.len(), 1, "{cuts:?}");
        // A larger goal brings the largest two down to one level; the smallest keeps its own.
        let cuts = level_cuts(held.clone(), 1100);
        assert_eq!(
            (cuts.get("flood"), cuts.get("chatty")),
            (Some(&900), Some(&200))
        );
        assert!(!cuts.contains_key("quiet"));
        // More than everything: everyone goes.
        let cuts = level_cuts(held, 5000);
        assert_eq!(cuts.values().sum::<u64>(), 1350);
    }

    fn deposit(store: &mut Store, from: PeerId, to: PeerId, id: &str, sealed: &str) {
        let (reply, answer) = futures::channel::oneshot::channel();
        let request = StoreRequest::Deposit(Deposit {
            to,
            id: id.to_owned(),
            sealed: sealed.to_owned(),
        });
        store.process(vec![StoreJob::Request {
            from,
            request,
            reply,
        }]);
        let answer = futures::executor::block_on(answer).expect("an answer");
        assert!(
            matches!(answer, StoreResponse::Deposited { .. }),
            "{answer:?}"
        );
    }

    #[test]
    fn a_flood_over_the_byte_cap_erases_its_own_rows_and_the_count_stays_true() {
        let dir = temp();
        let cap = 200_000;
        let retention = Retention {
            max_bytes: cap,
            ..Retention::default()
        };
        let mut store = store(&dir, retention);
        let now = now_unix_ms();
        let (alice, bob, mallory) = (PeerId::random(), PeerId::random(), PeerId::random());
        append_from(
            &mut store,
            "lobby",
            alice,
            (0..20).map(|i| (now + i, format!("alice-{i}"))),
        );
        deposit(&mut store, bob, alice, "dm-bob", &"b".repeat(500));
        // Mallory floods two rooms and deposits junk for made-up peers: about 2 MB in all.
        for round in 0..20u64 {
            let at = now + 100 + round * 100;
            let room = ["lobby", "other"][round as usize % 2];
            let jobs = (0..20)
                .map(|i| StoreJob::Append {
                    room: room.to_owned(),
                    item: HistoryItem {
                        id: format!("spam-{round}-{i}"),
                        from: mallory,
                        ts: at + i,
                        payload: "x".repeat(4000),
                    },
                })
                .collect();
            store.process(jobs);
            deposit(
                &mut store,
                mallory,
                PeerId::random(),
                &format!("junk-{round}"),
                &"j".repeat(8000),
            );
            while store.shed_due() {
                store.shed().expect("shed");
            }
            assert!(store.bytes <= cap + 100_000, "{} held", store.bytes);
        }
        assert!(
            store.bytes <= cap,
            "{} held after the last pass",
            store.bytes
        );
        let (kept, _) = page(
            &mut store,
            HistoryQuery {
                room: "lobby".into(),
                limit: Some(100),
                ..Default::default()
            },
        );
        let honest = kept.iter().filter(|id| id.starts_with("alice-")).count();
        assert_eq!(honest, 20, "every honest message stays");
        assert!(
            kept.iter().any(|id| id.starts_with("spam-18-")),
            "the newest spam of the room stays"
        );
        assert!(
            !kept.iter().any(|id| id.starts_with("spam-0-")),
            "the oldest spam went"
        );
        match store.read(alice, StoreRequest::Fetch) {
            Ok(StoreResponse::Mailbox { dms }) => {
                assert!(dms.iter().any(|d| d.from == bob), "the honest DM stays")
            }
            other => panic!("expected a mailbox, got {other:?}"),
        }
        // The running count is what the tables hold.
        let counted = count(store.db().expect("db")).expect("count");
        assert_eq!(store.bytes, counted);
        let _ = std::fs::remove_dir_all(dir);
    }
}
