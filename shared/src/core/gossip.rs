//! Rooms over gossipsub: joining and leaving, publishing (or queueing until a neighbour is
//! subscribed), decoding what arrives, and membership by presence. What a relay does with the
//! rooms of its peers is the hub's ([`crate::hub`]).

use libp2p::gossipsub::{self, PublishError, TopicHash};
use libp2p::PeerId;
use web_time::Instant;

use super::error::{JoinError, SendError};
use super::event::{ChatMessage, LeftReason, Origin, Sent};
use super::rooms::{Heard, Queued, Room};
use super::{Event, EventLoop};
use crate::behaviour::Extension;
use crate::envelope::{decode_room_payload, text_message_id, Envelope, Kind, Payload};
use crate::protocol::{room_topic, validate_room, MAX_ROOMS_PER_PEER, PRESENCE_INTERVAL};
use crate::store::{store_time, MAX_CLOCK_SKEW_MS};

/// How far a notice's time (join, presence, leave, gone) may be from ours, either way, to be
/// believed. Within it, a repeat is caught by its (author, id); beyond, by its age.
pub const NOTICE_MAX_AGE_MS: u64 = 5 * MAX_CLOCK_SKEW_MS;
use crate::text::{now_unix_ms, short_peer_id};

/// Longest wait before answering a newcomer's join with a presence announcement; spread so that a
/// room does not answer all at once.
const PRESENCE_ANSWER_SPREAD_MS: u64 = 1500;

impl<X: Extension> EventLoop<X> {
    /// Joins a room: subscribe and announce.
    pub(super) fn join_room(&mut self, room: &str) -> Result<(), JoinError> {
        validate_room(room)?;
        if self.rooms.contains_key(room) {
            return Ok(());
        }
        if self.hub.is_none() && self.rooms.len() >= MAX_ROOMS_PER_PEER {
            return Err(JoinError::TooManyRooms(MAX_ROOMS_PER_PEER));
        }
        self.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&room_topic(room))
            .map_err(JoinError::Subscribe)?;
        let ready = self
            .swarm
            .behaviour()
            .has_subscribed_neighbour(&room_topic(room).hash());
        self.rooms.insert(room.to_owned(), Room::default());
        tracing::info!(room, "joined");
        if ready {
            // A neighbour (the relay, following the room for another peer) is subscribed
            // already and will not say so again: the room is ready now.
            self.set_ready(room);
        }
        self.announce(room, Kind::Join);
        Ok(())
    }

    /// Leaves a room with a goodbye. `false` when we were not in it.
    pub(super) fn leave_room(&mut self, room: &str) -> bool {
        if !self.rooms.contains_key(room) {
            return false;
        }
        self.announce(room, Kind::Leave);
        self.rooms.remove(room);
        if !self.hub.as_ref().is_some_and(|hub| hub.serves(room)) {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .unsubscribe(&room_topic(room));
        }
        tracing::info!(room, "left");
        true
    }

    /// Sends a chat message to a room.
    pub(super) fn send_text(
        &mut self,
        room: &str,
        text: &str,
        file: Option<crate::files::FileOffer>,
    ) -> Result<Sent, SendError> {
        if !self.rooms.contains_key(room) {
            return Err(SendError::NotInRoom(room.to_owned()));
        }
        let mut envelope = match file {
            Some(offer) => Envelope::offer(Kind::Message, &self.nick, offer),
            None => Envelope::message(&self.nick, text)?,
        };
        // Strictly increasing times keep our own messages in the order sent wherever they are
        // sorted by (time, id): a store's history, a catch-up.
        envelope.ts = envelope.ts.max(self.last_sent_ts.saturating_add(1));
        self.last_sent_ts = envelope.ts;
        let queued = self.publish_or_queue(room, &envelope)?;
        let filed_at = store_time(envelope.ts, now_unix_ms());
        if let Some(state) = self.rooms.get_mut(room) {
            state.newest_ts = state.newest_ts.max(filed_at);
        }
        // Our own message, seen: a stored copy coming back in a catch-up is not shown again.
        let me = *self.swarm.local_peer_id();
        self.seen.first_time(me, &envelope.id);
        if !queued {
            self.request_receipt(room, &envelope.id);
        }
        let message = ChatMessage {
            room: room.to_owned(),
            id: envelope.id,
            from: me,
            nick: envelope.nick,
            text: envelope.body,
            sent_at: envelope.ts,
            filed_at,
            origin: Origin::Envelope,
            file: envelope.file,
        };
        Ok(Sent { message, queued })
    }

    /// Publishes a join, leave or presence announcement (queued if the room is not ready).
    pub(super) fn announce(&mut self, room: &str, kind: Kind) {
        if self.hub.is_some() {
            return; // a relay is no member of its rooms
        }
        let envelope = Envelope::announcement(kind, &self.nick);
        if let Some(state) = self.rooms.get_mut(room) {
            state.last_presence = Some(Instant::now());
            state.presence_due = None;
        }
        if kind == Kind::Join {
            // Queued when nobody is subscribed yet: it is how the room learns about us.
            if let Err(e) = self.publish_or_queue(room, &envelope) {
                tracing::debug!(room, error = %e, "join announcement not sent");
            }
        } else {
            // A goodbye or a "still here" is not worth queueing: nobody is there to need it.
            let _ = self.publish(room, envelope.to_bytes());
        }
    }

    fn publish(&mut self, room: &str, bytes: Vec<u8>) -> Result<(), PublishError> {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .publish(room_topic(room), bytes)
            .map(|_| ())
    }

    /// Publishes `envelope`, or queues it until it can go out; `true` when queued. Behind
    /// messages already waiting it waits too, so that a room's messages leave in order.
    fn publish_or_queue(&mut self, room: &str, envelope: &Envelope) -> Result<bool, SendError> {
        let bytes = envelope.to_bytes();
        let waiting = self.rooms.get(room).is_some_and(|r| !r.queue.is_empty());
        let result = if waiting {
            Err(PublishError::AllQueuesFull(0))
        } else {
            self.publish(room, bytes.clone())
        };
        let no_neighbour = match result {
            Ok(()) => return Ok(false),
            Err(PublishError::NoPeersSubscribedToTopic) => true,
            // The neighbours are there, their send queues full: the room stays ready and the
            // queue is retried every tick.
            Err(PublishError::AllQueuesFull(_)) => false,
            Err(e) => return Err(SendError::Publish(e)),
        };
        let state = self
            .rooms
            .get_mut(room)
            .ok_or_else(|| SendError::NotInRoom(room.into()))?;
        let was_ready = no_neighbour && std::mem::replace(&mut state.ready, false);
        let enqueued = state.enqueue(Queued {
            id: envelope.id.clone(),
            bytes,
            is_message: envelope.kind == Kind::Message,
        });
        if was_ready {
            let room = room.to_owned();
            self.emit(Event::RoomNotReady { room });
        }
        if enqueued {
            Ok(true)
        } else {
            Err(SendError::QueueFull(room.to_owned()))
        }
    }

    /// Re-checks which rooms still have a subscribed neighbour (after a peer left).
    pub(super) fn recheck_rooms(&mut self) {
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for room in names {
            let ready = self
                .swarm
                .behaviour()
                .has_subscribed_neighbour(&room_topic(&room).hash());
            let Some(state) = self.rooms.get_mut(&room) else {
                continue;
            };
            match (state.ready, ready) {
                (true, false) => {
                    state.ready = false;
                    self.emit(Event::RoomNotReady { room });
                }
                (false, true) => self.set_ready(&room),
                _ => {}
            }
        }
    }

    /// A neighbour subscribed: a room of ours is ready (flush its queue); a hub follows it.
    fn on_subscribed(&mut self, peer: libp2p::PeerId, topic: TopicHash) {
        self.reservation_greeted(&peer);
        if let Some(hub) = self.hub.as_mut() {
            hub.on_subscribed(&mut self.swarm, peer, &topic);
        }
        let room = topic.as_str().to_owned();
        if self.rooms.contains_key(&room) {
            self.set_ready(&room);
        }
    }

    /// A room has a subscribed neighbour: say so, and flush what waited for one.
    fn set_ready(&mut self, room: &str) {
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let became_ready = !state.ready;
        state.ready = true;
        if became_ready {
            self.emit(Event::RoomReady {
                room: room.to_owned(),
            });
        }
        self.flush_queue(room);
    }

    /// Publishes what waits in a room's queue, in order, until a publish fails.
    fn flush_queue(&mut self, room: &str) {
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let mut queued = std::mem::take(&mut state.queue);
        let room = room.to_owned();
        let mut sent = Vec::new();
        let mut receipts = Vec::new();
        while let Some(item) = queued.pop_front() {
            if let Err(e) = self.publish(&room, item.bytes.clone()) {
                // The rest waits behind it, in order, for the next try.
                tracing::debug!(room, error = %e, "queued message not sendable yet");
                queued.push_front(item);
                break;
            }
            if item.is_message {
                receipts.push(item.id.clone());
            }
            sent.push(item.id);
        }
        if let Some(state) = self.rooms.get_mut(&room) {
            state.queue = queued;
        }
        if !sent.is_empty() {
            for id in &receipts {
                self.request_receipt(&room, id);
            }
            self.emit(Event::QueuedSent { room, ids: sent });
        }
    }

    /// Every gossipsub event.
    pub(super) fn on_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                message,
                message_id,
                propagation_source,
            } => {
                // A relay takes each message only within its author's limits.
                if let (Some(hub), Some(author)) = (self.hub.as_mut(), message.source) {
                    let source = &propagation_source;
                    if !hub.admit(&mut self.swarm, author, &message, &message_id, source) {
                        return;
                    }
                }
                self.on_room_message(message)
            }
            gossipsub::Event::Subscribed { peer_id, topic, .. } => {
                self.on_subscribed(peer_id, topic)
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let Some(hub) = self.hub.as_mut() {
                    hub.on_unsubscribed(&mut self.swarm, peer_id, &topic);
                }
                self.recheck_rooms();
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                tracing::warn!(%peer_id, ?failed_messages, "peer is too slow; messages to it dropped");
            }
            other => tracing::trace!(?other, "gossipsub"),
        }
    }

    fn on_room_message(&mut self, message: gossipsub::Message) {
        let room = message.topic.as_str().to_owned();
        // Strict validation guarantees a verified source; without one there is no author.
        let Some(from) = message.source else {
            self.dropped_payloads += 1;
            return;
        };
        if let Some(hub) = self.hub.as_mut() {
            hub.file(&room, from, &message);
        }
        if !self.rooms.contains_key(&room) {
            return; // a hub forwarding a room it is not a member of
        }
        let payload = match decode_room_payload(&message.data) {
            Ok(payload) => payload,
            Err(e) => {
                self.dropped_payloads += 1;
                tracing::debug!(%from, room, error = %e, "dropped room payload");
                return;
            }
        };
        let now = Instant::now();
        match payload {
            Payload::Text(text) => {
                let id = text_message_id(from, message.sequence_number);
                if self.seen.first_time(from, &id) {
                    let nick = short_peer_id(&from);
                    self.heard(&room, from, &nick, now);
                    let msg = ChatMessage {
                        room,
                        id,
                        from,
                        nick,
                        text,
                        sent_at: 0,
                        filed_at: now_unix_ms(),
                        origin: Origin::Text,
                        file: None,
                    };
                    self.show_live(msg);
                }
            }
            Payload::Envelope(env) => self.on_envelope(room, from, env, now),
        }
    }

    fn on_envelope(&mut self, room: String, from: libp2p::PeerId, env: Envelope, now: Instant) {
        // A notice (join, presence, leave, gone) counts once, and only while fresh: a signed
        // notice replayed after gossipsub's duplicate window changes nothing.
        if !matches!(env.kind, Kind::Message | Kind::Dm | Kind::Mail) {
            let fresh = env.ts.abs_diff(now_unix_ms()) <= NOTICE_MAX_AGE_MS;
            if !fresh || !self.seen_notices.first_time(from, &env.id) {
                self.dropped_payloads += 1;
                tracing::debug!(%from, room, kind = ?env.kind, fresh, "stale or repeated notice ignored");
                return;
            }
        }
        let nick = if env.nick.is_empty() {
            short_peer_id(&from)
        } else {
            env.nick.clone()
        };
        match env.kind {
            Kind::Message => {
                self.heard(&room, from, &nick, now);
                if self.seen.first_time(from, &env.id) {
                    let msg = ChatMessage {
                        room,
                        id: env.id,
                        from,
                        nick,
                        text: env.body,
                        sent_at: env.ts,
                        filed_at: store_time(env.ts, now_unix_ms()),
                        origin: Origin::Envelope,
                        file: env.file,
                    };
                    self.show_live(msg);
                }
            }
            Kind::Join | Kind::Presence => {
                let new = self.heard(&room, from, &nick, now);
                if env.kind == Kind::Join && new {
                    let delay = rand::random_range(0..PRESENCE_ANSWER_SPREAD_MS);
                    if let Some(state) = self.rooms.get_mut(&room) {
                        let due = now + std::time::Duration::from_millis(delay);
                        state.presence_due = Some(state.presence_due.map_or(due, |d| d.min(due)));
                    }
                }
            }
            Kind::Leave => {
                if let Some(nick) = self.rooms.get_mut(&room).and_then(|s| s.remove(&from)) {
                    self.emit(Event::MemberLeft {
                        room,
                        peer: from,
                        nick,
                        reason: LeftReason::Left,
                    });
                }
            }
            Kind::Gone => self.on_gone(room, from, &env.body),
            Kind::Dm | Kind::Mail => {
                self.dropped_payloads += 1; // these travel over the DM protocol only
            }
        }
    }

    /// A relay says `body` (a peer id) is gone from `room`. Only our relays are believed: anyone
    /// else could empty member lists.
    fn on_gone(&mut self, room: String, from: PeerId, body: &str) {
        if !self.reservations.is_relay(&from) {
            tracing::debug!(%from, room, "ignored a gone announcement from a peer that is not our relay");
            return;
        }
        let Ok(peer) = body.parse::<PeerId>() else {
            return;
        };
        if let Some(nick) = self.rooms.get_mut(&room).and_then(|s| s.remove(&peer)) {
            let reason = LeftReason::Disconnected;
            self.emit(Event::MemberLeft {
                room,
                peer,
                nick,
                reason,
            });
        }
    }

    /// Records a member; emits joined / renamed. `true` when the member is new.
    fn heard(&mut self, room: &str, peer: libp2p::PeerId, nick: &str, now: Instant) -> bool {
        let Some(state) = self.rooms.get_mut(room) else {
            return false;
        };
        match state.heard(peer, nick, now) {
            Heard::New => {
                let (room, nick) = (room.to_owned(), nick.to_owned());
                self.emit(Event::MemberJoined { room, peer, nick });
                true
            }
            Heard::Renamed(old) => {
                let (room, new) = (room.to_owned(), nick.to_owned());
                self.emit(Event::NickChanged {
                    room,
                    peer,
                    old,
                    new,
                });
                false
            }
            Heard::Same => false,
        }
    }

    /// Presence announcements, member expiry, and another try at queues a full neighbour held up.
    pub(super) fn rooms_tick(&mut self, now: Instant) {
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for room in names {
            let Some(state) = self.rooms.get_mut(&room) else {
                continue;
            };
            let expired = state.expire(now);
            let due = state.presence_due.is_some_and(|d| d <= now)
                || state
                    .last_presence
                    .is_none_or(|t| now.duration_since(t) >= PRESENCE_INTERVAL);
            let retry = state.ready && !state.queue.is_empty();
            for (peer, nick) in expired {
                let room = room.clone();
                self.emit(Event::MemberLeft {
                    room,
                    peer,
                    nick,
                    reason: LeftReason::TimedOut,
                });
            }
            if retry {
                self.flush_queue(&room);
            }
            if due {
                self.announce(&room, Kind::Presence);
            }
        }
    }
}
