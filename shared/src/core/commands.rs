//! What the loop does with each [`Command`], and the replies that wait on the network
//! (dials, DHT lookups, pings) with their timeouts.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::{
    core::multiaddr::Protocol, swarm::dial_opts::DialOpts, swarm::ConnectionId, Multiaddr, PeerId,
};
use web_time::Instant;

use crate::dht::{DhtSlot, QueryId};

use super::client::{Command, Reply};
use super::direct::Dms;
use super::error::{
    AddrError, AddressError, ConnectError, FindError, NickError, PingError, RoomError,
};
#[cfg(not(target_arch = "wasm32"))]
use super::event::Stats;
use super::event::{Info, Member, PeersInfo, RoomInfo};
use super::reservations::peer_of;
use super::reservations::DialNotStarted;
use super::EventLoop;
use crate::behaviour::Extension;
use crate::text::clean_nick;

/// How long `/ping` and `/find` wait for the network.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A DHT lookup under way. Peers in client mode (most chat peers) never answer DHT queries, so
/// the lookup's own result leaves them out; the addresses the DHT handed out for the target are
/// caught as the lookup dials them.
#[derive(Debug)]
pub struct Find {
    pub(super) target: PeerId,
    pub(super) started: Instant,
    pub(super) found: Vec<Multiaddr>,
    pub(super) reply: Reply<Vec<Multiaddr>, FindError>,
}

/// A `/ping` waiting for the next ping result: when it was asked, and its reply.
pub(super) type PendingPing = (Instant, Reply<Duration, PingError>);

/// Replies waiting on the network.
#[derive(Default, Debug)]
pub struct Pending {
    /// `/connect`: by the dial's connection id.
    pub(super) dials: HashMap<ConnectionId, Reply<PeerId, ConnectError>>,
    /// `/find`: by query.
    pub(super) finds: HashMap<QueryId, Find>,
    /// `/ping`: by peer, answered by its next ping result.
    pub(super) pings: HashMap<PeerId, Vec<PendingPing>>,
    /// Direct messages.
    pub(super) dms: Dms,
}

fn bad_address(addr: &Multiaddr, reason: impl std::fmt::Display) -> AddressError {
    AddressError {
        addr: addr.to_string(),
        reason: reason.to_string(),
    }
}

impl<X: Extension> EventLoop<X> {
    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Join { room, mark, reply } => {
                let result = self.join_room(&room);
                if result.is_ok() {
                    self.start_history(&room, mark);
                }
                let _ = reply.send(result);
            }
            Command::Leave { room, reply } => {
                let result = if self.leave_room(&room) {
                    Ok(())
                } else {
                    Err(RoomError::NotInRoom(room))
                };
                let _ = reply.send(result);
            }
            Command::Send {
                room,
                text,
                file,
                reply,
            } => {
                let sent = self.send_text(&room, &text, file);
                #[cfg(not(target_arch = "wasm32"))]
                if sent.is_ok() {
                    self.traffic.messages_sent += 1;
                }
                let _ = reply.send(sent);
            }
            Command::SetNick { nick, reply } => {
                let _ = reply.send(self.set_nick(&nick));
            }
            Command::Dm {
                peer,
                text,
                file,
                reply,
            } => {
                #[cfg(not(target_arch = "wasm32"))]
                {
                    self.traffic.dms_sent += 1;
                }
                self.send_dm(peer, &text, file, reply);
            }
            Command::Connect { addr, reply } => self.connect(addr, reply),
            #[cfg(not(target_arch = "wasm32"))]
            Command::Reach { peer, reply } => self.reach(peer, reply),
            #[cfg(not(target_arch = "wasm32"))]
            Command::Provide { file } => self.provide(&file),
            #[cfg(not(target_arch = "wasm32"))]
            Command::Providers { file, reply } => self.find_providers(&file, reply),
            #[cfg(not(target_arch = "wasm32"))]
            Command::AskStore {
                peer,
                request,
                reply,
            } => self.ask_store_for(peer, request, reply),
            #[cfg(not(target_arch = "wasm32"))]
            Command::RelayPeerAddrs { reply } => {
                let relays = self
                    .hub
                    .as_ref()
                    .map(|hub| hub.peering.connected_named())
                    .unwrap_or_default();
                let answer = relays
                    .into_iter()
                    .map(|peer| (peer, self.peers.addresses_of(&peer)))
                    .collect();
                let _ = reply.send(Ok(answer));
            }
            #[cfg(not(target_arch = "wasm32"))]
            Command::NotifyMail { peer, reply } => {
                let _ = reply.send(Ok(self.notify_mail(peer)));
            }
            #[cfg(not(target_arch = "wasm32"))]
            Command::Federation { reply } => {
                let answer = self.hub.as_ref().map_or_else(Default::default, |hub| {
                    (hub.peering.connected_named(), hub.followed_rooms())
                });
                let _ = reply.send(Ok(answer));
            }
            Command::Listen { addr, reply } => {
                let result = self
                    .swarm
                    .listen_on(addr.clone())
                    .map(|_| ())
                    .map_err(|e| AddrError::from(bad_address(&addr, e)));
                let _ = reply.send(result);
            }
            Command::UseRelay { addrs, reply } => {
                let _ = reply.send(self.use_relay(addrs));
            }
            Command::Bootstrap { addr, reply } => {
                let _ = reply.send(self.add_bootstrap(addr));
            }
            Command::Find { peer, reply } => {
                if peer == *self.swarm.local_peer_id() {
                    let _ = reply.send(Err(FindError::SelfTarget));
                    return;
                }
                let Some(query) = DhtSlot::find(&mut self.swarm.behaviour_mut().kad, peer) else {
                    let _ = reply.send(Err(FindError::NoDht));
                    return;
                };
                let find = Find {
                    target: peer,
                    started: Instant::now(),
                    found: Vec::new(),
                    reply,
                };
                self.pending.finds.insert(query, find);
            }
            Command::Ping { peer, reply } => self.ping(peer, reply),
            Command::Info { reply } => {
                let _ = reply.send(Ok(self.info()));
            }
            Command::Rooms { reply } => {
                let _ = reply.send(Ok(self.room_infos()));
            }
            #[cfg(not(target_arch = "wasm32"))]
            Command::Stats { reply } => {
                let _ = reply.send(Ok(self.stats()));
            }
            Command::Members { room, reply } => {
                let _ = reply.send(self.members(Some(&room)));
            }
            Command::Peers { room, reply } => {
                let _ = reply.send(self.peers_info(room.as_deref()));
            }
            Command::Shutdown { reply } => self.start_shutdown(Some(reply)),
        }
    }

    fn set_nick(&mut self, nick: &str) -> Result<String, NickError> {
        let Some(nick) = clean_nick(nick) else {
            return Err(NickError::Blank);
        };
        self.nick = nick.clone();
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        for room in rooms {
            self.announce(&room, crate::envelope::Kind::Presence);
        }
        Ok(nick)
    }

    fn connect(&mut self, addr: Multiaddr, reply: Reply<PeerId, ConnectError>) {
        let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.pending.dials.insert(id, reply);
            }
            Err(e) => {
                let reason = super::swarm_events::dial_error_text(&e);
                let _ = reply.send(Err(bad_address(&addr, reason).into()));
            }
        }
    }

    fn add_bootstrap(&mut self, addr: Multiaddr) -> Result<(), AddrError> {
        let peer = peer_of(&addr)?;
        let without_peer: Multiaddr = addr
            .iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .collect();
        self.peers.add_address(peer, without_peer.clone());
        self.swarm
            .behaviour_mut()
            .kad
            .add_address(&peer, without_peer);
        if let Err(e) = self.swarm.dial(addr.clone()) {
            let reason = super::swarm_events::dial_error_text(&e);
            return Err(bad_address(&addr, reason).into());
        }
        Ok(())
    }

    fn ping(&mut self, peer: PeerId, reply: Reply<Duration, PingError>) {
        if peer == *self.swarm.local_peer_id() {
            let _ = reply.send(Err(PingError::SelfTarget));
            return;
        }
        if !self.peers.is_connected(&peer) {
            if let Err(DialNotStarted::NoRoute) = self.dial_every_route(peer) {
                let _ = reply.send(Err(PingError::NoRoute(peer)));
                return;
            }
        }
        // Answered by the next ping on any connection to the peer (one runs on connect and
        // then every PING_INTERVAL).
        self.pending
            .pings
            .entry(peer)
            .or_default()
            .push((Instant::now(), reply));
    }

    fn peers_info(&self, room: Option<&str>) -> Result<PeersInfo, RoomError> {
        Ok(PeersInfo {
            members: self.members(room)?,
            connected: self.peers.connected_peers(),
        })
    }

    /// Members of `room` (of every room we are in when `None`), by room, nickname and peer.
    fn members(&self, room: Option<&str>) -> Result<Vec<Member>, RoomError> {
        if let Some(room) = room {
            if !self.rooms.contains_key(room) {
                return Err(RoomError::NotInRoom(room.to_owned()));
            }
        }
        let mut members: Vec<Member> = self
            .rooms
            .iter()
            .filter(|(name, _)| room.is_none_or(|r| r == name.as_str()))
            .flat_map(|(name, state)| {
                state.members().map(move |(peer, nick)| Member {
                    room: name.clone(),
                    peer: *peer,
                    nick: nick.to_owned(),
                })
            })
            .collect();
        members
            .sort_unstable_by(|a, b| (&a.room, &a.nick, a.peer).cmp(&(&b.room, &b.nick, b.peer)));
        Ok(members)
    }

    fn info(&self) -> Info {
        Info {
            peer_id: *self.swarm.local_peer_id(),
            nick: self.nick.clone(),
            listen_addrs: self.swarm.listeners().cloned().collect(),
            external_addrs: self.swarm.external_addresses().cloned().collect(),
            nat_status: self.nat_status.clone(),
            connected_peers: self.peers.connected_count(),
            dropped_payloads: self.dropped_payloads,
        }
    }

    /// Times out lookups, pings and DMs that waited too long.
    pub(super) fn pending_tick(&mut self, now: Instant) {
        let secs = LOOKUP_TIMEOUT.as_secs();
        let late: Vec<QueryId> = self
            .pending
            .finds
            .iter()
            .filter(|(_, find)| now.duration_since(find.started) >= LOOKUP_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(find) = self.pending.finds.remove(&id) {
                let _ = find.reply.send(Err(FindError::Timeout(secs)));
            }
        }
        for waiting in self.pending.pings.values_mut() {
            let (late, kept): (Vec<_>, Vec<_>) = waiting
                .drain(..)
                .partition(|(started, _)| now.duration_since(*started) >= LOOKUP_TIMEOUT);
            *waiting = kept;
            for (_, reply) in late {
                let _ = reply.send(Err(PingError::Timeout(secs)));
            }
        }
        self.pending.pings.retain(|_, waiting| !waiting.is_empty());
        self.dms_tick(now);
    }
}

impl<X: Extension> EventLoop<X> {
    /// Our rooms, by name.
    fn room_infos(&self) -> Vec<RoomInfo> {
        let mut rooms: Vec<RoomInfo> = self
            .rooms
            .iter()
            .map(|(room, state)| RoomInfo {
                room: room.clone(),
                members: state.member_count(),
                ready: state.ready,
            })
            .collect();
        rooms.sort_unstable_by(|a, b| a.room.cmp(&b.room));
        rooms
    }

    /// Our connections, rooms and traffic.
    #[cfg(not(target_arch = "wasm32"))]
    fn stats(&self) -> Stats {
        let mut connections = std::collections::BTreeMap::new();
        for addr in self.peers.connection_addrs() {
            *connections
                .entry(crate::addr::transport_label(addr))
                .or_insert(0) += 1;
        }
        Stats {
            uptime_secs: self.traffic.started.elapsed().as_secs(),
            connected_peers: self.peers.peer_count(),
            connections,
            rooms: self.room_infos(),
            messages_sent: self.traffic.messages_sent,
            messages_received: self.traffic.messages_received,
            dms_sent: self.traffic.dms_sent,
            dms_received: self.traffic.dms_received,
        }
    }
}
