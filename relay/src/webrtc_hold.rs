//! Holds back the relay's outbound streams on a new WebRTC-direct connection until the browser
//! has opened one of its own.
//!
//! `libp2p-webrtc-websys` 0.5 attaches its `ondatachannel` handler only once the Noise handshake
//! has finished on the browser's side (rust-libp2p issue #5646). The relay finishes first and
//! at once opens identify and gossipsub streams; Chromium fires those `datachannel` events with
//! nobody listening, and the streams are lost until negotiation times out (~10 s: a page that
//! cannot publish and does not see the room). The browser's first stream proves its handler is
//! in place; until then (or [`HOLD_LIMIT`], for peers that never open one) the relay waits.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::FutureExt;
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent, StreamMuxerExt};

/// Longest the relay holds its streams back.
pub const HOLD_LIMIT: Duration = Duration::from_millis(1500);

/// A muxer whose outbound streams wait for the first inbound one.
pub struct HoldOutbound<M> {
    inner: M,
    released: bool,
    limit: Pin<Box<tokio::time::Sleep>>,
    waiting: Option<Waker>,
}

impl<M> HoldOutbound<M> {
    /// Wraps the muxer of a connection a browser just opened.
    pub fn new(inner: M) -> Self {
        Self {
            inner,
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

impl<M: StreamMuxer + Unpin> StreamMuxer for HoldOutbound<M> {
    type Substream = M::Substream;
    type Error = M::Error;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        let polled = this.inner.poll_inbound_unpin(cx);
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
        this.inner.poll_outbound_unpin(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().inner.poll_close_unpin(cx)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        self.get_mut().inner.poll_unpin(cx)
    }
}
