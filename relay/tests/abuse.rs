//! A hostile peer against a relay: each test runs a misbehaving peer built on rust-libp2p
//! (`common::attacker`) beside honest chat peers, and checks what the honest users see.

mod common;

use std::time::Duration;

use futures::StreamExt;

use common::attacker::Attacker;
use common::*;
use libp2p::identity::Keypair;
use p2p_chat::peer::archive::Archive;
use p2p_chat_shared::core::{ChatMessage, Event, FIRST_JOIN_HISTORY};
use p2p_chat_shared::envelope::Envelope;
use p2p_chat_shared::native::Node;
use p2p_chat_shared::store::StoreRequest;
use p2p_chat_shared::text::now_unix_ms;

const ROOM: &str = "lobby";

/// Sends `texts` from `node` and waits until the relay confirms it stores every one.
async fn send_stored(node: &mut Node, texts: impl IntoIterator<Item = String>) {
    let mut ids = Vec::new();
    for text in texts {
        let sent = node.client.send_message(ROOM, text).await.expect("send");
        ids.push(sent.message.id);
    }
    let mut stored = 0;
    wait_for(node, "receipts", |e| {
        if let Event::NotStored { reason, .. } = e {
            panic!("an honest message was not stored: {reason}");
        }
        stored += usize::from(matches!(e, Event::Stored { id, .. } if ids.contains(id)));
        (stored == ids.len()).then_some(())
    })
    .await;
}

/// Publishes `count` payloads from the attacker, a few milliseconds apart, and waits until the
/// relay has filed them (its history holds `expect_total` messages).
async fn attack_and_settle(
    attacker: &mut Attacker,
    relay: &libp2p::Multiaddr,
    payloads: Vec<Vec<u8>>,
    expect_total: usize,
) {
    for payload in payloads {
        assert!(
            attacker.publish(ROOM, payload),
            "the attacker could publish"
        );
        attacker.run_for(Duration::from_millis(5)).await;
    }
    let mut reader = RawStoreClient::connect(relay).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        attacker.run_for(Duration::from_millis(50)).await;
        if reader.whole_history(ROOM).await.len() >= expect_total {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay did not file the attack"
        );
    }
}

/// `seen` (room, text) holds "honest 0" to "honest 19", each once and in order.
fn assert_every_honest_message(seen: &[(String, String)]) {
    let honest: Vec<&str> = seen
        .iter()
        .map(|(_, text)| text.as_str())
        .filter(|t| t.starts_with("honest"))
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("honest {i}")).collect();
    assert_eq!(honest, expected, "every honest message, in order");
}

fn texts(shown: &[(ChatMessage, bool)]) -> Vec<String> {
    shown.iter().map(|(m, _)| m.text.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_byte_payloads_do_not_hide_a_rooms_history() {
    let dir = temp_dir("abuse-escapes");
    let (_relay, relay_addr) = relay_with_store(&dir).await;
    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, &relay_addr).await;
    ready(&mut alice, ROOM).await;
    let start = now_unix_ms();
    send_stored(&mut alice, (0..10).map(|i| format!("early {i}"))).await;

    // 40 plain-text payloads of 20 KiB of control bytes: each one six times larger as JSON.
    let mut attacker = Attacker::connect(&relay_addr).await;
    attacker.join(ROOM).await;
    let spam = vec![0x01u8; p2p_chat_shared::protocol::MAX_PAYLOAD_BYTES];
    attack_and_settle(&mut attacker, &relay_addr, vec![spam; 40], 50).await;
    send_stored(&mut alice, (0..10).map(|i| format!("late {i}"))).await;

    // A newcomer gets the room's newest 50 messages: the spam and the last ten.
    let mut carol = hidden_peer("carol").await;
    through_relay(&mut carol, &relay_addr).await;
    carol.client.join(ROOM).await.expect("join");
    let shown = shown_messages(&mut carol, FIRST_JOIN_HISTORY as usize).await;
    assert_eq!(shown.len(), FIRST_JOIN_HISTORY as usize);
    let honest: Vec<String> = texts(&shown)
        .into_iter()
        .filter(|t| !t.starts_with('\u{1}'))
        .collect();
    let late: Vec<String> = (0..10).map(|i| format!("late {i}")).collect();
    assert_eq!(honest, late, "the newest honest messages, in order");

    // A returning peer that holds nothing since `start` gets all 60, the honest ones in order.
    let mut bob = hidden_peer("bob").await;
    let mark = p2p_chat_shared::core::HistoryMark {
        newest_ts: start - 1,
        recent: Vec::new(),
    };
    bob.client.join_after(ROOM, Some(mark)).await.expect("join");
    through_relay(&mut bob, &relay_addr).await;
    let shown = shown_messages(&mut bob, 60).await;
    assert_eq!(shown.len(), 60);
    let honest: Vec<String> = texts(&shown)
        .into_iter()
        .filter(|t| !t.starts_with('\u{1}'))
        .collect();
    let expected: Vec<String> = (0..10)
        .map(|i| format!("early {i}"))
        .chain(late.iter().cloned())
        .collect();
    assert_eq!(honest, expected);
    let _ = std::fs::remove_dir_all(dir);
}

/// A sender's clock far off, ahead or behind, moves nothing: the relay files such a message at
/// the time it receives it, and a peer keeps it there too. (At test speed the catch-up's
/// five-minute overlap would hide a mark moved to "now"; the archive's own tests pin the mark.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_dated_far_off_do_not_hide_what_a_returning_peer_missed() {
    let dir = temp_dir("abuse-clock");
    let (_relay, relay_addr) = relay_with_store(&dir).await;
    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, &relay_addr).await;
    ready(&mut alice, ROOM).await;
    let bob_key = Keypair::generate_ed25519();
    let mut bob = hidden_peer_with(bob_key.clone(), "bob").await;
    through_relay(&mut bob, &relay_addr).await;
    ready(&mut bob, ROOM).await;
    let relay = p2p_chat_shared::addr::peer_at_end(&relay_addr).expect("relay id");
    wait_identified(&mut bob, relay).await;
    let (archive, _thread) = Archive::open(&dir.join("bob.redb")).expect("archive");
    let year = 365 * 24 * 3600 * 1000;

    // A message dated a year ahead reaches bob, whose archive keeps it as the CLI does.
    let mut attacker = Attacker::connect(&relay_addr).await;
    attacker.join(ROOM).await;
    let mut future = Envelope::message("mallory", "from the future").expect("envelope");
    future.ts = now_unix_ms() + year;
    assert!(attacker.publish(ROOM, future.to_bytes()));
    attacker.run_for(Duration::from_millis(200)).await;
    let seen = wait_for(&mut bob, "the future message", |e| match e {
        Event::Message(m) if m.text == "from the future" => Some(m.clone()),
        _ => None,
    })
    .await;
    assert!(seen.filed_at <= now_unix_ms(), "kept at the time it came");
    archive.keep(vec![seen]).await.expect("keep");
    drop(bob);

    // While bob is away: 100 messages, and one dated a day back (a clock far behind).
    tokio::time::sleep(Duration::from_millis(50)).await;
    send_stored(&mut alice, (0..50).map(|i| format!("missed {i:03}"))).await;
    let mut past = Envelope::message("mallory", "from the past").expect("envelope");
    past.ts = now_unix_ms() - 24 * 3600 * 1000;
    assert!(attacker.publish(ROOM, past.to_bytes()));
    attacker.run_for(Duration::from_millis(200)).await;
    send_stored(&mut alice, (50..100).map(|i| format!("missed {i:03}"))).await;

    let mark = archive.mark(ROOM).await.expect("mark");
    let mut bob = hidden_peer_with(bob_key, "bob").await;
    bob.client.join_after(ROOM, mark).await.expect("join");
    through_relay(&mut bob, &relay_addr).await;
    let shown = shown_messages(&mut bob, 101).await;
    let texts = texts(&shown);
    assert!(
        texts.iter().any(|t| t == "from the past"),
        "the message dated a day back is found: {texts:?}"
    );
    let missed: Vec<&String> = texts.iter().filter(|t| t.starts_with("missed")).collect();
    let expected: Vec<String> = (0..100).map(|i| format!("missed {i:03}")).collect();
    assert_eq!(
        missed,
        expected.iter().collect::<Vec<_>>(),
        "all 100, in order"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Publishes `count` messages as fast as the attacker's gossipsub takes them, in batches, and
/// keeps its swarm running until `until` has passed; returns the attacker and how many it got out.
async fn flood(mut attacker: Attacker, count: usize, until: Duration) -> (Attacker, usize) {
    let end = tokio::time::Instant::now() + until;
    let mut published = 0;
    for batch in 0..count / 100 {
        for i in 0..100 {
            let text = format!("spam {batch}-{i}");
            published += usize::from(attacker.publish(ROOM, text.into_bytes()));
        }
        attacker.run_for(Duration::from_millis(10)).await;
        if tokio::time::Instant::now() >= end {
            break;
        }
    }
    let left = end.saturating_duration_since(tokio::time::Instant::now());
    attacker.run_for(left).await;
    (attacker, published)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooder_is_limited_then_disconnected_while_honest_peers_chat() {
    let dir = temp_dir("abuse-flood");
    let (_relay, relay_addr) = relay_with_store(&dir).await;
    let (mut alice, mut bob) = two_members(&relay_addr, ROOM).await;

    let mut attacker = Attacker::connect(&relay_addr).await;
    attacker.join(ROOM).await;
    let flooder = attacker.peer_id;
    // 10,000 messages in about a second, while alice talks to bob.
    let flood = tokio::spawn(flood(attacker, 10_000, Duration::from_secs(4)));
    let mut ids = Vec::new();
    for i in 0..20 {
        let sent = alice
            .client
            .send_message(ROOM, format!("honest {i}"))
            .await
            .expect("send");
        ids.push(sent.message.id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = collect_messages(&mut bob, Duration::from_secs(3)).await;
    let (attacker, published) = flood.await.expect("flood task");
    assert_every_honest_message(&seen);
    let spam = seen.iter().filter(|(_, t)| t.starts_with("spam")).count();
    let limits = p2p_chat_shared::hub::HubLimits::default();
    let allowed = limits.publish_burst as usize + 5 * limits.publish_per_sec as usize;
    // Several times its allowance (300): a debug build on a busy machine (CI runs the tests in
    // parallel) signs about 1,200 a second in the flood's 4 s.
    assert!(published > 2_000, "the attacker flooded ({published} sent)");
    assert!(
        spam <= allowed,
        "{spam} spam messages reached bob; the limit lets through at most {allowed}"
    );
    assert!(!attacker.connected(), "the flooder was disconnected");

    // Everything alice sent is stored; the relay kept at most the flooder's allowance.
    let mut stored = 0;
    wait_for(&mut alice, "receipts", |e| {
        stored += usize::from(matches!(e, Event::Stored { id, .. } if ids.contains(id)));
        (stored == ids.len()).then_some(())
    })
    .await;
    let mut reader = RawStoreClient::connect(&relay_addr).await;
    let history = reader.whole_history(ROOM).await;
    let filed_spam = history.iter().filter(|m| m.from == flooder).count();
    assert!(filed_spam <= allowed, "{filed_spam} spam messages filed");

    // It cannot come straight back.
    let mut again = Attacker::connect_with_key_of(&attacker, &relay_addr).await;
    again.run_for(Duration::from_secs(1)).await;
    assert!(!again.connected(), "a banned flooder is refused");
    let _ = std::fs::remove_dir_all(dir);
}

/// A replay: the same signed notice sent again after gossipsub forgot it (its duplicate window
/// is 60 s). Without alice's key an attacker would resend her original signed frame; here the
/// test holds her key and republishes the very same envelope under a new gossipsub sequence
/// number, which is what the chat core sees either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_notices_change_no_member_list() {
    let dir = temp_dir("abuse-replay");
    let (relay, relay_addr) = relay_with_store(&dir).await;
    let mut bob = hidden_peer("bob").await;
    through_relay(&mut bob, &relay_addr).await;
    ready(&mut bob, ROOM).await;
    let mut watcher = Attacker::connect(&relay_addr).await;
    watcher.join(ROOM).await;

    let alice_key = Keypair::generate_ed25519();
    let mut alice = hidden_peer_with(alice_key.clone(), "alice").await;
    through_relay(&mut alice, &relay_addr).await;
    ready(&mut alice, ROOM).await;
    let join = watcher.capture_from(alice.peer_id).await;
    wait_member(&mut bob, ROOM, alice.peer_id).await;
    alice.client.shutdown().await.expect("alice leaves");
    drop(alice);
    wait_for(&mut bob, "alice leaving", |e| {
        matches!(e, Event::MemberLeft { peer, .. } if *peer == alice_key.public().to_peer_id())
            .then_some(())
    })
    .await;

    // The relay must have seen her connection close: gossipsub greets a peer with its
    // subscriptions on its first connection only (rust-libp2p #5097).
    let alice_id = alice_key.public().to_peer_id();
    let deadline = tokio::time::Instant::now() + WAIT;
    while relay
        .client
        .peers(None)
        .await
        .expect("peers")
        .connected
        .iter()
        .any(|p| p.peer == alice_id)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice never left the relay"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Her join again, byte for byte; and a join dated an hour back.
    let mut replayer = Attacker::connect_with(alice_key.clone(), &relay_addr).await;
    replayer.join(ROOM).await;
    assert!(replayer.publish(ROOM, join));
    let mut old = Envelope::announcement(p2p_chat_shared::envelope::Kind::Join, "alice");
    old.ts = now_unix_ms() - 3600 * 1000;
    assert!(replayer.publish(ROOM, old.to_bytes()));
    replayer.run_for(Duration::from_secs(1)).await;
    let members = bob
        .client
        .peers(Some(ROOM.to_owned()))
        .await
        .expect("peers")
        .members;
    assert!(
        members
            .iter()
            .all(|m| m.peer != alice_key.public().to_peer_id()),
        "a departed member came back from a replay: {members:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throwaway_identities_cannot_take_every_room() {
    let dir = temp_dir("abuse-rooms");
    let limits = p2p_chat_shared::hub::HubLimits {
        rooms_per_peer: 3,
        rooms_per_ip: 6,
        ..Default::default()
    };
    let (_relay, v4, v6) = two_address_relay(&dir, limits).await;
    // Five identities from one address ask for five rooms each.
    let mut followed = 0;
    let mut attackers = Vec::new();
    for i in 0..5 {
        let mut attacker = Attacker::connect(&v4).await;
        for j in 0..5 {
            attacker
                .swarm
                .behaviour_mut()
                .subscribe(&libp2p::gossipsub::IdentTopic::new(format!("junk-{i}-{j}")))
                .expect("subscribe");
        }
        followed += attacker
            .relay_subscriptions_within(&format!("junk-{i}-"), Duration::from_secs(1))
            .await;
        attackers.push(attacker); // stays connected: its rooms stay taken
    }
    assert!(
        followed <= 6,
        "the relay followed {followed} rooms for one address"
    );
    assert!(
        followed >= 3,
        "the relay followed {followed}: the limit, not a failure"
    );

    // Honest peers from another address still get a room of their own.
    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, &v6).await;
    ready(&mut alice, "honest").await;
    let mut bob = hidden_peer("bob").await;
    through_relay(&mut bob, &v6).await;
    ready(&mut bob, "honest").await;
    wait_member(&mut bob, "honest", alice.peer_id).await;
    alice
        .client
        .send_message("honest", "still works".to_owned())
        .await
        .expect("send");
    assert_eq!(
        wait_message(&mut bob, "honest", "still works").await,
        alice.peer_id
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let dir = temp_dir("abuse-connections");
    let (_relay, v4, v6) = two_address_relay_with(&dir, Default::default(), 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut attacker = Attacker::connect(&v4).await;
        attacker.run_for(Duration::from_millis(300)).await;
        assert!(attacker.connected(), "within the cap");
        held.push(attacker);
    }
    let mut refused = Attacker::connect(&v4).await;
    refused.run_for(Duration::from_secs(1)).await;
    assert!(
        !refused.connected(),
        "a fourth connection from one address is refused"
    );
    // Another address still gets in, and chats.
    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, &v6).await;
    ready(&mut alice, ROOM).await;
    for attacker in &mut held {
        attacker.run_for(Duration::from_millis(10)).await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_messages_at_volume_leave_honest_traffic_alone() {
    let dir = temp_dir("abuse-invalid");
    let (_relay, relay_addr) = relay_with_store(&dir).await;
    let (alice, mut bob) = two_members(&relay_addr, ROOM).await;

    // Messages without a valid signature, as fast as they go.
    let mut attacker = Attacker::connect_unsigned(&relay_addr).await;
    attacker.join(ROOM).await;
    let flood = tokio::spawn(flood(attacker, 10_000, Duration::from_secs(4)));
    for i in 0..20 {
        alice
            .client
            .send_message(ROOM, format!("honest {i}"))
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = collect_messages(&mut bob, Duration::from_secs(3)).await;
    let (attacker, published) = flood.await.expect("flood task");
    // Several times its allowance (300): a debug build on a busy machine (CI runs the tests in
    // parallel) signs about 1,200 a second in the flood's 4 s.
    assert!(published > 2_000, "the attacker flooded ({published} sent)");
    assert_every_honest_message(&seen);
    assert!(
        seen.iter().all(|(_, t)| !t.starts_with("spam")),
        "an unsigned message reached bob"
    );
    drop(attacker);
    let _ = std::fs::remove_dir_all(dir);
}

/// A peer coming back to many rooms sends many notices at once: over the limit they are
/// dropped, but the peer is not banned for them (chat messages over the limit are what count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_notices_over_the_limit_gets_no_one_banned() {
    let dir = temp_dir("abuse-notices");
    let (_relay, relay_addr) = relay_with_store(&dir).await;
    let mut peer = Attacker::connect(&relay_addr).await;
    peer.join(ROOM).await;
    let burst = p2p_chat_shared::hub::HubLimits::default().publish_burst as usize;
    for _ in 0..burst + 150 {
        let join = Envelope::announcement(p2p_chat_shared::envelope::Kind::Join, "back");
        assert!(peer.publish(ROOM, join.to_bytes()));
    }
    peer.run_for(Duration::from_secs(3)).await;
    assert!(peer.connected(), "a burst of notices got the peer banned");
    let _ = std::fs::remove_dir_all(dir);
}

/// The relay's resident memory, from `/proc`.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Peers that ask for page after page of a room's largest history and never read an answer hold
/// only their share of the relay's memory; once they go, everyone is answered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_of_large_pages_do_not_fill_the_relays_memory() {
    const READERS: usize = 4;
    const ASKS: usize = 100;
    let dir = temp_dir("abuse-slow-reader");
    let (relay, _, relay_tcp, _) = procs::start_relay_with(&dir, &[]);
    let relay_addr: libp2p::Multiaddr = relay_tcp.parse().expect("relay address");
    // Payloads of control bytes make pages of about 1 MiB of JSON.
    let mut attacker = Attacker::connect(&relay_addr).await;
    attacker.join(ROOM).await;
    let spam = vec![0x01u8; p2p_chat_shared::protocol::MAX_PAYLOAD_BYTES];
    attack_and_settle(&mut attacker, &relay_addr, vec![spam; 40], 40).await;
    let pid = relay.child.id();
    let before = resident_bytes(pid);

    let query = serde_json::to_vec(&p2p_chat_shared::store::StoreRequest::Query(
        p2p_chat_shared::store::HistoryQuery {
            room: ROOM.to_owned(),
            newest: true,
            ..Default::default()
        },
    ))
    .expect("encodes");
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut reader = RawStoreClient::connect_slow(&relay_addr).await;
        for _ in 0..ASKS {
            reader.send(query.clone());
        }
        readers.push(reader);
    }
    // Drive them all for a while (well within the relay's 20 s request timeout); the relay's
    // memory at its highest.
    let mut peak = before;
    for _ in 0..20 {
        for reader in &mut readers {
            reader.run_for(Duration::from_millis(100)).await;
        }
        peak = peak.max(resident_bytes(pid));
    }
    let grown = peak.saturating_sub(before);
    let asked = (READERS * ASKS) as u64 * p2p_chat_shared::store::MAX_PAGE_BYTES as u64;
    println!(
        "relay memory: {} MiB before, {} MiB at the highest ({} MiB of pages asked for)",
        before >> 20,
        peak >> 20,
        asked >> 20
    );
    assert!(
        grown < 128 << 20,
        "the relay grew by {} MiB for slow readers",
        grown >> 20
    );

    // They go; an honest reader gets the whole history.
    drop(readers);
    let mut honest = RawStoreClient::connect(&relay_addr).await;
    assert_eq!(honest.whole_history(ROOM).await.len(), 40);
    drop(relay);
    let _ = std::fs::remove_dir_all(dir);
}

/// Junk DMs for made-up peers from many throwaway identities fill no disk and keep out no honest
/// DM: the store's byte cap sheds the largest depositors' oldest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_spam_neither_keeps_out_an_honest_dm_nor_fills_the_disk() {
    use p2p_chat_shared::store::{Deposit, StoreRequest, StoreResponse, MAX_SEALED_CHARS};
    const CAP: u64 = 2 << 20;
    const SPAMMERS: usize = 10;
    const EACH: usize = 60;
    let dir = temp_dir("abuse-mailbox");
    let cap = CAP.to_string();
    let (relay, _, relay_tcp, _) =
        procs::start_relay_with(&dir, &["--store-max-bytes", cap.as_str()]);
    let relay_addr: libp2p::Multiaddr = relay_tcp.parse().expect("relay address");
    let mut bob = RawStoreClient::connect(&relay_addr).await;
    let mut alice = RawStoreClient::connect(&relay_addr).await;
    let deposit = |to, id: String| {
        StoreRequest::Deposit(Deposit {
            to,
            id,
            sealed: "A".repeat(MAX_SEALED_CHARS),
        })
    };
    let mut junk = 0u64;
    for spammer in 0..SPAMMERS {
        let mut mallory = RawStoreClient::connect(&relay_addr).await;
        for i in 0..EACH {
            let request = deposit(libp2p::PeerId::random(), format!("junk-{spammer}-{i}"));
            match mallory.request(&request).await {
                StoreResponse::Deposited { .. } => junk += MAX_SEALED_CHARS as u64,
                other => panic!("a deposit within the per-depositor cap was refused: {other:?}"),
            }
        }
        if spammer == SPAMMERS / 2 {
            let hello = deposit(bob.peer_id(), "hello-bob".to_owned());
            let answer = alice.request(&hello).await;
            assert!(
                matches!(answer, StoreResponse::Deposited { .. }),
                "{answer:?}"
            );
        }
    }
    let file = std::fs::metadata(dir.join("store.redb"))
        .expect("the store file")
        .len();
    println!(
        "junk deposited: {} MiB; store file: {} MiB (cap {} MiB)",
        junk >> 20,
        file >> 20,
        CAP >> 20
    );
    assert!(junk > 10 * CAP, "the attack was larger than the cap");
    assert!(
        file < 8 * CAP,
        "the store file grew to {} MiB with a cap of {} MiB",
        file >> 20,
        CAP >> 20
    );
    match bob.request(&StoreRequest::Fetch).await {
        StoreResponse::Mailbox { dms } => assert!(
            dms.iter()
                .any(|d| d.id == "hello-bob" && d.from == alice.peer_id()),
            "the honest DM waits for bob"
        ),
        other => panic!("expected bob's mailbox, got {other:?}"),
    }
    drop(relay);
    let _ = std::fs::remove_dir_all(dir);
}

/// A bare Kademlia client (no chat): announces and looks up whatever a test says, to the relay
/// only.
fn kad_client(
    relay: &libp2p::Multiaddr,
) -> libp2p::Swarm<libp2p::kad::Behaviour<libp2p::kad::store::MemoryStore>> {
    use libp2p::core::multiaddr::Protocol;
    let mut swarm = bare_swarm(Keypair::generate_ed25519(), |key| {
        let local = key.public().to_peer_id();
        let store = libp2p::kad::store::MemoryStore::new(local);
        libp2p::kad::Behaviour::new(local, store)
    });
    swarm
        .behaviour_mut()
        .set_mode(Some(libp2p::kad::Mode::Client));
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("address"))
        .expect("listen");
    let Some(Protocol::P2p(relay_id)) = relay.iter().last() else {
        panic!("{relay} has no /p2p");
    };
    let addr: libp2p::Multiaddr = relay
        .iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect();
    swarm.behaviour_mut().add_address(&relay_id, addr);
    swarm
}

/// Drives `swarm` until `count` of its queries finished (or the wait runs out); the providers
/// each `GetProviders` query found, by query.
async fn finish_queries(
    swarm: &mut libp2p::Swarm<libp2p::kad::Behaviour<libp2p::kad::store::MemoryStore>>,
    count: usize,
) -> std::collections::HashMap<libp2p::kad::QueryId, Vec<libp2p::PeerId>> {
    use libp2p::kad::{Event as K, GetProvidersOk, QueryResult};
    let mut found: std::collections::HashMap<_, Vec<libp2p::PeerId>> = Default::default();
    let mut done = 0;
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    while done < count {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .unwrap_or_else(|_| panic!("only {done} of {count} DHT queries finished"));
        let libp2p::swarm::SwarmEvent::Behaviour(K::OutboundQueryProgressed {
            id,
            result,
            step,
            ..
        }) = event
        else {
            continue;
        };
        if let QueryResult::GetProviders(Ok(GetProvidersOk::FoundProviders { providers, .. })) =
            result
        {
            found.entry(id).or_default().extend(providers);
        }
        if step.last {
            done += 1;
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_cannot_fill_the_relays_dht_and_honest_files_are_still_found() {
    use libp2p::kad::RecordKey;
    use p2p_chat_shared::hub::providers::MAX_FILES_PER_PROVIDER;
    let (_relay, relay_addr) = relay().await;

    // A peer announces 200 "files" and stores a 60 KiB value.
    let mut flooder = kad_client(&relay_addr);
    let flooder_id = *flooder.local_peer_id();
    // Its announcements carry its address (a provider without one, outside the relay's routing
    // table, is never handed out).
    loop {
        if let libp2p::swarm::SwarmEvent::NewListenAddr { address, .. } =
            flooder.select_next_some().await
        {
            flooder.add_external_address(address);
            break;
        }
    }
    let keys: Vec<RecordKey> = (0..200)
        .map(|n| RecordKey::new(&format!("junk-{n}")))
        .collect();
    for key in &keys {
        flooder
            .behaviour_mut()
            .start_providing(key.clone())
            .expect("local store");
    }
    let value = libp2p::kad::Record::new(RecordKey::new(&"parked"), vec![7; 60 * 1024]);
    flooder
        .behaviour_mut()
        .put_record(value, libp2p::kad::Quorum::One)
        .expect("local store");
    finish_queries(&mut flooder, keys.len() + 1).await;

    // Someone else asks the relay who provides each of them, and for the value.
    let mut observer = kad_client(&relay_addr);
    let queries: Vec<_> = keys
        .iter()
        .map(|key| observer.behaviour_mut().get_providers(key.clone()))
        .collect();
    let found = finish_queries(&mut observer, queries.len()).await;
    let kept = queries
        .iter()
        .filter(|q| found.get(q).is_some_and(|p| p.contains(&flooder_id)))
        .count();
    assert_eq!(
        kept, MAX_FILES_PER_PROVIDER,
        "the relay keeps {MAX_FILES_PER_PROVIDER} announcements of one peer, no more"
    );
    observer
        .behaviour_mut()
        .get_record(RecordKey::new(&"parked"));
    let mut stored = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    while stored.is_none() {
        let event = tokio::time::timeout_at(deadline, observer.select_next_some())
            .await
            .expect("the lookup finishes");
        if let libp2p::swarm::SwarmEvent::Behaviour(libp2p::kad::Event::OutboundQueryProgressed {
            result: libp2p::kad::QueryResult::GetRecord(result),
            ..
        }) = event
        {
            stored = Some(result.is_ok());
        }
    }
    assert_eq!(stored, Some(false), "the relay keeps no values");

    // Two chat peers: one announces a file, the other finds it.
    let mut alice = hidden_peer("alice").await;
    let mut bob = hidden_peer("bob").await;
    for node in [&mut alice, &mut bob] {
        through_relay(node, &relay_addr).await;
    }
    let file = [42u8; 32];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        alice.client.provide(file).await.expect("core runs");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let providers = bob.client.providers(file).await.expect("a DHT");
        if providers.contains(&alice.peer_id) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob never found alice's file: {providers:?}"
        );
    }
}

/// Gossipsub reads RPCs of up to `MAX_RPC_BYTES` (a relay's greeting lists all its rooms), so
/// the relay itself holds one message to `MAX_TRANSMIT_BYTES`: a bigger one is neither forwarded
/// nor filed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_size_limit_is_neither_forwarded_nor_stored() {
    use p2p_chat_shared::protocol::MAX_TRANSMIT_BYTES;
    let dir = temp_dir("abuse-size");
    let (_relay, addr) = relay_with_store(&dir).await;
    let mut observer = Attacker::connect(&addr).await;
    observer.join(ROOM).await;
    let mut attacker = Attacker::connect(&addr).await;
    attacker.join(ROOM).await;
    assert!(attacker.publish(ROOM, vec![b'a'; MAX_TRANSMIT_BYTES + 1024]));
    attacker.run_for(Duration::from_millis(300)).await;
    let after = Envelope::message("x", "after").expect("envelope");
    assert!(attacker.publish(ROOM, after.to_bytes()));
    attacker.run_for(Duration::from_millis(300)).await;
    let first = observer.capture_from(attacker.peer_id).await;
    assert_eq!(first, after.to_bytes(), "the big message never arrives");
    let mut store = RawStoreClient::connect(&addr).await;
    let kept = store.whole_history(ROOM).await;
    assert!(
        kept.iter()
            .all(|item| item.payload.len() <= MAX_TRANSMIT_BYTES),
        "nothing over the limit is filed"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Mail moves between relays with `mail_for` and `mail_delivered`, which a peer could try to
/// read who wrote to whom with, or to erase someone's mail ("delivered") with: only relays the
/// operator named may use them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_named_relays_may_take_mail_or_say_it_was_delivered() {
    let dir = temp_dir("abuse-mail");
    let (_relay, relay_addr) = relay_with_store(&dir).await;
    let carol = libp2p::PeerId::random();
    let mut alice = RawStoreClient::connect(&relay_addr).await;
    let deposit = serde_json::json!({"deposit": {"to": carol, "id": "dm-1", "sealed": "c2VhbGVk"}});
    let answer = alice.ask(deposit.to_string().into_bytes()).await;
    let answer = String::from_utf8(answer.expect("an answer")).expect("utf8");
    assert!(answer.contains("deposited"), "{answer}");

    let requests = || {
        [
            StoreRequest::MailFor { to: carol },
            StoreRequest::MailDelivered {
                to: carol,
                ids: vec!["dm-1".into()],
            },
            StoreRequest::MailWaiting { to: vec![carol] },
        ]
    };
    // A peer.
    let mut mallory = RawStoreClient::connect(&relay_addr).await;
    for request in requests() {
        let bytes = serde_json::to_vec(&request).expect("json");
        let answer = mallory.ask(bytes).await;
        let answer = String::from_utf8(answer.expect("an answer")).expect("utf8");
        assert!(
            answer.contains("error") && answer.contains("named"),
            "{request:?} was not refused: {answer}"
        );
    }
    // A relay of the network the operator did not name (anyone can run one and connect): the
    // relay takes it for one (it serves circuit relay), but exchanges no mail with it.
    let (rogue, _) = relay().await;
    rogue
        .client
        .connect(relay_addr.clone())
        .await
        .expect("the rogue relay connects");
    tokio::time::sleep(Duration::from_secs(1)).await; // identify: it serves circuit relay
    let victim = relay_addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
            _ => None,
        })
        .expect("a peer id");
    for request in requests() {
        let answer = rogue.client.ask_store(victim, request.clone()).await;
        let answer = format!("{:?}", answer.expect("an answer"));
        assert!(
            answer.contains("Error") && answer.contains("named"),
            "{request:?} from a relay nobody named was not refused: {answer}"
        );
        assert!(!answer.contains("c2VhbGVk"), "mail handed out: {answer}");
    }
    // Alice's DM still waits: not delivered, as far as the relay knows.
    let status = serde_json::json!({"status": {"ids": ["dm-1"]}});
    let answer = alice.ask(status.to_string().into_bytes()).await;
    let answer = String::from_utf8(answer.expect("an answer")).expect("utf8");
    assert_eq!(answer, r#"{"status":{"delivered":[]}}"#);
    let _ = std::fs::remove_dir_all(dir);
}

/// A relay never asks its peers to dial it back (AutoNAT as a client). libp2p's client, asked of
/// connected peers, retries at once whenever one does not speak AutoNAT (browsers, most clients)
/// and scans every peer against every recently tried one each time: with thousands of idle
/// peers that took most of the relay's CPU. Here a peer that does answer AutoNAT stays connected
/// past the client's first probe (15 s after start) and is never asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_never_asks_its_peers_to_dial_it_back() {
    use libp2p::autonat;
    let (_relay, relay_addr) = relay().await;
    let mut server = bare_swarm(Keypair::generate_ed25519(), |key| {
        autonat::Behaviour::new(
            key.public().to_peer_id(),
            autonat::Config {
                only_global_ips: false,
                use_connected: false,
                ..Default::default()
            },
        )
    });
    server.dial(relay_addr).expect("dial");
    let watch = async {
        loop {
            if let libp2p::swarm::SwarmEvent::Behaviour(autonat::Event::InboundProbe(probe)) =
                server.select_next_some().await
            {
                panic!("the relay asked a peer to dial it back: {probe:?}")
            }
        }
    };
    // The client's first probe comes 15 s after start (libp2p's boot delay).
    let _ = tokio::time::timeout(Duration::from_secs(22), watch).await;
    assert_eq!(
        server.connected_peers().count(),
        1,
        "the peer stayed connected to the relay the whole time"
    );
}
