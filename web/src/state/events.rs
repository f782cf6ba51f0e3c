//! How each chat core event changes the page's state.

use leptos::prelude::*;
use leptos::task::spawn_local;
use p2p_chat_shared::addr::peer_at_end;
use p2p_chat_shared::core::Event;
use p2p_chat_shared::text::short_peer_id;

use super::{clock, Chat, DmLine, DmState, Line, Status};
use crate::relay_addr::transport_name;

impl Chat {
    /// Mirrors one chat core event.
    pub fn apply(&self, event: Event) {
        match event {
            Event::Message(m) => {
                self.with_room(&m.room, |r| r.in_history = false);
                self.keep(&m.room, std::slice::from_ref(&m));
                self.push_line(&m.room, Line::message(&m, false));
            }
            Event::History { room, messages, .. } => {
                if messages.is_empty() {
                    return;
                }
                self.keep(&room, &messages);
                let mut first_batch = false;
                self.with_room(&room, |r| {
                    first_batch = !r.in_history;
                    r.in_history = true;
                });
                if first_batch {
                    self.notice(&room, "messages from while you were away:".to_owned());
                }
                for m in &messages {
                    self.push_line(&room, Line::message(m, true));
                }
            }
            Event::HistoryFailed { room, reason } => self.notice(
                &room,
                format!("could not load what you missed ({reason}); trying again shortly"),
            ),
            Event::Stored { room, id } => self.mark_stored(&room, &id, true),
            Event::NotStored { room, id, reason } => {
                self.mark_stored(&room, &id, false);
                self.error
                    .set(Some(format!("the relay did not keep a message: {reason}")));
            }
            Event::DirectMessage(d) => {
                let key = self.key();
                self.dms.update(|dms| {
                    dms.push(DmLine {
                        key,
                        id: Some(d.id),
                        peer: d.from,
                        nick: d.nick,
                        text: d.text,
                        time: clock(d.sent_at),
                        state: if d.stored {
                            DmState::ReceivedKept
                        } else {
                            DmState::Received
                        },
                    })
                });
            }
            Event::DmDelivered { id, .. } => self.dms.update(|dms| {
                // Only our own DMs that the relay kept: a received one may reuse the id.
                for line in dms
                    .iter_mut()
                    .filter(|d| d.state == DmState::Stored && d.id.as_deref() == Some(id.as_str()))
                {
                    line.state = DmState::Delivered;
                }
            }),
            Event::MemberJoined { room, peer, nick } => {
                self.notice(&room, format!("{nick} ({}) joined", short_peer_id(&peer)));
                self.refresh_members(room);
            }
            Event::MemberLeft {
                room,
                peer,
                nick,
                reason,
            } => {
                let who = short_peer_id(&peer);
                self.notice(&room, format!("{nick} ({who}) left{}", reason.suffix()));
                self.refresh_members(room);
            }
            Event::NickChanged { room, .. } => self.refresh_members(room),
            Event::RoomReady { room } => self.with_room(&room, |r| r.ready = true),
            Event::RoomNotReady { room } => self.with_room(&room, |r| r.ready = false),
            Event::QueuedSent { room, ids } => self.with_room(&room, |r| {
                for line in r.lines.iter_mut().filter(|l| l.own && ids.contains(&l.id)) {
                    line.queued = false;
                }
            }),
            Event::Connected { peer, addr, .. } if Some(peer) == self.relay.get_untracked() => {
                self.status.set(Status::Connected {
                    transport: transport_name(&addr),
                    relay: short_peer_id(&peer),
                });
            }
            Event::ReservationAccepted { relay, addr } => {
                // Also after a reservation lost and taken again on a connection that stayed, and
                // on a standby relay when ours is lost: that one is ours now.
                self.relay.set(Some(relay));
                self.status.set(Status::Connected {
                    transport: transport_name(&addr),
                    relay: short_peer_id(&relay),
                });
            }
            // The relay shown (another one's retries after a takeover say nothing of ours).
            Event::RelayLost {
                relay,
                retry_in_ms,
                attempt,
            } if peer_at_end(&relay) == self.relay.get_untracked() => {
                self.status.set(Status::Reconnecting {
                    in_ms: retry_in_ms,
                    attempt,
                });
            }
            Event::Lagged { missed } => self.error.set(Some(format!(
                "{missed} events were not shown (the page fell behind)"
            ))),
            _ => {}
        }
    }

    /// Our own message's receipt: ✓✓, or why not.
    fn mark_stored(&self, room: &str, id: &str, stored: bool) {
        self.with_room(room, |r| {
            for line in r.lines.iter_mut().filter(|l| l.own && l.id == id) {
                line.stored = Some(stored);
            }
        });
    }

    /// Shows the members of `room` as the core knows them.
    fn refresh_members(&self, room: String) {
        let (chat, Some(client)) = (*self, self.client()) else {
            return;
        };
        spawn_local(async move {
            let Ok(members) = client.members(room.clone()).await else {
                return; // left the room meanwhile
            };
            let members = members.into_iter().map(|m| (m.peer, m.nick)).collect();
            chat.with_room(&room, |r| r.members = members);
        });
    }
}
