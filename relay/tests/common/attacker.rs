//! A misbehaving peer built on rust-libp2p: a bare gossipsub node that publishes whatever a test
//! gives it, as fast as a test asks, with no rules of p2p-chat's own.

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::swarm::SwarmEvent;
use libp2p::{identity::Keypair, Multiaddr, PeerId, Swarm};
use p2p_chat_shared::protocol::{room_topic, MAX_RPC_BYTES};

use super::WAIT;

/// How an attacker's gossipsub is set up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Signs its messages, like any peer.
    Signed,
    /// Signs nothing.
    Unsigned,
    /// Signs, grafts nobody and ignores IHAVE.
    Aloof,
}

/// The attacker.
pub struct Attacker {
    pub swarm: Swarm<gossipsub::Behaviour>,
    pub peer_id: PeerId,
    key: Keypair,
    relay: PeerId,
}

impl Attacker {
    /// Connects to the relay at `addr` (TCP, ending in `/p2p/<id>`) with a fresh identity.
    pub async fn connect(addr: &Multiaddr) -> Self {
        Self::connect_with(Keypair::generate_ed25519(), addr).await
    }

    /// Connects with this identity.
    pub async fn connect_with(key: Keypair, addr: &Multiaddr) -> Self {
        Self::build(key, addr, Kind::Signed).await
    }

    /// Connects with a fresh identity whose messages carry no signature: every one is invalid
    /// to a relay that checks them.
    pub async fn connect_unsigned(addr: &Multiaddr) -> Self {
        Self::build(Keypair::generate_ed25519(), addr, Kind::Unsigned).await
    }

    /// Connects with a fresh identity as a peer that grafts nobody into its mesh and ignores
    /// lazy gossip (IHAVE): it gets only what is forwarded to it unasked. So is a chat peer of a
    /// room where it has enough direct neighbours (it grafts only while its mesh is short).
    pub async fn connect_aloof(addr: &Multiaddr) -> Self {
        Self::build(Keypair::generate_ed25519(), addr, Kind::Aloof).await
    }

    async fn build(key: Keypair, addr: &Multiaddr, kind: Kind) -> Self {
        let relay = match addr.iter().last() {
            Some(libp2p::core::multiaddr::Protocol::P2p(peer)) => peer,
            _ => panic!("{addr} has no /p2p"),
        };
        let peer_id = key.public().to_peer_id();
        let mut swarm = super::bare_swarm(key.clone(), |key| {
            let (authenticity, mode) = if kind == Kind::Unsigned {
                (
                    MessageAuthenticity::Author(key.public().to_peer_id()),
                    gossipsub::ValidationMode::Permissive,
                )
            } else {
                (
                    MessageAuthenticity::Signed(key.clone()),
                    gossipsub::ValidationMode::Strict,
                )
            };
            let mut config = gossipsub::ConfigBuilder::default();
            config
                .max_transmit_size(MAX_RPC_BYTES)
                .max_control_message_size(MAX_RPC_BYTES)
                .validation_mode(mode);
            if kind == Kind::Aloof {
                // A mesh of none (a GRAFT from the relay is pruned at the next heartbeat), and
                // every IHAVE is one too many.
                config
                    .mesh_n(0)
                    .mesh_n_low(0)
                    .mesh_n_high(0)
                    .mesh_outbound_min(0)
                    .max_ihave_messages_heartbeat(0);
            }
            let config = config.build().expect("config");
            gossipsub::Behaviour::new(authenticity, config).expect("gossipsub")
        });
        swarm.dial(addr.clone()).expect("dial");
        Self {
            swarm,
            peer_id,
            key,
            relay,
        }
    }

    /// Connects again with the identity of `other`.
    pub async fn connect_with_key_of(other: &Self, addr: &Multiaddr) -> Self {
        Self::connect_with(other.key.clone(), addr).await
    }

    /// Subscribes to `room` and waits until the relay follows it (so publishes go out).
    pub async fn join(&mut self, room: &str) {
        self.swarm
            .behaviour_mut()
            .subscribe(&room_topic(room))
            .expect("subscribe");
        let topic = room_topic(room).hash();
        let relay = self.relay;
        tokio::time::timeout(WAIT, async {
            loop {
                if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, topic: t }) =
                    self.swarm.select_next_some().await
                {
                    if peer_id == relay && t == topic {
                        return;
                    }
                }
            }
        })
        .await
        .expect("the relay follows the room");
    }

    /// Publishes `data` to `room`; `false` when gossipsub refused it (e.g. nobody to send to).
    pub fn publish(&mut self, room: &str, data: Vec<u8>) -> bool {
        self.swarm
            .behaviour_mut()
            .publish(IdentTopic::new(room), data)
            .is_ok()
    }

    /// Drives the swarm for `time` (sends what was published).
    pub async fn run_for(&mut self, time: Duration) {
        let _ = tokio::time::timeout(time, async {
            loop {
                self.swarm.select_next_some().await;
            }
        })
        .await;
    }

    /// Runs until a room message from `author` arrives; its bytes.
    pub async fn capture_from(&mut self, author: PeerId) -> Vec<u8> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) =
                    self.swarm.select_next_some().await
                {
                    if message.source == Some(author) {
                        return message.data;
                    }
                }
            }
        })
        .await
        .expect("a message from the author")
    }

    /// How many rooms named `prefix…` the relay says it follows (subscribes to) within `time`.
    pub async fn relay_subscriptions_within(&mut self, prefix: &str, time: Duration) -> usize {
        let mut count = 0;
        let relay = self.relay;
        let _ = tokio::time::timeout(time, async {
            loop {
                if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, topic }) =
                    self.swarm.select_next_some().await
                {
                    if peer_id == relay && topic.as_str().starts_with(prefix) {
                        count += 1;
                    }
                }
            }
        })
        .await;
        count
    }

    /// Whether the relay is still connected.
    pub fn connected(&self) -> bool {
        self.swarm.is_connected(&self.relay)
    }
}
