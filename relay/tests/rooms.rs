//! Rooms through the relay: peers that can reach only the relay chat, each room gets exactly its
//! own messages once, and the hub forwards to rooms bigger than gossipsub's default mesh.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_that_reach_only_the_relay_chat_both_ways() {
    let (_relay, relay_addr) = relay().await;
    let mut alice = hidden_peer("alice").await;
    let mut bob = hidden_peer("bob").await;
    for node in [&alice, &bob] {
        node.client
            .connect(relay_addr.clone())
            .await
            .expect("dial relay");
        node.client.join("lobby").await.expect("join");
    }
    wait_member(&mut alice, "lobby", bob.peer_id).await;
    wait_member(&mut bob, "lobby", alice.peer_id).await;

    alice
        .client
        .send_message("lobby", "hello bob")
        .await
        .expect("send");
    assert_eq!(
        wait_message(&mut bob, "lobby", "hello bob").await,
        alice.peer_id
    );
    bob.client
        .send_message("lobby", "hello alice")
        .await
        .expect("send");
    assert_eq!(
        wait_message(&mut alice, "lobby", "hello alice").await,
        bob.peer_id
    );

    // Neither peer has a connection to the other: the relay carried everything.
    let peers = alice.client.peers(None).await.expect("peers");
    assert_eq!(
        peers.connected.len(),
        1,
        "alice is connected to the relay only: {peers:?}"
    );
    let nicks: Vec<&str> = peers.members.iter().map(|m| m.nick.as_str()).collect();
    assert_eq!(nicks, ["bob"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_in_two_rooms_each_see_exactly_their_rooms_messages_once() {
    let (_relay, relay_addr) = relay().await;
    let mut ann = hidden_peer("ann").await; // rust and go
    let mut ben = hidden_peer("ben").await; // rust
    let mut cat = hidden_peer("cat").await; // go
    for (node, rooms) in [
        (&ann, &["rust", "go"][..]),
        (&ben, &["rust"]),
        (&cat, &["go"]),
    ] {
        node.client
            .connect(relay_addr.clone())
            .await
            .expect("dial relay");
        for room in rooms {
            node.client.join(*room).await.expect("join");
        }
    }
    wait_member(&mut ann, "rust", ben.peer_id).await;
    wait_member(&mut ann, "go", cat.peer_id).await;
    wait_member(&mut ben, "rust", ann.peer_id).await;
    wait_member(&mut cat, "go", ann.peer_id).await;

    ann.client
        .send_message("rust", "ann in rust")
        .await
        .expect("send");
    ann.client
        .send_message("go", "ann in go")
        .await
        .expect("send");
    ben.client
        .send_message("rust", "ben in rust")
        .await
        .expect("send");
    cat.client
        .send_message("go", "cat in go")
        .await
        .expect("send");

    let window = Duration::from_secs(3);
    let (mut at_ann, mut at_ben, mut at_cat) = tokio::join!(
        collect_messages(&mut ann, window),
        collect_messages(&mut ben, window),
        collect_messages(&mut cat, window),
    );
    for list in [&mut at_ann, &mut at_ben, &mut at_cat] {
        list.sort();
    }
    let pair = |room: &str, text: &str| (room.to_owned(), text.to_owned());
    assert_eq!(
        at_ann,
        vec![pair("go", "cat in go"), pair("rust", "ben in rust")]
    );
    assert_eq!(at_ben, vec![pair("rust", "ann in rust")]);
    assert_eq!(at_cat, vec![pair("go", "ann in go")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_reaches_every_member_of_a_room_larger_than_a_default_mesh() {
    // gossipsub's default mesh is 6 to 12 peers; a hub with that mesh would leave some of these
    // 16 members to lazy gossip.
    const MEMBERS: usize = 16;
    let (_relay, relay_addr) = relay().await;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let node = hidden_peer(&format!("m{i}")).await;
        node.client
            .connect(relay_addr.clone())
            .await
            .expect("dial relay");
        node.client.join("big").await.expect("join");
        members.push(node);
    }
    let sender = members[0].peer_id;
    for node in members.iter_mut().skip(1) {
        wait_member(node, "big", sender).await;
    }
    for round in 0..3 {
        let text = format!("round {round}");
        members[0]
            .client
            .send_message("big", text.clone())
            .await
            .expect("send");
        for node in members.iter_mut().skip(1) {
            assert_eq!(wait_message(node, "big", &text).await, sender);
        }
    }
}

/// A chat peer grafts its relay only while its mesh of the room is short (fewer than 5): in a
/// room where it has enough direct neighbours, or once its mesh grew past 12 and was trimmed, it
/// leaves the relay out. The relay must still forward it what only the relay has (what pages
/// and peers that reach only the relay send), at once, not by lazy gossip a heartbeat later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_forwards_to_a_member_that_never_grafts_it() {
    let (_relay, relay_addr) = relay().await;
    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, &relay_addr).await;
    ready(&mut alice, "aloof").await;
    // Grafts nobody, ignores IHAVE, and prunes the relay at its heartbeat if the relay grafted
    // it (as a hub that fills its mesh of a room would).
    let mut member = attacker::Attacker::connect_aloof(&relay_addr).await;
    member.join("aloof").await;
    member.run_for(Duration::from_secs(3)).await;
    assert!(member.connected(), "the member is still connected");

    alice
        .client
        .send_message("aloof", "for everyone in the room")
        .await
        .expect("send");
    let data = member.capture_from(alice.peer_id).await;
    assert!(
        data.windows(24).any(|w| w == b"for everyone in the room"),
        "the message the member got is alice's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_connection_drops_leaves_the_others_lists_at_once() {
    let (_relay, relay_addr) = relay().await;
    let mut alice = hidden_peer("alice").await;
    let mut bob = hidden_peer("bob").await;
    for node in [&alice, &bob] {
        node.client
            .use_relay(vec![relay_addr.clone()])
            .await
            .expect("use relay");
        node.client.join("lobby").await.expect("join");
    }
    wait_member(&mut alice, "lobby", bob.peer_id).await;
    wait_member(&mut bob, "lobby", alice.peer_id).await;

    // No goodbye: the process is gone, like a closed tab.
    bob.task.abort();
    let started = std::time::Instant::now();
    let bob_id = bob.peer_id;
    let reason = wait_for(&mut alice, "bob to leave", |e| match e {
        p2p_chat_shared::core::Event::MemberLeft { peer, reason, .. } if *peer == bob_id => {
            Some(*reason)
        }
        _ => None,
    })
    .await;
    assert_eq!(reason, p2p_chat_shared::core::LeftReason::Disconnected);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// A relay following hundreds of rooms greets a newcomer with every one of its subscriptions in
/// one gossipsub message; gossipsub's default limits (16 KiB of subscriptions and control per
/// message) made the newcomer drop the whole greeting, so a room the relay already followed
/// never became ready for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_joins_a_room_of_a_relay_that_follows_hundreds() {
    use common::attacker::Attacker;
    use p2p_chat_shared::protocol::{room_topic, MAX_ROOMS_PER_PEER};
    let (_relay, relay_addr) = relay().await;
    // 400 rooms with 48-character names: about 21 KB of subscriptions.
    let name = |peer: usize, i: usize| format!("{peer:02}-{i:03}-{}", "r".repeat(41));
    let mut fillers = Vec::new();
    for peer in 0..4 {
        let mut filler = Attacker::connect(&relay_addr).await;
        for i in 0..MAX_ROOMS_PER_PEER {
            filler
                .swarm
                .behaviour_mut()
                .subscribe(&room_topic(&name(peer, i)))
                .expect("subscribe");
        }
        filler.run_for(Duration::from_millis(300)).await;
        fillers.push(filler);
    }
    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, &relay_addr).await;
    ready(&mut alice, &name(3, 99)).await;
    let mut bob = hidden_peer("bob").await;
    through_relay(&mut bob, &relay_addr).await;
    ready(&mut bob, &name(3, 99)).await;
    wait_member(&mut bob, &name(3, 99), alice.peer_id).await;
    drop(fillers);
}
