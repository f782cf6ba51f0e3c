//! The browser build's hub: a type with no values. A relay is a native program, so no hub can
//! exist in the page; every method below is unreachable, and the compiler drops the branches of
//! the event loop that would call them (the page carries none of the hub's code).

use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, TopicHash};
use libp2p::request_response::{InboundRequestId, ResponseChannel};
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, Swarm};

use crate::behaviour::{Behaviour, Extension, Role};
use crate::rpc::Response;
use crate::store::{RequestError, StoreHandle, StoreRequest, StoreResponse};

/// No hub in the browser.
#[derive(Debug)]
pub enum Hub {}

type Net<X> = Swarm<Behaviour<X>>;

#[allow(missing_docs)]
impl Hub {
    /// Always `None`: the browser is never a relay.
    pub fn for_role(
        _role: Role,
        _backend: Option<StoreHandle>,
        _limits: super::HubLimits,
        _peering: &super::PeeringConfig,
    ) -> Option<Self> {
        None
    }

    pub fn serves(&self, _: &str) -> bool {
        match *self {}
    }

    pub fn on_subscribed<X: Extension>(&mut self, _: &mut Net<X>, _: PeerId, _: &TopicHash) {
        match *self {}
    }

    pub fn on_unsubscribed<X: Extension>(&mut self, _: &mut Net<X>, _: PeerId, _: &TopicHash) {
        match *self {}
    }

    pub fn on_connection_established<X: Extension>(
        &mut self,
        _: &mut Net<X>,
        _: PeerId,
        _: &ConnectedPoint,
        _: &[(ConnectionId, Multiaddr)],
    ) {
        match *self {}
    }

    pub fn on_connection_closed<X: Extension>(&mut self, _: &mut Net<X>, _: PeerId, _: bool) {
        match *self {}
    }

    pub fn on_identify<X: Extension>(
        &mut self,
        _: &mut Net<X>,
        _: PeerId,
        _: &[Multiaddr],
        _: &[libp2p::StreamProtocol],
    ) {
        match *self {}
    }

    pub fn file(&mut self, _: &str, _: PeerId, _: &gossipsub::Message) {
        match *self {}
    }

    pub fn admit<X: Extension>(
        &mut self,
        _: &mut Net<X>,
        _: PeerId,
        _: &gossipsub::Message,
        _: &gossipsub::MessageId,
        _: &PeerId,
    ) -> bool {
        match *self {}
    }

    pub fn tick<X: Extension>(&mut self, _: &mut Net<X>) {
        match *self {}
    }

    pub fn serve<X: Extension>(
        &mut self,
        _: &mut Net<X>,
        _: PeerId,
        _: InboundRequestId,
        _: Result<StoreRequest, RequestError>,
        _: ResponseChannel<Response>,
    ) {
        match *self {}
    }

    pub fn on_request_done<X: Extension>(&mut self, _: &mut Net<X>, _: InboundRequestId) {
        match *self {}
    }

    pub async fn next_answer(&mut self) -> (ResponseChannel<Response>, StoreResponse) {
        match *self {}
    }
}

/// Never called: nothing in the browser answers the store protocol.
pub fn respond<X: Extension>(_: &mut Net<X>, _: ResponseChannel<Response>, _: StoreResponse) {}
