//! Swarm events other than rooms and DMs: connections, listeners, identify, ping, Kademlia, the
//! relay client, and what a platform extension reports.

#[cfg(not(target_arch = "wasm32"))]
use libp2p::kad;
use libp2p::{
    identify, ping, relay,
    swarm::{DialError, SwarmEvent},
    Multiaddr, PeerId,
};

use super::error::{ConnectError, PingError};
use super::event::Event;
use super::EventLoop;
use crate::addr::is_relayed;
use crate::behaviour::{BehaviourEvent, Extension, ExtensionEvent};
use crate::dht::{Dht, DhtEvent, DhtSlot};
use crate::protocol::MAX_ADDRS_PER_PEER;

impl<X: Extension> EventLoop<X> {
    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent<X>>) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(metrics) = &self.metrics {
            metrics.record_swarm(&event);
            if let SwarmEvent::Behaviour(event) = &event {
                // Not identify's: libp2p-metrics labels them with what peers claim (their
                // listen addresses, the address they see us at), which an attacker can vary
                // without end.
                match event {
                    BehaviourEvent::Gossipsub(e) => metrics.record(e),
                    BehaviourEvent::Ping(e) => metrics.record(e),
                    BehaviourEvent::Kad(e) => metrics.record(e),
                    BehaviourEvent::Ext(e) => X::record(e, metrics),
                    _ => {}
                }
            }
        }
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                let addr = endpoint.get_remote_address().clone();
                let relayed = endpoint.is_relayed();
                if let Some(hub) = self.hub.as_mut() {
                    let older = self.peers.connections_of(&peer_id);
                    hub.on_connection_established(&mut self.swarm, peer_id, &endpoint, &older);
                }
                let first = !self.peers.is_connected(&peer_id);
                self.peers
                    .connected(peer_id, connection_id, addr.clone(), relayed);
                if endpoint.is_dialer() {
                    self.finds_saw_address(&peer_id, [addr.clone()]);
                }
                if let Some(reply) = self.pending.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                tracing::debug!(peer = %peer_id, %addr, "connected");
                if first {
                    self.emit(Event::Connected {
                        peer: peer_id,
                        addr,
                        relayed,
                    });
                }
                self.reservation_on_connected(&peer_id, first);
                self.dms_on_connected(&peer_id);
                self.reaches_on_connected(&peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
                let last = self.peers.disconnected(&peer_id, connection_id);
                if let Some(hub) = self.hub.as_mut() {
                    hub.on_connection_closed(&mut self.swarm, peer_id, last);
                }
                if last {
                    self.emit(Event::Disconnected { peer: peer_id });
                    self.reservation_on_disconnected(&peer_id);
                    self.store_on_disconnected(&peer_id);
                    self.recheck_rooms();
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id,
                connection_id,
                error,
            } => {
                let text = dial_error_text(&error);
                if let Some(reply) = self.pending.dials.remove(&connection_id) {
                    let _ = reply.send(Err(ConnectError::Dial(text.clone())));
                }
                if let Some(peer) = peer_id {
                    if let DialError::Transport(attempts) = &error {
                        self.finds_saw_address(&peer, attempts.iter().map(|(a, _)| a.clone()));
                    }
                    self.dms_on_dial_failed(&peer, connection_id, &text);
                    self.reaches_on_dial_failed(&peer, connection_id, &text);
                }
                if !matches!(error, DialError::DialPeerConditionFalse(_)) {
                    self.emit(Event::DialFailed {
                        peer: peer_id,
                        error: text,
                    });
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                if self.listen_addrs_are_external {
                    self.swarm.add_external_address(address.clone());
                }
                self.emit(Event::Listening { addr: address });
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                let reason = match reason {
                    Ok(()) => "closed".to_owned(),
                    Err(e) => e.to_string(),
                };
                tracing::debug!(?listener_id, reason, "listener closed");
                for addr in addresses {
                    self.emit(Event::ListenerClosed {
                        addr,
                        reason: reason.clone(),
                    });
                }
                self.reservation_listener_closed(listener_id);
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "listener error");
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                tracing::info!(%address, "external address confirmed");
                self.emit(Event::ExternalAddr { addr: address });
            }
            other => tracing::trace!(?other, "swarm event"),
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent<X>) {
        match event {
            BehaviourEvent::Gossipsub(event) => self.on_gossipsub(event),
            BehaviourEvent::Dm(event) => self.on_dm_event(event),
            BehaviourEvent::Store(event) => self.on_store_event(event),
            BehaviourEvent::Identify(event) => self.on_identify(event),
            BehaviourEvent::Ping(event) => self.on_ping(event),
            BehaviourEvent::Kad(event) => self.on_kad(event),
            BehaviourEvent::RelayClient(event) => self.on_relay_client(event),
            BehaviourEvent::Ext(event) => {
                if let Some(event) = X::translate(event) {
                    self.on_extension_event(event);
                }
            }
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        self.peers.set_agent(peer_id, info.agent_version.clone());
        self.store_on_identify(peer_id, &info.protocols);
        for addr in info.listen_addrs.iter().take(MAX_ADDRS_PER_PEER) {
            self.peers.add_address(peer_id, addr.clone());
        }
        match self.hub.as_mut() {
            Some(hub) => hub.on_identify(
                &mut self.swarm,
                peer_id,
                &info.listen_addrs,
                &info.protocols,
            ),
            // A peer puts in its DHT table only those that serve the DHT, and never with a
            // relayed address (see the hub's `on_identify`): a peer reachable only through a
            // relay is reached through its relay.
            None if Dht::served_by(&info.protocols) => {
                for addr in info.listen_addrs.into_iter().take(MAX_ADDRS_PER_PEER) {
                    if !is_relayed(&addr) {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            None => {}
        }
    }

    fn on_ping(&mut self, event: ping::Event) {
        match event.result {
            Ok(rtt) => {
                for (_, reply) in self.pending.pings.remove(&event.peer).unwrap_or_default() {
                    let _ = reply.send(Ok(rtt));
                }
            }
            Err(ping::Failure::Unsupported) => {
                // Another libp2p app without ping: alive, just not measurable.
                for (_, reply) in self.pending.pings.remove(&event.peer).unwrap_or_default() {
                    let _ = reply.send(Err(PingError::Unsupported(event.peer)));
                }
            }
            Err(error) => {
                // A dead connection would otherwise linger (and stay in the gossipsub mesh).
                tracing::debug!(peer = %event.peer, %error, "ping failed; closing connection");
                self.swarm.close_connection(event.connection);
            }
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn on_kad(&mut self, event: DhtEvent) {
        match event {}
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn on_kad(&mut self, event: DhtEvent) {
        if let kad::Event::InboundRequest { request } = event {
            self.on_dht_insert(request);
            return;
        }
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            return;
        };
        if let (kad::QueryResult::GetProviders(found), Some(hub)) = (&result, self.hub.as_mut()) {
            if hub.peering.is_lookup(&id) {
                let found = match found {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                        providers.iter().copied().collect()
                    }
                    _ => Vec::new(),
                };
                hub.peering.on_found(&mut self.swarm, found, step.last);
                return;
            }
        }
        let result = match result {
            kad::QueryResult::GetClosestPeers(result) => result,
            kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) => {
                self.providers_found(id, providers.into_iter().collect(), step.last);
                return;
            }
            kad::QueryResult::GetProviders(_) => {
                self.providers_found(id, Vec::new(), true);
                return;
            }
            _ => return,
        };
        let Some(find) = self.pending.finds.get_mut(&id) else {
            return;
        };
        let peers = match result {
            Ok(ok) => ok.peers,
            Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
        };
        for info in peers.into_iter().filter(|p| p.peer_id == find.target) {
            for addr in info.addrs {
                if !find.found.contains(&addr) {
                    find.found.push(addr);
                }
            }
        }
        if !step.last {
            return;
        }
        if let Some(find) = self.pending.finds.remove(&id) {
            for addr in &find.found {
                self.peers.add_address(find.target, addr.clone());
            }
            let result = if find.found.is_empty() {
                Err(super::error::FindError::NotFound(find.target))
            } else {
                Ok(find.found)
            };
            let _ = find.reply.send(result);
        }
    }

    /// What a peer asked a relay's DHT to keep ([`crate::hub::providers`]): a provider record
    /// within its peer's bound; never a value.
    #[cfg(not(target_arch = "wasm32"))]
    fn on_dht_insert(&mut self, request: kad::InboundRequest) {
        use kad::store::RecordStore;
        let Some(hub) = self.hub.as_mut() else {
            return;
        };
        match request {
            kad::InboundRequest::AddProvider {
                record: Some(mut record),
            } => {
                let ip = hub.guard.ip(&record.provider);
                if !hub.providers.admit(&record, ip, web_time::Instant::now()) {
                    return;
                }
                record
                    .addresses
                    .truncate(crate::hub::providers::MAX_PROVIDER_ADDRS);
                let (peer, key) = (record.provider, record.key.clone());
                let kad = &mut self.swarm.behaviour_mut().kad;
                if let Err(e) = kad.store_mut().add_provider(record) {
                    tracing::debug!(error = ?e, "provider record not kept");
                    hub.providers.forget(&peer, &key);
                }
            }
            kad::InboundRequest::PutRecord {
                source,
                record: Some(_),
                ..
            } => tracing::debug!(%source, "DHT value not kept: this relay keeps none"),
            _ => {}
        }
    }

    /// A lookup for `peer` dialled these addresses (the DHT handed them out).
    fn finds_saw_address(
        &mut self,
        peer: &PeerId,
        addrs: impl IntoIterator<Item = Multiaddr> + Clone,
    ) {
        for find in self
            .pending
            .finds
            .values_mut()
            .filter(|f| f.target == *peer)
        {
            for addr in addrs.clone() {
                if !find.found.contains(&addr) {
                    find.found.push(addr);
                }
            }
        }
    }

    fn on_relay_client(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if !renewal {
                    tracing::info!(relay = %relay_peer_id, "relay reservation accepted");
                    self.reservation_accepted(relay_peer_id);
                }
            }
            other => tracing::debug!(?other, "relay client"),
        }
    }

    fn on_extension_event(&mut self, event: ExtensionEvent) {
        match event {
            ExtensionEvent::Discovered(found) => {
                let mut peers: Vec<PeerId> = Vec::new();
                for (peer, addr) in found {
                    self.peers.add_address(peer, addr.clone());
                    self.swarm.behaviour_mut().kad.add_address(&peer, addr);
                    if !peers.contains(&peer) {
                        peers.push(peer);
                    }
                }
                for peer in &peers {
                    if !self.peers.is_connected(peer) {
                        let _ = self.swarm.dial(*peer);
                    }
                }
                self.emit(Event::Discovered { peers });
            }
            ExtensionEvent::Expired(gone) => {
                for (peer, addr) in gone {
                    self.peers.remove_address(&peer, &addr);
                }
            }
            ExtensionEvent::NatStatus(status) => {
                self.nat_status = status.clone();
                self.emit(Event::NatStatus { status });
            }
            ExtensionEvent::HolePunch { peer, result } => {
                let (ok, error) = match result {
                    Ok(()) => (true, None),
                    Err(e) => (false, Some(e)),
                };
                if ok {
                    self.close_relayed_connections(&peer);
                }
                self.emit(Event::HolePunch { peer, ok, error });
            }
            ExtensionEvent::Log(line) => tracing::debug!("{line}"),
        }
    }
}

impl<X: Extension> EventLoop<X> {
    /// A hole punch gave us a direct connection to `peer`: its relayed ones are closed, so that
    /// what we send goes direct (a protocol picks any of a peer's connections) and the relay's
    /// circuit is freed. A DM still on its way over one is sent again over the direct one
    /// (`on_dm_event`).
    fn close_relayed_connections(&mut self, peer: &PeerId) {
        // By what each connection was when it opened: a circuit we accepted has no
        // `/p2p-circuit` in its remote address.
        for id in self.peers.relayed_beside_direct(peer) {
            tracing::debug!(%peer, "closing a relayed connection after a hole punch");
            self.swarm.close_connection(id);
        }
    }
}

/// One line saying why a dial failed.
pub(super) fn dial_error_text(error: &DialError) -> String {
    match error {
        DialError::Transport(attempts) => attempts
            .iter()
            .map(|(addr, e)| format!("{addr}: {}", error_chain(e)))
            .collect::<Vec<_>>()
            .join("; "),
        other => error_chain(other),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
