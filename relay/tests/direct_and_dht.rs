//! Direct messages through a relay circuit, and DHT lookups through the relay.

mod common;

use common::*;
use p2p_chat_shared::core::{DmError, Event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_through_a_relay_circuit_is_acknowledged() {
    let (_relay, relay_addr) = relay().await;
    let mut alice = hidden_peer("alice").await;
    let mut bob = hidden_peer("bob").await;
    for node in [&mut alice, &mut bob] {
        through_relay(node, &relay_addr).await;
    }

    let receipt = alice
        .client
        .dm(bob.peer_id, "psst, bob")
        .await
        .expect("delivered");
    assert_eq!(receipt.peer, bob.peer_id);
    assert!(
        receipt.relayed,
        "neither peer listens directly, so it must go through the relay"
    );
    let dm = wait_for(&mut bob, "the direct message", |e| match e {
        Event::DirectMessage(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (dm.from, dm.nick.as_str(), dm.text.as_str()),
        (alice.peer_id, "alice", "psst, bob")
    );
    assert_eq!(dm.id, receipt.id);

    // And back, over the circuit that is now open.
    let back = bob
        .client
        .dm(alice.peer_id, "hi alice")
        .await
        .expect("delivered");
    assert!(back.relayed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_to_an_unreachable_peer_fails_with_a_reason() {
    let (_relay, relay_addr) = relay().await;
    let alice = hidden_peer("alice").await;
    let stranger = libp2p::PeerId::random();
    // No relay yet and no address: nothing to try.
    assert_eq!(
        alice.client.dm(stranger, "hello?").await,
        Err(DmError::NoRoute(stranger))
    );
    // Through the relay, where the stranger has no reservation: the relay refuses the circuit.
    alice
        .client
        .use_relay(vec![relay_addr])
        .await
        .expect("use relay");
    let mut alice = alice;
    wait_for(&mut alice, "reservation", |e| {
        matches!(e, Event::ReservationAccepted { .. }).then_some(())
    })
    .await;
    match alice.client.dm(stranger, "hello?").await {
        Err(e @ (DmError::Unreachable { .. } | DmError::NotKept { .. })) => {
            let reason = e.to_string();
            assert!(reason.contains(&stranger.to_string()), "{reason}")
        }
        other => panic!("expected a delivery failure, got {other:?}"),
    }
    assert_eq!(
        alice.client.dm(alice.peer_id, "me").await,
        Err(DmError::SelfTarget)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_finds_another_peers_addresses_through_the_relay() {
    let (_relay, relay_addr) = relay().await;
    let seeker = hidden_peer("seeker").await;
    let mut target = peer("target").await;
    let target_addr = wait_for(&mut target, "target listen address", |e| match e {
        Event::Listening { addr } => Some(addr.clone()),
        _ => None,
    })
    .await;
    target
        .client
        .bootstrap(relay_addr.clone())
        .await
        .expect("target bootstraps");
    seeker
        .client
        .bootstrap(relay_addr.clone())
        .await
        .expect("seeker bootstraps");

    // The relay learns the target's addresses through identify; retry while that settles.
    let deadline = tokio::time::Instant::now() + WAIT;
    let found = loop {
        match seeker.client.find(target.peer_id).await {
            Ok(addrs) => break addrs,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%e, "not yet");
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            Err(e) => panic!("target never found: {e}"),
        }
    };
    assert!(
        found
            .iter()
            .any(|a| a.to_string().starts_with(&target_addr.to_string())),
        "found {found:?}, expected one starting with {target_addr}"
    );
}
