//! Hostile and foreign payloads in a room: plain text from another libp2p chat shows as a
//! message from its signed source; malformed, oversized, non-UTF-8 and unknown-version payloads
//! are dropped and counted; nothing panics and the chat goes on.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use libp2p::{gossipsub, identity::Keypair, noise, tcp, yamux, Multiaddr, Swarm, SwarmBuilder};
use p2p_chat_shared::core::{Event, Origin};
use p2p_chat_shared::protocol::MAX_PAYLOAD_BYTES;

/// A bare gossipsub peer, like the universal-connectivity demo's: raw bytes, no envelope.
fn foreign_peer() -> Swarm<gossipsub::Behaviour> {
    SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Strict)
                .max_transmit_size(256 * 1024)
                .build()
                .expect("config");
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
                .expect("behaviour")
        })
        .expect("behaviour")
        .build()
}

/// Publishes every payload in order (retrying until the relay is subscribed), then keeps the
/// swarm running so that they leave.
async fn publish_all(
    mut swarm: Swarm<gossipsub::Behaviour>,
    relay: Multiaddr,
    payloads: Vec<Vec<u8>>,
) {
    let topic = gossipsub::IdentTopic::new("lobby");
    swarm.behaviour_mut().subscribe(&topic).expect("subscribe");
    swarm.dial(relay).expect("dial");
    let mut pending = payloads.into_iter().peekable();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = swarm.select_next_some() => {}
            _ = tick.tick() => {
                while let Some(payload) = pending.peek() {
                    match swarm.behaviour_mut().publish(topic.clone(), payload.clone()) {
                        Ok(_) => { pending.next(); }
                        Err(_) => break, // not subscribed yet: try again next tick
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_text_is_shown_and_bad_payloads_are_dropped_and_counted() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let (_relay, relay_addr) = relay().await;
    let mut alice = hidden_peer("alice").await;
    alice
        .client
        .connect(relay_addr.clone())
        .await
        .expect("dial relay");
    alice.client.join("lobby").await.expect("join");
    wait_for(&mut alice, "room ready", |e| {
        matches!(e, Event::RoomReady { .. }).then_some(())
    })
    .await;

    let foreign = foreign_peer();
    let foreign_id = *foreign.local_peer_id();
    let payloads = vec![
        b"hello from another chat".to_vec(),
        br#"{"v":1,"type":"message"}"#.to_vec(), // no id, no body
        br#"{"v":9,"type":"message","id":"x","body":"from the future"}"#.to_vec(),
        vec![0xff, 0xfe, 0xfd],            // not UTF-8
        vec![b'a'; MAX_PAYLOAD_BYTES + 1], // over the cap
        br#"{"v":1,"type":"message","id":"spoof","nick":"alice","body":"I am alice"}"#.to_vec(),
        b"still here".to_vec(),
    ];
    tokio::spawn(publish_all(foreign, relay_addr, payloads));

    let mut messages = Vec::new();
    while messages.len() < 3 {
        let m = wait_for(&mut alice, "foreign messages", |e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .await;
        messages.push(m);
    }
    assert_eq!(messages[0].text, "hello from another chat");
    assert_eq!(messages[0].origin, Origin::Text);
    assert_eq!(messages[0].from, foreign_id);
    // A nickname in a payload is a display name only: the author is the signed source.
    assert_eq!(messages[1].text, "I am alice");
    assert_eq!(messages[1].from, foreign_id);
    assert_eq!(messages[2].text, "still here");

    let info = alice.client.info().await.expect("alice is alive");
    assert_eq!(
        info.dropped_payloads, 4,
        "malformed, future version, not UTF-8, oversized"
    );
}
