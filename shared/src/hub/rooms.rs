//! Rooms the hub follows for its peers: it subscribes when the first peer does (up to
//! [`MAX_HUB_ROOMS`]), leaves when none is left, and tells a room at once when one of its members
//! disconnects (a `gone` announcement, believed only from one's own relay), instead of leaving the
//! others to wait for the member's presence to expire.

use std::collections::HashSet;

use libp2p::gossipsub::TopicHash;
use libp2p::{PeerId, Swarm};

use super::guard::room_score_params;
use super::state::Hub;
use crate::behaviour::{Behaviour, Extension};
use crate::envelope::Envelope;
use crate::protocol::{room_topic, validate_room, MAX_HUB_ROOMS};

impl Hub {
    /// A neighbour subscribed to `topic`: follow the room for it.
    pub fn on_subscribed<X: Extension>(
        &mut self,
        swarm: &mut Swarm<Behaviour<X>>,
        peer: PeerId,
        topic: &TopicHash,
    ) {
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
        if let Some(members) = self.rooms.get_mut(topic.as_str()) {
            members.remove(&peer);
        }
        self.leave_idle_rooms(swarm);
    }

    /// `peer` disconnected: tell the rest of each of its rooms, then leave rooms nobody is in.
    pub fn on_peer_gone<X: Extension>(&mut self, swarm: &mut Swarm<Behaviour<X>>, peer: PeerId) {
        let rooms: Vec<String> = self
            .rooms
            .iter_mut()
            .filter_map(|(name, members)| members.remove(&peer).then(|| name.clone()))
            .collect();
        for room in rooms {
            let gone = Envelope::gone(&peer);
            let published = swarm
                .behaviour_mut()
                .gossipsub
                .publish(room_topic(&room), gone.to_bytes());
            if let Err(e) = published {
                tracing::debug!(room, %peer, error = %e, "no one to tell about a departure");
            }
        }
        self.leave_idle_rooms(swarm);
    }

    /// Unsubscribes from rooms no neighbour is subscribed to any more.
    fn leave_idle_rooms<X: Extension>(&mut self, swarm: &mut Swarm<Behaviour<X>>) {
        let idle: Vec<String> = self
            .rooms
            .keys()
            .filter(|room| {
                !swarm
                    .behaviour()
                    .has_subscribed_neighbour(&room_topic(room).hash())
            })
            .cloned()
            .collect();
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
