//! The core's part of file sharing ([`crate::files`] moves the bytes, outside the loop):
//! reaching a provider (a connection, direct or through a relay circuit, for the file streams to
//! use) and provider records in the DHT.
//!
//! The browser build does not share files yet: there the pending state is empty and its hooks
//! do nothing.

pub use imp::FilesPending;

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::collections::HashMap;

    use libp2p::{swarm::ConnectionId, PeerId};
    use web_time::Instant;

    use super::super::client::Reply;
    use super::super::error::{FindError, ReachError};
    use super::super::reservations::DialNotStarted;
    use super::super::EventLoop;
    use crate::behaviour::Extension;
    use crate::dht::{DhtSlot, QueryId};
    use crate::files::Hash;
    use crate::protocol::REACH_TIMEOUT;

    /// A reach waiting for its connection.
    #[derive(Debug)]
    struct Waiting {
        started: Instant,
        reply: Reply<(), ReachError>,
    }

    /// A provider lookup under way.
    #[derive(Debug)]
    pub(in crate::core) struct ProviderQuery {
        started: Instant,
        reply: Reply<Vec<PeerId>, FindError>,
    }

    /// Reaches and provider lookups under way.
    #[derive(Debug, Default)]
    pub struct FilesPending {
        reaches: HashMap<PeerId, Vec<Waiting>>,
        /// Our dial for each peer reaches wait for: only its failure fails them.
        dials: HashMap<PeerId, ConnectionId>,
        pub(in crate::core) providers: HashMap<QueryId, ProviderQuery>,
    }

    impl<X: Extension> EventLoop<X> {
        /// Connects to `peer` (direct and through every relay circuit at once) unless connected;
        /// `reply` says when.
        pub(in crate::core) fn reach(&mut self, peer: PeerId, reply: Reply<(), ReachError>) {
            if peer == *self.swarm.local_peer_id() {
                let _ = reply.send(Err(ReachError::SelfTarget));
                return;
            }
            if self.peers.is_connected(&peer) {
                let _ = reply.send(Ok(()));
                return;
            }
            if !self.files.dials.contains_key(&peer) {
                match self.dial_every_route(peer) {
                    Ok(dial) => {
                        self.files.dials.insert(peer, dial);
                    }
                    Err(DialNotStarted::NoRoute) => {
                        let _ = reply.send(Err(ReachError::NoRoute(peer)));
                        return;
                    }
                    Err(DialNotStarted::Refused(reason)) => {
                        let _ = reply.send(Err(ReachError::Unreachable { peer, reason }));
                        return;
                    }
                }
            }
            let waiting = Waiting {
                started: Instant::now(),
                reply,
            };
            self.files.reaches.entry(peer).or_default().push(waiting);
        }

        /// A connection to `peer` opened.
        pub(in crate::core) fn reaches_on_connected(&mut self, peer: &PeerId) {
            self.files.dials.remove(peer);
            for waiting in self.files.reaches.remove(peer).unwrap_or_default() {
                let _ = waiting.reply.send(Ok(()));
            }
        }

        /// Our dial to `peer` failed at every address.
        pub(in crate::core) fn reaches_on_dial_failed(
            &mut self,
            peer: &PeerId,
            dial: ConnectionId,
            error: &str,
        ) {
            if self.files.dials.get(peer) != Some(&dial) {
                return;
            }
            self.files.dials.remove(peer);
            if self.peers.is_connected(peer) {
                return;
            }
            for waiting in self.files.reaches.remove(peer).unwrap_or_default() {
                let reason = error.to_owned();
                let _ = waiting.reply.send(Err(ReachError::Unreachable {
                    peer: *peer,
                    reason,
                }));
            }
        }

        /// Announces in the DHT that we have `file` (nothing in a build without one).
        pub(in crate::core) fn provide(&mut self, file: &Hash) {
            if !DhtSlot::provide(&mut self.swarm.behaviour_mut().kad, file) {
                tracing::debug!("no DHT to announce a file in");
            }
        }

        /// Looks up who announced `file` in the DHT.
        pub(in crate::core) fn find_providers(
            &mut self,
            file: &Hash,
            reply: Reply<Vec<PeerId>, FindError>,
        ) {
            let Some(query) = DhtSlot::find_providers(&mut self.swarm.behaviour_mut().kad, file)
            else {
                let _ = reply.send(Err(FindError::NoDht));
                return;
            };
            let started = Instant::now();
            self.files
                .providers
                .insert(query, ProviderQuery { started, reply });
        }

        /// Providers found by `query` (the first batch answers it).
        #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
        pub(in crate::core) fn providers_found(
            &mut self,
            query: QueryId,
            mut found: Vec<PeerId>,
            last: bool,
        ) {
            let me = *self.swarm.local_peer_id();
            found.retain(|p| *p != me);
            if found.is_empty() && !last {
                return;
            }
            if let Some(pending) = self.files.providers.remove(&query) {
                let _ = pending.reply.send(Ok(found));
                // Answered: the lookup need not go on.
                if let Some(mut running) = self.swarm.behaviour_mut().kad.query_mut(&query) {
                    running.finish();
                }
            }
        }

        /// Times out reaches and provider lookups.
        pub(in crate::core) fn files_tick(&mut self, now: Instant) {
            let secs = REACH_TIMEOUT.as_secs();
            for list in self.files.reaches.values_mut() {
                let (late, kept): (Vec<_>, Vec<_>) = list
                    .drain(..)
                    .partition(|w| now.duration_since(w.started) >= REACH_TIMEOUT);
                *list = kept;
                for waiting in late {
                    let _ = waiting.reply.send(Err(ReachError::Timeout(secs)));
                }
            }
            self.files.reaches.retain(|_, list| !list.is_empty());
            let reaches = &self.files.reaches;
            self.files
                .dials
                .retain(|peer, _| reaches.contains_key(peer));
            let late: Vec<QueryId> = self
                .files
                .providers
                .iter()
                .filter(|(_, q)| now.duration_since(q.started) >= REACH_TIMEOUT)
                .map(|(id, _)| *id)
                .collect();
            for id in late {
                if let Some(q) = self.files.providers.remove(&id) {
                    let _ = q.reply.send(Ok(Vec::new()));
                }
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use libp2p::{swarm::ConnectionId, PeerId};
    use web_time::Instant;

    use super::super::EventLoop;
    use crate::behaviour::Extension;

    /// Nothing pending: the browser build reaches no providers yet.
    #[derive(Debug, Default)]
    pub struct FilesPending;

    impl<X: Extension> EventLoop<X> {
        pub(in crate::core) fn reaches_on_connected(&mut self, _peer: &PeerId) {}

        pub(in crate::core) fn reaches_on_dial_failed(
            &mut self,
            _peer: &PeerId,
            _dial: ConnectionId,
            _error: &str,
        ) {
        }

        pub(in crate::core) fn files_tick(&mut self, _now: Instant) {}
    }
}
