//! The CLI peer's archive: every room message it showed or sent, in a redb database in its data
//! dir (`history.redb`). It feeds `/history`, the last messages shown on joining a room, and the
//! mark a catch-up starts from (so a restarted peer asks its relay only for what it missed, and
//! shows nothing twice).
//!
//! One thread owns the database. The chat loop hands it work through a bounded queue, so a disk
//! write never holds up the loop (only a thread [`QUEUE`] batches behind would): messages queued
//! together are written in one transaction (one fsync), and a read is answered after every write
//! queued before it, so `/history` shows what was just sent.
//! A message is archived once per (room, author, id), the chat core's dedup key: a message that
//! reuses someone else's id cannot replace theirs.
//!
//! Table `archive`: (room, filed at, author, id) → JSON `{"nick","text","plain","sent_at"}`,
//! in the order of the room's stored history ([`ChatMessage::filed_at`]), so that no author's
//! clock can move the mark a catch-up starts from (rows written before `sent_at` was kept are
//! under their sender's time: the mark passes over those in the future). Archives written
//! before it (table `messages`, keyed (room, time, id) with the author in the JSON) are moved
//! into it when opened.

use std::path::Path;

use futures::channel::oneshot;
use libp2p::PeerId;
use p2p_chat_shared::core::{ChatMessage, HistoryMark, Origin};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// (room, time, author, id) → the rest of the message.
const ARCHIVE: TableDefinition<(&str, u64, &str, &str), &str> = TableDefinition::new("archive");
/// (room, author, id) → time: what is archived.
const KEYS: TableDefinition<(&str, &str, &str), u64> = TableDefinition::new("archive_keys");
/// The table of archives written before `archive`: (room, time, id) → JSON with the author.
const OLD_MESSAGES: TableDefinition<(&str, u64, &str), &str> = TableDefinition::new("messages");
/// Its index, (room, id) → time.
const OLD_IDS: TableDefinition<(&str, &str), u64> = TableDefinition::new("ids");

/// Most messages kept per room; older ones are dropped when the archive is opened.
pub const MAX_PER_ROOM: usize = 20_000;
/// Batches of work waiting for the archive's thread; beyond, the chat loop waits for room.
const QUEUE: usize = 256;

/// Why the archive could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] redb::Error),
    /// The archive's thread could not start.
    #[error("cannot start the archive thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The archive's thread is gone (it stopped after an error).
    #[error("the archive has stopped")]
    Stopped,
    /// The archive could not be opened at start.
    #[error("the archive is off (see the error at start)")]
    Off,
}

/// What a row holds besides its key.
#[derive(Serialize, Deserialize)]
struct Row {
    nick: String,
    text: String,
    #[serde(default)]
    plain: bool,
    /// The author's clock, when it differs from the key's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent_at: Option<u64>,
    /// A file the message offered (checked again when read back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<p2p_chat_shared::files::RawOffer>,
}

/// A row of the archives written before `archive`.
#[derive(Deserialize)]
struct OldRow {
    from: String,
    nick: String,
    text: String,
    #[serde(default)]
    plain: bool,
}

enum Job {
    Keep(Vec<ChatMessage>),
    Last {
        room: String,
        count: usize,
        reply: oneshot::Sender<Result<Vec<ChatMessage>, redb::Error>>,
    },
    Mark {
        room: String,
        reply: oneshot::Sender<Result<Option<HistoryMark>, redb::Error>>,
    },
}

/// The chat loop's handle on the archive. Dropping it lets the thread finish what is queued.
pub struct Archive {
    jobs: mpsc::Sender<Job>,
}

impl Archive {
    /// Opens (or creates) the archive at `path`, trims it, and starts its thread.
    pub fn open(path: &Path) -> Result<(Self, std::thread::JoinHandle<()>), ArchiveError> {
        let db = Database::create(path).map_err(redb::Error::from)?;
        migrate(&db)?;
        trim(&db)?;
        let (jobs, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("archive".to_owned())
            .spawn(move || run(&db, rx))?;
        Ok((Self { jobs }, thread))
    }

    /// Archives `messages` (ones already archived are skipped), after whatever is queued.
    pub async fn keep(&self, messages: Vec<ChatMessage>) -> Result<(), ArchiveError> {
        if messages.is_empty() {
            return Ok(());
        }
        self.jobs
            .send(Job::Keep(messages))
            .await
            .map_err(|_| ArchiveError::Stopped)
    }

    /// The last `count` messages of `room`, oldest first.
    pub async fn last(&self, room: &str, count: usize) -> Result<Vec<ChatMessage>, ArchiveError> {
        let (reply, answer) = oneshot::channel();
        let room = room.to_owned();
        self.ask(Job::Last { room, count, reply }, answer).await
    }

    /// Where a catch-up of `room` starts: the newest message held, and those of the few minutes
    /// before it (a catch-up asks from a little earlier and must not show them again).
    pub async fn mark(&self, room: &str) -> Result<Option<HistoryMark>, ArchiveError> {
        let (reply, answer) = oneshot::channel();
        let room = room.to_owned();
        self.ask(Job::Mark { room, reply }, answer).await
    }

    async fn ask<T>(
        &self,
        job: Job,
        answer: oneshot::Receiver<Result<T, redb::Error>>,
    ) -> Result<T, ArchiveError> {
        self.jobs
            .send(job)
            .await
            .map_err(|_| ArchiveError::Stopped)?;
        Ok(answer.await.map_err(|_| ArchiveError::Stopped)??)
    }
}

/// The archive's thread: every `Keep` queued together in one transaction, reads in order.
fn run(db: &Database, mut jobs: mpsc::Receiver<Job>) {
    let mut next = jobs.blocking_recv();
    while let Some(job) = next.take() {
        match job {
            Job::Keep(mut batch) => {
                // Gather every write queued behind this one; stop at the first read.
                loop {
                    match jobs.try_recv() {
                        Ok(Job::Keep(more)) => batch.extend(more),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if let Err(e) = append(db, &batch) {
                    tracing::error!(error = %e, messages = batch.len(), "could not archive messages");
                }
            }
            Job::Last { room, count, reply } => {
                let _ = reply.send(last(db, &room, count));
            }
            Job::Mark { room, reply } => {
                let _ = reply.send(mark(db, &room));
            }
        }
        if next.is_none() {
            next = jobs.blocking_recv();
        }
    }
    tracing::debug!("archive stopped");
}

fn append(db: &Database, messages: &[ChatMessage]) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut table = tx.open_table(ARCHIVE)?;
        let mut keys = tx.open_table(KEYS)?;
        for m in messages {
            let author = m.from.to_base58();
            let key = (m.room.as_str(), author.as_str(), m.id.as_str());
            if keys.get(key)?.is_some() {
                continue;
            }
            let row = Row {
                nick: m.nick.clone(),
                text: m.text.clone(),
                plain: m.origin == Origin::Text,
                sent_at: (m.sent_at != m.filed_at).then_some(m.sent_at),
                file: m.file.as_ref().map(Into::into),
            };
            let Ok(json) = serde_json::to_string(&row) else {
                continue; // strings only: cannot fail
            };
            table.insert(
                (m.room.as_str(), m.filed_at, author.as_str(), m.id.as_str()),
                json.as_str(),
            )?;
            keys.insert(key, m.filed_at)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The archive's rows of `room`, newest first, as (time, author, id, row).
fn newest_first<'t>(
    table: &'t redb::ReadOnlyTable<(&'static str, u64, &'static str, &'static str), &'static str>,
    room: &str,
) -> Result<impl Iterator<Item = (u64, PeerId, String, Row)> + 't, redb::Error> {
    let upper = format!("{room}\0");
    let rows = table
        .range((room, 0, "", "")..(upper.as_str(), 0, "", ""))?
        .rev()
        .filter_map(Result::ok)
        .filter_map(|(key, value)| {
            let (_, ts, author, id) = key.value();
            let row: Row = serde_json::from_str(value.value()).ok()?;
            Some((ts, author.parse().ok()?, id.to_owned(), row))
        });
    Ok(rows)
}

fn last(db: &Database, room: &str, count: usize) -> Result<Vec<ChatMessage>, redb::Error> {
    let tx = db.begin_read()?;
    let table = tx.open_table(ARCHIVE)?;
    let mut out: Vec<ChatMessage> = newest_first(&table, room)?
        .take(count)
        .map(|(ts, from, id, row)| ChatMessage {
            room: room.to_owned(),
            id,
            from,
            nick: row.nick,
            text: row.text,
            sent_at: row.sent_at.unwrap_or(ts),
            filed_at: ts,
            origin: if row.plain {
                Origin::Text
            } else {
                Origin::Envelope
            },
            file: row
                .file
                .and_then(|f| f.validate(p2p_chat_shared::files::MAX_FILE_BYTES).ok()),
        })
        .collect();
    out.reverse();
    Ok(out)
}

fn mark(db: &Database, room: &str) -> Result<Option<HistoryMark>, redb::Error> {
    let tx = db.begin_read()?;
    let table = tx.open_table(ARCHIVE)?;
    let held = newest_first(&table, room)?.map(|(ts, from, id, _)| (from, id, ts));
    Ok(HistoryMark::from_newest_first(held))
}

/// Moves the rows of an archive written before the `archive` table into it.
fn migrate(db: &Database) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    let old_exists = tx
        .list_tables()?
        .any(|table| table.name() == OLD_MESSAGES.name());
    if old_exists {
        let (mut moved, mut unreadable) = (0usize, 0usize);
        {
            let old = tx.open_table(OLD_MESSAGES)?;
            let mut table = tx.open_table(ARCHIVE)?;
            let mut keys = tx.open_table(KEYS)?;
            for entry in old.iter()? {
                let (key, value) = entry?;
                let (room, ts, id) = key.value();
                let Ok(row) = serde_json::from_str::<OldRow>(value.value()) else {
                    unreadable += 1;
                    continue;
                };
                let json = serde_json::to_string(&Row {
                    nick: row.nick,
                    text: row.text,
                    plain: row.plain,
                    sent_at: None,
                    file: None,
                })
                .unwrap_or_default();
                table.insert((room, ts, row.from.as_str(), id), json.as_str())?;
                keys.insert((room, row.from.as_str(), id), ts)?;
                moved += 1;
            }
        }
        tx.delete_table(OLD_MESSAGES)?;
        tx.delete_table(OLD_IDS)?;
        tracing::info!(moved, "archive moved to its new table");
        if unreadable > 0 {
            tracing::warn!(
                unreadable,
                "archive rows that could not be read were left behind"
            );
        }
    } else {
        tx.open_table(ARCHIVE)?;
        tx.open_table(KEYS)?;
    }
    tx.commit()?;
    Ok(())
}

/// Drops the oldest messages of rooms over [`MAX_PER_ROOM`].
fn trim(db: &Database) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut table = tx.open_table(ARCHIVE)?;
        let mut keys = tx.open_table(KEYS)?;
        let mut rooms: Vec<(String, usize)> = Vec::new();
        for entry in keys.iter()? {
            let (key, _) = entry?;
            let room = key.value().0;
            match rooms.last_mut() {
                Some((r, n)) if r == room => *n += 1,
                _ => rooms.push((room.to_owned(), 1)),
            }
        }
        for (room, count) in rooms {
            let excess = count.saturating_sub(MAX_PER_ROOM);
            if excess == 0 {
                continue;
            }
            let upper = format!("{room}\0");
            let doomed: Vec<(u64, String, String)> = table
                .range((room.as_str(), 0, "", "")..(upper.as_str(), 0, "", ""))?
                .take(excess)
                .filter_map(Result::ok)
                .map(|(k, _)| {
                    let (_, ts, author, id) = k.value();
                    (ts, author.to_owned(), id.to_owned())
                })
                .collect();
            for (ts, author, id) in doomed {
                table.remove((room.as_str(), ts, author.as_str(), id.as_str()))?;
                keys.remove((room.as_str(), author.as_str(), id.as_str()))?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(room: &str, ts: u64, id: &str) -> ChatMessage {
        msg_from(PeerId::random(), room, ts, id)
    }

    fn msg_from(from: PeerId, room: &str, ts: u64, id: &str) -> ChatMessage {
        ChatMessage {
            room: room.into(),
            id: id.into(),
            from,
            nick: "ann".into(),
            text: format!("text {id}"),
            sent_at: ts,
            filed_at: ts,
            origin: Origin::Envelope,
            file: None,
        }
    }

    fn temp() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("p2p-chat-archive-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn ids(messages: Vec<ChatMessage>) -> Vec<String> {
        messages.into_iter().map(|m| m.id).collect()
    }

    #[tokio::test]
    async fn messages_survive_a_reopen_in_order_once_per_room() {
        let dir = temp();
        let path = dir.join("history.redb");
        {
            let (archive, thread) = Archive::open(&path).expect("open");
            let b = msg("lobby", 20, "b");
            archive
                .keep(vec![b.clone(), msg("lobby", 10, "a"), msg("rust", 15, "r")])
                .await
                .expect("keep");
            archive.keep(vec![b]).await.expect("a repeat is skipped");
            // A read comes after the writes queued before it.
            assert_eq!(
                ids(archive.last("lobby", 10).await.expect("last")),
                ["a", "b"]
            );
            drop(archive);
            thread.join().expect("the archive thread ends");
        }
        let (archive, _thread) = Archive::open(&path).expect("reopen");
        assert_eq!(
            ids(archive.last("lobby", 10).await.expect("last")),
            ["a", "b"]
        );
        assert_eq!(archive.last("lobby", 1).await.expect("last").len(), 1);
        let mark = archive.mark("lobby").await.expect("mark").expect("some");
        assert_eq!(mark.newest_ts, 20);
        assert_eq!(mark.recent.len(), 2);
        assert!(archive.mark("empty").await.expect("mark").is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_sender_clock_far_ahead_does_not_move_the_catch_up_mark() {
        let dir = temp();
        let (archive, _thread) = Archive::open(&dir.join("history.redb")).expect("open");
        let now = p2p_chat_shared::text::now_unix_ms();
        let year = 365 * 24 * 3600 * 1000;
        // As this version keeps it: under the time the store files it, the sender's clock aside.
        let future = ChatMessage {
            sent_at: now + year,
            filed_at: now - 1000,
            ..msg("lobby", 0, "future")
        };
        // As an older version kept it: under the sender's clock.
        let old_version = msg("lobby", now + 2 * year, "old-future");
        let honest = msg("lobby", now - 5000, "honest");
        archive
            .keep(vec![future, old_version, honest])
            .await
            .expect("keep");
        let mark = archive.mark("lobby").await.expect("mark").expect("some");
        assert_eq!(mark.newest_ts, now - 1000);
        let shown = archive.last("lobby", 1).await.expect("last");
        assert_eq!(
            (shown[0].id.as_str(), shown[0].sent_at),
            ("old-future", now + 2 * year)
        );
        let last = archive.last("lobby", 3).await.expect("last");
        assert_eq!(
            last[1].sent_at,
            now + year,
            "the sender's clock is still shown"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_message_reusing_someone_elses_id_does_not_replace_theirs() {
        let dir = temp();
        let (archive, _thread) = Archive::open(&dir.join("history.redb")).expect("open");
        let (alice, mallory) = (PeerId::random(), PeerId::random());
        let fake = ChatMessage {
            text: "forged".into(),
            ..msg_from(mallory, "lobby", 10, "same-id")
        };
        archive.keep(vec![fake]).await.expect("keep");
        archive
            .keep(vec![msg_from(alice, "lobby", 10, "same-id")])
            .await
            .expect("keep");
        let kept = archive.last("lobby", 10).await.expect("last");
        let authors: Vec<PeerId> = kept.iter().map(|m| m.from).collect();
        assert_eq!(kept.len(), 2, "both kept: {kept:?}");
        assert!(authors.contains(&alice) && authors.contains(&mallory));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_archive_written_before_the_archive_table_is_moved_into_it() {
        let dir = temp();
        let path = dir.join("history.redb");
        let alice = PeerId::random();
        {
            let db = Database::create(&path).expect("db");
            let tx = db.begin_write().expect("tx");
            {
                let mut old = tx.open_table(OLD_MESSAGES).expect("table");
                let mut old_ids = tx.open_table(OLD_IDS).expect("table");
                let json = format!(r#"{{"from":"{alice}","nick":"alice","text":"from before"}}"#);
                old.insert(("lobby", 5, "m1"), json.as_str())
                    .expect("insert");
                old_ids.insert(("lobby", "m1"), 5).expect("insert");
            }
            tx.commit().expect("commit");
        }
        let (archive, _thread) = Archive::open(&path).expect("open");
        let kept = archive.last("lobby", 10).await.expect("last");
        assert_eq!(kept.len(), 1);
        assert_eq!(
            (kept[0].from, kept[0].text.as_str(), kept[0].sent_at),
            (alice, "from before", 5)
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
