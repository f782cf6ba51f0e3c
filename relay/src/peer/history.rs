//! The CLI peer's own history: every room message it showed or sent, in a redb database in its
//! data dir (`history.redb`). It feeds `/history`, the last messages shown on joining a room,
//! and the mark a catch-up starts from (so a restarted peer asks its relay only for what it
//! missed, and shows nothing twice).
//!
//! Tables: `messages` (room, time, id) → JSON of the message; `ids` (room, id) → time.

use std::path::Path;

use libp2p::PeerId;
use p2p_chat_shared::core::{ChatMessage, HistoryMark, Origin};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

const MESSAGES: TableDefinition<(&str, u64, &str), &str> = TableDefinition::new("messages");
const IDS: TableDefinition<(&str, &str), u64> = TableDefinition::new("ids");

/// Most messages kept per room; older ones are dropped when the history is opened.
pub const MAX_PER_ROOM: usize = 20_000;

/// What a row holds besides its key.
#[derive(Serialize, Deserialize)]
struct Row {
    from: String,
    nick: String,
    text: String,
    #[serde(default)]
    plain: bool,
}

/// The local history database.
pub struct LocalHistory {
    db: Database,
}

fn after(prefix: &str) -> String {
    format!("{prefix}\0")
}

impl LocalHistory {
    /// Opens (or creates) the history at `path`.
    pub fn open(path: &Path) -> Result<Self, redb::Error> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(MESSAGES)?;
        tx.open_table(IDS)?;
        tx.commit()?;
        let history = Self { db };
        history.trim()?;
        Ok(history)
    }

    /// Keeps `messages` (already shown ones are skipped by id). One durable write.
    pub fn append(&self, messages: &[ChatMessage]) -> Result<(), redb::Error> {
        if messages.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(MESSAGES)?;
            let mut ids = tx.open_table(IDS)?;
            for m in messages {
                if ids.get((m.room.as_str(), m.id.as_str()))?.is_some() {
                    continue;
                }
                let row = Row {
                    from: m.from.to_base58(),
                    nick: m.nick.clone(),
                    text: m.text.clone(),
                    plain: m.origin == Origin::Text,
                };
                let Ok(json) = serde_json::to_string(&row) else {
                    continue; // strings only: cannot fail
                };
                table.insert((m.room.as_str(), m.sent_at, m.id.as_str()), json.as_str())?;
                ids.insert((m.room.as_str(), m.id.as_str()), m.sent_at)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The last `n` messages of `room`, oldest first.
    pub fn last(&self, room: &str, n: usize) -> Result<Vec<ChatMessage>, redb::Error> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MESSAGES)?;
        let upper = after(room);
        let mut out = Vec::new();
        for entry in table.range((room, 0, "")..(upper.as_str(), 0, ""))?.rev() {
            if out.len() == n {
                break;
            }
            let (key, value) = entry?;
            let (_, ts, id) = key.value();
            if let Some(m) = to_message(room, ts, id, value.value()) {
                out.push(m);
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Where a catch-up of `room` starts: the newest message held, and those of the few minutes
    /// before it (a catch-up asks from a little earlier and must not show them again).
    pub fn mark(&self, room: &str) -> Result<Option<HistoryMark>, redb::Error> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MESSAGES)?;
        let upper = after(room);
        let held = table
            .range((room, 0, "")..(upper.as_str(), 0, ""))?
            .rev()
            .filter_map(Result::ok)
            .filter_map(|(key, value)| {
                let (_, ts, id) = key.value();
                let row: Row = serde_json::from_str(value.value()).ok()?;
                Some((row.from.parse::<PeerId>().ok()?, id.to_owned(), ts))
            });
        Ok(HistoryMark::from_newest_first(held))
    }

    /// Drops the oldest messages of rooms over [`MAX_PER_ROOM`].
    fn trim(&self) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(MESSAGES)?;
            let mut ids = tx.open_table(IDS)?;
            let mut rooms: Vec<(String, usize)> = Vec::new();
            for entry in ids.iter()? {
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
                let upper = after(&room);
                let doomed: Vec<(u64, String)> = table
                    .range((room.as_str(), 0, "")..(upper.as_str(), 0, ""))?
                    .take(excess)
                    .filter_map(Result::ok)
                    .map(|(k, _)| (k.value().1, k.value().2.to_owned()))
                    .collect();
                for (ts, id) in doomed {
                    table.remove((room.as_str(), ts, id.as_str()))?;
                    ids.remove((room.as_str(), id.as_str()))?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn to_message(room: &str, ts: u64, id: &str, json: &str) -> Option<ChatMessage> {
    let row: Row = serde_json::from_str(json).ok()?;
    Some(ChatMessage {
        room: room.to_owned(),
        id: id.to_owned(),
        from: row.from.parse().ok()?,
        nick: row.nick,
        text: row.text,
        sent_at: ts,
        origin: if row.plain {
            Origin::Text
        } else {
            Origin::Envelope
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(room: &str, ts: u64, id: &str) -> ChatMessage {
        ChatMessage {
            room: room.into(),
            id: id.into(),
            from: PeerId::random(),
            nick: "ann".into(),
            text: format!("text {id}"),
            sent_at: ts,
            origin: Origin::Envelope,
        }
    }

    #[test]
    fn messages_survive_a_reopen_in_order_once_per_room() {
        let dir = std::env::temp_dir().join(format!("p2p-chat-history-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("history.redb");
        {
            let h = LocalHistory::open(&path).expect("open");
            h.append(&[
                msg("lobby", 20, "b"),
                msg("lobby", 10, "a"),
                msg("rust", 15, "r"),
            ])
            .expect("append");
            h.append(&[msg("lobby", 20, "b")])
                .expect("a repeat is skipped");
        }
        let h = LocalHistory::open(&path).expect("reopen");
        let lobby: Vec<String> = h
            .last("lobby", 10)
            .expect("last")
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(lobby, ["a", "b"]);
        assert_eq!(h.last("lobby", 1).expect("last").len(), 1);
        let mark = h.mark("lobby").expect("mark").expect("some");
        assert_eq!(mark.newest_ts, 20);
        assert_eq!(mark.recent.len(), 2);
        assert!(h.mark("empty").expect("mark").is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
