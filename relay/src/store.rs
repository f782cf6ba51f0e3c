//! The relay's store: room messages and sealed DMs for offline peers in a redb database under
//! the data dir, served over the store protocol (`p2p_chat_shared::store`).
//!
//! It runs on a thread of its own and takes its work from a bounded queue, so the swarm never
//! waits on the disk. Work is done in batches: one write transaction (fsync'd before commit
//! returns: redb's `Durability::Immediate`) for everything queued, then the answers. A receipt
//! or a deposit is answered only after the commit that holds its message, so an acknowledged
//! message survives a crash. Retention (age and count per room, age and count per mailbox) is
//! applied at start and every minute.
//!
//! Tables:
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `messages` | (room, time, id) | (author, payload) |
//! | `message_ids` | (room, id) | time |
//! | `room_counts` | room | messages kept |
//! | `mailbox` | (recipient, stored at, id) | (depositor, sealed) |
//! | `mailbox_ids` | (recipient, id) | stored at |
//! | `delivered` | (depositor, id) | fetched at |

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use libp2p::PeerId;
use p2p_chat_shared::store::{
    Cursor, Deposit, HistoryItem, HistoryQuery, StoreHandle, StoreJob, StoreRequest, StoreResponse,
    StoredDm, MAX_IDS_PER_REQUEST, MAX_PAGE_BYTES,
};
use p2p_chat_shared::text::now_unix_ms;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

type RoomKey<'a> = (&'a str, u64, &'a str);

const MESSAGES: TableDefinition<RoomKey, (&str, &str)> = TableDefinition::new("messages");
const MESSAGE_IDS: TableDefinition<(&str, &str), u64> = TableDefinition::new("message_ids");
const ROOM_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("room_counts");
const MAILBOX: TableDefinition<RoomKey, (&str, &str)> = TableDefinition::new("mailbox");
const MAILBOX_IDS: TableDefinition<(&str, &str), u64> = TableDefinition::new("mailbox_ids");
const DELIVERED: TableDefinition<(&str, &str), u64> = TableDefinition::new("delivered");

/// Jobs waiting for the store thread before new ones are refused ("busy").
pub const QUEUE: usize = 16_384;
/// Most jobs in one write transaction.
const BATCH: usize = 2048;
/// How long the store gathers room messages after the first of a batch, so that a busy room
/// costs one commit (and its fsync) per this period instead of one per message. Receipts wait
/// for the commit, so this is how much later a sender sees "kept"; nothing is acknowledged
/// before it is on disk.
const COMMIT_GATHER: Duration = Duration::from_millis(10);
/// How often the store's housekeeping (receipts that waited too long, retention) runs.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// How long a receipt waits for its message to arrive and be written.
const RECEIPT_WAIT: Duration = Duration::from_secs(10);
/// How often retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Most rows one retention pass deletes per table (the rest next time).
const PRUNE_LIMIT: usize = 50_000;

/// What the store keeps, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Room messages older than this are deleted.
    pub max_age: Duration,
    /// Most messages kept per room (the oldest go first).
    pub max_per_room: u64,
    /// Sealed DMs not fetched within this are deleted.
    pub mailbox_max_age: Duration,
    /// Most sealed DMs kept per recipient (further deposits are refused).
    pub mailbox_max_per_peer: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 24 * 3600),
            max_per_room: 10_000,
            mailbox_max_age: Duration::from_secs(30 * 24 * 3600),
            mailbox_max_per_peer: 1000,
        }
    }
}

/// Why the store could not open.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file.
    #[error("cannot open the store {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: redb::Error,
    },
    /// The thread.
    #[error("cannot start the store thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Opens (or creates) the store at `path` and starts its thread. The thread ends when every
/// [`StoreHandle`] is dropped.
pub fn open(
    path: &Path,
    retention: Retention,
) -> Result<(StoreHandle, std::thread::JoinHandle<()>), StoreError> {
    let fail = |source: redb::Error| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let db = Database::create(path).map_err(|e| fail(e.into()))?;
    let store = Store {
        db,
        retention,
        waiting: Vec::new(),
    };
    store.create_tables().map_err(fail)?;
    if let Err(e) = store.prune() {
        tracing::error!(error = %e, "store retention failed");
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("store".to_owned())
        .spawn(move || store.run(rx))?;
    Ok((tx, thread))
}

struct Store {
    db: Database,
    retention: Retention,
    /// Receipts waiting for their messages.
    waiting: Vec<Parked>,
}

/// A receipt request waiting for messages not yet written.
struct Parked {
    room: String,
    ids: Vec<String>,
    missing: HashSet<String>,
    reply: oneshot::Sender<StoreResponse>,
    deadline: std::time::Instant,
}

/// The smallest string after every key that starts with `prefix` as its first tuple element.
fn after(prefix: &str) -> String {
    format!("{prefix}\0")
}

impl Store {
    fn create_tables(&self) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        tx.open_table(MESSAGES)?;
        tx.open_table(MESSAGE_IDS)?;
        tx.open_table(ROOM_COUNTS)?;
        tx.open_table(MAILBOX)?;
        tx.open_table(MAILBOX_IDS)?;
        tx.open_table(DELIVERED)?;
        tx.commit()?;
        Ok(())
    }

    fn run(mut self, mut rx: mpsc::Receiver<StoreJob>) {
        let mut next_prune = std::time::Instant::now() + PRUNE_EVERY;
        let mut housekeeping = futures_timer::Delay::new(HOUSEKEEPING);
        loop {
            let first = futures::executor::block_on(async {
                match futures::future::select(rx.next(), &mut housekeeping).await {
                    futures::future::Either::Left((job, _)) => Some(job),
                    futures::future::Either::Right(_) => None,
                }
            });
            let mut batch = Vec::new();
            match first {
                Some(Some(job)) => {
                    if matches!(job, StoreJob::Append { .. }) {
                        std::thread::sleep(COMMIT_GATHER);
                    }
                    batch.push(job);
                }
                Some(None) => break, // every handle dropped: the relay stopped
                None => housekeeping.reset(HOUSEKEEPING),
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.process(batch);
            }
            self.expire_receipts();
            if std::time::Instant::now() >= next_prune {
                next_prune = std::time::Instant::now() + PRUNE_EVERY;
                if let Err(e) = self.prune() {
                    tracing::error!(error = %e, "store retention failed");
                }
            }
        }
        tracing::debug!("store stopped");
    }

    /// Writes everything of the batch in one transaction, then answers.
    fn process(&mut self, batch: Vec<StoreJob>) {
        let mut appended: Vec<(String, String)> = Vec::new();
        let mut writes: Vec<(PeerId, StoreRequest, oneshot::Sender<StoreResponse>)> = Vec::new();
        let mut reads = Vec::new();
        let mut items = Vec::new();
        for job in batch {
            match job {
                StoreJob::Append { room, item } => items.push((room, item)),
                StoreJob::Request {
                    from,
                    request,
                    reply,
                } => match request {
                    StoreRequest::Deposit(_) | StoreRequest::Ack { .. } => {
                        writes.push((from, request, reply));
                    }
                    other => reads.push((from, other, reply)),
                },
            }
        }
        if !items.is_empty() || !writes.is_empty() {
            let now = now_unix_ms();
            let mut answers = Vec::new();
            let result = (|| -> Result<(), redb::Error> {
                let tx = self.db.begin_write()?;
                {
                    let mut messages = tx.open_table(MESSAGES)?;
                    let mut ids = tx.open_table(MESSAGE_IDS)?;
                    let mut counts = tx.open_table(ROOM_COUNTS)?;
                    for (room, item) in &items {
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
                        appended.push((room.clone(), item.id.clone()));
                    }
                    for (from, request, _) in &writes {
                        let answer = match request {
                            StoreRequest::Deposit(deposit) => {
                                self.deposit(&tx, *from, deposit, now)?
                            }
                            StoreRequest::Ack { ids } => self.ack(&tx, *from, ids, now)?,
                            _ => StoreResponse::error("not a write"),
                        };
                        answers.push(answer);
                    }
                }
                tx.commit()?;
                Ok(())
            })();
            match result {
                Ok(()) => {
                    for ((_, _, reply), answer) in writes.into_iter().zip(answers) {
                        let _ = reply.send(answer);
                    }
                    self.written(&appended);
                }
                Err(e) => {
                    tracing::error!(error = %e, messages = items.len(), "store write failed; this batch is lost");
                    for (_, _, reply) in writes {
                        let _ =
                            reply.send(StoreResponse::error(format!("store write failed: {e}")));
                    }
                }
            }
        }
        for (from, request, reply) in reads {
            if let StoreRequest::Receipt { room, ids } = request {
                match self.missing(&room, &ids) {
                    Ok(missing) if missing.is_empty() => {
                        let _ = reply.send(StoreResponse::Stored { ids });
                    }
                    Ok(missing) => {
                        // Some have not arrived yet: answer when they are written.
                        self.waiting.push(Parked {
                            room,
                            ids,
                            missing,
                            reply,
                            deadline: std::time::Instant::now() + RECEIPT_WAIT,
                        });
                    }
                    Err(e) => {
                        let _ = reply.send(StoreResponse::error(format!("store read failed: {e}")));
                    }
                }
                continue;
            }
            match self.read(from, request) {
                Ok(answer) => {
                    let _ = reply.send(answer);
                }
                Err(e) => {
                    tracing::error!(error = %e, "store read failed");
                    let _ = reply.send(StoreResponse::error(format!("store read failed: {e}")));
                }
            }
        }
    }

    fn deposit(
        &self,
        tx: &redb::WriteTransaction,
        from: PeerId,
        deposit: &Deposit,
        now: u64,
    ) -> Result<StoreResponse, redb::Error> {
        let to = deposit.to.to_base58();
        let mut ids = tx.open_table(MAILBOX_IDS)?;
        if ids.get((to.as_str(), deposit.id.as_str()))?.is_some() {
            return Ok(StoreResponse::Deposited {
                id: deposit.id.clone(),
            });
        }
        let held = ids
            .range((to.as_str(), "")..(after(&to).as_str(), ""))?
            .count() as u64;
        if held >= self.retention.mailbox_max_per_peer {
            return Ok(StoreResponse::error(format!(
                "the mailbox of {} is full ({held} messages waiting)",
                deposit.to
            )));
        }
        let mut mailbox = tx.open_table(MAILBOX)?;
        let from = from.to_base58();
        mailbox.insert(
            (to.as_str(), now, deposit.id.as_str()),
            (from.as_str(), deposit.sealed.as_str()),
        )?;
        ids.insert((to.as_str(), deposit.id.as_str()), now)?;
        Ok(StoreResponse::Deposited {
            id: deposit.id.clone(),
        })
    }

    fn ack(
        &self,
        tx: &redb::WriteTransaction,
        recipient: PeerId,
        acked: &[String],
        now: u64,
    ) -> Result<StoreResponse, redb::Error> {
        let to = recipient.to_base58();
        let mut ids = tx.open_table(MAILBOX_IDS)?;
        let mut mailbox = tx.open_table(MAILBOX)?;
        let mut delivered = tx.open_table(DELIVERED)?;
        let mut count = 0;
        for id in acked {
            let Some(stored_at) = ids.remove((to.as_str(), id.as_str()))?.map(|v| v.value()) else {
                continue;
            };
            let depositor = mailbox
                .remove((to.as_str(), stored_at, id.as_str()))?
                .map(|v| v.value().0.to_owned());
            if let Some(depositor) = depositor {
                delivered.insert((depositor.as_str(), id.as_str()), now)?;
            }
            count += 1;
        }
        Ok(StoreResponse::Acked { count })
    }

    /// Which of `ids` of `room` are not stored.
    fn missing(&self, room: &str, ids: &[String]) -> Result<HashSet<String>, redb::Error> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MESSAGE_IDS)?;
        let mut missing = HashSet::new();
        for id in ids {
            if table.get((room, id.as_str()))?.is_none() {
                missing.insert(id.clone());
            }
        }
        Ok(missing)
    }

    /// Messages were committed: answer the receipts that waited only for them.
    fn written(&mut self, appended: &[(String, String)]) {
        if self.waiting.is_empty() || appended.is_empty() {
            return;
        }
        for parked in &mut self.waiting {
            for (room, id) in appended {
                if *room == parked.room {
                    parked.missing.remove(id);
                }
            }
        }
        let (done, waiting): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|p| p.missing.is_empty());
        self.waiting = waiting;
        for parked in done {
            let _ = parked.reply.send(StoreResponse::Stored { ids: parked.ids });
        }
    }

    /// Answers a read request.
    fn read(&self, from: PeerId, request: StoreRequest) -> Result<StoreResponse, redb::Error> {
        let tx = self.db.begin_read()?;
        let answer = match request {
            StoreRequest::Query(query) => {
                let messages = tx.open_table(MESSAGES)?;
                query_page(&messages, &query)?
            }
            StoreRequest::Fetch => {
                let mailbox = tx.open_table(MAILBOX)?;
                let to = from.to_base58();
                let mut dms = Vec::new();
                for entry in mailbox
                    .range((to.as_str(), 0, "")..(after(&to).as_str(), 0, ""))?
                    .take(MAX_IDS_PER_REQUEST)
                {
                    let (key, value) = entry?;
                    let (_, stored_at, id) = key.value();
                    let (depositor, sealed) = value.value();
                    let Ok(depositor) = depositor.parse::<PeerId>() else {
                        continue;
                    };
                    dms.push(StoredDm {
                        id: id.to_owned(),
                        from: depositor,
                        sealed: sealed.to_owned(),
                        stored_at,
                    });
                }
                StoreResponse::Mailbox { dms }
            }
            StoreRequest::Status { ids } => {
                let delivered = tx.open_table(DELIVERED)?;
                let me = from.to_base58();
                let mut done = Vec::new();
                for id in ids {
                    if delivered.get((me.as_str(), id.as_str()))?.is_some() {
                        done.push(id);
                    }
                }
                StoreResponse::Status { delivered: done }
            }
            StoreRequest::Deposit(_) | StoreRequest::Ack { .. } | StoreRequest::Receipt { .. } => {
                StoreResponse::error("not a read")
            }
        };
        Ok(answer)
    }

    /// Receipts that waited too long get the ids that are stored; the rest were not.
    fn expire_receipts(&mut self) {
        let now = std::time::Instant::now();
        let (late, waiting): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|p| now >= p.deadline);
        self.waiting = waiting;
        for parked in late {
            let ids = parked
                .ids
                .into_iter()
                .filter(|id| !parked.missing.contains(id))
                .collect();
            let _ = parked.reply.send(StoreResponse::Stored { ids });
        }
    }

    /// Applies the retention policy.
    fn prune(&self) -> Result<(), redb::Error> {
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

/// One page of a room's history.
fn query_page(
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

    /// Adds a stored row; `false` when the page is full (and there is more).
    fn take(&mut self, key: RoomKey, (from, payload): (&str, &str)) -> bool {
        if self.items.len() == self.size || self.bytes > MAX_PAGE_BYTES {
            self.more = true;
            return false;
        }
        let (_, ts, id) = key;
        if let Ok(from) = from.parse() {
            self.bytes += payload.len();
            self.items.push(HistoryItem {
                id: id.to_owned(),
                from,
                ts,
                payload: payload.to_owned(),
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, retention: Retention) -> Store {
        let db = Database::create(dir.join("store.redb")).expect("db");
        let store = Store {
            db,
            retention,
            waiting: Vec::new(),
        };
        store.create_tables().expect("tables");
        store
    }

    fn append(store: &mut Store, room: &str, items: impl IntoIterator<Item = (u64, &'static str)>) {
        let from = PeerId::random();
        let jobs = items
            .into_iter()
            .map(|(ts, id)| StoreJob::Append {
                room: room.to_owned(),
                item: HistoryItem {
                    id: id.to_owned(),
                    from,
                    ts,
                    payload: format!("text {id}"),
                },
            })
            .collect();
        store.process(jobs);
    }

    fn page(store: &Store, query: HistoryQuery) -> (Vec<String>, Option<Cursor>) {
        match store.read(PeerId::random(), StoreRequest::Query(query)) {
            Ok(StoreResponse::Page { messages, next }) => {
                (messages.into_iter().map(|m| m.id).collect(), next)
            }
            other => panic!("expected a page, got {other:?}"),
        }
    }

    fn temp() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("p2p-chat-store-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn pages_come_in_time_order_both_ways_and_a_repeat_is_stored_once() {
        let dir = temp();
        let mut store = store(&dir, Retention::default());
        let now = now_unix_ms();
        append(
            &mut store,
            "lobby",
            [(now + 3, "c"), (now + 1, "a"), (now + 2, "b")],
        );
        append(&mut store, "lobby", [(now + 1, "a")]);
        append(&mut store, "lobby2", [(now, "other room")]);
        let query = |limit, after, newest, before| HistoryQuery {
            room: "lobby".into(),
            limit: Some(limit),
            after,
            newest,
            before,
            ..Default::default()
        };
        let (first, next) = page(&store, query(2, None, false, None));
        assert_eq!(first, ["a", "b"]);
        let (rest, end) = page(&store, query(2, next, false, None));
        assert_eq!((rest, end), (vec!["c".to_owned()], None));
        let (newest, older) = page(&store, query(2, None, true, None));
        assert_eq!(newest, ["b", "c"]);
        let (oldest, _) = page(&store, query(2, None, true, older));
        assert_eq!(oldest, ["a"]);
        let _ = std::fs::remove_dir_all(dir);
    }

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
        append(&mut store, "lobby", [(ancient, "old")]);
        append(
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
        append(&mut store, "lobby", [(now + 5, "old")]);
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
