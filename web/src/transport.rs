//! The browser's swarm: WebRTC-direct and WebSocket transports plus the relay client, around
//! the shared chat behaviour.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite, FutureExt};
use libp2p::core::muxing::SubstreamBox;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::upgrade::Version;
use libp2p::{
    identity::Keypair, noise, relay, websocket_websys, yamux, Multiaddr, Swarm, Transport,
};
use p2p_chat_shared::behaviour::{Behaviour, NoExtension, Role};
use p2p_chat_shared::protocol::IDLE_CONNECTION_TIMEOUT;

/// The browser swarm.
pub type BrowserSwarm = Swarm<Behaviour<NoExtension>>;

/// Refuses `/p2p-circuit` addresses so that the relay client transport gets them. The WebRTC
/// transport would otherwise claim `/.../webrtc-direct/.../p2p/RELAY/p2p-circuit/p2p/TARGET`,
/// dial the relay itself and fail with `WrongPeerId` (rust-libp2p issue #5453).
struct NoCircuit<T>(T);

impl<T: Transport + Unpin> Transport for NoCircuit<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.0.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.0.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        if p2p_chat_shared::addr::is_relayed(&addr) {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        self.0.dial(addr, opts)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// How often a WebSocket that has not opened yet is looked at again ([`Opening`]).
const OPENING_POLL: Duration = Duration::from_millis(100);

/// A WebSocket connection, polled again every [`OPENING_POLL`] until the other side has spoken.
///
/// libp2p-websocket-websys 0.6 wakes a task waiting for its socket to open only when it opens,
/// and one waiting to read only when data comes: a socket that fails to open (the relay is
/// down: connection refused), or closes before the first answer (the relay died during the
/// handshake), is never looked at again, and the dial hangs until the transport's 10 s timeout.
/// Once a read has gone through, the handshake is under way and this wrapper only passes calls
/// on (a socket closed after that is found by the next write: liveness pings every connection).
struct Opening<C> {
    inner: C,
    heard: bool,
    timer: Option<futures_timer::Delay>,
}

impl<C> Opening<C> {
    fn new(inner: C) -> Self {
        Self {
            inner,
            heard: false,
            timer: None,
        }
    }

    /// Notes what a read or write of the socket gave: until the first read went through, makes
    /// sure the task is woken soon to look again.
    fn saw<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
        read: bool,
    ) -> Poll<io::Result<T>> {
        match &result {
            Poll::Ready(Ok(_)) if read => {
                self.heard = true;
                self.timer = None;
            }
            Poll::Pending if !self.heard => {
                let timer = self
                    .timer
                    .get_or_insert_with(|| futures_timer::Delay::new(OPENING_POLL));
                while timer.poll_unpin(cx).is_ready() {
                    timer.reset(OPENING_POLL);
                }
            }
            _ => {}
        }
        result
    }
}

impl<C: AsyncRead + Unpin> AsyncRead for Opening<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.saw(cx, result, true)
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Opening<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.saw(cx, result, false)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// Why the browser's swarm could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Noise handshake configuration.
    #[error("noise: {0}")]
    Noise(#[from] noise::Error),
    /// A transport or the behaviour.
    #[error("{0}")]
    Swarm(String),
}

fn swarm_err(e: impl std::fmt::Display) -> BuildError {
    BuildError::Swarm(e.to_string())
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export function ignore_events_of_dropped_streams() {
  if (typeof RTCDataChannel === 'undefined' || RTCDataChannel.prototype.__p2pChatGuarded) return;
  RTCDataChannel.prototype.__p2pChatGuarded = true;
  for (const name of ['onopen', 'onclose', 'onmessage', 'onbufferedamountlow', 'onerror']) {
    const own = Object.getOwnPropertyDescriptor(RTCDataChannel.prototype, name);
    if (!own || !own.set) continue;
    Object.defineProperty(RTCDataChannel.prototype, name, {
      configurable: true,
      enumerable: own.enumerable,
      get() { return own.get.call(this); },
      set(handler) {
        own.set.call(this, typeof handler !== 'function' ? handler : function (event) {
          try {
            return handler.call(this, event);
          } catch (e) {
            if (!(e instanceof Error && e.message.includes('closure invoked recursively or after being dropped'))) throw e;
          }
        });
      },
    });
  }
}
"#)]
extern "C" {
    /// libp2p-webrtc-websys 0.5 sets a data channel's event handlers to Rust closures and drops
    /// the closures with the stream, leaving the handlers set: an event that arrives after (the
    /// channel's `close`, a late message) calls a dropped closure, and wasm-bindgen throws
    /// "closure invoked recursively or after being dropped" as an uncaught page error. This
    /// wraps every handler set on a data channel so that such a call is ignored: the stream it
    /// was for is gone, so there is nothing to do. Any other error still goes up.
    fn ignore_events_of_dropped_streams();
}

/// Builds the browser swarm for `key`.
///
/// WebSocket connections and relayed circuits both need noise and yamux on top. Each raw
/// connection is boxed first, so that the browser build carries one copy of the noise handshake,
/// multistream-select and yamux instead of one per transport (55 KB of the `.wasm`, 13.5 KB
/// compressed).
pub fn build(key: Keypair) -> Result<BrowserSwarm, BuildError> {
    ignore_events_of_dropped_streams();
    let (relay_transport, relay_client) = relay::client::new(key.public().to_peer_id());
    let noise = noise::Config::new(&key)?;
    let streams = relay_transport
        .map(|conn, _| SubstreamBox::new(conn))
        .or_transport(
            websocket_websys::Transport::default()
                .map(|conn, _| SubstreamBox::new(Opening::new(conn))),
        )
        .map(|either, _| either.into_inner())
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux::Config::default());
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            NoCircuit(libp2p::webrtc_websys::Transport::new(
                libp2p::webrtc_websys::Config::new(key),
            ))
        })
        .map_err(swarm_err)?
        .with_other_transport(|_| streams)
        .map_err(swarm_err)?
        .with_behaviour(|key| {
            Behaviour::new(key, relay_client, NoExtension {}, Role::Peer)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })
        })
        .map_err(swarm_err)?
        // One address at a time: a dial given several addresses (a DM to a peer: its circuits
        // through each relay) must not finish two handshakes, leaving the other side with a
        // ghost connection the page dropped (gossipsub then splits messages between the two).
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
                .with_dial_concurrency_factor(std::num::NonZeroU8::MIN)
        })
        .build();
    Ok(swarm)
}
