//! History and offline delivery through a relay's store: catch-up exactly once and in order,
//! receipts, sealed DMs kept for offline peers, bad store requests.

mod common;

use std::collections::HashSet;

use common::*;
use libp2p::identity::Keypair;
use p2p_chat_shared::core::{Event, HistoryMark};
use p2p_chat_shared::store::{HistoryQuery, StoreRequest, StoreResponse};

const ROOM: &str = "lobby";

/// Limits for a test that sends 200 messages at once: more than the default burst lets through.
const BURSTY: p2p_chat_shared::hub::HubLimits = p2p_chat_shared::hub::HubLimits {
    publish_per_sec: 1000,
    publish_burst: 1000,
    relay_publish_per_sec: p2p_chat_shared::hub::limits::DEFAULT_RELAY_PUBLISH_PER_SEC,
    relay_publish_burst: p2p_chat_shared::hub::limits::DEFAULT_RELAY_PUBLISH_BURST,
    rooms_per_peer: p2p_chat_shared::hub::limits::DEFAULT_ROOMS_PER_PEER,
    rooms_per_ip: p2p_chat_shared::hub::limits::DEFAULT_ROOMS_PER_IP,
    ban: p2p_chat_shared::hub::limits::DEFAULT_BAN,
    answer_bytes_per_ip: p2p_chat_shared::hub::limits::DEFAULT_ANSWER_BYTES_PER_IP,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_back_from_away_sees_every_missed_message_once_and_in_order() {
    let dir = temp_dir("catch-up");
    let (_relay, relay_addr) = relay_with_store_limits(&dir, BURSTY).await;
    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, &relay_addr).await;
    ready(&mut alice, ROOM).await;

    // Bob is there for the first message, then goes away.
    let bob_key = Keypair::generate_ed25519();
    let mut bob = hidden_peer_with(bob_key.clone(), "bob").await;
    through_relay(&mut bob, &relay_addr).await;
    ready(&mut bob, ROOM).await;
    wait_member(&mut alice, ROOM, bob.peer_id).await;
    alice
        .client
        .send_message(ROOM, "before you left")
        .await
        .expect("send");
    let before = wait_for(&mut bob, "the first message", |e| match e {
        Event::Message(m) if m.text == "before you left" => Some(m.clone()),
        _ => None,
    })
    .await;
    bob.client.shutdown().await.expect("bob stops");
    drop(bob);

    // 200 messages while bob is away, each confirmed stored by the relay.
    let mut ids = Vec::new();
    for i in 0..200 {
        let outcome = alice
            .client
            .send_message(ROOM, format!("missed {i:03}"))
            .await
            .expect("send");
        ids.push(outcome.id().to_owned());
    }
    let mut stored = HashSet::new();
    wait_for(&mut alice, "200 store receipts", |e| {
        match e {
            Event::Stored { id, .. } => {
                stored.insert(id.clone());
            }
            Event::NotStored { id, reason, .. } => panic!("{id} not stored: {reason}"),
            _ => {}
        }
        (stored.len() == ids.len()).then_some(())
    })
    .await;

    // Bob returns holding the first message; alice keeps talking while he catches up.
    let mut bob = hidden_peer_with(bob_key, "bob").await;
    let mark = HistoryMark {
        newest_ts: before.sent_at,
        recent: vec![(before.from, before.id.clone())],
    };
    bob.client.join_after(ROOM, Some(mark)).await.expect("join");
    through_relay(&mut bob, &relay_addr).await;
    for i in 0..5 {
        alice
            .client
            .send_message(ROOM, format!("live {i}"))
            .await
            .expect("send");
    }
    let shown = shown_messages(&mut bob, 205).await;
    let texts: Vec<&str> = shown.iter().map(|(m, _)| m.text.as_str()).collect();
    let unique: HashSet<&str> = texts.iter().copied().collect();
    assert_eq!(
        unique.len(),
        texts.len(),
        "a message was shown twice: {texts:?}"
    );
    assert!(
        !unique.contains("before you left"),
        "an already held message came back"
    );
    let missed: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|t| t.starts_with("missed"))
        .collect();
    let expected: Vec<String> = (0..200).map(|i| format!("missed {i:03}")).collect();
    assert_eq!(missed, expected, "every missed message, in order");
    for i in 0..5 {
        assert!(
            unique.contains(format!("live {i}").as_str()),
            "live {i} missing"
        );
    }
    assert!(
        shown
            .iter()
            .filter(|(m, _)| m.text.starts_with("missed"))
            .all(|(_, history)| *history),
        "missed messages are marked as history"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_sees_the_latest_messages_of_the_room() {
    let dir = temp_dir("newcomer");
    let (_relay, relay_addr) = relay_with_store(&dir).await;
    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, &relay_addr).await;
    ready(&mut alice, ROOM).await;
    let total = p2p_chat_shared::core::FIRST_JOIN_HISTORY as usize + 10;
    for i in 0..total {
        alice
            .client
            .send_message(ROOM, format!("m{i:03}"))
            .await
            .expect("send");
    }
    let mut stored = 0;
    wait_for(&mut alice, "receipts", |e| {
        stored += usize::from(matches!(e, Event::Stored { .. }));
        (stored == total).then_some(())
    })
    .await;

    let mut carol = hidden_peer("carol").await;
    through_relay(&mut carol, &relay_addr).await;
    carol.client.join(ROOM).await.expect("join");
    let history = wait_for(&mut carol, "history", |e| match e {
        Event::History {
            messages,
            done: true,
            ..
        } => Some(messages.clone()),
        _ => None,
    })
    .await;
    let texts: Vec<String> = history.into_iter().map(|m| m.text).collect();
    let expected: Vec<String> = (10..total).map(|i| format!("m{i:03}")).collect();
    assert_eq!(
        texts,
        expected,
        "the newest {} messages, oldest first",
        expected.len()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_to_an_offline_peer_is_kept_sealed_and_delivered_when_it_returns() {
    let dir = temp_dir("offline-dm");
    let (_relay, relay_addr) = relay_with_store(&dir).await;
    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, &relay_addr).await;
    let bob_key = Keypair::generate_ed25519();
    let bob_id = bob_key.public().to_peer_id();

    let secret = "the vault code is 4711-secret";
    let receipt = alice.client.dm(bob_id, secret).await.expect("kept");
    assert!(receipt.stored, "bob is offline, so the relay keeps it");
    let on_disk = std::fs::read(dir.join("store.redb")).expect("store file");
    let found = on_disk
        .windows(secret.len())
        .any(|w| w == secret.as_bytes());
    assert!(!found, "the relay's store holds the plaintext");

    let mut bob = hidden_peer_with(bob_key, "bob").await;
    through_relay(&mut bob, &relay_addr).await;
    let dm = wait_for(&mut bob, "the kept dm", |e| match e {
        Event::DirectMessage(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (dm.text.as_str(), dm.from, dm.stored),
        (secret, alice.peer_id, true)
    );
    assert_eq!(dm.id, receipt.id);
    let delivered = wait_for(&mut alice, "delivery notice", |e| match e {
        Event::DmDelivered { id, peer } => Some((id.clone(), *peer)),
        _ => None,
    })
    .await;
    assert_eq!(delivered, (receipt.id.clone(), bob_id));

    // Once fetched it is gone: a second start of bob gets nothing again.
    bob.client.shutdown().await.expect("stop");
    let mut client = RawStoreClient::connect(&relay_addr).await;
    let status = client
        .request(&StoreRequest::Status {
            ids: vec![receipt.id.clone()],
        })
        .await;
    assert_eq!(
        status,
        StoreResponse::Status { delivered: vec![] },
        "only the depositor learns about its own DMs"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_store_requests_get_error_answers() {
    let dir = temp_dir("bad-queries");
    let (_relay, relay_addr) = relay_with_store(&dir).await;
    let mut client = RawStoreClient::connect(&relay_addr).await;
    let error_of = |bytes: Vec<u8>| -> String {
        match serde_json::from_slice::<StoreResponse>(&bytes) {
            Ok(StoreResponse::Error { reason }) => reason,
            other => panic!("expected an error answer, got {other:?}"),
        }
    };
    let garbage = client
        .ask(b"{this is not json".to_vec())
        .await
        .expect("answer");
    assert!(error_of(garbage).starts_with("malformed request"));
    let huge = client.ask(vec![b' '; 200_000]).await.expect("answer");
    assert!(error_of(huge).contains("over"));
    let bad_room = serde_json::to_vec(&StoreRequest::Query(HistoryQuery::default())).expect("json");
    assert!(error_of(client.ask(bad_room).await.expect("answer")).contains("room"));
    let backwards = br#"{"query":{"room":"lobby","start":10,"end":1}}"#.to_vec();
    assert!(error_of(client.ask(backwards).await.expect("answer")).contains("after end"));
    // The relay is still there and answers a good query.
    let page = client
        .request(&StoreRequest::Query(HistoryQuery {
            room: ROOM.into(),
            ..Default::default()
        }))
        .await;
    assert_eq!(
        page,
        StoreResponse::Page {
            messages: vec![],
            next: None
        }
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A message sent while its author knows no store (only a direct neighbour is there, or the
/// relay's subscription came before identify said the relay keeps history) is still answered
/// once a store connects: here bob carried it to the relay, so alice sees it kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_before_a_store_is_known_is_confirmed_once_one_is() {
    let dir = temp_dir("receipt-later");
    let (_relay, relay_addr) = relay_with_store(&dir).await;
    let mut bob = peer("bob").await;
    let bob_addr = wait_for(&mut bob, "bob's listen address", |e| match e {
        Event::Listening { addr } => Some(addr.clone()),
        _ => None,
    })
    .await;
    through_relay(&mut bob, &relay_addr).await;
    ready(&mut bob, ROOM).await;

    // Alice reaches bob directly, and no relay.
    let mut alice = hidden_peer("alice").await;
    alice
        .client
        .connect(bob_addr.with(libp2p::multiaddr::Protocol::P2p(bob.peer_id)))
        .await
        .expect("alice dials bob");
    ready(&mut alice, ROOM).await;
    wait_member(&mut bob, ROOM, alice.peer_id).await;
    let sent = alice
        .client
        .send_message(ROOM, "before any store")
        .await
        .expect("send");
    assert_eq!(
        wait_message(&mut bob, ROOM, "before any store").await,
        alice.peer_id
    );

    through_relay(&mut alice, &relay_addr).await;
    let id = sent.id().to_owned();
    wait_for(&mut alice, "the receipt", |e| match e {
        Event::Stored { id: stored, .. } if *stored == id => Some(()),
        Event::NotStored {
            id: lost, reason, ..
        } if *lost == id => {
            panic!("bob carried it to the relay, yet: {reason}")
        }
        _ => None,
    })
    .await;
    let _ = std::fs::remove_dir_all(dir);
}
