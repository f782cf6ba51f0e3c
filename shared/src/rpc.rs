//! One request-response codec for both of p2p-chat's own protocols, direct messages
//! ([`DM_PROTOCOL`], [`crate::dm`]) and the store ([`STORE_PROTOCOL`], [`crate::store`]). The
//! chat behaviour runs two request-response behaviours of this one type, one per protocol (a
//! behaviour negotiates every protocol it has, so they cannot share one), and the browser build
//! carries a single copy of libp2p's request-response machinery instead of two.
//!
//! Each protocol's bytes are its own module's: one JSON value per stream in each direction.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::StreamProtocol;
use serde::Serialize;

use crate::dm::DmAck;
use crate::envelope::RawEnvelope;
use crate::protocol::{DM_PROTOCOL, DM_TIMEOUT, MAX_DM_FRAME_BYTES, STORE_PROTOCOL};
use crate::store::{RequestError, StoreRequest, StoreResponse, MAX_STORE_RESPONSE_BYTES};

/// A request of either protocol.
#[derive(Debug, Clone)]
pub enum Request {
    /// A direct message.
    Dm(RawEnvelope),
    /// A store request; `Err` with the reason when it did not decode, so that the store answers
    /// it with an error instead of closing the stream.
    Store(Result<StoreRequest, RequestError>),
}

/// A response of either protocol.
#[derive(Debug, Clone)]
pub enum Response {
    /// A direct message's acknowledgement.
    Dm(DmAck),
    /// A store's answer.
    Store(StoreResponse),
}

/// The codec of both protocols, with their size caps.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChatCodec;

/// The request-response behaviour (one per protocol).
pub type RpcBehaviour = request_response::Behaviour<ChatCodec>;

/// How long a store request may take (a receipt waits for its messages to be written).
pub const STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The direct-message behaviour.
pub fn dm_behaviour() -> RpcBehaviour {
    request_response::Behaviour::with_codec(
        ChatCodec,
        [(DM_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(DM_TIMEOUT),
    )
}

/// The store behaviour: a relay answers requests (and asks the other relays of its network, when
/// it reconciles history with them), a peer only asks.
pub fn store_behaviour(serves: bool) -> RpcBehaviour {
    // A relay also asks: the other relays of its network, when it reconciles history with them.
    let support = if serves {
        ProtocolSupport::Full
    } else {
        ProtocolSupport::Outbound
    };
    let mut config = request_response::Config::default().with_request_timeout(STORE_TIMEOUT);
    if serves {
        // Requests wait their turn at the hub with their streams open (`hub::pacing`).
        config = config.with_max_concurrent_streams(crate::hub::pacing::MAX_STREAMS_PER_CONNECTION);
    }
    request_response::Behaviour::with_codec(ChatCodec, [(STORE_PROTOCOL, support)], config)
}

/// Reads at most `limit` bytes; `Ok(None)` when there was more.
async fn read_capped<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: u64,
) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    io.take(limit + 1).read_to_end(&mut bytes).await?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

fn invalid(reason: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_string())
}

async fn write_json<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    value: &impl Serialize,
) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl request_response::Codec for ChatCodec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        if *protocol == DM_PROTOCOL {
            let bytes = read_capped(io, MAX_DM_FRAME_BYTES)
                .await?
                .ok_or_else(|| invalid(format!("dm is over {MAX_DM_FRAME_BYTES} bytes")))?;
            return serde_json::from_slice(&bytes)
                .map(Request::Dm)
                .map_err(invalid);
        }
        // The browser serves no store, and leaves the decoder out of its build.
        #[cfg(target_arch = "wasm32")]
        {
            Err(io::Error::other("this peer keeps no store"))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let limit = crate::store::MAX_STORE_REQUEST_BYTES as u64;
            let Some(bytes) = read_capped(io, limit).await? else {
                return Ok(Request::Store(Err(RequestError::TooLarge)));
            };
            let request = serde_json::from_slice::<StoreRequest>(&bytes)
                .map_err(|e| RequestError::Malformed(e.to_string()))
                .and_then(|request| request.validate().map(|()| request));
            Ok(Request::Store(request))
        }
    }

    async fn read_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let limit = if *protocol == DM_PROTOCOL {
            MAX_DM_FRAME_BYTES
        } else {
            MAX_STORE_RESPONSE_BYTES as u64
        };
        let bytes = read_capped(io, limit)
            .await?
            .ok_or_else(|| invalid(format!("{protocol} response is over {limit} bytes")))?;
        if *protocol == DM_PROTOCOL {
            serde_json::from_slice(&bytes)
                .map(Response::Dm)
                .map_err(invalid)
        } else {
            serde_json::from_slice(&bytes)
                .map(Response::Store)
                .map_err(invalid)
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match request {
            Request::Dm(envelope) => write_json(io, &envelope).await,
            Request::Store(Ok(request)) => write_json(io, &request).await,
            Request::Store(Err(reason)) => Err(io::Error::other(reason)),
        }
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match response {
            Response::Dm(ack) => write_json(io, &ack).await,
            Response::Store(_) if cfg!(target_arch = "wasm32") => {
                Err(io::Error::other("this peer keeps no store"))
            }
            Response::Store(answer) => write_json(io, &answer).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use request_response::Codec;

    #[test]
    fn garbage_and_oversized_store_requests_become_error_answers() {
        futures::executor::block_on(async {
            let mut codec = ChatCodec;
            let mut garbage: &[u8] = b"{not json";
            let got = codec
                .read_request(&STORE_PROTOCOL, &mut garbage)
                .await
                .expect("read");
            assert!(
                matches!(got, Request::Store(Err(ref e)) if e.to_string().starts_with("malformed request")),
                "{got:?}"
            );
            let big = vec![b' '; crate::store::MAX_STORE_REQUEST_BYTES + 10];
            let got = codec
                .read_request(&STORE_PROTOCOL, &mut big.as_slice())
                .await
                .expect("read");
            assert!(
                matches!(got, Request::Store(Err(ref e)) if e.to_string().contains("over")),
                "{got:?}"
            );
            let mut good: &[u8] = br#"{"receipt":{"room":"lobby","ids":["abc"]}}"#;
            let got = codec
                .read_request(&STORE_PROTOCOL, &mut good)
                .await
                .expect("read");
            assert!(
                matches!(got, Request::Store(Ok(StoreRequest::Receipt { ref ids, .. })) if ids == &["abc"]),
                "{got:?}"
            );
        });
    }

    #[test]
    fn a_dm_that_does_not_decode_fails_its_stream() {
        futures::executor::block_on(async {
            let mut codec = ChatCodec;
            let mut garbage: &[u8] = b"[1,2";
            assert!(codec
                .read_request(&DM_PROTOCOL, &mut garbage)
                .await
                .is_err());
            let big = vec![b' '; MAX_DM_FRAME_BYTES as usize + 1];
            assert!(codec
                .read_request(&DM_PROTOCOL, &mut big.as_slice())
                .await
                .is_err());
        });
    }
}
