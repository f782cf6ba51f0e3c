//! Holds back the relay's outbound streams on a new WebRTC-direct connection until the browser
//! has opened one of its own.
//!
//! `libp2p-webrtc-websys` 0.5 attaches its `ondatachannel` handler only once the Noise handshake
//! has finished on the browser's side (rust-libp2p issue #5646). The relay finishes first and
//! at once opens identify and gossipsub streams; Chromium fires those `datachannel` events with
//! nobody listening, and the streams are lost until negotiation times out (~10 s: a page that
//! cannot publish and does not see the room). The browser's first stream proves its handler is
//! in place; until then (or [`HOLD_LIMIT`], for peers that never open one) the relay waits.
//!
//! It also closes in the background. Closing a WebRTC connection whose browser is gone (a closed
//! or reloaded tab) waits for the transport's timeouts, many seconds during which the swarm
//! still counts the connection as open; a reloaded page would keep meeting its own ghost.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::FutureExt;
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent, StreamMuxerExt};

/// Longest the relay holds its streams back.
pub const HOLD_LIMIT: Duration = Duration::from_millis(1500);

/// Longest a background close may take before it is abandoned.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(30);

/// A muxer whose outbound streams wait for the first inbound one.
pub struct HoldOutbound<M> {
    /// `None` once closing (in the background).
    inner: Option<M>,
    released: bool,
    limit: Pin<Box<tokio::time::Sleep>>,
    waiting: Option<Waker>,
}

impl<M> HoldOutbound<M> {
    /// Wraps the muxer of a connection a browser just opened.
    pub fn new(inner: M) -> Self {
        Self {
            inner: Some(inner),
            released: false,
            limit: Box::pin(tokio::time::sleep(HOLD_LIMIT)),
            waiting: None,
        }
    }

    fn release(&mut self) {
        self.released = true;
        if let Some(waker) = self.waiting.take() {
            waker.wake();
        }
    }
}

/// The error of a muxer used after it was closed.
fn closed<E: From<std::io::Error>>() -> E {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed").into()
}

impl<M> StreamMuxer for HoldOutbound<M>
where
    M: StreamMuxer + Unpin + Send + 'static,
    M::Error: From<std::io::Error>,
{
    type Substream = M::Substream;
    type Error = M::Error;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Err(closed()));
        };
        let polled = inner.poll_inbound_unpin(cx);
        if matches!(polled, Poll::Ready(Ok(_))) && !this.released {
            this.release();
        }
        polled
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        if !this.released {
            if this.limit.poll_unpin(cx).is_ready() {
                this.release();
            } else {
                this.waiting = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        match this.inner.as_mut() {
            Some(inner) => inner.poll_outbound_unpin(cx),
            None => Poll::Ready(Err(closed())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if let Poll::Ready(result) = inner.poll_close_unpin(cx) {
            this.inner = None;
            return Poll::Ready(result);
        }
        // Still closing: finish it in the background, bounded, and report the close now.
        if let Some(mut inner) = this.inner.take() {
            tokio::spawn(async move {
                let close = futures::future::poll_fn(|cx| inner.poll_close_unpin(cx));
                if tokio::time::timeout(CLOSE_LIMIT, close).await.is_err() {
                    tracing::debug!("a WebRTC connection did not finish closing; dropped");
                }
            });
        }
        Poll::Ready(Ok(()))
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        match self.get_mut().inner.as_mut() {
            Some(inner) => inner.poll_unpin(cx),
            None => Poll::Pending,
        }
    }
}
