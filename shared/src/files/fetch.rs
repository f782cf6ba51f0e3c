//! Fetching a file: the manifest, then every missing piece, from every provider at once, several
//! streams each; each piece checked against the manifest before it is written.
//!
//! A provider that sends something that does not match (a piece, or a manifest that is not the
//! one the file's id names) or breaks the protocol is not asked again during this download. One
//! whose streams fail (its connection closed: a relay circuit reaching its byte cap, a peer gone
//! for a moment), that is busy, or that does not have the file (yet) is asked again after a
//! backoff, over a new connection. More providers are looked for at the start and while few are
//! usable; the download fails only after [`STALL_TIMEOUT`] without a verified piece, keeping what
//! it has (the caller can resume from it). An offer whose size, piece size or whole-file hash is
//! not what the manifest of its id says was altered on its way: the download stops with the
//! truth ([`FetchError::NotAsOffered`]), and no provider is blamed.
//!
//! Streams to a provider are opened one at a time (the next once the last has its first
//! answer): the serving side takes new streams one by one, and drops those of a burst.
//!
//! Runtime-agnostic, one future, no spawning: the platform supplies the [`Network`] (streams to
//! peers, providers) and the [`PieceSink`] (where pieces go).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::time::Duration;

use futures::future::FusedFuture;
use futures::stream::FuturesUnordered;
use futures::{AsyncRead, AsyncWrite, FutureExt, StreamExt};
use libp2p::PeerId;
use web_time::Instant;

use super::serve::timeout;
use super::wire::{self, Request, Status, WireError};
use super::{sha256, to_hex, FileOffer, Hash, Manifest, MAX_MANIFEST_BYTES};

/// Streams open at once to one provider (requests on a stream go one at a time).
pub const STREAMS_PER_PROVIDER: usize = 4;

/// Most providers remembered for one download (those found sending bad data not counted).
pub const MAX_PROVIDERS: usize = 16;

/// How long one answer may take.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A download fails after this long without a verified piece.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Below this many usable providers, more are looked for (at the start, then every
/// [`REQUERY_EVERY`]).
pub const WANTED_PROVIDERS: usize = 4;

/// How often to look for more providers while fewer than [`WANTED_PROVIDERS`] can be used.
pub const REQUERY_EVERY: Duration = Duration::from_secs(5);

/// How long a provider that says it is busy, or has not got the file, waits before it is asked
/// again.
const NOT_NOW: Duration = Duration::from_secs(2);

/// Providers asked for the manifest at once (one that never answers must not hold up the rest).
const MANIFEST_ASKS: usize = 3;

/// Failures in a row after which a provider no longer counts as usable: more are looked for,
/// and a new one may take its place.
const FAILING: u32 = 2;

/// How long to wait before asking a provider again after its `failures`-th failure in a row:
/// 250 ms, then twice as long each time, at most 8 s (a relay circuit cut at its byte cap is
/// replaced at once; a provider gone for a while is tried now and then until the stall timeout).
fn retry_after(failures: u32) -> Duration {
    Duration::from_millis(250 << failures.saturating_sub(1).min(5))
}

/// How a downloader reaches providers.
pub trait Network {
    /// A stream of the file protocol.
    type Stream: AsyncRead + AsyncWrite + Unpin;
    /// Opens a file-protocol stream to `peer`, connecting to it first (through a relay if need
    /// be); `Err` says why not.
    fn open(&self, peer: PeerId) -> impl Future<Output = Result<Self::Stream, String>>;
    /// Peers that announced they have `file`.
    fn providers(&self, file: &Hash) -> impl Future<Output = Vec<PeerId>>;
}

/// Where verified pieces go.
pub trait PieceSink {
    /// Keeps piece `index`, which starts at `offset` in the file.
    fn write(
        &mut self,
        index: u32,
        offset: u64,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), String>>;
}

/// What a download reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// The manifest arrived and matched the file's id and the offer (keep it to resume).
    Manifest(Manifest),
    /// A verified piece was written.
    Piece {
        /// Its index.
        index: u32,
        /// Bytes verified so far, this one included.
        have: u64,
        /// Providers with a stream open.
        providers: usize,
    },
    /// `peer` sent something that did not match: it is not asked again.
    Bad {
        /// The provider.
        peer: PeerId,
        /// What it did.
        reason: String,
    },
}

/// Why a download stopped before the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Nothing verified for [`STALL_TIMEOUT`].
    #[error("no provider sent a piece for {secs} s ({tried} tried); {have} of {total} bytes are kept for a retry")]
    Stalled {
        /// The stall, in seconds.
        secs: u64,
        /// Providers tried.
        tried: usize,
        /// Bytes kept.
        have: u64,
        /// The file's size.
        total: u64,
    },
    /// Writing a piece failed.
    #[error("cannot keep a piece: {0}")]
    Sink(String),
    /// The offer does not say what the manifest of its id says: it was altered on its way.
    #[error("the offer was altered: the file it names is {} bytes in pieces of {}, with SHA-256 {}", .0.size, .0.piece, to_hex(&.0.sha256))]
    NotAsOffered(Box<Manifest>),
}

/// What is already known when a download starts (all empty for a new one).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// The manifest, if fetched and checked before.
    pub manifest: Option<Manifest>,
    /// Pieces already verified and kept.
    pub have: BTreeSet<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    Manifest,
    Piece(u32),
}

enum Job<S> {
    /// No stream could be opened for `Ask`.
    Failed(PeerId, Ask, String),
    /// The answer to `Ask` on a stream; `first` on a stream just opened.
    Answer {
        peer: PeerId,
        stream: S,
        ask: Ask,
        first: bool,
        result: Result<Vec<u8>, WireError>,
    },
}

#[derive(Default)]
struct Provider {
    /// Streams open or opening.
    streams: usize,
    /// A stream being opened, not answered yet.
    opening: bool,
    failures: u32,
    /// It sent bad data: never asked again.
    bad: bool,
    retry_at: Option<Instant>,
}

/// Fetches `offer`'s missing pieces into `sink` from `first` (the peer that offered it) and
/// whatever providers `net` finds; reports through `on_event`. Returns once every piece is kept.
pub async fn fetch<N: Network, K: PieceSink>(
    offer: &FileOffer,
    resume: Resume,
    first: &[PeerId],
    net: &N,
    sink: &mut K,
    mut on_event: impl FnMut(FetchEvent),
) -> Result<(), FetchError> {
    let mut state = State::new(offer, resume);
    for peer in first {
        state.add_provider(*peer);
    }
    let id = offer.id_hash();
    let mut jobs = FuturesUnordered::new();
    let mut tick = futures_timer::Delay::new(Duration::from_secs(1)).fuse();
    let mut last_query: Option<Instant> = None;
    let mut querying = std::pin::pin!(futures::future::Fuse::terminated());
    loop {
        if state.done() {
            return Ok(());
        }
        for (peer, ask) in state.assignments() {
            jobs.push(open_and_ask(net, peer, ask, offer).left_future());
        }
        if state.usable() < WANTED_PROVIDERS
            && querying.is_terminated()
            && last_query.is_none_or(|at| at.elapsed() >= REQUERY_EVERY)
        {
            last_query = Some(Instant::now());
            querying.set(net.providers(&id).fuse());
        }
        if state.last_progress.elapsed() >= STALL_TIMEOUT {
            return Err(FetchError::Stalled {
                secs: STALL_TIMEOUT.as_secs(),
                tried: state.providers.len(),
                have: state.have_bytes,
                total: offer.size,
            });
        }
        futures::select! {
            job = jobs.select_next_some() => {
                if let Some((peer, stream, ask)) = state.on_job(job, &id, sink, &mut on_event).await? {
                    jobs.push(ask_on(peer, stream, ask, offer, false).right_future());
                }
            }
            found = querying.as_mut() => {
                for peer in found {
                    state.add_provider(peer);
                }
            }
            () = tick => tick = futures_timer::Delay::new(Duration::from_secs(1)).fuse(),
        }
    }
}

async fn open_and_ask<N: Network>(
    net: &N,
    peer: PeerId,
    ask: Ask,
    offer: &FileOffer,
) -> Job<N::Stream> {
    match timeout(ANSWER_TIMEOUT, net.open(peer)).await {
        Some(Ok(stream)) => ask_on(peer, stream, ask, offer, true).await,
        Some(Err(e)) => Job::Failed(peer, ask, e),
        None => Job::Failed(peer, ask, "no stream within 30 s".into()),
    }
}

async fn ask_on<S: AsyncRead + AsyncWrite + Unpin>(
    peer: PeerId,
    mut stream: S,
    ask: Ask,
    offer: &FileOffer,
    first: bool,
) -> Job<S> {
    let id = offer.id_hash();
    let exchange = async {
        match ask {
            Ask::Manifest => {
                wire::write_request(&mut stream, &Request::Manifest(id)).await?;
                // Its length is checked once read: an altered offer would imply another.
                wire::read_response_upto(&mut stream, MAX_MANIFEST_BYTES).await
            }
            Ask::Piece(index) => {
                wire::write_request(&mut stream, &Request::Piece(id, index)).await?;
                wire::read_response(&mut stream, offer.piece_span(index).1).await
            }
        }
    };
    let result = timeout(ANSWER_TIMEOUT, exchange).await.unwrap_or_else(|| {
        Err(WireError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer within 30 s",
        )))
    });
    Job::Answer {
        peer,
        stream,
        ask,
        first,
        result,
    }
}

struct State<'a> {
    offer: &'a FileOffer,
    manifest: Option<Manifest>,
    have: BTreeSet<u32>,
    have_bytes: u64,
    /// Pieces neither kept nor asked for.
    missing: BTreeSet<u32>,
    in_flight: BTreeSet<u32>,
    /// Manifest requests on their way.
    manifest_asks: usize,
    providers: HashMap<PeerId, Provider>,
    last_progress: Instant,
}

impl<'a> State<'a> {
    fn new(offer: &'a FileOffer, resume: Resume) -> Self {
        let pieces = offer.pieces();
        let have: BTreeSet<u32> = resume.have.into_iter().filter(|i| *i < pieces).collect();
        let have_bytes = have.iter().map(|i| u64::from(offer.piece_span(*i).1)).sum();
        let missing = (0..pieces).filter(|i| !have.contains(i)).collect();
        Self {
            offer,
            manifest: resume.manifest,
            have,
            have_bytes,
            missing,
            in_flight: BTreeSet::new(),
            manifest_asks: 0,
            providers: HashMap::new(),
            last_progress: Instant::now(),
        }
    }

    /// Every piece kept, and the manifest (even an empty file's) checked against the id.
    fn done(&self) -> bool {
        self.manifest.is_some() && self.have.len() == self.offer.pieces() as usize
    }

    /// Remembers `peer` as a provider; when the list is full, in place of one that keeps failing
    /// and has no stream.
    fn add_provider(&mut self, peer: PeerId) {
        if self.providers.contains_key(&peer) {
            return;
        }
        let counted = self.providers.values().filter(|p| !p.bad).count();
        if counted >= MAX_PROVIDERS {
            let failing = self
                .providers
                .iter()
                .find(|(_, p)| !p.bad && p.failures >= FAILING && p.streams == 0)
                .map(|(peer, _)| *peer);
            let Some(failing) = failing else {
                return;
            };
            self.providers.remove(&failing);
        }
        self.providers.insert(peer, Provider::default());
    }

    /// Providers that may be asked now or soon (not bad, not failing again and again).
    fn usable(&self) -> usize {
        self.providers
            .values()
            .filter(|p| !p.bad && p.failures < FAILING)
            .count()
    }

    /// The next thing to ask for, if any is left unasked.
    fn next_ask(&mut self) -> Option<Ask> {
        if self.manifest.is_none() {
            if self.manifest_asks >= MANIFEST_ASKS {
                return None;
            }
            self.manifest_asks += 1;
            return Some(Ask::Manifest);
        }
        let index = *self.missing.iter().next()?;
        self.missing.remove(&index);
        self.in_flight.insert(index);
        Some(Ask::Piece(index))
    }

    fn give_back(&mut self, ask: Ask) {
        match ask {
            Ask::Manifest => self.manifest_asks = self.manifest_asks.saturating_sub(1),
            Ask::Piece(index) => {
                if self.in_flight.remove(&index) && !self.have.contains(&index) {
                    self.missing.insert(index);
                }
            }
        }
    }

    /// New streams to open, each with its first request: at most one being opened per provider.
    fn assignments(&mut self) -> Vec<(PeerId, Ask)> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut peers: Vec<PeerId> = self.providers.keys().copied().collect();
        peers.sort();
        for peer in peers {
            let open = |p: &Provider| {
                let waiting = p.retry_at.is_some_and(|at| at > now);
                !p.bad && !waiting && !p.opening && p.streams < STREAMS_PER_PROVIDER
            };
            if !self.providers.get(&peer).is_some_and(open) {
                continue;
            }
            let Some(ask) = self.next_ask() else {
                return out;
            };
            if let Some(p) = self.providers.get_mut(&peer) {
                p.streams += 1;
                p.opening = true;
            }
            out.push((peer, ask));
        }
        out
    }

    /// A stream to `peer` ended; `first`: it never got an answer (it was the one opening).
    fn close_stream(&mut self, peer: &PeerId, first: bool) {
        if let Some(p) = self.providers.get_mut(peer) {
            p.streams = p.streams.saturating_sub(1);
            if first {
                p.opening = false;
            }
        }
    }

    /// `peer` failed in a way worth another try later (the streams of one closed connection
    /// fail together: that is one failure).
    fn failed(&mut self, peer: PeerId) {
        let Some(p) = self.providers.get_mut(&peer) else {
            return;
        };
        let now = Instant::now();
        if p.retry_at.is_some_and(|at| at > now) {
            return;
        }
        p.failures += 1;
        p.retry_at = Some(now + retry_after(p.failures));
    }

    /// `peer` is busy or has not got the file: later.
    fn not_now(&mut self, peer: PeerId) {
        if let Some(p) = self.providers.get_mut(&peer) {
            p.retry_at = Some(Instant::now() + NOT_NOW);
        }
    }

    /// `peer` sent bad data: never asked again.
    fn bad(&mut self, peer: PeerId, reason: String, on_event: &mut impl FnMut(FetchEvent)) {
        let Some(p) = self.providers.get_mut(&peer) else {
            return;
        };
        if !p.bad {
            p.bad = true;
            on_event(FetchEvent::Bad { peer, reason });
        }
    }

    /// Handles a finished job; returns a stream to ask something more on.
    async fn on_job<S, K: PieceSink>(
        &mut self,
        job: Job<S>,
        id: &Hash,
        sink: &mut K,
        on_event: &mut impl FnMut(FetchEvent),
    ) -> Result<Option<(PeerId, S, Ask)>, FetchError> {
        let (peer, stream, ask, result) = match job {
            Job::Failed(peer, ask, reason) => {
                tracing::debug!(%peer, %reason, "no stream to a provider");
                self.give_back(ask);
                self.close_stream(&peer, true);
                self.failed(peer);
                return Ok(None);
            }
            Job::Answer {
                peer,
                stream,
                ask,
                first,
                result,
            } => {
                // The stream that was opening has its answer: the next may open.
                if let (true, Some(p)) = (first, self.providers.get_mut(&peer)) {
                    p.opening = false;
                }
                (peer, stream, ask, result)
            }
        };
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(e) => {
                self.give_back(ask);
                self.close_stream(&peer, false);
                match e {
                    WireError::Io(_) => self.failed(peer),
                    WireError::Refused {
                        status: Status::Busy | Status::Unknown | Status::Unavailable,
                        ..
                    } => self.not_now(peer),
                    WireError::Refused { .. }
                    | WireError::WrongLength { .. }
                    | WireError::Unknown(..) => self.bad(peer, e.to_string(), on_event),
                }
                return Ok(None);
            }
        };
        match ask {
            Ask::Manifest => {
                self.manifest_asks = self.manifest_asks.saturating_sub(1);
                let manifest = Manifest::from_bytes(&bytes).filter(|m| m.id() == *id);
                let Some(manifest) = manifest else {
                    self.close_stream(&peer, false);
                    let reason = "a manifest that is not the one the file's id names".to_owned();
                    self.bad(peer, reason, on_event);
                    return Ok(None);
                };
                if !manifest.describes(self.offer) {
                    return Err(FetchError::NotAsOffered(Box::new(manifest)));
                }
                // Another provider's copy may have come first.
                if self.manifest.is_none() {
                    on_event(FetchEvent::Manifest(manifest.clone()));
                    self.manifest = Some(manifest);
                    self.last_progress = Instant::now();
                }
            }
            Ask::Piece(index) => {
                self.in_flight.remove(&index);
                let due = self
                    .manifest
                    .as_ref()
                    .and_then(|m| m.pieces.get(index as usize));
                if due != Some(&sha256(&bytes)) {
                    if !self.have.contains(&index) {
                        self.missing.insert(index);
                    }
                    self.close_stream(&peer, false);
                    let reason = format!("piece {index} does not match its hash");
                    self.bad(peer, reason, on_event);
                    return Ok(None);
                }
                let (offset, len) = self.offer.piece_span(index);
                sink.write(index, offset, bytes)
                    .await
                    .map_err(FetchError::Sink)?;
                if self.have.insert(index) {
                    self.have_bytes += u64::from(len);
                }
                self.last_progress = Instant::now();
                if let Some(p) = self.providers.get_mut(&peer) {
                    p.failures = 0;
                }
                let providers = self.providers.values().filter(|p| p.streams > 0).count();
                on_event(FetchEvent::Piece {
                    index,
                    have: self.have_bytes,
                    providers,
                });
            }
        }
        // The same stream asks for the next thing, if there is one and its provider is good.
        let next = match self.providers.get(&peer) {
            Some(p) if !p.bad => self.next_ask(),
            _ => None,
        };
        match next {
            Some(next) => Ok(Some((peer, stream, next))),
            None => {
                self.close_stream(&peer, false);
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll};

    use futures::channel::mpsc;
    use futures::executor::block_on;
    use futures::{SinkExt, StreamExt};

    use super::*;
    use crate::files::serve::{serve, Library};
    use crate::files::{OfferBuilder, PIECE_BYTES};

    /// One end of an in-memory stream.
    struct Pipe {
        tx: mpsc::Sender<Vec<u8>>,
        rx: mpsc::Receiver<Vec<u8>>,
        buf: Vec<u8>,
    }

    fn pipe() -> (Pipe, Pipe) {
        let (a_tx, a_rx) = mpsc::channel(4);
        let (b_tx, b_rx) = mpsc::channel(4);
        let end = |tx, rx| Pipe {
            tx,
            rx,
            buf: Vec::new(),
        };
        (end(a_tx, b_rx), end(b_tx, a_rx))
    }

    impl AsyncRead for Pipe {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            out: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            while self.buf.is_empty() {
                match self.rx.poll_next_unpin(cx) {
                    Poll::Ready(Some(chunk)) => self.buf = chunk,
                    Poll::Ready(None) => return Poll::Ready(Ok(0)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let n = out.len().min(self.buf.len());
            out[..n].copy_from_slice(&self.buf[..n]);
            self.buf.drain(..n);
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Pipe {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bytes: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            match self.tx.poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
                }
                Poll::Pending => return Poll::Pending,
            }
            let sent = self.tx.start_send(bytes.to_vec());
            Poll::Ready(
                sent.map(|()| bytes.len())
                    .map_err(|_| std::io::ErrorKind::BrokenPipe.into()),
            )
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            self.tx.close_channel();
            Poll::Ready(Ok(()))
        }
    }

    /// A provider's files, in memory; `corrupt` flips a byte of every piece it serves.
    struct Shelf {
        bytes: Vec<u8>,
        offer: FileOffer,
        manifest: Manifest,
        corrupt: bool,
        asked: Rc<RefCell<Vec<u32>>>,
    }

    impl Library for Shelf {
        async fn answer(&self, request: Request) -> (Status, Vec<u8>) {
            if *request.file() != self.offer.id_hash() {
                return (Status::Unknown, b"no such file here".to_vec());
            }
            match request {
                Request::Manifest(_) => (Status::Ok, self.manifest.to_bytes()),
                Request::Piece(_, index) if index < self.offer.pieces() => {
                    self.asked.borrow_mut().push(index);
                    let (start, len) = self.offer.piece_span(index);
                    let mut piece = self.bytes[start as usize..][..len as usize].to_vec();
                    if self.corrupt {
                        piece[0] ^= 1;
                    }
                    (Status::Ok, piece)
                }
                Request::Piece(..) => (Status::BadRequest, b"past the end".to_vec()),
            }
        }
    }

    /// Providers reached through pipes: each open hands one end to the provider's server.
    struct Net {
        servers: HashMap<PeerId, mpsc::Sender<(PeerId, Pipe)>>,
        me: PeerId,
    }

    impl Network for Net {
        type Stream = Pipe;
        async fn open(&self, peer: PeerId) -> Result<Pipe, String> {
            let mut server = self.servers.get(&peer).cloned().ok_or("unknown peer")?;
            let (ours, theirs) = pipe();
            server
                .send((self.me, theirs))
                .await
                .map_err(|e| e.to_string())?;
            Ok(ours)
        }
        async fn providers(&self, _file: &Hash) -> Vec<PeerId> {
            self.servers.keys().copied().collect()
        }
    }

    struct Memory(Vec<u8>);

    impl PieceSink for Memory {
        async fn write(&mut self, _index: u32, offset: u64, bytes: Vec<u8>) -> Result<(), String> {
            self.0[offset as usize..][..bytes.len()].copy_from_slice(&bytes);
            Ok(())
        }
    }

    fn file(len: usize) -> (Vec<u8>, FileOffer, Manifest) {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
        let mut builder = OfferBuilder::default();
        for chunk in bytes.chunks(PIECE_BYTES as usize) {
            builder.piece(chunk);
        }
        let (offer, manifest) = builder.finish("f.bin", "application/octet-stream");
        (bytes, offer, manifest)
    }

    /// Runs a download from `shelves` (one provider each) to the end; what arrived, the events,
    /// and each provider's asked pieces.
    fn download(
        shelves: Vec<(bool, Resume)>,
        len: usize,
    ) -> (Vec<u8>, Vec<u8>, Vec<FetchEvent>, Vec<Vec<u32>>) {
        let (result, bytes, got, events, asked) = download_as(shelves, len, |_| {});
        result.expect("the download completes");
        (bytes, got, events, asked)
    }

    /// The same, with the offer as `alter` leaves it on its way to the downloader.
    #[allow(clippy::type_complexity)]
    fn download_as(
        shelves: Vec<(bool, Resume)>,
        len: usize,
        alter: impl Fn(&mut FileOffer),
    ) -> (
        Result<(), FetchError>,
        Vec<u8>,
        Vec<u8>,
        Vec<FetchEvent>,
        Vec<Vec<u32>>,
    ) {
        let (bytes, offer, manifest) = file(len);
        let mut received = offer.clone();
        alter(&mut received);
        let resume = shelves.first().map(|s| s.1.clone()).unwrap_or_default();
        let mut servers = HashMap::new();
        let mut serving = Vec::new();
        let mut asked = Vec::new();
        let mut order = Vec::new();
        for (corrupt, _) in &shelves {
            let peer = PeerId::random();
            let (tx, rx) = mpsc::channel(8);
            servers.insert(peer, tx);
            let log = Rc::new(RefCell::new(Vec::new()));
            asked.push(log.clone());
            order.push(peer);
            let shelf = Shelf {
                bytes: bytes.clone(),
                offer: offer.clone(),
                manifest: manifest.clone(),
                corrupt: *corrupt,
                asked: log,
            };
            serving.push(serve(rx, shelf, |_| {}));
        }
        let net = Net {
            servers,
            me: PeerId::random(),
        };
        let mut sink = Memory(vec![0; received.size as usize]);
        let mut events = Vec::new();
        let result = block_on(async {
            let servers = futures::future::join_all(serving);
            let download = fetch(&received, resume, &order, &net, &mut sink, |e| {
                events.push(e)
            });
            futures::pin_mut!(servers);
            match futures::future::select(std::pin::pin!(download), servers).await {
                futures::future::Either::Left((result, _)) => result,
                futures::future::Either::Right(_) => panic!("the servers stopped first"),
            }
        });
        let asked = asked.iter().map(|a| a.borrow().clone()).collect();
        (result, bytes, sink.0, events, asked)
    }

    #[test]
    fn an_empty_file_is_checked_against_its_id_too() {
        // A true empty file: its manifest is fetched and checked, then there is nothing more.
        let (sent, got, events, _) = download(vec![(false, Resume::default())], 0);
        assert!(sent.is_empty() && got.is_empty());
        assert!(matches!(events.first(), Some(FetchEvent::Manifest(m)) if m.pieces.is_empty()));
        // A forged copy of a real offer that says "empty" is caught, not saved as the file.
        let len = PIECE_BYTES as usize + 1;
        let (result, ..) = download_as(vec![(false, Resume::default())], len, |offer| {
            offer.size = 0;
            offer.sha256 = to_hex(&sha256(b""));
        });
        assert!(
            matches!(result, Err(FetchError::NotAsOffered(_))),
            "{result:?}"
        );
    }

    #[test]
    fn an_offer_altered_on_its_way_stops_with_the_truth_and_blames_no_provider() {
        let len = PIECE_BYTES as usize * 3;
        let (result, _, _, events, _) =
            download_as(vec![(false, Resume::default())], len, |offer| {
                offer.size += 1
            });
        match result {
            Err(FetchError::NotAsOffered(truth)) => assert_eq!(truth.size, len as u64),
            other => panic!("expected NotAsOffered, got {other:?}"),
        }
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn a_file_arrives_whole_from_one_provider() {
        let len = PIECE_BYTES as usize * 5 + 123;
        let (sent, got, events, _) = download(vec![(false, Resume::default())], len);
        assert!(sent == got, "the bytes differ");
        assert!(matches!(events.first(), Some(FetchEvent::Manifest(m)) if m.pieces.len() == 6));
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, FetchEvent::Piece { .. }))
                .count(),
            6
        );
    }

    #[test]
    fn a_provider_serving_corrupt_pieces_is_dropped_and_the_file_still_arrives_right() {
        let len = PIECE_BYTES as usize * 8;
        let (sent, got, events, asked) = download(
            vec![(true, Resume::default()), (false, Resume::default())],
            len,
        );
        assert!(sent == got, "the bytes differ");
        let bad: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, FetchEvent::Bad { .. }))
            .collect();
        assert_eq!(
            bad.len(),
            1,
            "the corrupt provider is named once: {events:?}"
        );
        // It was asked for at most one round of pieces (one per stream), never again.
        assert!(
            asked[0].len() <= STREAMS_PER_PROVIDER,
            "asked again: {:?}",
            asked[0]
        );
    }

    #[test]
    fn the_streams_of_one_closed_connection_count_as_one_failure() {
        let (_, offer, _) = file(PIECE_BYTES as usize * 4);
        let mut state = State::new(&offer, Resume::default());
        let peer = PeerId::random();
        state.add_provider(peer);
        for _ in 0..STREAMS_PER_PROVIDER {
            state.failed(peer);
        }
        let provider = state.providers.get(&peer).expect("kept");
        assert_eq!(provider.failures, 1);
        assert!(!provider.bad);
        // Asked again soon: a relay circuit cut at its byte cap is replaced at once.
        let wait = provider
            .retry_at
            .expect("backoff")
            .duration_since(Instant::now());
        assert!(wait <= retry_after(1), "{wait:?}");
        assert_eq!(retry_after(1), Duration::from_millis(250));
        assert_eq!(retry_after(5), Duration::from_secs(4));
    }

    #[test]
    fn a_resumed_download_asks_only_for_the_pieces_it_lacks() {
        let len = PIECE_BYTES as usize * 4;
        let (_, offer, manifest) = file(len);
        let resume = Resume {
            manifest: Some(manifest),
            have: [0, 2, 3].into(),
        };
        let (sent, got, events, asked) = download(vec![(false, resume)], len);
        assert_eq!(asked[0], vec![1]);
        assert!(!events.iter().any(|e| matches!(e, FetchEvent::Manifest(_))));
        let (start, len) = offer.piece_span(1);
        assert!(sent[start as usize..][..len as usize] == got[start as usize..][..len as usize]);
    }
}
