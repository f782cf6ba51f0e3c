//! A peer that comes back while the relay still holds its old connection (here: from a new
//! network; a reloaded page is in the Playwright tests) chats at once on the new connection: the
//! relay closes the old one and has gossipsub greet the new one, so the peer never has to
//! reconnect.

mod common;

use std::time::Instant;

use common::attacker::Attacker;
use common::*;
use libp2p::identity::Keypair;
use p2p_chat_shared::core::Event;

const ROOM: &str = "lobby";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_back_while_its_old_connection_lingers_chats_at_once_without_reconnecting() {
    let dir = temp_dir("reconnect");
    let (_relay, v4, v6) = two_address_relay(&dir, Default::default()).await;
    let mut bob = hidden_peer("bob").await;
    through_relay(&mut bob, &v4).await;
    ready(&mut bob, ROOM).await;

    // Alice's old self, on 127.0.0.1: in the room, then frozen. Its connection stays open and
    // nothing on it answers any more, as when a laptop leaves one network for another.
    let key = Keypair::generate_ed25519();
    let mut ghost = Attacker::connect_with(key.clone(), &v4).await;
    ghost.join(ROOM).await;

    // Alice back, from ::1.
    let back = Instant::now();
    let mut alice = hidden_peer_with(key, "alice").await;
    through_relay(&mut alice, &v6).await;
    ready(&mut alice, ROOM).await;
    let sendable = back.elapsed();
    alice
        .client
        .send_message(ROOM, "alice is back")
        .await
        .expect("send");
    wait_message(&mut bob, ROOM, "alice is back").await;
    bob.client
        .send_message(ROOM, "welcome back")
        .await
        .expect("send");
    wait_for(&mut alice, "bob's answer", |e| match e {
        Event::RelayLost { .. } | Event::Disconnected { .. } => {
            panic!("alice had to reconnect: the relay did not greet her new connection ({e:?})")
        }
        Event::Message(m) if m.text == "welcome back" => Some(()),
        _ => None,
    })
    .await;
    wait_member(&mut alice, ROOM, bob.peer_id).await;
    println!(
        "back while the old connection lingered: sendable after {} ms, both ways after {} ms",
        sendable.as_millis(),
        back.elapsed().as_millis()
    );
    drop(ghost);
    let _ = std::fs::remove_dir_all(dir);
}

/// A "relay" that takes every connection and closes it at once (full, or broken): the peer must
/// come back less and less often, not hammer it with a handshake per 100 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_drops_every_connection_is_tried_less_and_less_often() {
    use futures::StreamExt;
    use libp2p::swarm::SwarmEvent;

    let key = Keypair::generate_ed25519();
    let relay_id = key.public().to_peer_id();
    let mut dropper = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            Default::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| libp2p::swarm::dummy::Behaviour)
        .expect("behaviour")
        .build();
    dropper
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("address"))
        .expect("listen");
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = dropper.select_next_some().await {
            break address.with(libp2p::core::multiaddr::Protocol::P2p(relay_id));
        }
    };
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let dropping = tokio::spawn(async move {
        loop {
            if let SwarmEvent::ConnectionEstablished { connection_id, .. } =
                dropper.select_next_some().await
            {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                dropper.close_connection(connection_id);
            }
        }
    });

    let mut alice = hidden_peer("alice").await;
    alice.client.use_relay(vec![addr]).await.expect("use relay");
    let mut waits = Vec::new();
    while waits.len() < 5 {
        let (attempt, wait) = wait_for(&mut alice, "the relay lost again", |e| match e {
            Event::RelayLost {
                attempt,
                retry_in_ms,
                ..
            } => Some((*attempt, *retry_in_ms)),
            _ => None,
        })
        .await;
        assert_eq!(
            attempt as usize,
            waits.len() + 1,
            "each loss counts as a failed attempt, although every connection opened"
        );
        waits.push(wait);
    }
    // 100, 200, 400, 800 ms, then at most a second (each shortened by up to half at random).
    assert!(waits[3] >= 400 && waits[4] >= 500, "{waits:?}");
    assert!(accepted.load(std::sync::atomic::Ordering::Relaxed) >= 4);
    dropping.abort();
}

/// A page given its relay's peers (`config.json`) keeps a reservation on one relay: the others
/// wait on standby, untouched, and take over one at a time as relays die.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_relays_are_left_alone_and_take_over_one_at_a_time() {
    let (a, a_addr) = relay().await;
    let (b, b_addr) = relay().await;
    let (_c, c_addr) = relay().await;
    let ids = [&a_addr, &b_addr, &c_addr].map(|addr| {
        p2p_chat_shared::addr::peer_at_end(addr).expect("a relay address ends in its peer id")
    });
    let mut page = hidden_peer("page").await;
    page.client
        .use_relay(vec![a_addr.clone(), b_addr.clone(), c_addr.clone()])
        .await
        .expect("three relays");
    let reserved_on = |relay: libp2p::PeerId| {
        move |e: &Event| match e {
            Event::ReservationAccepted { relay: r, .. } if *r == relay => Some(()),
            _ => None,
        }
    };
    wait_for(&mut page, "a reservation on A", reserved_on(ids[0])).await;
    let connected = |page: &p2p_chat_shared::native::Node| {
        let client = page.client.clone();
        async move {
            let info = client.peers(None).await.expect("peers");
            info.connected.iter().map(|c| c.peer).collect::<Vec<_>>()
        }
    };
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let now = connected(&page).await;
    assert!(now.contains(&ids[0]), "{now:?}");
    assert!(
        !now.contains(&ids[1]) && !now.contains(&ids[2]),
        "standbys dialled: {now:?}"
    );

    // A dies: B takes over, C stays on standby.
    let lost = Instant::now();
    a.client.shutdown().await.expect("A stops");
    drop(a);
    wait_for(&mut page, "a reservation on B", reserved_on(ids[1])).await;
    println!(
        "standby B took over {} ms after A stopped",
        lost.elapsed().as_millis()
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let now = connected(&page).await;
    assert!(!now.contains(&ids[2]), "C dialled while B works: {now:?}");

    // B dies too: C.
    b.client.shutdown().await.expect("B stops");
    drop(b);
    wait_for(&mut page, "a reservation on C", reserved_on(ids[2])).await;
}
