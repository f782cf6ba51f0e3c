//! Core state of the rooms we are in: members with their nicknames, messages queued until a
//! room is ready, and the set of message ids already shown (dedup).

use std::collections::{HashMap, HashSet, VecDeque};

use libp2p::PeerId;
use web_time::Instant;

use crate::protocol::{DEDUP_CAPACITY, MAX_MEMBERS_PER_ROOM, MAX_QUEUED_PER_ROOM, PRESENCE_EXPIRY};

/// A message waiting for a room to become ready.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Envelope id.
    pub id: String,
    /// Encoded envelope.
    pub bytes: Vec<u8>,
    /// A chat message (not an announcement): the store should confirm keeping it.
    pub is_message: bool,
}

/// One room we are in.
#[derive(Debug, Default)]
pub struct Room {
    /// Members besides us: nickname and when we last heard from them.
    members: HashMap<PeerId, (String, Instant)>,
    /// Whether a neighbour is subscribed, so that a publish goes out.
    pub ready: bool,
    /// Messages waiting for `ready`.
    pub queue: VecDeque<Queued>,
    /// When we last announced ourselves here.
    pub last_presence: Option<Instant>,
    /// When to answer a newcomer's join with a presence announcement.
    pub presence_due: Option<Instant>,
    /// Where the newest message shown sits in the stored history (its `filed_at`, unix ms):
    /// where a catch-up starts.
    pub newest_ts: u64,
    /// Whether the user interface holds messages of this room (a catch-up then fills the gap
    /// after them instead of showing the room's latest).
    pub holds_history: bool,
    /// The catch-up under way.
    pub catch_up: Option<super::store::CatchUp>,
    /// When to try again a catch-up that failed.
    pub catch_up_retry: Option<Instant>,
}

/// What hearing from a member changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// It is new to the room.
    New,
    /// It changed its nickname from this one.
    Renamed(String),
    /// Nothing visible.
    Same,
}

impl Room {
    /// Records that `peer` spoke (any envelope) with `nick`.
    pub fn heard(&mut self, peer: PeerId, nick: &str, now: Instant) -> Heard {
        let full = self.members.len() >= MAX_MEMBERS_PER_ROOM;
        match self.members.get_mut(&peer) {
            Some((old, seen)) => {
                *seen = now;
                if old != nick && !nick.is_empty() {
                    Heard::Renamed(std::mem::replace(old, nick.to_owned()))
                } else {
                    Heard::Same
                }
            }
            None if full => Heard::Same,
            None => {
                self.members.insert(peer, (nick.to_owned(), now));
                Heard::New
            }
        }
    }

    /// Removes a member; its nickname when it was one.
    pub fn remove(&mut self, peer: &PeerId) -> Option<String> {
        self.members.remove(peer).map(|(nick, _)| nick)
    }

    /// Removes members not heard from for [`PRESENCE_EXPIRY`]; returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<(PeerId, String)> {
        let stale: Vec<PeerId> = self
            .members
            .iter()
            .filter(|(_, (_, seen))| now.duration_since(*seen) > PRESENCE_EXPIRY)
            .map(|(peer, _)| *peer)
            .collect();
        stale
            .into_iter()
            .filter_map(|peer| self.remove(&peer).map(|nick| (peer, nick)))
            .collect()
    }

    /// Current members and nicknames.
    pub fn members(&self) -> impl Iterator<Item = (&PeerId, &str)> {
        self.members
            .iter()
            .map(|(peer, (nick, _))| (peer, nick.as_str()))
    }

    /// Number of members besides us.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Queues a message; `false` when the queue is full.
    pub fn enqueue(&mut self, item: Queued) -> bool {
        if self.queue.len() >= MAX_QUEUED_PER_ROOM {
            return false;
        }
        self.queue.push_back(item);
        true
    }
}

/// Message ids already seen, bounded: the oldest are forgotten first.
#[derive(Debug, Default)]
pub struct SeenIds {
    set: HashSet<(PeerId, String)>,
    order: VecDeque<(PeerId, String)>,
}

impl SeenIds {
    /// `true` the first time an id from this author is seen.
    pub fn first_time(&mut self, author: PeerId, id: &str) -> bool {
        let key = (author, id.to_owned());
        if self.set.contains(&key) {
            return false;
        }
        if self.order.len() >= DEDUP_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_added_renamed_and_expired() {
        let mut room = Room::default();
        let peer = PeerId::random();
        let t0 = Instant::now();
        assert_eq!(room.heard(peer, "ann", t0), Heard::New);
        assert_eq!(room.heard(peer, "ann", t0), Heard::Same);
        assert_eq!(room.heard(peer, "anna", t0), Heard::Renamed("ann".into()));
        assert!(room.expire(t0).is_empty());
        assert_eq!(
            room.expire(t0 + PRESENCE_EXPIRY * 2),
            vec![(peer, "anna".to_owned())]
        );
        assert_eq!(room.member_count(), 0);
    }

    #[test]
    fn a_message_id_is_seen_once_per_author() {
        let mut seen = SeenIds::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(seen.first_time(a, "m1"));
        assert!(!seen.first_time(a, "m1"));
        // Another author cannot suppress a's message by reusing its id.
        assert!(seen.first_time(b, "m1"));
    }

    #[test]
    fn dedup_memory_is_bounded() {
        let mut seen = SeenIds::default();
        let a = PeerId::random();
        for i in 0..DEDUP_CAPACITY + 10 {
            seen.first_time(a, &i.to_string());
        }
        assert_eq!(seen.order.len(), DEDUP_CAPACITY);
        assert!(seen.first_time(a, "0"), "the oldest id was forgotten");
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut room = Room::default();
        for i in 0..MAX_QUEUED_PER_ROOM {
            assert!(room.enqueue(Queued {
                id: i.to_string(),
                bytes: vec![],
                is_message: true,
            }));
        }
        assert!(!room.enqueue(Queued {
            id: "x".into(),
            bytes: vec![],
            is_message: true,
        }));
    }
}
