//! Serving files: answering [`super::FILE_PROTOCOL`] streams from what a peer offers (its
//! [`Library`]), with bounds on what a downloader can take: streams at once, in all and per
//! peer, and how long a stream may sit idle or take to read an answer.
//!
//! Runtime-agnostic: [`serve`] is one future (no spawning); the platform gives it the incoming
//! streams and runs it beside the chat core.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{AsyncRead, AsyncWrite, Stream, StreamExt};
use libp2p::PeerId;

use super::wire::{self, Request, Status};
use super::{to_hex, Hash};

/// Most streams served at once, from everyone.
pub const MAX_SERVING_STREAMS: usize = 32;

/// Most streams served at once to one peer: enough for its downloads at once, each with its
/// streams ([`super::fetch::STREAMS_PER_PROVIDER`]).
pub const MAX_STREAMS_PER_PEER: usize = 16;

/// Most refused streams being told "busy" at once; beyond, a refused stream is just closed.
pub const MAX_REFUSALS: usize = 16;

/// How long telling a refused stream "busy" may take.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a stream may wait between requests before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a downloader may take to read one answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// What a peer offers: the answer to each request (a manifest, a piece checked against its hash,
/// or why not).
pub trait Library {
    /// The answer to `request`: `Status::Ok` with the bytes, or another status and a reason.
    fn answer(&self, request: Request) -> impl Future<Output = (Status, Vec<u8>)>;
}

/// What happened on a served stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// A piece (or manifest) went to `peer`.
    Sent {
        /// The downloader.
        peer: PeerId,
        /// The file, in hex.
        file: String,
        /// Bytes sent.
        bytes: u64,
    },
    /// A stream was refused: too many at once.
    Refused {
        /// The downloader.
        peer: PeerId,
    },
}

/// How one request on a stream went.
enum Step<S> {
    /// Answered; the stream waits for the next request.
    Answered(S, Option<(Hash, u64)>),
    /// The stream is done (closed, idle, failed, or broke the protocol).
    Done(Option<String>),
}

async fn one_request<S, L>(mut stream: S, library: &L) -> Step<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
    L: Library,
{
    let request = match timeout(IDLE_TIMEOUT, wire::read_request(&mut stream)).await {
        None => return Step::Done(Some("idle".into())),
        Some(Ok(None)) => return Step::Done(None),
        Some(Ok(Some(request))) => request,
        Some(Err(e)) => return Step::Done(Some(e.to_string())),
    };
    let (status, bytes) = library.answer(request).await;
    let sent = match timeout(
        WRITE_TIMEOUT,
        wire::write_response(&mut stream, status, &bytes),
    )
    .await
    {
        None => return Step::Done(Some("the downloader did not read the answer".into())),
        Some(Err(e)) => return Step::Done(Some(e.to_string())),
        Some(Ok(())) => (status == Status::Ok).then(|| (*request.file(), bytes.len() as u64)),
    };
    Step::Answered(stream, sent)
}

async fn session<S, L>(peer: PeerId, stream: S, library: &L) -> (PeerId, Step<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    L: Library,
{
    (peer, one_request(stream, library).await)
}

/// Tells a stream it came at a busy time, and closes it.
async fn refuse<S: AsyncWrite + Unpin>(mut stream: S) {
    let said = async {
        wire::write_response(&mut stream, Status::Busy, b"busy: ask again shortly").await?;
        futures::AsyncWriteExt::close(&mut stream).await
    };
    let _ = timeout(REFUSAL_TIMEOUT, said).await;
}

/// `future`'s output, or `None` after `after`.
pub async fn timeout<F: Future>(after: Duration, future: F) -> Option<F::Output> {
    let future = std::pin::pin!(future);
    match futures::future::select(future, futures_timer::Delay::new(after)).await {
        futures::future::Either::Left((output, _)) => Some(output),
        futures::future::Either::Right(_) => None,
    }
}

/// Serves every stream `incoming` yields from `library` until `incoming` ends, telling
/// `on_served` what went out.
pub async fn serve<S, L>(
    incoming: impl Stream<Item = (PeerId, S)>,
    library: L,
    mut on_served: impl FnMut(Served),
) where
    S: AsyncRead + AsyncWrite + Unpin,
    L: Library,
{
    let mut incoming = std::pin::pin!(incoming.fuse());
    let mut sessions = FuturesUnordered::new();
    let mut refusals = FuturesUnordered::new();
    let mut per_peer: HashMap<PeerId, usize> = HashMap::new();
    let library = &library;
    loop {
        futures::select! {
            next = incoming.next() => {
                let Some((peer, stream)) = next else { break };
                let count = per_peer.get(&peer).copied().unwrap_or(0);
                if sessions.len() >= MAX_SERVING_STREAMS || count >= MAX_STREAMS_PER_PEER {
                    // Told "busy" (it asks again a little later), or just closed when too many
                    // are being told.
                    tracing::debug!(%peer, streams = sessions.len(), "file stream refused: too many");
                    on_served(Served::Refused { peer });
                    if refusals.len() < MAX_REFUSALS {
                        refusals.push(refuse(stream));
                    }
                    continue;
                }
                *per_peer.entry(peer).or_default() += 1;
                sessions.push(session(peer, stream, library));
            }
            () = refusals.select_next_some() => {}
            done = sessions.select_next_some() => {
                let (peer, step) = done;
                match step {
                    Step::Answered(stream, sent) => {
                        if let Some((file, bytes)) = sent {
                            on_served(Served::Sent { peer, file: to_hex(&file), bytes });
                        }
                        sessions.push(session(peer, stream, library));
                    }
                    Step::Done(reason) => {
                        if let Some(reason) = reason {
                            tracing::debug!(%peer, %reason, "file stream closed");
                        }
                        if let Some(count) = per_peer.get_mut(&peer) {
                            *count -= 1;
                            if *count == 0 {
                                per_peer.remove(&peer);
                            }
                        }
                    }
                }
            }
        }
    }
}
