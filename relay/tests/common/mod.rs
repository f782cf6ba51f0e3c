//! Helpers shared by the integration tests: nodes on loopback only, mDNS and UPnP off, and
//! waits bounded in time.
#![allow(dead_code)]

pub mod attacker;
pub mod procs;

use std::time::Duration;

use futures::StreamExt;
use libp2p::{core::multiaddr::Protocol, identity::Keypair, Multiaddr, PeerId};
use p2p_chat_shared::core::{ChatMessage, Event};
use p2p_chat_shared::hub::HubLimits;
use p2p_chat_shared::native::{
    install_crypto_provider, new_certificate, start_peer, start_relay, Node, PeerSetup, RelayPorts,
    RelaySetup,
};

/// Longest a test waits for any one thing.
pub const WAIT: Duration = Duration::from_secs(20);

/// A bare rust-libp2p swarm with identity `key` over TCP (noise, yamux) running only the
/// behaviour `behaviour` makes, its idle connections kept a minute: the tests' foreign clients.
pub fn bare_swarm<B: libp2p::swarm::NetworkBehaviour>(
    key: Keypair,
    behaviour: impl FnOnce(&Keypair) -> B,
) -> libp2p::Swarm<B> {
    libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            Default::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(behaviour)
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// A relay on loopback with ephemeral ports; returns it and its TCP address (with `/p2p`).
pub async fn relay() -> (Node, Multiaddr) {
    relay_with(None, HubLimits::default()).await
}

/// A relay with a store in `dir` (default retention and limits).
pub async fn relay_with_store(dir: &std::path::Path) -> (Node, Multiaddr) {
    relay_with_store_limits(dir, HubLimits::default()).await
}

/// A relay with a store in `dir` and these limits on what one peer may ask.
pub async fn relay_with_store_limits(
    dir: &std::path::Path,
    limits: HubLimits,
) -> (Node, Multiaddr) {
    std::fs::create_dir_all(dir).expect("store dir");
    let store = p2p_chat::relay::store::open(&dir.join("store.redb"), Default::default())
        .expect("store")
        .handle;
    relay_with(Some(store), limits).await
}

/// A relay on loopback that listens on 127.0.0.1 and on ::1 (two addresses, so that the test
/// has two "IP addresses" of its own), with these limits; its two TCP addresses.
pub async fn two_address_relay(
    dir: &std::path::Path,
    limits: HubLimits,
) -> (Node, Multiaddr, Multiaddr) {
    two_address_relay_with(
        dir,
        limits,
        p2p_chat_shared::native::DEFAULT_CONNECTIONS_PER_IP,
    )
    .await
}

/// The same, with this cap on connections per IP address.
pub async fn two_address_relay_with(
    dir: &std::path::Path,
    limits: HubLimits,
    connections_per_ip: usize,
) -> (Node, Multiaddr, Multiaddr) {
    use libp2p::core::multiaddr::Protocol;
    use p2p_chat_shared::native::{new_certificate, start_relay, RelayPorts, RelaySetup};
    std::fs::create_dir_all(dir).expect("store dir");
    let store = p2p_chat::relay::store::open(&dir.join("store.redb"), Default::default())
        .expect("store")
        .handle;
    let mut setup = RelaySetup {
        store: Some(store),
        limits,
        connections_per_ip,
        ..RelaySetup::network(
            new_certificate().expect("certificate"),
            &RelayPorts::loopback_ephemeral(),
        )
    };
    setup
        .listen
        .push("/ip6/::1/tcp/0".parse().expect("address"));
    let mut node = start_relay(Keypair::generate_ed25519(), setup)
        .await
        .expect("relay starts");
    let id = node.peer_id;
    let mut v4 = None;
    let mut v6 = None;
    while v4.is_none() || v6.is_none() {
        let addr = wait_for(&mut node, "listen addresses", |e| match e {
            Event::Listening { addr } => Some(addr.clone()),
            _ => None,
        })
        .await;
        let tcp_only =
            addr.iter().count() == 2 && addr.iter().any(|p| matches!(p, Protocol::Tcp(_)));
        match addr.iter().next() {
            Some(Protocol::Ip4(_)) if tcp_only => v4 = Some(addr.with(Protocol::P2p(id))),
            Some(Protocol::Ip6(_)) if tcp_only => v6 = Some(addr.with(Protocol::P2p(id))),
            _ => {}
        }
    }
    (node, v4.expect("v4"), v6.expect("v6"))
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("p2p-chat-{name}-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

async fn relay_with(
    store: Option<p2p_chat_shared::store::StoreHandle>,
    limits: HubLimits,
) -> (Node, Multiaddr) {
    relay_with_metrics(store, limits, None).await
}

/// A relay on loopback that records into `metrics`; returns it and its TCP address.
pub async fn relay_with_metrics(
    store: Option<p2p_chat_shared::store::StoreHandle>,
    limits: HubLimits,
    metrics: Option<p2p_chat_shared::native::metrics::CoreMetrics>,
) -> (Node, Multiaddr) {
    install_crypto_provider();
    let cert = new_certificate().expect("certificate");
    relay_from(RelaySetup {
        store,
        limits,
        metrics,
        ..RelaySetup::network(cert, &RelayPorts::loopback_ephemeral())
    })
    .await
}

/// A relay on loopback that keeps links to the relays at `peers` (full addresses).
pub async fn relay_linked_to(peers: Vec<Multiaddr>) -> (Node, Multiaddr) {
    install_crypto_provider();
    let cert = new_certificate().expect("certificate");
    relay_from(RelaySetup {
        peering: p2p_chat_shared::hub::PeeringConfig {
            peers,
            named_only: false,
        },
        ..RelaySetup::network(cert, &RelayPorts::loopback_ephemeral())
    })
    .await
}

/// A relay started from `setup`; returns it and its TCP address.
pub async fn relay_from(setup: RelaySetup) -> (Node, Multiaddr) {
    let key = Keypair::generate_ed25519();
    let mut node = start_relay(key, setup).await.expect("relay starts");
    let peer_id = node.peer_id;
    let addr = wait_for(&mut node, "relay TCP listen address", |e| match e {
        Event::Listening { addr } if is_plain_tcp(addr) => Some(addr.clone()),
        _ => None,
    })
    .await;
    (node, addr.with(Protocol::P2p(peer_id)))
}

fn is_plain_tcp(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::Tcp(_)))
        && !addr
            .iter()
            .any(|p| matches!(p, Protocol::Ws(_) | Protocol::P2pCircuit))
}

/// A chat peer that listens on nothing: it can reach others only through the relay.
pub async fn hidden_peer(nick: &str) -> Node {
    hidden_peer_with(Keypair::generate_ed25519(), nick).await
}

/// A hidden chat peer with this identity.
pub async fn hidden_peer_with(key: Keypair, nick: &str) -> Node {
    start_peer(key, &PeerSetup::behind_relay(nick))
        .await
        .expect("peer starts")
}

/// Makes `node` use the relay and waits for its reservation.
pub async fn through_relay(node: &mut Node, relay: &Multiaddr) {
    through_relay_at(node, vec![relay.clone()]).await;
}

/// Makes `node` use the relay reachable at `addrs` (best first) and waits for its reservation.
pub async fn through_relay_at(node: &mut Node, addrs: Vec<Multiaddr>) {
    node.client.use_relay(addrs).await.expect("use relay");
    wait_for(node, "reservation", |e| {
        matches!(e, Event::ReservationAccepted { .. }).then_some(())
    })
    .await;
}

/// A chat peer listening on loopback TCP.
pub async fn peer(nick: &str) -> Node {
    start_peer(Keypair::generate_ed25519(), &PeerSetup::loopback(nick))
        .await
        .expect("peer starts")
}

/// Alice and bob, reserved on the relay, in `room`, bob seeing alice (so that what alice sends
/// reaches him).
pub async fn two_members(relay: &Multiaddr, room: &str) -> (Node, Node) {
    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, relay).await;
    ready(&mut alice, room).await;
    let mut bob = hidden_peer("bob").await;
    through_relay(&mut bob, relay).await;
    ready(&mut bob, room).await;
    wait_member(&mut bob, room, alice.peer_id).await;
    (alice, bob)
}

/// Joins `room` and waits until it can carry messages (asks the core, so no event is consumed).
pub async fn ready(node: &mut Node, room: &str) {
    node.client.join(room).await.expect("join");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rooms = node.client.rooms().await.expect("rooms");
        if rooms.iter().any(|r| r.room == room && r.ready) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{room} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A relay in this process's memory (libp2p's memory transport: no sockets, no ports), with a
/// store in `dir`; returns it and its address (with `/p2p`).
pub async fn memory_relay(dir: &std::path::Path) -> (Node, Multiaddr) {
    memory_relay_on(dir, Keypair::generate_ed25519(), 0).await
}

/// A memory relay with this identity on `/memory/<port>` (0: any free one).
pub async fn memory_relay_on(dir: &std::path::Path, key: Keypair, port: u64) -> (Node, Multiaddr) {
    std::fs::create_dir_all(dir).expect("store dir");
    let store = p2p_chat::relay::store::open(&dir.join("store.redb"), Default::default())
        .expect("store")
        .handle;
    let setup = RelaySetup {
        store: Some(store),
        listen: vec![Multiaddr::empty().with(Protocol::Memory(port))],
        ..RelaySetup::in_memory()
    };
    let mut node = start_relay(key, setup).await.expect("relay starts");
    let peer_id = node.peer_id;
    let addr = wait_for(&mut node, "relay memory address", |e| match e {
        Event::Listening { addr } => Some(addr.clone()),
        _ => None,
    })
    .await;
    (node, addr.with(Protocol::P2p(peer_id)))
}

/// A chat peer in memory with this identity that listens on nothing, reserved on `relay`: it
/// reaches others only through the relay.
pub async fn memory_peer_with(key: Keypair, nick: &str, relay: &Multiaddr) -> Node {
    memory_peer_at(key, nick, vec![relay.clone()]).await
}

/// A chat peer in memory that listens on nothing, reserved on the relay at `addrs` (best first).
pub async fn memory_peer_at(key: Keypair, nick: &str, addrs: Vec<Multiaddr>) -> Node {
    let setup = PeerSetup {
        listen: Vec::new(),
        ..PeerSetup::in_memory(nick)
    };
    let mut node = start_peer(key, &setup).await.expect("peer starts");
    through_relay_at(&mut node, addrs).await;
    node
}

/// Waits until `node` has `relay`'s identify (so it knows whether the relay keeps a store, and
/// uses it: catch-ups start then).
pub async fn wait_identified(node: &mut Node, relay: PeerId) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let peers = node.client.peers(None).await.expect("peers");
        if peers
            .connected
            .iter()
            .any(|p| p.peer == relay && p.agent.is_some())
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for the relay's identify"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A chat peer in memory, reserved on `relay`.
pub async fn memory_peer(nick: &str, relay: &Multiaddr) -> Node {
    memory_peer_with(Keypair::generate_ed25519(), nick, relay).await
}

/// Room messages shown (`true`: as history), in the order shown, until there are `count`; then
/// whatever else arrives within half a second (each one a duplicate, where a test counts).
pub async fn shown_messages(node: &mut Node, count: usize) -> Vec<(ChatMessage, bool)> {
    let mut shown = Vec::new();
    wait_for(node, &format!("{count} messages"), |e| {
        match e {
            Event::Message(m) => shown.push((m.clone(), false)),
            Event::History { messages, .. } => {
                shown.extend(messages.iter().map(|m| (m.clone(), true)));
            }
            _ => {}
        }
        (shown.len() >= count).then_some(())
    })
    .await;
    // Anything more that arrives soon after would be a duplicate.
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Some(e) = futures::StreamExt::next(&mut node.events).await {
            match e {
                Event::Message(m) => shown.push((m, false)),
                Event::History { messages, .. } => {
                    shown.extend(messages.into_iter().map(|m| (m, true)));
                }
                _ => {}
            }
        }
    })
    .await;
    shown
}

/// Waits (at most [`WAIT`]) for the first event `pick` accepts; other events are skipped.
pub async fn wait_for<T>(
    node: &mut Node,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = node.events.next().await {
            if let Some(found) = pick(&event) {
                return Some(found);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => found,
        Ok(None) => panic!("event stream ended while waiting for {what}"),
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Waits until `node` lists `member` in `room` (asks the core, so no event is consumed).
pub async fn wait_member(node: &mut Node, room: &str, member: PeerId) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let peers = node
            .client
            .peers(Some(room.to_owned()))
            .await
            .expect("peers");
        if peers.members.iter().any(|m| m.peer == member) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {member} to join {room}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for a room message with this text; returns the author.
pub async fn wait_message(node: &mut Node, room: &str, text: &str) -> PeerId {
    wait_for(node, &format!("{text:?} in {room}"), |e| match e {
        Event::Message(m) if m.room == room && m.text == text => Some(m.from),
        _ => None,
    })
    .await
}

/// Collects every room message arriving within `window`.
pub async fn collect_messages(node: &mut Node, window: Duration) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(window, async {
        while let Some(event) = node.events.next().await {
            if let Event::Message(m) = event {
                seen.push((m.room, m.text));
            }
        }
    })
    .await;
    seen
}

/// A bare libp2p client that speaks the store protocol with raw bytes: for requests no chat
/// peer would send (malformed, oversized) and for reading a relay's history from a test.
pub struct RawStoreClient {
    swarm: libp2p::Swarm<libp2p::request_response::Behaviour<RawCodec>>,
    relay: PeerId,
}

/// Bytes in, bytes out; a slow one never reads an answer (a slow reader: the relay's answer
/// waits for it until the request times out).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec {
    slow: bool,
}

async fn read_at_most<T: futures::AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: u64,
) -> std::io::Result<Vec<u8>> {
    use futures::AsyncReadExt;
    let mut bytes = Vec::new();
    io.take(limit).read_to_end(&mut bytes).await?;
    Ok(bytes)
}

async fn write_all_and_close<T: futures::AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> std::io::Result<()> {
    use futures::AsyncWriteExt;
    io.write_all(bytes).await?;
    io.close().await
}

impl libp2p::request_response::Codec for RawCodec {
    type Protocol = libp2p::StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &Self::Protocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_at_most(io, 1 << 20).await
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        if self.slow {
            return futures::future::pending().await;
        }
        read_at_most(io, 16 << 20).await
    }

    async fn write_request<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_all_and_close(io, &bytes).await
    }

    async fn write_response<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_all_and_close(io, &bytes).await
    }
}

impl RawStoreClient {
    /// Connects to the relay at `addr` (ending in `/p2p/<id>`).
    pub async fn connect(addr: &Multiaddr) -> Self {
        Self::build(addr, false).await
    }

    /// Connects as a client that never reads an answer, with up to 1,000 requests in flight.
    pub async fn connect_slow(addr: &Multiaddr) -> Self {
        Self::build(addr, true).await
    }

    /// Its peer id.
    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Sends `bytes` as a request and does not wait for the answer.
    pub fn send(&mut self, bytes: Vec<u8>) {
        self.swarm.behaviour_mut().send_request(&self.relay, bytes);
    }

    /// Drives the connection for `time`.
    pub async fn run_for(&mut self, time: Duration) {
        let _ = tokio::time::timeout(time, async {
            loop {
                self.swarm.select_next_some().await;
            }
        })
        .await;
    }

    async fn build(addr: &Multiaddr, slow: bool) -> Self {
        use libp2p::request_response::{Behaviour, Config, ProtocolSupport};
        let relay = match addr.iter().last() {
            Some(Protocol::P2p(peer)) => peer,
            _ => panic!("{addr} has no /p2p"),
        };
        let mut swarm = bare_swarm(Keypair::generate_ed25519(), |_| {
            Behaviour::with_codec(
                RawCodec { slow },
                [(
                    p2p_chat_shared::protocol::STORE_PROTOCOL,
                    ProtocolSupport::Outbound,
                )],
                Config::default()
                    .with_request_timeout(WAIT)
                    .with_max_concurrent_streams(1000),
            )
        });
        swarm.dial(addr.clone()).expect("dial");
        Self { swarm, relay }
    }

    /// Sends `bytes` as a request; the answer's bytes, or the failure as text.
    pub async fn ask(&mut self, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
        use libp2p::request_response::{Event as E, Message};
        use libp2p::swarm::SwarmEvent;
        let id = self.swarm.behaviour_mut().send_request(&self.relay, bytes);
        let answer = tokio::time::timeout(WAIT, async {
            loop {
                match self.swarm.select_next_some().await {
                    SwarmEvent::Behaviour(E::Message {
                        message:
                            Message::Response {
                                request_id,
                                response,
                            },
                        ..
                    }) if request_id == id => return Ok(response),
                    SwarmEvent::Behaviour(E::OutboundFailure {
                        request_id, error, ..
                    }) if request_id == id => return Err(error.to_string()),
                    _ => {}
                }
            }
        })
        .await;
        answer.unwrap_or_else(|_| Err(format!("no answer within {WAIT:?}")))
    }

    /// Sends a store request; the decoded answer.
    pub async fn request(
        &mut self,
        request: &p2p_chat_shared::store::StoreRequest,
    ) -> p2p_chat_shared::store::StoreResponse {
        let bytes = serde_json::to_vec(request).expect("encodes");
        let answer = self.ask(bytes).await.expect("an answer");
        serde_json::from_slice(&answer).expect("a store response")
    }

    /// Every stored message of `room`, page by page.
    pub async fn whole_history(&mut self, room: &str) -> Vec<p2p_chat_shared::store::HistoryItem> {
        use p2p_chat_shared::store::{HistoryQuery, StoreRequest, StoreResponse};
        let mut all = Vec::new();
        let mut after = None;
        for _ in 0..10_000 {
            let query = HistoryQuery {
                room: room.to_owned(),
                after: after.clone(),
                ..Default::default()
            };
            match self.request(&StoreRequest::Query(query)).await {
                StoreResponse::Page { messages, next } => {
                    all.extend(messages);
                    match next {
                        Some(cursor) => after = Some(cursor),
                        None => return all,
                    }
                }
                other => panic!("history query failed: {other:?}"),
            }
        }
        panic!("history of {room} did not end");
    }
}

/// A plain HTTP/1.1 GET on loopback: (status, headers lowercased, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    http_get_with(addr, path, "").await
}

/// The same, with more request headers (each line ending in `\r\n`).
pub async fn http_get_with(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &str,
) -> (u16, String, String) {
    http_get_for(addr, "127.0.0.1", path, headers).await
}

/// The same, for the host name `host` (the `Host` header).
pub async fn http_get_for(
    addr: std::net::SocketAddr,
    host: &str,
    path: &str,
    headers: &str,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, head.to_lowercase(), body.to_owned())
}
