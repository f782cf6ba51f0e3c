//! Serving the store protocol: the hub hands each request to the store backend, with the
//! requester authenticated by its connection, when its turn comes ([`super::pacing`]: bounded
//! per peer, per address and in all, so that slow readers cannot fill the relay's memory), and
//! sends the answer when the backend gives it (a receipt waits until its message is durable).
//! The swarm never waits on the database: a full backend queue is answered "busy" at once.

use futures::channel::oneshot;
use futures::{FutureExt, StreamExt};
use libp2p::request_response::{InboundRequestId, ResponseChannel};
use libp2p::{PeerId, Swarm};

use super::pacing::{Turn, Waiting};
use super::state::Hub;
use crate::behaviour::{Behaviour, Extension};
use crate::rpc::Response;
use crate::store::{RequestError, StoreJob, StoreRequest, StoreResponse};

/// The answer when the store cannot take a request now.
const BUSY: &str = "the store is busy; try again shortly";

impl Hub {
    /// A peer's store request (`Err` when it did not decode or was refused by its checks). It
    /// goes to the store when its turn comes ([`super::pacing`]).
    pub fn serve<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        from: PeerId,
        id: InboundRequestId,
        request: Result<StoreRequest, RequestError>,
        channel: ResponseChannel<Response>,
    ) {
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                tracing::debug!(%from, %error, "refused a store request");
                respond(swarm, channel, StoreResponse::error(error.to_string()));
                return;
            }
        };
        let reconciling = matches!(
            request,
            StoreRequest::Reconcile { .. } | StoreRequest::Pull { .. } | StoreRequest::Rooms
        );
        if reconciling && !self.peering.is_relay(&from) {
            respond(
                swarm,
                channel,
                StoreResponse::error("only the relays of this network reconcile history"),
            );
            return;
        }
        let mail = matches!(
            request,
            StoreRequest::MailWaiting { .. }
                | StoreRequest::MailFor { .. }
                | StoreRequest::MailDelivered { .. }
        );
        // Mail is sealed, but who wrote to whom is not for everyone, and a relay's word that
        // mail was delivered erases it: only relays this one's operator named.
        if mail && !self.peering.is_named(&from) {
            respond(
                swarm,
                channel,
                StoreResponse::error(
                    "only the relays this relay's operator named (--peer) exchange mail with it",
                ),
            );
            return;
        }
        let now = std::time::Instant::now();
        if (reconciling && !self.peering.take_sync_request(&from, now))
            || (mail && !self.peering.take_mail_request(&from, now))
        {
            tracing::debug!(%from, "a relay over its reconciliation or mail requests; answered busy");
            respond(swarm, channel, StoreResponse::error(BUSY));
            return;
        }
        if self.backend.is_none() {
            respond(
                swarm,
                channel,
                StoreResponse::error("this relay keeps no store"),
            );
            return;
        }
        let ip = self.guard.ip(&from);
        let waiting = Waiting {
            id,
            peer: from,
            request,
            channel,
        };
        match self.pacing.submit(ip, waiting) {
            Turn::Go(go) => self.start(swarm, go),
            Turn::Wait => {}
            Turn::Busy(waiting) => {
                tracing::debug!(%from, "too many store requests waiting; answered busy");
                respond(swarm, waiting.channel, StoreResponse::error(BUSY));
            }
        }
    }

    /// A store request's answer was sent, or the request failed: its place goes to the next.
    pub fn on_request_done<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        id: InboundRequestId,
    ) {
        let guard = &self.guard;
        let go = self.pacing.done(id, |peer| guard.ip(peer));
        self.start(swarm, go);
    }

    /// Hands requests whose turn it is to the backend.
    fn start<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        go: Vec<Waiting<InboundRequestId, ResponseChannel<Response>>>,
    ) {
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        for Waiting {
            peer,
            request,
            channel,
            ..
        } in go
        {
            let (reply, answer) = oneshot::channel();
            let job = StoreJob::Request {
                from: peer,
                request,
                reply,
            };
            if let Err(e) = backend.try_send(job) {
                let reason = if e.is_full() {
                    BUSY
                } else {
                    "the store has stopped"
                };
                respond(swarm, channel, StoreResponse::error(reason));
                continue;
            }
            self.answers.push(
                async move {
                    let response = answer
                        .await
                        .unwrap_or_else(|_| StoreResponse::error("the store dropped the request"));
                    (channel, response)
                }
                .boxed(),
            );
        }
    }

    /// The next answer from the backend; never completes while none is expected.
    pub async fn next_answer(&mut self) -> (ResponseChannel<Response>, StoreResponse) {
        if self.answers.is_empty() {
            return futures::future::pending().await;
        }
        self.answers.select_next_some().await
    }
}

/// Sends a store answer to its requester.
pub fn respond<X: Extension>(
    swarm: &mut Swarm<Behaviour<X>>,
    channel: ResponseChannel<Response>,
    response: StoreResponse,
) {
    if swarm
        .behaviour_mut()
        .store
        .send_response(channel, Response::Store(response))
        .is_err()
    {
        tracing::debug!("store requester went away before the answer");
    }
}
