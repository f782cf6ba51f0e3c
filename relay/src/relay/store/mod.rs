//! The relay's store: room messages and sealed DMs for offline peers in a redb database under
//! the data dir, behind the store protocol (`p2p_chat_shared::store`; the hub hands it the
//! requests: `p2p_chat_shared::hub`). By concern: [`rooms`] (filing and paging history),
//! [`receipts`], [`mailbox`], [`retention`]; this module runs the thread and its batches.
//!
//! It runs on a thread of its own and takes its work from a bounded queue, so the swarm never
//! waits on the disk. Work is done in batches: one write transaction (fsync'd before commit
//! returns: redb's `Durability::Immediate`) for everything queued, then the answers. A receipt
//! or a deposit is answered only after the commit that holds its message, so an acknowledged
//! message survives a crash. Retention (age and count per room, age and count per mailbox) is
//! applied at start and every minute; the byte cap ([`bytes`]) right after a batch goes over it.
//!
//! **When the disk fails** (full, read-only, an I/O error), nothing is acknowledged that is not
//! on disk: the writes of the failed batch are answered with the error, waiting receipts too,
//! and [`StoreHealth`] says `failing` with the reason (the relay's `/healthz` then reports
//! `degraded`). The database is closed and opened again at the next batch or tick, and a real
//! write is tried every [`PROBE_EVERY`], so the store recovers by itself when space comes back,
//! and says so, even with nothing to write.
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
//! | `mailbox_depositors` | depositor | DMs it has waiting |
//! | `mail_origin` | (recipient, id, relay) | () for a DM taken from that relay (`crate::relay::mail`) |
//! | `mail_reports` | (relay, recipient, id) | when a DM taken from that relay was fetched here, until it is told |
//! | `probe` | `"probe"` | [`PROBE_BYTES`] while the store checks it can write again |

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use libp2p::PeerId;
use p2p_chat_shared::store::{StoreHandle, StoreJob, StoreRequest, StoreResponse};
use p2p_chat_shared::text::now_unix_ms;
use redb::{Database, ReadableDatabase, ReadableTableMetadata};

pub use metrics::StoreMetrics;

mod bytes;
mod mailbox;
pub mod metrics;
mod receipts;
mod retention;
mod rooms;

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
/// How often retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// While the store cannot write, how often it tries a real write to learn whether it can again
/// (so that an idle relay does not stay `degraded` once space is back).
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// The size of that write: far more than a message or a DM takes, so that when it fits, they do
/// (an empty commit is not enough: it can succeed on a disk too full for any real write).
const PROBE_BYTES: usize = 256 * 1024;
/// The probe's table: written and emptied again at once.
const PROBE: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("probe");

/// What the store keeps, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Room messages older than this are deleted.
    pub max_age: Duration,
    /// Most messages kept per room (the oldest go first).
    pub max_per_room: u64,
    /// Sealed DMs not fetched within this are deleted.
    pub mailbox_max_age: Duration,
    /// Most sealed DMs kept per recipient. When full, a deposit takes the place of the oldest
    /// DM of whoever holds the most there, if that is more than the depositor holds.
    pub mailbox_max_per_peer: u64,
    /// Most sealed DMs one depositor may have waiting, for all its recipients (further deposits
    /// are refused until some are fetched or expire).
    pub mailbox_max_per_depositor: u64,
    /// Most bytes of room messages and waiting DMs kept in all; over it, the largest holders
    /// lose their oldest first ([`bytes`]).
    pub max_bytes: u64,
}

/// The store's default byte cap: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 24 * 3600),
            max_per_room: 10_000,
            mailbox_max_age: Duration::from_secs(30 * 24 * 3600),
            mailbox_max_per_peer: 1000,
            mailbox_max_per_depositor: 500,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Why the store could not open.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file.
    #[error("cannot open the store {path}: {source}. If the file is damaged, stop the relay, move it aside (the relay then starts with an empty store) or restore it from a backup")]
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

/// Whether the store can write, as its thread last found: what `/healthz` reports.
#[derive(Debug, Clone, Default)]
pub struct StoreHealth(Arc<Mutex<Option<String>>>);

impl StoreHealth {
    /// Why the store cannot write, if it cannot.
    pub fn failing(&self) -> Option<String> {
        self.0
            .lock()
            .map_or_else(|e| e.into_inner().clone(), |g| g.clone())
    }

    fn set(&self, failing: Option<String>) {
        match self.0.lock() {
            Ok(mut guard) => *guard = failing,
            Err(e) => *e.into_inner() = failing,
        }
    }
}

/// What happened to mail in the store, for the relay's exchange of mail with other relays
/// (`crate::relay::mail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailNews {
    /// A peer deposited a DM here for `to`.
    Deposited {
        /// The recipient.
        to: PeerId,
    },
    /// The relay `origin` is to be told that DMs taken from it were fetched here (the reports
    /// wait in the store until it takes them).
    Delivered {
        /// The relay.
        origin: PeerId,
    },
    /// The relay `at` says it keeps mail for `to`.
    Waiting {
        /// The relay.
        at: PeerId,
        /// The recipients.
        to: Vec<PeerId>,
    },
}

/// News waiting for the mail exchange before more is dropped: a deposit then waits for the
/// hourly reminder, a hint from another relay is answered "busy" (and sent again), a report is
/// sent at the next round.
const NEWS_QUEUE: usize = 4096;

/// A running store: where the chat core hands it work, its thread, and its health.
pub struct Opened {
    /// The chat core's end of the store's queue.
    pub handle: StoreHandle,
    /// The store's thread; it ends when every handle is dropped.
    pub thread: std::thread::JoinHandle<()>,
    /// Whether it can write.
    pub health: StoreHealth,
    /// What happens to mail ([`MailNews`]); dropping it is fine.
    pub mail_news: mpsc::Receiver<MailNews>,
}

/// Opens (or creates) the store at `path` and starts its thread. The thread ends when every
/// [`StoreHandle`] is dropped.
pub fn open(path: &Path, retention: Retention) -> Result<Opened, StoreError> {
    open_metered(path, retention, StoreMetrics::default())
}

/// [`open`], recording in `metrics`.
pub fn open_metered(
    path: &Path,
    retention: Retention,
    metrics: StoreMetrics,
) -> Result<Opened, StoreError> {
    let fail = |source: redb::Error| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let mut store = Store::open(path, retention).map_err(fail)?;
    store.metrics = metrics;
    let mut startup = store.prune();
    while startup.is_ok() && store.shed_due() {
        startup = store.shed();
    }
    if let Err(e) = startup {
        tracing::error!(error = %e, "store retention failed");
    }
    store.measure();
    let health = store.health.clone();
    let (news, mail_news) = mpsc::channel(NEWS_QUEUE);
    store.news = Some(news);
    let (tx, rx) = mpsc::channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("store".to_owned())
        .spawn(move || store.run(rx))?;
    Ok(Opened {
        handle: tx,
        thread,
        health,
        mail_news,
    })
}

/// The database and what waits on it; owned by the store thread.
struct Store {
    path: PathBuf,
    /// `None` after a failed write, until it is opened again.
    db: Option<Database>,
    retention: Retention,
    /// Receipts waiting for their messages.
    waiting: Vec<receipts::Parked>,
    health: StoreHealth,
    /// Bytes of content held ([`bytes`]): counted at open, then kept up to date by every commit.
    bytes: u64,
    /// Whether shedding went over the cap and is not yet back under its floor.
    shedding: bool,
    metrics: StoreMetrics,
    /// Where [`MailNews`] goes.
    news: Option<mpsc::Sender<MailNews>>,
}

/// The smallest string after every key that starts with `prefix` as its first tuple element.
fn after(prefix: &str) -> String {
    format!("{prefix}\0")
}

impl Store {
    /// Opens the database and creates its tables.
    fn open(path: &Path, retention: Retention) -> Result<Self, redb::Error> {
        let db = Self::open_db(path)?;
        let bytes = bytes::count(&db)?;
        Ok(Self {
            path: path.to_owned(),
            db: Some(db),
            retention,
            waiting: Vec::new(),
            health: StoreHealth::default(),
            bytes,
            shedding: false,
            metrics: StoreMetrics::default(),
            news: None,
        })
    }

    fn open_db(path: &Path) -> Result<Database, redb::Error> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(rooms::MESSAGES)?;
        tx.open_table(rooms::MESSAGE_IDS)?;
        tx.open_table(rooms::ROOM_COUNTS)?;
        tx.open_table(mailbox::MAILBOX)?;
        tx.open_table(mailbox::MAILBOX_IDS)?;
        tx.open_table(mailbox::DELIVERED)?;
        tx.open_table(mailbox::MAIL_ORIGIN)?;
        tx.open_table(mailbox::MAIL_REPORTS)?;
        mailbox::count_depositors(&tx)?;
        tx.commit()?;
        Ok(db)
    }

    /// The database, opened again if a failure closed it.
    fn db(&mut self) -> Result<&Database, redb::Error> {
        let db = match self.db.take() {
            Some(db) => db,
            None => {
                let db = Self::open_db(&self.path)?;
                tracing::info!(path = %self.path.display(), "store opened again");
                db
            }
        };
        Ok(self.db.insert(db))
    }

    /// A write failed: nothing waiting is acknowledged, the database is closed (a failed commit
    /// leaves redb refusing everything until reopened), and health says why.
    fn write_failed(&mut self, e: &redb::Error) -> String {
        let reason = format!("the relay's store cannot write ({e}); nothing was kept");
        if self.health.failing().is_none() {
            tracing::error!(error = %e, path = %self.path.display(), "store write failed; the store is degraded until a write succeeds");
        }
        self.health.set(Some(reason.clone()));
        self.db = None;
        for parked in std::mem::take(&mut self.waiting) {
            parked.fail(&reason);
        }
        reason
    }

    /// Writes [`PROBE_BYTES`] and deletes them: whether the store can write again.
    fn probe(&mut self) -> Result<(), redb::Error> {
        let db = self.db()?;
        let tx = db.begin_write()?;
        tx.open_table(PROBE)?
            .insert("probe", vec![0u8; PROBE_BYTES].as_slice())?;
        tx.commit()?;
        let tx = db.begin_write()?;
        tx.open_table(PROBE)?.remove("probe")?;
        tx.commit()?;
        Ok(())
    }

    /// A write succeeded.
    fn write_succeeded(&mut self) {
        if self.health.failing().is_some() {
            tracing::info!(path = %self.path.display(), "store writes again");
            self.health.set(None);
        }
    }

    /// Tells the mail exchange; `false` when it is behind (the news is dropped) or gone.
    fn tell(&mut self, news: MailNews) -> bool {
        let Some(sender) = self.news.as_mut() else {
            return false;
        };
        match sender.try_send(news) {
            Ok(()) => true,
            Err(e) => {
                if e.is_full() {
                    tracing::debug!("mail news dropped: the exchange is behind");
                }
                false
            }
        }
    }

    /// Measures what the store holds, for its metrics (constant time: redb keeps each table's
    /// length).
    fn measure(&mut self) {
        let counted = (|| -> Result<(u64, u64), redb::Error> {
            let tx = self.db()?.begin_read()?;
            let messages = tx.open_table(rooms::MESSAGES)?.len()?;
            let dms = tx.open_table(mailbox::MAILBOX)?.len()?;
            Ok((messages, dms))
        })();
        let (room_messages, dms_waiting) = match counted {
            Ok(counts) => counts,
            Err(e) => {
                tracing::debug!(error = %e, "store not measured");
                return;
            }
        };
        self.metrics.set_held(metrics::Held {
            content_bytes: self.bytes,
            max_bytes: self.retention.max_bytes,
            file_bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
            room_messages,
            dms_waiting,
        });
    }

    fn run(mut self, mut rx: mpsc::Receiver<StoreJob>) {
        let mut next_measure = Instant::now() + HOUSEKEEPING;
        let mut next_prune = Instant::now() + PRUNE_EVERY;
        let mut next_probe = Instant::now() + PROBE_EVERY;
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
            if self.db.is_none() {
                if let Err(e) = self.db() {
                    tracing::debug!(error = %e, "store still cannot open");
                }
            }
            if self.health.failing().is_some() && Instant::now() >= next_probe {
                next_probe = Instant::now() + PROBE_EVERY;
                match self.probe() {
                    Ok(()) => self.write_succeeded(),
                    Err(e) => {
                        tracing::debug!(error = %e, "store still cannot write");
                        self.write_failed(&e);
                    }
                }
            }
            if self.shed_due() && self.health.failing().is_none() {
                if let Err(e) = self.shed() {
                    tracing::error!(error = %e, "store shedding over its byte cap failed");
                    self.write_failed(&e);
                }
            }
            if Instant::now() >= next_prune {
                next_prune = Instant::now() + PRUNE_EVERY;
                if let Err(e) = self.prune() {
                    tracing::error!(error = %e, "store retention failed");
                    self.write_failed(&e);
                }
            }
            if Instant::now() >= next_measure {
                next_measure = Instant::now() + HOUSEKEEPING;
                self.measure();
            }
        }
        tracing::debug!("store stopped");
    }

    /// Writes everything of the batch in one transaction, then answers.
    fn process(&mut self, batch: Vec<StoreJob>) {
        let taken = Instant::now();
        type Write = (PeerId, StoreRequest, oneshot::Sender<StoreResponse>);
        let mut writes: Vec<Write> = Vec::new();
        let mut reads = Vec::new();
        let mut items = Vec::new();
        let mut local = Vec::new();
        let mut takes = Vec::new();
        let mut reported = Vec::new();
        for job in batch {
            match job {
                StoreJob::Append { room, item } => items.push((room, item)),
                job @ (StoreJob::SyncSet { .. }
                | StoreJob::Rooms { .. }
                | StoreJob::MailRecipients { .. }
                | StoreJob::MailReports { .. }) => local.push(job),
                StoreJob::MailReported {
                    origin,
                    to,
                    ids,
                    reply,
                } => reported.push((origin, to, ids, reply)),
                StoreJob::TakeMail {
                    origin,
                    to,
                    dms,
                    reply,
                } => takes.push((origin, to, dms, reply)),
                StoreJob::Request {
                    from,
                    request,
                    reply,
                } => match request {
                    StoreRequest::Deposit(_)
                    | StoreRequest::Ack { .. }
                    | StoreRequest::MailDelivered { .. } => {
                        writes.push((from, request, reply));
                    }
                    other => reads.push((from, other, reply)),
                },
            }
        }
        if !items.is_empty() || !writes.is_empty() || !takes.is_empty() || !reported.is_empty() {
            let now = now_unix_ms();
            let mut answers = Vec::new();
            let mut taken = Vec::new();
            // Whether each write was a new deposit.
            let mut new_deposits = Vec::new();
            // Relays to tell that DMs taken from them were fetched here.
            let mut told: Vec<PeerId> = Vec::new();
            // Bytes added (and taken away) by the batch, counted once it is committed.
            let mut delta = 0i64;
            let started = Instant::now();
            let result = (|| -> Result<Vec<(String, String)>, redb::Error> {
                let tx = self.db()?.begin_write()?;
                let appended = rooms::append(&tx, &items, &mut delta)?;
                for (from, request, _) in &writes {
                    let mut new = false;
                    let answer = match request {
                        StoreRequest::Deposit(deposit) => {
                            let answer;
                            (answer, new) = self.deposit(&tx, *from, deposit, now, &mut delta)?;
                            answer
                        }
                        StoreRequest::Ack { ids } => {
                            mailbox::ack(&tx, *from, ids, now, &mut delta, &mut told)?
                        }
                        // Another relay's recipient fetched these there.
                        StoreRequest::MailDelivered { to, ids } => {
                            mailbox::ack(&tx, *to, ids, now, &mut delta, &mut told)?
                        }
                        _ => StoreResponse::error("not a write"),
                    };
                    new_deposits.push(new);
                    answers.push(answer);
                }
                for (origin, to, dms, _) in &takes {
                    taken.push(self.take(&tx, *origin, *to, dms, now, &mut delta)?);
                }
                for (origin, to, ids, _) in &reported {
                    mailbox::reported(&tx, *origin, *to, ids)?;
                }
                tx.commit()?;
                Ok(appended)
            })();
            match result {
                Ok(appended) => {
                    let metrics = &self.metrics;
                    metrics
                        .commit_seconds
                        .observe(started.elapsed().as_secs_f64());
                    metrics.filed.inc_by(appended.len() as u64);
                    self.bytes = self.bytes.saturating_add_signed(delta);
                    self.write_succeeded();
                    let writes = writes.into_iter().zip(answers).zip(new_deposits);
                    for (((_, request, reply), answer), new) in writes {
                        if let (StoreRequest::Deposit(d), true) = (&request, new) {
                            self.tell(MailNews::Deposited { to: d.to });
                        }
                        let _ = reply.send(answer);
                    }
                    for ((_, _, _, reply), result) in takes.into_iter().zip(taken) {
                        let _ = reply.send(Ok(result));
                    }
                    for (_, _, _, reply) in reported {
                        let _ = reply.send(true);
                    }
                    for origin in told {
                        self.tell(MailNews::Delivered { origin });
                    }
                    self.written(&appended);
                }
                Err(e) => {
                    let reason = self.write_failed(&e);
                    tracing::warn!(
                        messages = items.len(),
                        requests = writes.len(),
                        "a batch was not stored"
                    );
                    for (_, _, reply) in writes {
                        let _ = reply.send(StoreResponse::error(reason.clone()));
                    }
                    for (_, _, _, reply) in takes {
                        let _ = reply.send(Err(reason.clone()));
                    }
                    for (_, _, _, reply) in reported {
                        let _ = reply.send(false);
                    }
                }
            }
        }
        // The relay's own questions, after the batch's writes (so they see them).
        for job in local {
            self.answer_locally(job);
        }
        for (from, request, reply) in reads {
            if let StoreRequest::Receipt { room, ids } = request {
                self.receipt(room, ids, reply);
                continue;
            }
            let query = matches!(request, StoreRequest::Query(_));
            match self.read(from, request) {
                Ok(answer) => {
                    let _ = reply.send(answer);
                    if query {
                        self.metrics.queries.inc();
                        let took = taken.elapsed().as_secs_f64();
                        self.metrics.query_seconds.observe(took);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "store read failed");
                    let _ = reply.send(StoreResponse::error(format!("store read failed: {e}")));
                }
            }
        }
    }

    /// Answers the relay's own question (its reconciliation with other relays).
    fn answer_locally(&mut self, job: StoreJob) {
        let failed = |e: redb::Error| format!("store read failed: {e}");
        match job {
            StoreJob::SyncSet { room, since, reply } => {
                let ids = (|| {
                    let tx = self.db()?.begin_read()?;
                    let messages = tx.open_table(rooms::MESSAGES)?;
                    rooms::sync_set(&messages, &room, since)
                })();
                let _ = reply.send(ids.map_err(failed));
            }
            StoreJob::Rooms { reply } => {
                let found = (|| rooms::rooms(&self.db()?.begin_read()?))();
                let _ = reply.send(found.map_err(failed));
            }
            StoreJob::MailRecipients {
                after,
                limit,
                reply,
            } => {
                let found = (|| mailbox::recipients(&self.db()?.begin_read()?, after, limit))();
                let _ = reply.send(found.map_err(failed));
            }
            StoreJob::MailReports {
                origin,
                limit,
                reply,
            } => {
                let found = (|| mailbox::reports(&self.db()?.begin_read()?, origin, limit))();
                let _ = reply.send(found.map_err(failed));
            }
            StoreJob::Append { .. }
            | StoreJob::Request { .. }
            | StoreJob::TakeMail { .. }
            | StoreJob::MailReported { .. } => {}
        }
    }

    /// Answers a read request.
    fn read(&mut self, from: PeerId, request: StoreRequest) -> Result<StoreResponse, redb::Error> {
        let tx = self.db()?.begin_read()?;
        match request {
            StoreRequest::Reconcile { room, since, msg } => {
                // Never further back than reconciliation looks: each round reads this range.
                let since = since.max(crate::relay::sync::window_start(now_unix_ms()));
                let messages = tx.open_table(rooms::MESSAGES)?;
                let ids = rooms::sync_set(&messages, &room, since)?;
                Ok(crate::relay::sync::answer_round(ids, &msg))
            }
            StoreRequest::Rooms => {
                let mut rooms = rooms::rooms(&tx)?;
                rooms.truncate(p2p_chat_shared::protocol::MAX_HUB_ROOMS);
                Ok(StoreResponse::Rooms { rooms })
            }
            StoreRequest::Pull { room, ids } => {
                let messages = tx.open_table(rooms::MESSAGES)?;
                let wanted = ids
                    .iter()
                    .filter_map(|id| p2p_chat_shared::files::from_hex(id))
                    .collect();
                let since = crate::relay::sync::window_start(now_unix_ms());
                rooms::pull(&messages, &room, &wanted, since)
            }
            StoreRequest::Query(query) => {
                let messages = tx.open_table(rooms::MESSAGES)?;
                rooms::query_page(&messages, &query)
            }
            StoreRequest::Fetch => mailbox::fetch(&tx, from),
            StoreRequest::MailFor { to } => mailbox::fetch(&tx, to),
            StoreRequest::Status { ids } => mailbox::status(&tx, from, ids),
            StoreRequest::MailWaiting { to } => {
                let count = to.len() as u32;
                drop(tx);
                if self.tell(MailNews::Waiting { at: from, to }) {
                    Ok(StoreResponse::Acked { count })
                } else {
                    Ok(StoreResponse::error("the relay is busy; try again shortly"))
                }
            }
            StoreRequest::Deposit(_)
            | StoreRequest::Ack { .. }
            | StoreRequest::MailDelivered { .. }
            | StoreRequest::Receipt { .. } => Ok(StoreResponse::error("not a read")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2p_chat_shared::store::{Cursor, HistoryItem, HistoryQuery};

    pub(super) fn store(dir: &Path, retention: Retention) -> Store {
        Store::open(&dir.join("store.redb"), retention).expect("store opens")
    }

    pub(super) fn append_items(
        store: &mut Store,
        room: &str,
        items: impl IntoIterator<Item = (u64, &'static str)>,
    ) {
        let items = items.into_iter().map(|(ts, id)| (ts, id.to_owned()));
        append_from(store, room, PeerId::random(), items);
    }

    /// Files messages of one author, each (time, id) with the payload "text <id>".
    pub(super) fn append_from(
        store: &mut Store,
        room: &str,
        from: PeerId,
        items: impl IntoIterator<Item = (u64, String)>,
    ) {
        let jobs = items
            .into_iter()
            .map(|(ts, id)| StoreJob::Append {
                room: room.to_owned(),
                item: HistoryItem {
                    payload: format!("text {id}"),
                    id,
                    from,
                    ts,
                },
            })
            .collect();
        store.process(jobs);
    }

    pub(super) fn page(store: &mut Store, query: HistoryQuery) -> (Vec<String>, Option<Cursor>) {
        match store.read(PeerId::random(), StoreRequest::Query(query)) {
            Ok(StoreResponse::Page { messages, next }) => {
                (messages.into_iter().map(|m| m.id).collect(), next)
            }
            other => panic!("expected a page, got {other:?}"),
        }
    }

    pub(super) fn temp() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("p2p-chat-store-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }
}
