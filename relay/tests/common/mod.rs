//! Helpers shared by the integration tests: nodes on loopback only, mDNS and UPnP off, and
//! waits bounded in time.
#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use libp2p::{core::multiaddr::Protocol, identity::Keypair, Multiaddr, PeerId};
use p2p_chat_relay::node::{start_peer, start_relay, Node, PeerSetup, RelayPorts};
use p2p_chat_shared::core::Event;

/// Longest a test waits for any one thing.
pub const WAIT: Duration = Duration::from_secs(20);

/// A relay on loopback with ephemeral ports; returns it and its TCP address (with `/p2p`).
pub async fn relay() -> (Node, Multiaddr) {
    p2p_chat_relay::install_crypto_provider();
    let key = Keypair::generate_ed25519();
    let cert = p2p_chat_relay::swarm::new_certificate().expect("certificate");
    let mut node = start_relay(key, cert, None, &RelayPorts::loopback_ephemeral(), &[])
        .await
        .expect("relay starts");
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
    let setup = PeerSetup {
        listen: vec![],
        ..PeerSetup::loopback(nick)
    };
    start_peer(Keypair::generate_ed25519(), &setup)
        .await
        .expect("peer starts")
}

/// A chat peer listening on loopback TCP.
pub async fn peer(nick: &str) -> Node {
    start_peer(Keypair::generate_ed25519(), &PeerSetup::loopback(nick))
        .await
        .expect("peer starts")
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
