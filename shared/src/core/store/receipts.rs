//! Receipts: after publishing a message, a peer asks its store to confirm it keeps it, and
//! shows ✓✓ (or why not). Ids are gathered for [`RECEIPT_GATHER`] and asked for together.

use std::time::Duration;

use super::Outstanding;
use crate::behaviour::Extension;
use crate::core::{Event, EventLoop};
use crate::store::{StoreRequest, StoreResponse, MAX_IDS_PER_REQUEST};

/// Most receipt requests out at once (the rest wait and go in batches).
const MAX_RECEIPTS_IN_FLIGHT: usize = 4;
/// How long the ids of sent messages gather before one receipt request asks for all of them: a
/// busy sender then costs the relay one request per this period, not one per message (the
/// relay's store commits every 10 ms anyway, so "kept" is hardly later).
const RECEIPT_GATHER: Duration = Duration::from_millis(20);

impl<X: Extension> EventLoop<X> {
    /// Asks our store to confirm it keeps message `id` of `room`. Receipts are batched: at most
    /// [`MAX_RECEIPTS_IN_FLIGHT`] requests are out at a time, and ids wait for the next one.
    ///
    /// Asked also while no store is known yet (a message that waited for the room goes out as
    /// the relay's subscription arrives, which may come before identify says the relay keeps
    /// history): the ids wait for a store to connect, at most [`MAX_IDS_PER_REQUEST`] per room
    /// meanwhile.
    pub(crate) fn request_receipt(&mut self, room: &str, id: &str) {
        let due = self.store.receipts_due.entry(room.to_owned()).or_default();
        if due.len() >= MAX_IDS_PER_REQUEST && self.store.connected.is_empty() {
            return; // no store for that long: the rest are shown sent, never kept
        }
        due.push(id.to_owned());
        if self.store.receipt_timer.is_none() {
            self.store.receipt_timer = Some(futures_timer::Delay::new(RECEIPT_GATHER));
        }
    }

    /// The gathered ids are due: ask for their receipts.
    pub(crate) fn on_receipt_timer(&mut self) {
        self.store.receipt_timer = None;
        self.send_receipts();
    }

    pub(super) fn send_receipts(&mut self) {
        let Some(store) = self.store.current() else {
            return;
        };
        while self.store.receipts_in_flight < MAX_RECEIPTS_IN_FLIGHT {
            let Some(room) = self.store.receipts_due.keys().next().cloned() else {
                return;
            };
            let Some(due) = self.store.receipts_due.get_mut(&room) else {
                return;
            };
            let take = due.len().min(MAX_IDS_PER_REQUEST);
            let ids: Vec<String> = due.drain(..take).collect();
            if due.is_empty() {
                self.store.receipts_due.remove(&room);
            }
            let request = StoreRequest::Receipt {
                room: room.clone(),
                ids: ids.clone(),
            };
            self.store.receipts_in_flight += 1;
            self.ask_store(store, request, Outstanding::Receipt { room, ids });
        }
    }

    /// The store answered a receipt request for `ids` of `room`.
    pub(super) fn on_receipt(&mut self, room: String, ids: Vec<String>, answer: StoreResponse) {
        self.store.receipts_in_flight = self.store.receipts_in_flight.saturating_sub(1);
        let (stored, reason) = match answer {
            StoreResponse::Stored { ids, reason } => (ids, reason),
            StoreResponse::Error { reason } => (Vec::new(), Some(reason)),
            other => (Vec::new(), Some(format!("unexpected answer {other:?}"))),
        };
        for id in ids {
            if stored.contains(&id) {
                self.emit(Event::Stored {
                    room: room.clone(),
                    id,
                });
            } else {
                let reason = reason
                    .clone()
                    .unwrap_or_else(|| "the relay did not receive it in time".to_owned());
                self.emit(Event::NotStored {
                    room: room.clone(),
                    id,
                    reason,
                });
            }
        }
        self.send_receipts();
    }
}
