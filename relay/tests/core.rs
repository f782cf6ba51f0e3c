//! The chat core over libp2p's memory transport (no sockets, no ports: seconds, not minutes),
//! with a real relay (hub, circuit relay server, redb store) and peers that reach each other
//! only through it: rooms, dedup, catch-up merged with live messages, receipts, direct messages
//! and the mailbox, rooms that stop being ready and start again.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use libp2p::core::multiaddr::Protocol;
use libp2p::identity::Keypair;
use libp2p::Multiaddr;
use p2p_chat_shared::core::{ChatMessage, DmError, Event, HistoryMark};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_carry_each_message_to_their_members_once() {
    let dir = temp_dir("core-rooms");
    let (_relay, relay) = memory_relay(&dir).await;
    let mut ann = memory_peer("ann", &relay).await;
    let mut ben = memory_peer("ben", &relay).await;
    let mut cat = memory_peer("cat", &relay).await;
    for (node, rooms) in [
        (&mut ann, &["rust", "go"][..]),
        (&mut ben, &["rust"][..]),
        (&mut cat, &["go"][..]),
    ] {
        for room in rooms {
            ready(node, room).await;
        }
    }
    wait_member(&mut ann, "rust", ben.peer_id).await;
    wait_member(&mut ann, "go", cat.peer_id).await;

    let sent = ann
        .client
        .send_message("rust", "ann in rust")
        .await
        .expect("sent");
    assert_eq!(
        (sent.message.from, sent.message.nick.as_str(), sent.queued),
        (ann.peer_id, "ann", false),
        "the core hands back the message it published"
    );
    ann.client
        .send_message("go", "ann in go")
        .await
        .expect("sent");
    ben.client
        .send_message("rust", "ben in rust")
        .await
        .expect("sent");

    let got = wait_message(&mut ben, "rust", "ann in rust").await;
    assert_eq!(got, ann.peer_id, "the author is the signed source");
    let from_ben = wait_message(&mut ann, "rust", "ben in rust").await;
    assert_eq!(from_ben, ben.peer_id);
    wait_message(&mut cat, "go", "ann in go").await;
    for (node, expected) in [(&mut ben, vec![]), (&mut cat, vec![])] {
        let late = collect_messages(node, Duration::from_millis(300)).await;
        assert_eq!(late, expected, "nothing twice, nothing from another room");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_peer_catches_up_once_in_order_then_sees_live_messages() {
    let dir = temp_dir("core-catch-up");
    let (relay_node, relay) = memory_relay(&dir).await;
    let mut alice = memory_peer("alice", &relay).await;
    ready(&mut alice, "lobby").await;
    let bob_key = Keypair::generate_ed25519();
    let mut bob = memory_peer_with(bob_key.clone(), "bob", &relay).await;
    ready(&mut bob, "lobby").await;
    wait_member(&mut alice, "lobby", bob.peer_id).await;

    // Bob sees one message, then goes away.
    alice
        .client
        .send_message("lobby", "before")
        .await
        .expect("sent");
    let before: ChatMessage = wait_for(&mut bob, "the first message", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    bob.client.shutdown().await.expect("bob stops");
    drop(bob);

    // What he misses: every one of them confirmed kept by the relay (receipts).
    let missed: Vec<String> = (0..30).map(|i| format!("missed {i:02}")).collect();
    let mut ids = HashSet::new();
    for text in &missed {
        let sent = alice
            .client
            .send_message("lobby", text)
            .await
            .expect("sent");
        ids.insert(sent.id().to_owned());
    }
    wait_for(&mut alice, "a receipt for each", |e| {
        match e {
            Event::Stored { id, .. } => {
                ids.remove(id);
            }
            Event::NotStored { id, reason, .. } => panic!("{id} not kept: {reason}"),
            _ => {}
        }
        ids.is_empty().then_some(())
    })
    .await;

    // Bob comes back holding the first message; live messages arrive during his catch-up.
    let mut bob = memory_peer_with(bob_key, "bob", &relay).await;
    wait_identified(&mut bob, relay_node.peer_id).await;
    let mark = HistoryMark::from_newest_first([(before.from, before.id.clone(), before.sent_at)]);
    bob.client.join_after("lobby", mark).await.expect("join");
    for i in 0..3 {
        alice
            .client
            .send_message("lobby", format!("live {i}"))
            .await
            .expect("sent");
    }
    let shown: Vec<(String, bool)> = shown_messages(&mut bob, missed.len() + 3)
        .await
        .into_iter()
        .map(|(m, history)| (m.text, history))
        .collect();
    // A live message the relay filed before it answered comes with the history (and its live
    // copy is dropped): what counts is each once, in order, history first.
    let texts: Vec<&str> = shown.iter().map(|s| s.0.as_str()).collect();
    let mut expected: Vec<&str> = missed.iter().map(String::as_str).collect();
    expected.extend(["live 0", "live 1", "live 2"]);
    assert_eq!(
        texts, expected,
        "every message once, in order; not the one he held"
    );
    let history = shown.iter().take_while(|s| s.1).count();
    assert!(
        history >= missed.len(),
        "the missed ones came as history: {shown:?}"
    );
    assert!(
        shown[history..].iter().all(|s| !s.1),
        "history comes first: {shown:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_goes_through_the_relay_or_waits_in_the_mailbox() {
    let dir = temp_dir("core-dm");
    let (_relay, relay) = memory_relay(&dir).await;
    let mut alice = memory_peer("alice", &relay).await;
    let bob_key = Keypair::generate_ed25519();
    let bob_id = bob_key.public().to_peer_id();
    let bob = memory_peer_with(bob_key.clone(), "bob", &relay).await;

    let receipt = alice.client.dm(bob_id, "psst").await.expect("delivered");
    assert!(receipt.relayed && !receipt.stored, "{receipt:?}");
    assert_eq!(
        alice.client.dm(alice.peer_id, "me").await,
        Err(DmError::SelfTarget)
    );

    // Bob goes away: the next one is sealed and kept for him, then delivered on his return.
    bob.client.shutdown().await.expect("bob stops");
    drop(bob);
    let kept = alice
        .client
        .dm(bob_id, "while you were out")
        .await
        .expect("kept");
    assert!(kept.stored, "{kept:?}");
    let mut bob = memory_peer_with(bob_key, "bob", &relay).await;
    let dm = wait_for(&mut bob, "the kept DM", |e| match e {
        Event::DirectMessage(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (dm.text.as_str(), dm.from, dm.stored, dm.id.as_str()),
        ("while you were out", alice.peer_id, true, kept.id.as_str())
    );
    let delivered = wait_for(&mut alice, "the delivery notice", |e| match e {
        Event::DmDelivered { id, peer } => Some((id.clone(), *peer)),
        _ => None,
    })
    .await;
    assert_eq!(delivered, (kept.id, bob_id));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_stops_being_ready_with_its_relay_and_sends_what_waited_when_it_is_back() {
    let dir = temp_dir("core-ready");
    // The relay comes back on a second address (a memory port stays taken once listened on).
    let key = Keypair::generate_ed25519();
    let (first, second) = (rand::random::<u64>() | 1, rand::random::<u64>() | 1);
    let (relay, addr) = memory_relay_on(&dir.join("1"), key.clone(), first).await;
    let back = Multiaddr::empty()
        .with(Protocol::Memory(second))
        .with(Protocol::P2p(relay.peer_id));
    let addrs = vec![addr, back];
    let mut ann = memory_peer_at(Keypair::generate_ed25519(), "ann", addrs.clone()).await;
    let mut ben = memory_peer_at(Keypair::generate_ed25519(), "ben", addrs).await;
    ready(&mut ann, "lobby").await;
    ready(&mut ben, "lobby").await;
    wait_member(&mut ann, "lobby", ben.peer_id).await;

    relay.client.shutdown().await.expect("the relay stops");
    relay.task.await.expect("the relay's core ends");
    wait_for(&mut ann, "the room not ready", |e| {
        matches!(e, Event::RoomNotReady { room } if room == "lobby").then_some(())
    })
    .await;
    let sent = ann
        .client
        .send_message("lobby", "while the relay was away")
        .await
        .expect("queued");
    assert!(sent.queued, "nobody to send it to yet: {sent:?}");

    let (_relay, _) = memory_relay_on(&dir.join("2"), key, second).await;
    wait_for(&mut ann, "the room ready again", |e| {
        matches!(e, Event::RoomReady { room } if room == "lobby").then_some(())
    })
    .await;
    let ids = wait_for(&mut ann, "the queued message sent", |e| match e {
        Event::QueuedSent { ids, .. } => Some(ids.clone()),
        _ => None,
    })
    .await;
    assert_eq!(ids, [sent.id().to_owned()]);
    // Ben gets it live, or from the relay's store when he is back after it went out.
    let text = "while the relay was away";
    let author = wait_for(&mut ben, "ann's message", |e| match e {
        Event::Message(m) if m.text == text => Some(m.from),
        Event::History { messages, .. } => messages.iter().find(|m| m.text == text).map(|m| m.from),
        _ => None,
    })
    .await;
    assert_eq!(author, ann.peer_id);
    let _ = std::fs::remove_dir_all(dir);
}
