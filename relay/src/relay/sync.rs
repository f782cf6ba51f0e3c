//! Reconciling room history with the other relays of the network: each relay keeps its own
//! store and, with every relay it is linked to ([`p2p_chat_shared::hub::peering`]), finds what
//! the other has and it has not of every room either keeps (`rooms`) or its hub follows
//! (range-based set reconciliation: negentropy, over the store protocol's `reconcile`
//! requests), then pulls those messages (`pull`) into its own store: each relay ends up with
//! the history of the whole network. Each side pulls what it lacks when it starts a
//! reconciliation; both start one with every relay as soon as the link comes up, then every
//! [`SYNC_EVERY`], and with every relay for a room its hub starts to follow.
//!
//! Bounds: messages filed in the last [`SYNC_WINDOW`] take part; a room's reconciliation takes at
//! most [`MAX_ROUNDS`] rounds of at most [`MAX_SYNC_FRAME_BYTES`] each way, and pulls at most
//! [`MAX_PULLED_PER_ROOM`] messages (the rest at the next one). Only relays of the network may
//! ask (the hub refuses everyone else). What another relay hands over is checked before it is
//! filed: each message must be one that was asked for, within the payload limit, and an
//! envelope's id must be its own; its author is the other relay's word (as a peer takes its
//! relay's for the history it serves).

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use futures::SinkExt;
use libp2p::PeerId;
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use p2p_chat_shared::core::Client;
use p2p_chat_shared::envelope::{decode_room_payload, Kind, Payload, MAX_ID_CHARS};
use p2p_chat_shared::files::to_hex;
use p2p_chat_shared::protocol::{validate_room, MAX_HUB_ROOMS, MAX_PAYLOAD_BYTES};
use p2p_chat_shared::store::{
    sync_id, HistoryItem, StoreHandle, StoreJob, StoreRequest, StoreResponse, SyncItem,
    MAX_CLOCK_SKEW_MS, MAX_IDS_PER_REQUEST, MAX_SYNC_FRAME_BYTES,
};
use p2p_chat_shared::text::now_unix_ms;

/// How far back reconciliation looks: messages filed before are left alone.
pub const SYNC_WINDOW: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The oldest time (unix ms) reconciliation looks at, at `now`.
pub fn window_start(now: u64) -> u64 {
    now.saturating_sub(SYNC_WINDOW.as_millis() as u64)
}

/// Failed rooms in a row after which a relay is left alone until the next pass.
const MAX_FAILURES_PER_PASS: usize = 3;
/// Times the messages a pull left out (its page was full) are asked for again.
const MAX_PULL_RETRIES: usize = 4;
/// Longest negentropy message accepted, as base64.
const MAX_SYNC_FRAME_CHARS: usize = MAX_SYNC_FRAME_BYTES.div_ceil(3) * 4;
/// How often a relay reconciles every room with every relay it is linked to (and at once with
/// a relay whose link just came up).
pub const SYNC_EVERY: Duration = Duration::from_secs(60);
/// How often the driver looks for relays whose link just came up.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// Most rounds of one room's reconciliation.
pub const MAX_ROUNDS: usize = 64;
/// Most messages pulled for one room in one reconciliation.
pub const MAX_PULLED_PER_ROOM: usize = 10_000;

/// The base64 the protocol carries negentropy messages in.
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Negentropy over these messages, by the time each relay filed them under: the same
/// everywhere for a message whose sender's clock is within a minute of the relays' (then
/// what one relay lacks is a few ranges of time, found in few rounds). A message filed under
/// different times (plain text from another libp2p chat, which each relay files under its own
/// clock) looks missing on both sides: pulled again at each reconciliation, and filed once.
fn negentropy(
    items: Vec<SyncItem>,
) -> Result<Negentropy<'static, NegentropyStorageVector>, String> {
    let mut storage = NegentropyStorageVector::with_capacity(items.len());
    for (ts, id) in items {
        storage
            .insert(ts, Id::from_byte_array(id))
            .map_err(|e| e.to_string())?;
    }
    storage.seal().map_err(|e| e.to_string())?;
    Negentropy::owned(storage, MAX_SYNC_FRAME_BYTES as u64).map_err(|e| e.to_string())
}

/// The store's answer to one round from another relay: its next message over `ids`.
pub fn answer_round(items: Vec<SyncItem>, msg: &str) -> StoreResponse {
    let result = (|| {
        let query = B64.decode(msg).map_err(|e| format!("not base64: {e}"))?;
        let mut responder = negentropy(items)?;
        responder.reconcile(&query).map_err(|e| e.to_string())
    })();
    match result {
        Ok(reply) => StoreResponse::Reconciled {
            msg: B64.encode(reply),
        },
        Err(e) => StoreResponse::error(format!("reconciliation failed: {e}")),
    }
}

/// The side that starts a reconciliation.
pub struct Reconciler {
    negentropy: Negentropy<'static, NegentropyStorageVector>,
    /// Sync ids the other side has and we do not.
    pub need: Vec<[u8; 32]>,
}

impl Reconciler {
    /// Starts over our `items`; the first message to send.
    pub fn start(items: Vec<SyncItem>) -> Result<(Self, String), String> {
        let mut negentropy = negentropy(items)?;
        let first = negentropy.initiate().map_err(|e| e.to_string())?;
        let reconciler = Self {
            negentropy,
            need: Vec::new(),
        };
        Ok((reconciler, B64.encode(first)))
    }

    /// Takes the other side's answer: the next message to send, or `None` when done.
    pub fn next(&mut self, answer: &str) -> Result<Option<String>, String> {
        if answer.len() > MAX_SYNC_FRAME_CHARS {
            return Err(format!("an answer over {MAX_SYNC_FRAME_BYTES} bytes"));
        }
        let answer = B64.decode(answer).map_err(|e| format!("not base64: {e}"))?;
        let (mut have, mut need) = (Vec::new(), Vec::new());
        let next = self
            .negentropy
            .reconcile_with_ids(&answer, &mut have, &mut need)
            .map_err(|e| e.to_string())?;
        self.need.extend(need.iter().map(|id| **id));
        if self.need.len() > MAX_PULLED_PER_ROOM {
            self.need.truncate(MAX_PULLED_PER_ROOM);
        }
        Ok(next.map(|m| B64.encode(m)))
    }
}

/// Why a room's reconciliation with a relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Our chat core or store is gone.
    #[error("the relay is stopping")]
    Stopped,
    /// Our store could not answer.
    #[error("our store: {0}")]
    Store(String),
    /// The other relay refused or answered something else.
    #[error("the other relay: {0}")]
    Remote(String),
    /// Negentropy could not go on.
    #[error("reconciliation: {0}")]
    Protocol(String),
}

/// Asks our own store.
async fn ask_local<T>(
    store: &mut StoreHandle,
    job: impl FnOnce(futures::channel::oneshot::Sender<Result<T, String>>) -> StoreJob,
) -> Result<T, SyncError> {
    let (reply, answer) = futures::channel::oneshot::channel();
    store
        .send(job(reply))
        .await
        .map_err(|_| SyncError::Stopped)?;
    answer
        .await
        .map_err(|_| SyncError::Stopped)?
        .map_err(SyncError::Store)
}

/// Asks the relay `peer`.
async fn ask_remote(
    client: &Client,
    peer: PeerId,
    request: StoreRequest,
) -> Result<StoreResponse, SyncError> {
    match client.ask_store(peer, request).await {
        Ok(StoreResponse::Error { reason }) => Err(SyncError::Remote(reason)),
        Ok(answer) => Ok(answer),
        Err(_) => Err(SyncError::Stopped),
    }
}

/// Whether a message another relay handed over may be filed: asked for, filed within the window
/// (`since`), an id and payload within their limits, a room payload that a relay files (a chat
/// message or plain text), and a chat message under its own id.
fn acceptable(item: &HistoryItem, asked: &HashSet<[u8; 32]>, since: u64) -> bool {
    if !asked.contains(&sync_id(&item.id))
        || item.ts < since
        || item.id.is_empty()
        || item.id.len() > MAX_ID_CHARS
        || item.payload.len() > MAX_PAYLOAD_BYTES
    {
        return false;
    }
    match decode_room_payload(item.payload.as_bytes()) {
        Ok(Payload::Envelope(env)) => env.kind == Kind::Message && env.id == item.id,
        Ok(Payload::Text(_)) => true,
        Err(_) => false,
    }
}

/// What one room's reconciliation took and brought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synced {
    /// Messages filed.
    pub filed: usize,
    /// Rounds of negentropy.
    pub rounds: usize,
    /// Bytes of negentropy messages, both ways.
    pub sync_bytes: usize,
    /// Bytes of the messages pulled (their payloads).
    pub message_bytes: usize,
}

/// Reconciles `room` with `peer` and files what it has and we lack.
pub async fn sync_room(
    client: &Client,
    store: &mut StoreHandle,
    peer: PeerId,
    room: &str,
) -> Result<Synced, SyncError> {
    let mut synced = Synced::default();
    let now = now_unix_ms();
    let since = now.saturating_sub(SYNC_WINDOW.as_millis() as u64);
    let ids = ask_local(store, |reply| StoreJob::SyncSet {
        room: room.to_owned(),
        since,
        reply,
    })
    .await?;
    let (mut reconciler, mut msg) = Reconciler::start(ids).map_err(SyncError::Protocol)?;
    let mut done = false;
    for _ in 0..MAX_ROUNDS {
        synced.rounds += 1;
        synced.sync_bytes += msg.len() * 3 / 4;
        let request = StoreRequest::Reconcile {
            room: room.to_owned(),
            since,
            msg,
        };
        let StoreResponse::Reconciled { msg: answer } = ask_remote(client, peer, request).await?
        else {
            return Err(SyncError::Remote("an answer that is not a round".into()));
        };
        synced.sync_bytes += answer.len() * 3 / 4;
        match reconciler.next(&answer).map_err(SyncError::Protocol)? {
            Some(next) => msg = next,
            None => {
                done = true;
                break;
            }
        }
    }
    if !done {
        tracing::debug!(%peer, room, rounds = MAX_ROUNDS, "reconciliation cut short; the rest next time");
    }
    for chunk in reconciler.need.chunks(MAX_IDS_PER_REQUEST) {
        // A pull answers as many as a page holds: what it left out is asked for again.
        let mut wanted: HashSet<[u8; 32]> = chunk.iter().copied().collect();
        for _ in 0..MAX_PULL_RETRIES {
            if wanted.is_empty() {
                break;
            }
            let request = StoreRequest::Pull {
                room: room.to_owned(),
                ids: wanted.iter().map(to_hex).collect(),
            };
            let StoreResponse::Page { messages, .. } = ask_remote(client, peer, request).await?
            else {
                return Err(SyncError::Remote("an answer that is not a page".into()));
            };
            if messages.is_empty() {
                break;
            }
            for mut item in messages {
                if !acceptable(&item, &wanted, since) {
                    tracing::warn!(%peer, room, id = item.id, "a relay handed over a message not asked for or malformed; dropped");
                    continue;
                }
                wanted.remove(&sync_id(&item.id));
                // Never dated ahead of our clock.
                item.ts = item.ts.min(now_unix_ms() + MAX_CLOCK_SKEW_MS);
                synced.message_bytes += item.payload.len();
                let job = StoreJob::Append {
                    room: room.to_owned(),
                    item,
                };
                store.send(job).await.map_err(|_| SyncError::Stopped)?;
                synced.filed += 1;
            }
        }
    }
    Ok(synced)
}

/// The rooms `peer` keeps (valid names only, at most as many as a hub follows).
async fn remote_rooms(client: &Client, peer: PeerId) -> Result<Vec<String>, SyncError> {
    let StoreResponse::Rooms { mut rooms } = ask_remote(client, peer, StoreRequest::Rooms).await?
    else {
        return Err(SyncError::Remote(
            "an answer that is not a list of rooms".into(),
        ));
    };
    rooms.retain(|room| validate_room(room).is_ok());
    rooms.truncate(MAX_HUB_ROOMS);
    Ok(rooms)
}

/// Reconciles `rooms` with `peer`; `false` when the relay is stopping.
async fn sync_rooms(
    client: &Client,
    store: &mut StoreHandle,
    peer: PeerId,
    rooms: &[String],
) -> bool {
    let started = std::time::Instant::now();
    let mut pulled = 0;
    let mut failures = 0;
    for room in rooms {
        if failures >= MAX_FAILURES_PER_PASS {
            tracing::warn!(%peer, failures, "reconciliation with a relay put off to the next pass");
            break;
        }
        let room_started = std::time::Instant::now();
        match sync_room(client, store, peer, room).await {
            Ok(synced) => {
                failures = 0;
                pulled += synced.filed;
                if synced.filed > 0 {
                    let Synced {
                        filed,
                        rounds,
                        sync_bytes,
                        message_bytes,
                    } = synced;
                    let ms = room_started.elapsed().as_millis() as u64;
                    tracing::info!(%peer, room, filed, rounds, sync_bytes, message_bytes, ms, "history reconciled: messages pulled from a relay");
                }
            }
            Err(SyncError::Stopped) => return false,
            Err(e) => {
                failures += 1;
                tracing::warn!(%peer, room, error = %e, "history not reconciled");
            }
        }
    }
    tracing::debug!(%peer, rooms = rooms.len(), pulled, ms = started.elapsed().as_millis() as u64, "reconciliation with a relay done");
    true
}

/// Reconciles with every relay of the network: with each whose link comes up, every room either
/// keeps or the hub follows; then every [`SYNC_EVERY`], all of them with all; and a room the hub
/// starts to follow at once with every relay. Runs until the chat core stops.
pub async fn run(client: Client, mut store: StoreHandle) {
    let mut linked: HashSet<PeerId> = HashSet::new();
    let mut followed: HashSet<String> = HashSet::new();
    let mut next_all = tokio::time::Instant::now() + SYNC_EVERY;
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        let Ok((relays, now_followed)) = client.federation().await else {
            return;
        };
        let now = tokio::time::Instant::now();
        let all = now >= next_all;
        if all {
            next_all = now + SYNC_EVERY;
        }
        let new_rooms: Vec<String> = now_followed
            .iter()
            .filter(|room| !followed.contains(*room))
            .cloned()
            .collect();
        followed = now_followed.into_iter().collect();
        for peer in relays.iter().copied() {
            let fresh = !linked.contains(&peer);
            let rooms: Vec<String> = if all || fresh {
                let mut rooms = match ask_local(&mut store, |reply| StoreJob::Rooms { reply }).await
                {
                    Ok(rooms) => rooms,
                    Err(SyncError::Stopped) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "no reconciliation: the store cannot list its rooms");
                        continue;
                    }
                };
                match remote_rooms(&client, peer).await {
                    Ok(theirs) => rooms.extend(theirs),
                    Err(SyncError::Stopped) => return,
                    Err(e) => tracing::warn!(%peer, error = %e, "the relay did not list its rooms"),
                }
                rooms.extend(followed.iter().cloned());
                rooms.sort();
                rooms.dedup();
                rooms
            } else {
                new_rooms.clone()
            };
            if !rooms.is_empty() && !sync_rooms(&client, &mut store, peer, &rooms).await {
                return;
            }
        }
        linked = relays.into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::Range<u32>) -> Vec<SyncItem> {
        range
            .map(|i| (u64::from(i), sync_id(&format!("m{i}"))))
            .collect()
    }

    /// Runs a reconciliation between two sets in memory; what the first lacks.
    fn reconcile(ours: Vec<SyncItem>, theirs: Vec<SyncItem>) -> (Vec<[u8; 32]>, usize) {
        let (mut reconciler, mut msg) = Reconciler::start(ours).expect("start");
        for round in 1..=MAX_ROUNDS {
            let StoreResponse::Reconciled { msg: answer } = answer_round(theirs.clone(), &msg)
            else {
                panic!("a round");
            };
            match reconciler.next(&answer).expect("next") {
                Some(next) => msg = next,
                None => return (reconciler.need, round),
            }
        }
        panic!("not done in {MAX_ROUNDS} rounds");
    }

    #[test]
    fn each_side_learns_what_it_lacks_in_a_few_rounds() {
        // (ours, theirs, most rounds): a relay down for a while (it lacks the newest), one
        // that lacks the oldest and has what the other lost.
        for (ours, theirs, most) in [
            (0..9_990, 0..10_000, 2),
            (0..9_000, 0..10_000, 3),
            (0..9_000, 100..10_000, 4),
        ] {
            let (need, rounds) = reconcile(ids(ours.clone()), ids(theirs.clone()));
            let need: HashSet<[u8; 32]> = need.into_iter().collect();
            let ours: HashSet<SyncItem> = ids(ours).into_iter().collect();
            let expected: HashSet<[u8; 32]> = ids(theirs)
                .into_iter()
                .filter(|item| !ours.contains(item))
                .map(|(_, id)| id)
                .collect();
            assert_eq!(need, expected);
            assert!(rounds <= most, "{rounds} rounds");
        }
        let (need, rounds) = reconcile(ids(0..5_000), ids(0..5_000));
        assert!(need.is_empty());
        assert_eq!(rounds, 1, "equal sets agree at once");
    }

    #[test]
    fn garbage_from_another_relay_is_an_error_not_a_panic() {
        // ("YQ==", one byte of protocol version, is a well-formed empty message.)
        for bad in [
            "",
            "!!",
            "YWJj",
            &B64.encode([0x61; 5000]),
            &B64.encode([0x50, 1, 2]),
        ] {
            let answer = answer_round(ids(0..10), bad);
            assert!(matches!(answer, StoreResponse::Error { .. }), "{bad}");
            let (mut reconciler, _) = Reconciler::start(ids(0..10)).expect("start");
            assert!(reconciler.next(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_what_was_asked_for_and_well_formed_is_filed() {
        let envelope = p2p_chat_shared::envelope::Envelope::message("ann", "hi").expect("setup");
        let item = |id: &str, payload: String| HistoryItem {
            id: id.to_owned(),
            from: PeerId::random(),
            ts: 1,
            payload,
        };
        let good = item(
            &envelope.id,
            String::from_utf8(envelope.to_bytes()).expect("utf8"),
        );
        let asked: HashSet<[u8; 32]> = [sync_id(&envelope.id)].into_iter().collect();
        assert!(acceptable(&good, &asked, 0));
        assert!(!acceptable(&good, &HashSet::new(), 0), "not asked for");
        let renamed = item("other", good.payload.clone());
        let asked_other: HashSet<[u8; 32]> = [sync_id("other")].into_iter().collect();
        assert!(
            !acceptable(&renamed, &asked_other, 0),
            "an envelope under another id"
        );
        let huge = item("big", "x".repeat(MAX_PAYLOAD_BYTES + 1));
        let asked_big: HashSet<[u8; 32]> = [sync_id("big")].into_iter().collect();
        assert!(!acceptable(&huge, &asked_big, 0), "over the payload limit");
        // Plain text under an id of 2 MB would break every page of the room's history.
        let long_id = "i".repeat(MAX_ID_CHARS + 1);
        let text = item(&long_id, "plain text".to_owned());
        let asked_long: HashSet<[u8; 32]> = [sync_id(&long_id)].into_iter().collect();
        assert!(!acceptable(&text, &asked_long, 0), "an id over its limit");
        assert!(!acceptable(&good, &asked, 2), "filed before the window");
        let join = p2p_chat_shared::envelope::Envelope::announcement(Kind::Join, "ann");
        let join = item(
            &join.id.clone(),
            String::from_utf8(join.to_bytes()).expect("utf8"),
        );
        let asked_join: HashSet<[u8; 32]> = [sync_id(&join.id)].into_iter().collect();
        assert!(
            !acceptable(&join, &asked_join, 0),
            "relays file no announcement"
        );
    }
}
