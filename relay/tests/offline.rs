//! History and offline delivery with the real binary: a CLI peer stopped and restarted, a DM
//! to it while it was away, and a relay killed with SIGKILL at random moments of a stream, four
//! times over.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::procs::*;
use common::RawStoreClient;
use serde_json::{json, Value};

const SECRET: &str = "meet me at the old mill, 23:00";

fn texts(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|m| m["text"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn file_contains(path: &std::path::Path, needle: &str) -> bool {
    let bytes = std::fs::read(path).expect("readable file");
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_restarted_cli_peer_shows_every_missed_message_once_in_order_and_its_dms() {
    let dir = temp_dir("offline");
    let (relay, _, relay_tcp, _) = start_relay(&dir.join("relay"));
    let (mut alice, alice_id) = start_peer(&relay_tcp, "alice", &dir.join("alice"));
    let (mut bob, bob_id) = start_peer(&relay_tcp, "bob", &dir.join("bob"));
    alice.next_event("bob in the room", |v| {
        v["event"] == "member_joined" && v["peer"] == bob_id.as_str()
    });
    alice.send(json!({"cmd": "send", "text": "before you left"}));
    bob.next_event("the first message", |v| v["text"] == "before you left");

    // Bob stops; the room goes on without him.
    bob.signal("-TERM");
    alice.next_event("bob leaving", |v| v["event"] == "member_left");
    assert!(bob.child.wait().expect("bob exits").success());
    drop(bob);
    for i in 0..200 {
        alice.send(json!({"cmd": "send", "text": format!("missed {i:03}")}));
    }
    // (The first message's receipt went by while waiting for bob to leave.)
    let mut stored = HashSet::new();
    while stored.len() < 200 {
        let receipt = alice.next_event("store receipts", |v| {
            v["event"] == "stored" || v["event"] == "not_stored"
        });
        assert_eq!(receipt["event"], "stored", "{receipt}");
        stored.insert(receipt["id"].as_str().unwrap_or_default().to_owned());
    }
    alice.send(json!({"cmd": "dm", "peer": bob_id, "text": SECRET}));
    let kept = alice.next_event("the dm kept", |v| {
        v["event"] == "dm_stored" || v["event"] == "dm_failed" || v["event"] == "dm_delivered"
    });
    assert_eq!(kept["event"], "dm_stored", "{kept}");
    let store = dir.join("relay").join("store.redb");
    assert!(
        !file_contains(&store, SECRET),
        "the relay's store holds the DM in plaintext"
    );
    assert!(
        file_contains(&store, "missed 199"),
        "room messages are stored as published (a sanity check of the search)"
    );

    // Bob returns: his own history, then what he missed, then the DM.
    let returned = Instant::now();
    let (mut bob, _) = start_peer(&relay_tcp, "bob", &dir.join("bob"));
    let joined = bob.next_event("joined", |v| v["event"] == "joined");
    assert_eq!(texts(&joined["recent"]), ["before you left"]);
    let mut shown: Vec<String> = Vec::new();
    let mut dm = None;
    let deadline = Instant::now() + WAIT;
    while shown.iter().filter(|t| t.starts_with("missed")).count() < 200 || dm.is_none() {
        assert!(Instant::now() < deadline, "catch-up incomplete: {shown:?}");
        let event = bob.next_event("history", |v| {
            ["history", "message", "direct_message"].contains(&v["event"].as_str().unwrap_or(""))
        });
        match event["event"].as_str() {
            Some("history") => shown.extend(texts(&event["messages"])),
            Some("message") => shown.extend(event["text"].as_str().map(str::to_owned)),
            _ => dm = Some(event),
        }
    }
    println!(
        "restart to 200 missed messages and the kept DM shown: {} ms",
        returned.elapsed().as_millis()
    );
    let expected: Vec<String> = (0..200).map(|i| format!("missed {i:03}")).collect();
    assert_eq!(shown, expected, "all 200, in order, once, and nothing else");
    let dm = dm.expect("dm");
    assert_eq!(
        (
            dm["text"].as_str(),
            dm["from"].as_str(),
            dm["stored"].as_bool()
        ),
        (Some(SECRET), Some(alice_id.as_str()), Some(true))
    );
    let delivered = alice.next_event("delivery notice", |v| {
        v["event"] == "dm_delivered" && v["peer"] == bob_id.as_str()
    });
    assert_eq!(delivered["id"], kept["id"]);

    // /history reads bob's own store, across the restart.
    bob.send(json!({"cmd": "history", "count": 500}));
    let recent = bob.next_event("history reply", |v| v["event"] == "recent");
    let all = texts(&recent["messages"]);
    assert_eq!(all.len(), 201, "{all:?}");
    assert_eq!(all[0], "before you left");
    assert_eq!(all[1..], expected[..]);

    drop(relay);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_message_the_relay_acknowledged_survives_sigkills_at_random_moments() {
    const ROUNDS: usize = 4;
    const SENT: usize = 600;
    // A test of durability, not of the limits on one peer: a long stream, all of it taken.
    const UNLIMITED: &[&str] = &["--publish-per-sec", "0"];
    let dir = temp_dir("sigkill");
    let mut acked = HashSet::new();
    for round in 0..ROUNDS {
        let (relay, _, relay_tcp, _) = start_relay_with(&dir.join("relay"), UNLIMITED);
        let (mut alice, _) = start_peer(&relay_tcp, "alice", &dir.join("alice"));
        alice.next_event("the room ready", |v| v["event"] == "room_ready");
        for i in 0..SENT {
            alice.send(json!({"cmd": "send", "text": format!("round {round} stream {i:04}")}));
        }
        // Kill the relay while the stream is being stored, at a different moment each round
        // (early enough: the relay may store the rest of the stream before the receipts read so
        // far have come out of the peer).
        let kill_after = rand::random_range(5..80);
        let mut acked_now = 0;
        while acked_now < kill_after {
            let receipt = alice.next_event("receipts", |v| v["event"] == "stored");
            acked.insert(receipt["id"].as_str().unwrap_or_default().to_owned());
            acked_now += 1;
        }
        relay.signal("-KILL");
        // Receipts already on their way still count: they were sent after the commit.
        let until = Instant::now() + Duration::from_secs(2);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match alice.try_event(left, |v| v["event"] == "stored") {
                Some(receipt) => {
                    acked.insert(receipt["id"].as_str().unwrap_or_default().to_owned());
                    acked_now += 1;
                }
                None => break,
            }
        }
        drop((relay, alice));
        println!("round {round}: killed after {kill_after} receipts; {acked_now} acknowledged");
        assert!(acked_now < SENT, "the kill came too late to test anything");
    }

    let (_relay, _, relay_tcp, _) = start_relay(&dir.join("relay"));
    let stored = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let addr = relay_tcp.parse().expect("multiaddr");
            let mut client = RawStoreClient::connect(&addr).await;
            client.whole_history("lobby").await
        });
    let ids: HashSet<String> = stored.iter().map(|item| item.id.clone()).collect();
    assert_eq!(ids.len(), stored.len(), "a message was stored twice");
    let lost: Vec<&String> = acked.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let times: Vec<(u64, &str)> = stored.iter().map(|i| (i.ts, i.id.as_str())).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "history pages come in (time, id) order");
    println!("{} messages served after the restart", stored.len());
    let _ = std::fs::remove_dir_all(dir);
}
