//! Serving the store protocol: the hub hands each request to the store backend, with the
//! requester authenticated by its connection, and sends the answer when the backend gives it
//! (a receipt waits until its message is durable). The swarm never waits on the database: a
//! full backend queue is answered "busy" at once.

use futures::channel::oneshot;
use futures::{FutureExt, StreamExt};
use libp2p::request_response::ResponseChannel;
use libp2p::{PeerId, Swarm};

use super::state::Hub;
use crate::behaviour::{Behaviour, Extension};
use crate::rpc::Response;
use crate::store::{RequestError, StoreJob, StoreRequest, StoreResponse};

impl Hub {
    /// A peer's store request (`Err` when it did not decode or was refused by its checks).
    pub fn serve<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        from: PeerId,
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
        let Some(backend) = self.backend.as_mut() else {
            respond(
                swarm,
                channel,
                StoreResponse::error("this relay keeps no store"),
            );
            return;
        };
        let (reply, answer) = oneshot::channel();
        let job = StoreJob::Request {
            from,
            request,
            reply,
        };
        if let Err(e) = backend.try_send(job) {
            let reason = if e.is_full() {
                "the store is busy; try again shortly"
            } else {
                "the store has stopped"
            };
            respond(swarm, channel, StoreResponse::error(reason));
            return;
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
