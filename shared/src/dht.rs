//! The Kademlia DHT slot of the chat behaviour.
//!
//! Native peers run Kademlia (the relay as a server, CLI peers as clients for `/find`). The
//! browser has no use for it: it reaches everyone through its relay, cannot dial the addresses a
//! lookup would hand out, and never answers queries. Kademlia's code is a sizeable part of the
//! page's `.wasm`, so in the browser build the slot holds an empty behaviour that answers the
//! same calls with "no DHT here".

use libp2p::{Multiaddr, PeerId, StreamProtocol};

use crate::behaviour::Role;

pub use imp::{Dht, DhtEvent, QueryId};

/// What the chat core asks of its DHT.
pub trait DhtSlot {
    /// Builds the slot for `role`.
    fn for_role(local: PeerId, role: Role) -> Self;
    /// Whether `protocols` (a peer's identify list) include the DHT's.
    fn served_by(protocols: &[StreamProtocol]) -> bool;
    /// Remembers an address of `peer` in the routing table.
    fn add_address(&mut self, peer: &PeerId, addr: Multiaddr);
    /// Starts a lookup for `peer`; `None` when this build has no DHT.
    fn find(&mut self, peer: PeerId) -> Option<QueryId>;
    /// Announces that we provide `key` (a file's id); `false` when this build has no DHT or its
    /// store refused.
    fn provide(&mut self, key: &[u8]) -> bool;
    /// Starts a lookup for the providers of `key`; `None` when this build has no DHT.
    fn find_providers(&mut self, key: &[u8]) -> Option<QueryId>;
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use libp2p::{kad, Multiaddr, PeerId, StreamProtocol};

    use super::DhtSlot;
    use crate::behaviour::Role;

    /// Kademlia with an in-memory record store.
    pub type Dht = kad::Behaviour<kad::store::MemoryStore>;
    /// What Kademlia reports.
    pub type DhtEvent = kad::Event;
    /// A running lookup.
    pub type QueryId = kad::QueryId;

    impl DhtSlot for Dht {
        fn for_role(local: PeerId, role: Role) -> Self {
            use crate::hub::providers::{MAX_PROVIDED_KEYS, PROVIDER_RECORD_TTL};
            let mut config = kad::Config::new(kad::PROTOCOL_NAME);
            let mut store = kad::store::MemoryStoreConfig::default();
            if role == Role::Relay {
                // What peers put in the relay's DHT goes through the hub first
                // (`hub/providers.rs`): bounded provider records, no values.
                config
                    .set_record_filtering(kad::StoreInserts::FilterBoth)
                    .set_provider_record_ttl(Some(PROVIDER_RECORD_TTL));
                store.max_provided_keys = MAX_PROVIDED_KEYS;
            }
            let store = kad::store::MemoryStore::with_config(local, store);
            let mut kad = kad::Behaviour::with_config(local, store, config);
            if role == Role::Relay {
                kad.set_mode(Some(kad::Mode::Server));
            }
            kad
        }

        fn served_by(protocols: &[StreamProtocol]) -> bool {
            protocols.contains(&kad::PROTOCOL_NAME)
        }

        fn add_address(&mut self, peer: &PeerId, addr: Multiaddr) {
            // Resolves to `Self::add_address`, the inherent method, which takes precedence.
            kad::Behaviour::add_address(self, peer, addr);
        }

        fn find(&mut self, peer: PeerId) -> Option<QueryId> {
            Some(self.get_closest_peers(peer))
        }

        fn provide(&mut self, key: &[u8]) -> bool {
            self.start_providing(kad::RecordKey::new(&key)).is_ok()
        }

        fn find_providers(&mut self, key: &[u8]) -> Option<QueryId> {
            Some(self.get_providers(kad::RecordKey::new(&key)))
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use libp2p::{swarm::dummy, Multiaddr, PeerId, StreamProtocol};

    use super::DhtSlot;
    use crate::behaviour::Role;

    /// No DHT in the browser.
    pub type Dht = dummy::Behaviour;
    /// Never happens.
    pub type DhtEvent = std::convert::Infallible;
    /// Never issued.
    pub type QueryId = std::convert::Infallible;

    impl DhtSlot for Dht {
        fn for_role(_local: PeerId, _role: Role) -> Self {
            dummy::Behaviour
        }

        fn served_by(_protocols: &[StreamProtocol]) -> bool {
            false
        }

        fn add_address(&mut self, _peer: &PeerId, _addr: Multiaddr) {}

        fn find(&mut self, _peer: PeerId) -> Option<QueryId> {
            None
        }

        fn provide(&mut self, _key: &[u8]) -> bool {
            false
        }

        fn find_providers(&mut self, _key: &[u8]) -> Option<QueryId> {
            None
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn native_build_has_a_dht_that_starts_lookups() {
        let local = PeerId::random();
        let mut dht = Dht::for_role(local, Role::Peer);
        assert!(DhtSlot::find(&mut dht, PeerId::random()).is_some());
        assert!(Dht::served_by(&[libp2p::kad::PROTOCOL_NAME]));
        assert!(!Dht::served_by(&[StreamProtocol::new("/chat/1")]));
    }
}
