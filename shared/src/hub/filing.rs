//! What the hub files in the store: every chat message and plain text it forwards (not the
//! join, leave and presence announcements), under the sender's time unless that is missing or
//! more than a minute away from the relay's clock ([`store_time`]). Handed to the backend's
//! bounded queue; never waited on.

use libp2p::{gossipsub, PeerId};

use super::state::Hub;
use crate::envelope::{decode_room_payload, text_message_id, Kind, Payload};
use crate::store::{store_time, HistoryItem, StoreJob};
use crate::text::now_unix_ms;

impl Hub {
    /// The hub forwarded a room message whose verified author is `from`: file it.
    pub fn file(&mut self, room: &str, from: PeerId, message: &gossipsub::Message) {
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        let Some(item) = stored_item(from, message, now_unix_ms()) else {
            return;
        };
        let job = StoreJob::Append {
            room: room.to_owned(),
            item,
        };
        if backend.try_send(job).is_err() {
            self.dropped_appends += 1;
            if self.dropped_appends.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped_appends,
                    "the store is not keeping up; room messages were not stored"
                );
            }
        }
    }
}

/// What the store keeps of a room message: chat messages and plain text, not announcements.
fn stored_item(from: PeerId, message: &gossipsub::Message, now: u64) -> Option<HistoryItem> {
    let payload = String::from_utf8(message.data.clone()).ok()?;
    let (id, ts) = match decode_room_payload(&message.data).ok()? {
        Payload::Envelope(env) if env.kind == Kind::Message => (env.id, env.ts),
        Payload::Envelope(_) => return None,
        Payload::Text(_) => (text_message_id(from, message.sequence_number), 0),
    };
    Some(HistoryItem {
        id,
        from,
        ts: store_time(ts, now),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;

    fn message(from: PeerId, data: Vec<u8>) -> gossipsub::Message {
        gossipsub::Message {
            source: Some(from),
            data,
            sequence_number: Some(7),
            topic: gossipsub::IdentTopic::new("lobby").hash(),
        }
    }

    #[test]
    fn chat_messages_and_text_are_filed_announcements_are_not() {
        let from = PeerId::random();
        let now = 1_000_000;
        let chat = Envelope::message("ann", "hello").expect("test setup");
        let item = stored_item(from, &message(from, chat.to_bytes()), now).expect("filed");
        assert_eq!((item.id.as_str(), item.from), (chat.id.as_str(), from));
        assert_eq!(
            item.ts, now,
            "a sender clock far ahead is replaced by the relay's"
        );
        let join = Envelope::announcement(Kind::Join, "ann");
        assert!(stored_item(from, &message(from, join.to_bytes()), now).is_none());
        let text = stored_item(from, &message(from, b"plain".to_vec()), now).expect("filed");
        assert_eq!(text.id, text_message_id(from, Some(7)));
        assert!(stored_item(from, &message(from, vec![0xff, 0xfe]), now).is_none());
    }
}
