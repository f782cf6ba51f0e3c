//! Why a command failed: one error type per operation of the [`super::Client`], each message
//! saying what was wrong and, where it helps, what to do. Every command can also fail with
//! [`Stopped`], when the chat core is gone.

use libp2p::PeerId;

use crate::envelope::EnvelopeError;
use crate::protocol::RoomNameError;

/// The chat core has stopped (after a shutdown, or when its task ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the chat core has stopped")]
pub struct Stopped;

/// An address that cannot be used for what it was given for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad address {addr}: {reason}")]
pub struct AddressError {
    /// The address given.
    pub addr: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Why a command that takes an address (listen, use a relay, bootstrap) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The core has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// The address cannot be used.
    #[error(transparent)]
    Address(#[from] AddressError),
}

/// Why a room could not be joined.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The core has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// Not a room name.
    #[error(transparent)]
    Room(#[from] RoomNameError),
    /// Gossipsub refused the subscription.
    #[error("could not join: {0}")]
    Subscribe(#[source] libp2p::gossipsub::SubscriptionError),
    /// In as many rooms as a relay follows for one peer.
    #[error("you are in {0} rooms, the most a relay follows for one peer: leave one first")]
    TooManyRooms(usize),
}

/// Why a command about one room we are in failed (leave, members).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// The core has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// We are not in that room.
    #[error("you are not in room {0:?}; /join it first")]
    NotInRoom(String),
}

/// Why a message was not sent to a room.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The core has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// We are not in that room.
    #[error("you are not in room {0:?}; /join it first")]
    NotInRoom(String),
    /// The text cannot be sent as it is (empty, too long).
    #[error(transparent)]
    Message(#[from] EnvelopeError),
    /// Nobody is reachable in the room and its queue of unsent messages is full.
    #[error("room {0:?} has no connected members yet and its queue of unsent messages is full")]
    QueueFull(String),
    /// Gossipsub refused the message.
    #[error("could not publish: {0}")]
    Publish(#[source] libp2p::gossipsub::PublishError),
}

/// Why a nickname was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NickError {
    /// The core has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// Nothing visible in it.
    #[error("a nickname needs at least one visible character")]
    Blank,
}

/// Why a direct message was not delivered (nor kept by the relay for its recipient).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmError {
    /// The core has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// Addressed to ourselves.
    #[error("that is your own peer id")]
    SelfTarget,
    /// The text cannot be sent as it is (empty, too long).
    #[error(transparent)]
    Message(#[from] EnvelopeError),
    /// No connection, no known address, no relay.
    #[error("no route to {0}: not connected, no known address and no relay to reach it through")]
    NoRoute(PeerId),
    /// Every way to the recipient failed.
    #[error("direct message not delivered: could not reach {peer}: {reason}")]
    Unreachable {
        /// The recipient.
        peer: PeerId,
        /// Why each way failed.
        reason: String,
    },
    /// No connection to the recipient in time.
    #[error("direct message not delivered: no connection to {peer} within {secs} s")]
    Timeout {
        /// The recipient.
        peer: PeerId,
        /// How long it waited.
        secs: u64,
    },
    /// The recipient refused it.
    #[error("direct message not delivered: {peer} rejected it: {reason}")]
    Rejected {
        /// The recipient.
        peer: PeerId,
        /// Its reason.
        reason: String,
    },
    /// The exchange failed on the way (the connection closed, no answer in time, ...).
    #[error("direct message not delivered: {peer}: {reason}")]
    Failed {
        /// The recipient.
        peer: PeerId,
        /// What failed.
        reason: String,
    },
    /// Not delivered, and our relay did not keep it for the recipient either.
    #[error("{cause}; the relay did not keep it either: {reason}")]
    NotKept {
        /// Why it was not delivered.
        cause: Box<DmError>,
        /// Why the relay did not keep it (or why it could not be sealed for it).
        reason: String,
    },
}

/// Why a dial failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The core has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// The address cannot be dialled.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The dial failed.
    #[error("{0}")]
    Dial(String),
}

/// Why a DHT lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    /// The core has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// Looking ourselves up.
    #[error("that is your own peer id")]
    SelfTarget,
    /// A peer without a DHT (the browser build).
    #[error("this peer has no DHT to look anyone up in; reach peers through the relay")]
    NoDht,
    /// The DHT does not know the peer.
    #[error("{0} was not found in the DHT")]
    NotFound(PeerId),
    /// No answer in time.
    #[error("timed out after {0} s")]
    Timeout(u64),
}

/// Why a peer could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReachError {
    /// The core has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// Reaching ourselves.
    #[error("that is your own peer id")]
    SelfTarget,
    /// No connection, no known address, no relay.
    #[error("no route to {0}: not connected, no known address and no relay to reach it through")]
    NoRoute(PeerId),
    /// Every address failed.
    #[error("cannot reach {peer}: {reason}")]
    Unreachable {
        /// The peer.
        peer: PeerId,
        /// What the dial said.
        reason: String,
    },
    /// No connection in time.
    #[error("no connection within {0} s")]
    Timeout(u64),
}

/// Why a ping failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PingError {
    /// The core has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// Pinging ourselves.
    #[error("that is your own peer id")]
    SelfTarget,
    /// No connection, no known address, no relay.
    #[error("no route to {0}: not connected, no known address and no relay to reach it through")]
    NoRoute(PeerId),
    /// The peer runs no ping protocol (another libp2p program).
    #[error("{0} does not support ping")]
    Unsupported(PeerId),
    /// No answer in time.
    #[error("timed out after {0} s")]
    Timeout(u64),
}
