//! Rooms the hub follows for its peers: it subscribes when the first peer does (up to
//! [`MAX_HUB_ROOMS`]), leaves when none is left, and tells a room at once when one of its members
//! disconnects (a `gone` announcement, believed only from one's own relay), instead of leaving the
//! others to wait for the member's presence to expire.

use std::collections::HashSet;

use libp2p::gossipsub::TopicHash;
use libp2p::{PeerId, Swarm};

use super::guard::room_score_params;
use super::limits::RELAY_PROOF_GRACE;
use super::state::Hub;
use crate::behaviour::{Behaviour, Extension};
use crate::envelope::Envelope;
use crate::protocol::{room_topic, validate_room, MAX_HUB_ROOMS, MAX_ROOMS_PER_PEER};

impl Hub {
    /// A neighbour subscribed to `topic`: follow the room for it.
    pub fn on_subscribed<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        peer: PeerId,
        topic: &TopicHash,
    ) {
        // Gossipsub says "subscribed" again for a topic a peer holds (a peer back on a new
        // connection): a set counts each room once.
        let held = self.subscriptions.entry(peer).or_default();
        held.topics.insert(topic.clone());
        let over = held.topics.len() > MAX_ROOMS_PER_PEER;
        if over && held.over_since.is_none() {
            held.over_since = Some(std::time::Instant::now());
        }
        if over || self.peering.is_relay(&peer) {
            // A relay of the network follows the room for its own peers; a peer over its
            // rooms is disconnected at the next tick, unless it turns out to be a relay.
            return;
        }
        let room = topic.as_str();
        if !self.rooms.contains_key(room)
            && validate_room(room).is_ok()
            && self.rooms.len() < MAX_HUB_ROOMS
            && self.guard.may_follow(peer)
            && swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(&room_topic(room))
                .is_ok()
        {
            let gossipsub = &mut swarm.behaviour_mut().gossipsub;
            if let Err(e) = gossipsub.set_topic_params(room_topic(room), room_score_params()) {
                tracing::warn!(room, error = e, "room scoring not set");
            }
            self.rooms.insert(room.to_owned(), HashSet::new());
            self.guard.followed(room, peer);
            tracing::info!(room, %peer, "hub joined room");
        }
        if let Some(members) = self.rooms.get_mut(room) {
            members.insert(peer);
        }
    }

    /// A neighbour unsubscribed from `topic`. No gone announcement: a member that unsubscribes
    /// sends its own goodbye, and one sent now would overtake it (gossipsub sends the
    /// unsubscription before the goodbye published just before).
    pub fn on_unsubscribed<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        peer: PeerId,
        topic: &TopicHash,
    ) {
        if let Some(held) = self.subscriptions.get_mut(&peer) {
            held.topics.remove(topic);
            if held.topics.len() <= MAX_ROOMS_PER_PEER {
                held.over_since = None;
            }
        }
        if let Some(members) = self.rooms.get_mut(topic.as_str()) {
            members.remove(&peer);
        }
        self.leave_idle_rooms(swarm, [topic.as_str().to_owned()]);
    }

    /// `peer` disconnected: tell the rest of each of its rooms, then leave rooms nobody is in.
    pub fn on_peer_gone<X: Extension>(&mut self, swarm: &mut Swarm<Behaviour<X>>, peer: PeerId) {
        self.subscriptions.remove(&peer);
        let rooms: Vec<String> = self
            .rooms
            .iter_mut()
            .filter_map(|(name, members)| members.remove(&peer).then(|| name.clone()))
            .collect();
        for room in &rooms {
            let gone = Envelope::gone(&peer);
            let published = swarm
                .behaviour_mut()
                .gossipsub
                .publish(room_topic(room), gone.to_bytes());
            if let Err(e) = published {
                tracing::debug!(room, %peer, error = %e, "no one to tell about a departure");
            }
        }
        self.leave_idle_rooms(swarm, rooms);
    }

    /// Every second: disconnects peers that are not relays of the network and have been
    /// subscribed to more than [`MAX_ROOMS_PER_PEER`] rooms for [`RELAY_PROOF_GRACE`] (a relay
    /// says it is one in its identify answer, which may come after its subscriptions).
    pub(super) fn disconnect_over_subscribed<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        now: std::time::Instant,
    ) {
        let over: Vec<(PeerId, usize)> = self
            .subscriptions
            .iter()
            .filter(|(peer, held)| {
                held.over_since
                    .is_some_and(|since| now.saturating_duration_since(since) >= RELAY_PROOF_GRACE)
                    && !self.peering.is_relay(peer)
            })
            .map(|(peer, held)| (*peer, held.topics.len()))
            .collect();
        for (peer, rooms) in over {
            self.subscriptions.remove(&peer);
            self.over_subscribed += 1;
            tracing::warn!(%peer, rooms, max = MAX_ROOMS_PER_PEER, ip = ?self.guard.ip(&peer), "peer subscribed to more rooms than a peer may; disconnected");
            let _ = swarm.disconnect_peer_id(peer);
        }
    }

    /// `peer` turned out to be a relay of the network: it is a member of no room; rooms only it
    /// kept followed are left.
    pub(super) fn no_longer_a_member<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        peer: PeerId,
    ) {
        let rooms: Vec<String> = self
            .rooms
            .iter_mut()
            .filter_map(|(name, members)| members.remove(&peer).then(|| name.clone()))
            .collect();
        self.leave_idle_rooms(swarm, rooms);
    }

    /// Of `candidates`, unsubscribes from the rooms no neighbour but relays of the network is
    /// subscribed to any more (two relays would otherwise keep each other in a room forever).
    /// Only the rooms a change concerns are looked at.
    fn leave_idle_rooms<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        candidates: impl IntoIterator<Item = String>,
    ) {
        let mut idle = Vec::new();
        for room in candidates {
            let Some(members) = self.rooms.get(&room) else {
                continue;
            };
            if !members.is_empty() {
                continue;
            }
            // Members are those the hub counted; a peer subscribed while the room was not
            // followed (a limit refused it) keeps it too.
            let topic = room_topic(&room).hash();
            let peering = &self.peering;
            let held = self
                .subscriptions
                .iter()
                .any(|(peer, held)| held.topics.contains(&topic) && !peering.is_relay(peer));
            if !held {
                idle.push(room);
            }
        }
        for room in idle {
            self.rooms.remove(&room);
            self.guard.unfollowed(&room);
            swarm
                .behaviour_mut()
                .gossipsub
                .unsubscribe(&room_topic(&room));
            tracing::info!(room, "hub left empty room");
        }
    }
}
