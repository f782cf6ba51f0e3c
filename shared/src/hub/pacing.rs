//! Store requests in flight: from the moment the hub hands one to the store until its answer has
//! been written to the requester. An answer waits in the relay's memory while the requester does
//! not read it, and a page is up to [`MAX_PAGE_BYTES`]: a *slow reader* asking for many pages
//! and reading none would otherwise hold as many megabytes as it asks for.
//!
//! So each request reserves the most its answer can take (a page or a mailbox: about
//! [`MAX_PAGE_BYTES`]; anything else: [`SMALL_ANSWER`]) and is handed to the store only while
//! - its peer has fewer than [`MAX_IN_FLIGHT_PER_PEER`] in flight,
//! - its IP address (an IPv6 /64; peers whose address is unknown, as over a circuit, share one)
//!   holds less than [`crate::hub::HubLimits::answer_bytes_per_ip`], and
//! - the relay holds less than [`MAX_ANSWER_BYTES`] in all.
//!
//! Otherwise it waits its turn in its peer's queue (at most [`MAX_QUEUED_PER_PEER`]; beyond that
//! it is answered "busy"). A reservation ends when the answer is sent or the request fails
//! (the requester went away, or did not read within the request timeout); the place goes to
//! other peers' requests before the same peer's next, so that a slow reader cannot keep it.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

use libp2p::PeerId;

use crate::store::{StoreRequest, MAX_PAGE_BYTES};

/// Most store requests of one peer between the store and the peer at once.
pub const MAX_IN_FLIGHT_PER_PEER: usize = 16;
/// Most store requests of one peer waiting for their turn; more are answered "busy".
pub const MAX_QUEUED_PER_PEER: usize = 256;
/// Most bytes of answers reserved in all.
pub const MAX_ANSWER_BYTES: u64 = 256 << 20;
/// What an answer other than a page or a mailbox reserves: a receipt or a status names up to
/// 100 ids of up to 64 characters.
pub const SMALL_ANSWER: u64 = 8192;
/// Streams of the store protocol one connection may have open at the relay: every request in
/// flight or waiting its turn (beyond it, request-response drops new streams unanswered).
pub const MAX_STREAMS_PER_CONNECTION: usize = MAX_IN_FLIGHT_PER_PEER + MAX_QUEUED_PER_PEER;

/// A request waiting for its turn: `I` its id (request-response's `InboundRequestId`), `C`
/// where its answer goes (a `ResponseChannel`).
pub struct Waiting<I, C> {
    /// Its id.
    pub id: I,
    /// Who asks.
    pub peer: PeerId,
    /// What is asked.
    pub request: StoreRequest,
    /// Where the answer goes.
    pub channel: C,
}

/// A request handed to the store, until its answer is written.
struct Held {
    peer: PeerId,
    ip: Option<IpAddr>,
    bytes: u64,
}

/// What each peer, each address and the relay have in flight.
pub struct Pacing<I, C> {
    held: HashMap<I, Held>,
    in_flight: HashMap<PeerId, usize>,
    queues: HashMap<PeerId, VecDeque<Waiting<I, C>>>,
    /// Whose queue each waiting request is in.
    queued: HashMap<I, PeerId>,
    /// Bytes reserved per address (`None`: peers whose address is unknown, together).
    per_ip: HashMap<Option<IpAddr>, u64>,
    /// The most bytes one address may have reserved (0: no limit but [`MAX_ANSWER_BYTES`]).
    per_ip_limit: u64,
    bytes: u64,
}

/// What may happen to a new request now.
pub enum Turn<I, C> {
    /// Hand these to the store (the new one, when its turn is now).
    Go(Vec<Waiting<I, C>>),
    /// It waits.
    Wait,
    /// Its peer's queue is full: answer it "busy".
    Busy(Waiting<I, C>),
}

/// The most an answer to `request` can take.
fn reserve(request: &StoreRequest) -> u64 {
    match request {
        StoreRequest::Query(_)
        | StoreRequest::Fetch
        | StoreRequest::Pull { .. }
        | StoreRequest::Rooms => MAX_PAGE_BYTES as u64 + SMALL_ANSWER,
        StoreRequest::Reconcile { .. } => {
            (crate::store::MAX_SYNC_FRAME_BYTES as u64).div_ceil(3) * 4 + SMALL_ANSWER
        }
        _ => SMALL_ANSWER,
    }
}

impl<I: Copy + Eq + Hash, C> Pacing<I, C> {
    /// Pacing that lets each IP address have `per_ip_limit` bytes of answers on their way.
    pub fn new(per_ip_limit: u64) -> Self {
        Self {
            held: HashMap::new(),
            in_flight: HashMap::new(),
            queues: HashMap::new(),
            queued: HashMap::new(),
            per_ip: HashMap::new(),
            per_ip_limit,
            bytes: 0,
        }
    }

    /// A new request, of a peer whose address is `ip`.
    pub fn submit(&mut self, ip: Option<IpAddr>, waiting: Waiting<I, C>) -> Turn<I, C> {
        let peer = waiting.peer;
        let queue = self.queues.entry(peer).or_default();
        if queue.len() >= MAX_QUEUED_PER_PEER {
            return Turn::Busy(waiting);
        }
        self.queued.insert(waiting.id, peer);
        queue.push_back(waiting);
        let go = self.start(peer, ip);
        if go.is_empty() {
            Turn::Wait
        } else {
            Turn::Go(go)
        }
    }

    /// The requests of `peer` whose turn it is, reserved.
    fn start(&mut self, peer: PeerId, ip: Option<IpAddr>) -> Vec<Waiting<I, C>> {
        let mut go = Vec::new();
        let Some(queue) = self.queues.get_mut(&peer) else {
            return go;
        };
        let in_flight = self.in_flight.entry(peer).or_default();
        let ip_limit = match self.per_ip_limit {
            0 => u64::MAX,
            limit => limit,
        };
        while let Some(next) = queue.front() {
            let bytes = reserve(&next.request);
            let ip_bytes = self.per_ip.get(&ip).copied().unwrap_or(0);
            if *in_flight >= MAX_IN_FLIGHT_PER_PEER
                || ip_bytes.saturating_add(bytes) > ip_limit
                || self.bytes + bytes > MAX_ANSWER_BYTES
            {
                break;
            }
            let Some(next) = queue.pop_front() else {
                break;
            };
            self.queued.remove(&next.id);
            *in_flight += 1;
            *self.per_ip.entry(ip).or_default() += bytes;
            self.bytes += bytes;
            self.held.insert(next.id, Held { peer, ip, bytes });
            go.push(next);
        }
        if queue.is_empty() {
            self.queues.remove(&peer);
        }
        if *in_flight == 0 {
            self.in_flight.remove(&peer);
        }
        go
    }

    /// Request `id` is over (its answer was sent, or it failed): its reservation ends, and the
    /// requests whose turn that makes it are returned, reserved. `ip_of` gives a peer's address.
    pub fn done(&mut self, id: I, ip_of: impl Fn(&PeerId) -> Option<IpAddr>) -> Vec<Waiting<I, C>> {
        let Some(held) = self.held.remove(&id) else {
            // Maybe still waiting: it failed (timed out, or its peer left) before its turn.
            if let Some(peer) = self.queued.remove(&id) {
                if let Some(queue) = self.queues.get_mut(&peer) {
                    queue.retain(|w| w.id != id);
                    if queue.is_empty() {
                        self.queues.remove(&peer);
                    }
                }
            }
            return Vec::new();
        };
        if let Some(n) = self.in_flight.get_mut(&held.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(&held.peer);
            }
        }
        if let Some(bytes) = self.per_ip.get_mut(&held.ip) {
            *bytes = bytes.saturating_sub(held.bytes);
            if *bytes == 0 {
                self.per_ip.remove(&held.ip);
            }
        }
        self.bytes = self.bytes.saturating_sub(held.bytes);
        // Everyone else who waits first, then its own peer: a slow reader does not keep it.
        let mut go = Vec::new();
        let others: Vec<PeerId> = self
            .queues
            .keys()
            .copied()
            .filter(|p| *p != held.peer)
            .collect();
        for peer in others {
            go.extend(self.start(peer, ip_of(&peer)));
        }
        go.extend(self.start(held.peer, held.ip));
        go
    }

    /// `peer` is gone: what it still had waiting is dropped (its streams are closed).
    pub fn on_gone(&mut self, peer: &PeerId) {
        for waiting in self.queues.remove(peer).unwrap_or_default() {
            self.queued.remove(&waiting.id);
        }
    }

    /// Requests held and waiting, and bytes reserved (for logs and tests).
    pub fn load(&self) -> (usize, usize, u64) {
        let waiting = self.queues.values().map(VecDeque::len).sum();
        (self.held.len(), waiting, self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::limits::DEFAULT_ANSWER_BYTES_PER_IP;
    use crate::store::HistoryQuery;

    fn page(peer: PeerId, id: u64) -> Waiting<u64, ()> {
        let query = HistoryQuery {
            room: "lobby".into(),
            ..Default::default()
        };
        Waiting {
            id,
            peer,
            request: StoreRequest::Query(query),
            channel: (),
        }
    }

    fn ids(turn: Turn<u64, ()>) -> Vec<u64> {
        match turn {
            Turn::Go(go) => go.into_iter().map(|w| w.id).collect(),
            Turn::Wait => Vec::new(),
            Turn::Busy(w) => panic!("{} was refused", w.id),
        }
    }

    #[test]
    fn a_slow_reader_holds_at_most_its_share_and_the_rest_waits_its_turn() {
        let mut pacing = Pacing::new(DEFAULT_ANSWER_BYTES_PER_IP);
        let reader = PeerId::random();
        let ip: Option<IpAddr> = Some([10, 0, 0, 1].into());
        let mut started = Vec::new();
        for id in 0..1000 {
            let turn = pacing.submit(ip, page(reader, id));
            if id < MAX_QUEUED_PER_PEER as u64 + MAX_IN_FLIGHT_PER_PEER as u64 {
                started.extend(ids(turn));
            } else {
                assert!(matches!(turn, Turn::Busy(_)), "request {id} was queued");
            }
        }
        assert_eq!(started.len(), MAX_IN_FLIGHT_PER_PEER);
        let (held, waiting, bytes) = pacing.load();
        assert_eq!(
            (held, waiting),
            (MAX_IN_FLIGHT_PER_PEER, MAX_QUEUED_PER_PEER)
        );
        assert!(bytes <= DEFAULT_ANSWER_BYTES_PER_IP, "{bytes}");

        // Its peers on the same address share the address's bytes; one elsewhere does not.
        let mut neighbours = 0;
        for n in 0..100 {
            neighbours += ids(pacing.submit(ip, page(PeerId::random(), 10_000 + n))).len();
        }
        let per_page = MAX_PAGE_BYTES as u64 + SMALL_ANSWER;
        assert_eq!(
            neighbours as u64 + MAX_IN_FLIGHT_PER_PEER as u64,
            DEFAULT_ANSWER_BYTES_PER_IP / per_page
        );
        let elsewhere = PeerId::random();
        let other_ip = Some([10, 0, 0, 2].into());
        assert_eq!(
            ids(pacing.submit(other_ip, page(elsewhere, 20_000))),
            [20_000]
        );

        // An answer sent frees a place: a neighbour's waiting request goes before the reader's.
        let next = pacing.done(started[0], |p| if *p == elsewhere { other_ip } else { ip });
        assert_eq!(next.len(), 1);
        assert!(next[0].id >= 10_000, "{} went first", next[0].id);
        // Once its neighbours are done, the reader's queue moves again, up to its share.
        for n in 0..100 {
            let _ = pacing.done(10_000 + n, |_| ip);
        }
        let (held, waiting, _) = pacing.load();
        assert_eq!(
            held,
            MAX_IN_FLIGHT_PER_PEER + 1,
            "the reader's and the one elsewhere"
        );
        assert_eq!(waiting, MAX_QUEUED_PER_PEER - 1);
        // A request that fails while it waits leaves the queue; one never queued changes nothing.
        assert!(pacing.done(999, |_| ip).is_empty());
        assert!(pacing
            .done(MAX_IN_FLIGHT_PER_PEER as u64 + 5, |_| ip)
            .is_empty());
        assert_eq!(pacing.load().1, MAX_QUEUED_PER_PEER - 2);
        // Gone: its queue is dropped.
        pacing.on_gone(&reader);
        assert_eq!(pacing.load().1, 0);
    }
}
