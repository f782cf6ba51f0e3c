//! Receipts: a peer asks whether the store keeps messages it published. Those already filed are
//! confirmed at once; the others are parked until the commit that files them, or until
//! [`RECEIPT_WAIT`] has passed (then only those filed are confirmed).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use p2p_chat_shared::store::StoreResponse;
use redb::ReadableDatabase;

use super::rooms::MESSAGE_IDS;
use super::Store;

/// How long a receipt waits for its messages to arrive and be written.
const RECEIPT_WAIT: Duration = Duration::from_secs(10);

impl Parked {
    /// The writes it waits for failed: confirm those filed before, and say why the others are
    /// not.
    pub(super) fn fail(self, reason: &str) {
        let answer = if self.missing.len() == self.ids.len() {
            StoreResponse::error(reason)
        } else {
            let missing = self.missing;
            StoreResponse::Stored {
                ids: self
                    .ids
                    .into_iter()
                    .filter(|id| !missing.contains(id))
                    .collect(),
                reason: Some(reason.to_owned()),
            }
        };
        let _ = self.reply.send(answer);
    }
}

/// A receipt request waiting for messages not yet written.
pub(super) struct Parked {
    room: String,
    ids: Vec<String>,
    missing: HashSet<String>,
    reply: oneshot::Sender<StoreResponse>,
    deadline: Instant,
}

impl Store {
    /// Answers a receipt for `ids` of `room` now, or parks it until they are written.
    pub(super) fn receipt(
        &mut self,
        room: String,
        ids: Vec<String>,
        reply: oneshot::Sender<StoreResponse>,
    ) {
        match self.missing(&room, &ids) {
            Ok(missing) if missing.is_empty() => {
                let _ = reply.send(StoreResponse::Stored { ids, reason: None });
            }
            Ok(missing) => match self.health.failing() {
                // Nothing is being written: say which are kept, and why the others are not, now
                // rather than after the wait.
                Some(reason) if missing.len() == ids.len() => {
                    let _ = reply.send(StoreResponse::error(reason));
                }
                Some(reason) => {
                    let ids = ids.into_iter().filter(|id| !missing.contains(id)).collect();
                    let reason = Some(reason);
                    let _ = reply.send(StoreResponse::Stored { ids, reason });
                }
                None => self.waiting.push(Parked {
                    room,
                    ids,
                    missing,
                    reply,
                    deadline: Instant::now() + RECEIPT_WAIT,
                }),
            },
            Err(e) => {
                let _ = reply.send(StoreResponse::error(format!("store read failed: {e}")));
            }
        }
    }

    /// Which of `ids` of `room` are not filed.
    fn missing(&mut self, room: &str, ids: &[String]) -> Result<HashSet<String>, redb::Error> {
        let tx = self.db()?.begin_read()?;
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
    pub(super) fn written(&mut self, appended: &[(String, String)]) {
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
            let _ = parked.reply.send(StoreResponse::Stored {
                ids: parked.ids,
                reason: None,
            });
        }
    }

    /// Receipts that waited too long get the ids that are stored; the rest were not.
    pub(super) fn expire_receipts(&mut self) {
        let now = Instant::now();
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
            let _ = parked
                .reply
                .send(StoreResponse::Stored { ids, reason: None });
        }
    }
}
