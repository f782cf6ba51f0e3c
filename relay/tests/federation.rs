//! Several relays, one network: `p2p-chat relay --peer` processes and CLI peers on loopback.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::attacker::Attacker;
use common::procs::*;
use common::{relay, relay_linked_to, wait_for};
use futures::StreamExt;
use libp2p::gossipsub;
use libp2p::swarm::SwarmEvent;
use p2p_chat_shared::core::Event;
use p2p_chat_shared::envelope::Envelope;
use p2p_chat_shared::hub::limits::RELAY_PROOF_GRACE;
use p2p_chat_shared::protocol::{room_topic, MAX_ROOMS_PER_PEER, PRESENCE_INTERVAL};
use serde_json::json;

/// Longest wait for a relay link: the backoff between redials reaches 8 s by the fourth.
const LINK_WAIT: Duration = Duration::from_secs(40);

/// A TCP port free on loopback now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The peer id `p2p-chat relay --secret-key-seed seed` runs with.
fn seeded_id(seed: u8) -> String {
    let mut bytes = [0u8; 32];
    bytes[0] = seed;
    libp2p::identity::Keypair::ed25519_from_bytes(bytes)
        .expect("test setup")
        .public()
        .to_peer_id()
        .to_string()
}

/// Waits until `relay` logs a link to the relay `other`.
fn linked(relay: &Proc, name: &str, other: &str) {
    relay.log_line(&format!("{name} linked to relay {other}"), LINK_WAIT, |l| {
        l.contains("relay peer connected") && l.contains(other)
    });
}

/// The chat messages `peer` shows within `window`, counted by text.
fn messages_within(peer: &Proc, window: Duration) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    let until = Instant::now() + window;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match peer.try_event(left, |v| v["event"] == "message") {
            Some(v) => {
                let text = v["text"].as_str().unwrap_or_default().to_owned();
                *seen.entry(text).or_default() += 1;
            }
            None => break,
        }
    }
    seen
}

#[test]
fn three_relays_carry_one_room_every_way_find_each_other_and_relink() {
    let dir = temp_dir("federation");
    // Relay A has a fixed address and id, so that B can name it before it runs.
    let a_port = free_port().to_string();
    let a_id = seeded_id(7);
    let a_addr = format!("/ip4/127.0.0.1/tcp/{a_port}/p2p/{a_id}");
    let a_args = [
        "--secret-key-seed",
        "7",
        "--port",
        &a_port,
        "--ws-port",
        "0",
        "--webrtc-port",
        "0",
    ];

    // B starts first: its dials of A fail and are retried with backoff.
    let (b, b_id, b_tcp, _) = start_relay_with(&dir.join("b"), &["--peer", &a_addr]);
    std::thread::sleep(Duration::from_secs(2));
    let (a, _, a_tcp, _) = start_relay_with(&dir.join("a"), &a_args);
    assert_eq!(a_tcp, a_addr);
    linked(&b, "B", &a_id);
    // C names only A, and finds B through the DHT.
    let (c, c_id, c_tcp, _) = start_relay_with(&dir.join("c"), &["--peer", &a_addr]);
    linked(&c, "C", &a_id);
    let b_c = c.log_line("C linked to B, found in the DHT", LINK_WAIT, |l| {
        l.contains("relay peer connected") && l.contains(&b_id)
    });
    // Whichever of the two looked first dialled the other.
    assert!(!b_c.contains("named=true"), "nobody named B to C: {b_c}");

    // One peer on each relay: everyone meets everyone, and every message arrives once.
    let (mut alice, alice_id) = start_peer(&a_tcp, "alice", &dir.join("alice"));
    let (mut bob, bob_id) = start_peer(&b_tcp, "bob", &dir.join("bob"));
    let (mut carol, carol_id) = start_peer(&c_tcp, "carol", &dir.join("carol"));
    for (name, peer, others) in [
        ("alice", &alice, [("bob", &bob_id), ("carol", &carol_id)]),
        ("bob", &bob, [("alice", &alice_id), ("carol", &carol_id)]),
        ("carol", &carol, [("alice", &alice_id), ("bob", &bob_id)]),
    ] {
        // In whichever order they come.
        let mut unseen: Vec<(&str, &String)> = others.to_vec();
        while !unseen.is_empty() {
            let what = format!("{name} sees {unseen:?} join");
            let event = peer.next_event(&what, |v| v["event"] == "member_joined");
            unseen.retain(|(_, id)| event["peer"] != id.as_str());
        }
    }
    alice.send(json!({"cmd": "send", "text": "from a"}));
    bob.send(json!({"cmd": "send", "text": "from b"}));
    carol.send(json!({"cmd": "send", "text": "from c"}));
    for (name, peer, own) in [
        ("alice", &alice, "from a"),
        ("bob", &bob, "from b"),
        ("carol", &carol, "from c"),
    ] {
        let seen = messages_within(peer, Duration::from_secs(4));
        let expected: HashMap<String, usize> = ["from a", "from b", "from c"]
            .into_iter()
            .filter(|t| *t != own)
            .map(|t| (t.to_owned(), 1))
            .collect();
        assert_eq!(seen, expected, "{name} sees each other message once");
    }

    // A direct message between peers on different relays: the DHT, which the relays share,
    // finds the recipient's own addresses.
    alice.send(json!({"cmd": "dm", "peer": carol_id, "text": "across relays"}));
    let receipt = alice.next_event("dm receipt", |v| {
        v["event"] == "dm_delivered" || v["event"] == "dm_failed" || v["event"] == "dm_stored"
    });
    assert_eq!(receipt["event"], "dm_delivered", "{receipt}");
    let dm = carol.next_event("the dm", |v| v["event"] == "direct_message");
    assert_eq!(dm["text"], "across relays");

    // A goes down: B and C, linked through the DHT, carry the room on; both redial A.
    drop(alice);
    drop(a);
    b.log_line("B loses A", LINK_WAIT, |l| {
        l.contains("relay peer lost") && l.contains(&a_id)
    });
    bob.send(json!({"cmd": "send", "text": "while a is down"}));
    let got = carol.next_event("bob's message without A", |v| v["event"] == "message");
    assert_eq!(got["text"], "while a is down");
    // A comes back: B and C redial it (or it reaches them first), and a newcomer on A chats
    // with the room. A join sent before the links are up reaches the others with the
    // newcomer's next presence announcement, within PRESENCE_INTERVAL.
    let (_a, _, _, _) = start_relay_with(&dir.join("a"), &a_args);
    let (mut dave, dave_id) = start_peer(&a_tcp, "dave", &dir.join("dave"));
    let within = PRESENCE_INTERVAL + Duration::from_secs(15);
    for (name, peer) in [("bob", &bob), ("carol", &carol)] {
        let seen = peer.try_event(within, |v| {
            v["event"] == "member_joined" && v["peer"] == dave_id.as_str()
        });
        assert!(seen.is_some(), "{name} sees dave, on A again, join");
    }
    dave.send(json!({"cmd": "send", "text": "A is back"}));
    for (name, peer) in [("bob", &bob), ("carol", &carol)] {
        let got = peer.next_event(&format!("{name} gets dave's message"), |v| {
            v["event"] == "message"
        });
        assert_eq!(got["text"], "A is back", "{name}");
    }
    drop(dave);

    // Everyone leaves: no relay keeps a room for another relay's sake.
    bob.send(json!({"cmd": "quit"}));
    carol.send(json!({"cmd": "quit"}));
    for (name, relay) in [("B", &b), ("C", &c)] {
        relay.log_line(&format!("{name} leaves the emptied room"), LINK_WAIT, |l| {
            l.contains("hub left empty room")
        });
    }
    let _ = (c_id, bob.child.wait(), carol.child.wait());
    let _ = std::fs::remove_dir_all(dir);
}

/// Publishes a chat message from `from` into `room` until `to` receives it (the relays' mesh
/// forms at a gossipsub heartbeat: the first may go out before); whether it arrived.
async fn crosses(from: &mut Attacker, to: &mut Attacker, room: &str) -> bool {
    for attempt in 0..20 {
        let text = format!("attempt {attempt}");
        let envelope = Envelope::message("x", &text).expect("test setup");
        from.publish(room, envelope.to_bytes());
        from.run_for(Duration::from_millis(200)).await;
        let author = from.peer_id;
        let arrived = tokio::time::timeout(Duration::from_millis(800), async {
            loop {
                if let SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) =
                    to.swarm.select_next_some().await
                {
                    if message.source == Some(author) && message.topic.as_str() == room {
                        return;
                    }
                }
            }
        })
        .await;
        if arrived.is_ok() {
            return true;
        }
    }
    false
}

/// A TCP forwarder from a loopback port of its own to `target`: a link between two relays that
/// a test can cut (every connection through it closes at once); it takes new ones after.
struct Forwarder {
    port: u16,
    conns: std::sync::Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    _accept: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    async fn to(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(tokio::task::JoinSet::new()));
        let held = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                held.lock().expect("lock").spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Self {
            port,
            conns,
            _accept: accept,
        }
    }

    fn cut(&self) {
        self.conns.lock().expect("lock").abort_all();
    }
}

/// How long a message from `from` takes to reach `to` in `room` (`None`: not within a second).
async fn crossing(
    from: &mut Attacker,
    to: &mut Attacker,
    room: &str,
    text: &str,
) -> Option<Duration> {
    let envelope = Envelope::message("x", text).expect("test setup");
    let sent = Instant::now();
    from.publish(room, envelope.to_bytes());
    let author = from.peer_id;
    let wait = async {
        loop {
            if let SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) =
                to.swarm.select_next_some().await
            {
                if message.source == Some(author) && message.data == envelope.to_bytes() {
                    return sent.elapsed();
                }
            }
        }
    };
    let (arrived, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(1), wait),
        from.run_for(Duration::from_secs(1))
    );
    arrived.ok()
}

/// A link between two relays that both have members in a room drops and comes back: messages
/// cross it again at once, both ways, not a gossipsub heartbeat later (lazy gossip, which was
/// what was left when neither relay grafted the other: each relay's hub forwards to every peer
/// connected to it now, relays included, and keeps no mesh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_crosses_a_relay_link_at_once_after_it_drops_and_comes_back() {
    let (a, a_addr) = relay().await;
    let a_id = a.peer_id;
    let a_port = a_addr
        .iter()
        .find_map(|p| match p {
            libp2p::core::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("tcp port");
    let link = Forwarder::to(([127, 0, 0, 1], a_port).into()).await;
    let through: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{}/p2p/{a_id}", link.port)
        .parse()
        .expect("address");
    let (mut b, b_addr) = relay_linked_to(vec![through]).await;
    wait_for(&mut b, "B linked to A", |e| {
        matches!(e, Event::Connected { peer, .. } if *peer == a_id).then_some(())
    })
    .await;
    let room = "linked-room";
    let mut ann = Attacker::connect(&a_addr).await;
    ann.join(room).await;
    let mut ben = Attacker::connect(&b_addr).await;
    ben.join(room).await;
    assert!(crosses(&mut ann, &mut ben, room).await, "A to B");
    assert!(crosses(&mut ben, &mut ann, room).await, "B to A");

    link.cut();
    wait_for(&mut b, "B loses A", |e| {
        matches!(e, Event::Disconnected { peer, .. } if *peer == a_id).then_some(())
    })
    .await;
    wait_for(&mut b, "B redials A", |e| {
        matches!(e, Event::Connected { peer, .. } if *peer == a_id).then_some(())
    })
    .await;
    // Forwarded through the mesh or as explicit peers, a message crosses in milliseconds; by
    // lazy gossip it waits for a heartbeat (1 s apart), half a second on average.
    let mut times = Vec::new();
    for i in 0..9 {
        let (from, to) = if i % 2 == 0 {
            (&mut ann, &mut ben)
        } else {
            (&mut ben, &mut ann)
        };
        let time = crossing(from, to, room, &format!("after the cut {i}")).await;
        times.push(time.unwrap_or(Duration::from_secs(1)));
        // Apart by a share of a heartbeat, so that the sends fall all over its period.
        tokio::time::sleep(Duration::from_millis(137)).await;
    }
    times.sort();
    assert!(
        times[times.len() / 2] < Duration::from_millis(250),
        "messages cross the restored link at once, not by lazy gossip: {times:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spans_two_relays_for_clients_that_reach_only_their_own() {
    let (a, a_addr) = relay().await;
    let (mut b, b_addr) = relay_linked_to(vec![a_addr.clone()]).await;
    let a_id = a.peer_id;
    wait_for(&mut b, "B linked to A", |e| {
        matches!(e, Event::Connected { peer, .. } if *peer == a_id).then_some(())
    })
    .await;
    // Clients that know only their own relay: bare gossipsub, no DHT, no dials of their own.
    let room = "shared-room";
    let mut ann = Attacker::connect(&a_addr).await;
    ann.join(room).await;
    // B follows more rooms than one peer may subscribe to, and A takes every one from B: B
    // is a relay, not a peer over its limit. The shared room comes last.
    let mut fillers = Vec::new();
    for half in 0..2 {
        let mut filler = Attacker::connect(&b_addr).await;
        for i in 0..MAX_ROOMS_PER_PEER / 2 + 10 {
            filler
                .swarm
                .behaviour_mut()
                .subscribe(&room_topic(&format!("filler-{half}-{i}")))
                .expect("subscribe");
        }
        filler.run_for(Duration::from_millis(500)).await;
        fillers.push(filler);
    }
    let mut ben = Attacker::connect(&b_addr).await;
    ben.join(room).await;
    // Past the time a peer over its rooms has to show it is a relay.
    ann.run_for(RELAY_PROOF_GRACE + Duration::from_secs(2))
        .await;
    assert!(crosses(&mut ann, &mut ben, room).await, "A to B");
    assert!(crosses(&mut ben, &mut ann, room).await, "B to A");

    // A client that subscribes to as many rooms is disconnected.
    let mut greedy = Attacker::connect(&a_addr).await;
    for i in 0..MAX_ROOMS_PER_PEER + 20 {
        greedy
            .swarm
            .behaviour_mut()
            .subscribe(&room_topic(&format!("greedy-{i}")))
            .expect("subscribe");
    }
    greedy
        .run_for(RELAY_PROOF_GRACE + Duration::from_secs(3))
        .await;
    assert!(!greedy.connected(), "a peer over its rooms is disconnected");
    assert!(
        crosses(&mut ann, &mut ben, room).await,
        "the relays are still linked"
    );
    drop(fillers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_peer_stops_at_the_rooms_a_relay_follows_for_one_peer_with_a_clear_error() {
    let node = common::peer("many").await;
    for i in 0..MAX_ROOMS_PER_PEER {
        node.client.join(&format!("r{i}")).await.expect("join");
    }
    let error = node
        .client
        .join("one-more")
        .await
        .expect_err("over the limit");
    assert_eq!(
        error.to_string(),
        format!("you are in {MAX_ROOMS_PER_PEER} rooms, the most a relay follows for one peer: leave one first")
    );
    node.client.leave("r0").await.expect("leave");
    node.client
        .join("one-more")
        .await
        .expect("room for one more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_back_on_a_second_connection_counts_its_rooms_once() {
    let (_relay, addr) = relay().await;
    let rooms = MAX_ROOMS_PER_PEER * 2 / 3;
    let subscribe_all = |attacker: &mut Attacker| {
        for i in 0..rooms {
            attacker
                .swarm
                .behaviour_mut()
                .subscribe(&room_topic(&format!("mine-{i}")))
                .expect("subscribe");
        }
    };
    let mut first = Attacker::connect(&addr).await;
    subscribe_all(&mut first);
    first.run_for(Duration::from_millis(500)).await;
    // The same peer again, over a second connection (a page reloaded while the old one
    // lingers): gossipsub says "subscribed" again for every room.
    let mut second = Attacker::connect_with_key_of(&first, &addr).await;
    subscribe_all(&mut second);
    second
        .run_for(RELAY_PROOF_GRACE + Duration::from_secs(3))
        .await;
    assert!(
        second.connected(),
        "{rooms} rooms held twice are {rooms} rooms, within the limit"
    );
}

/// Sends `texts` from `peer` and waits until its relay has stored each.
fn send_stored(peer: &mut Proc, texts: &[String]) {
    for text in texts {
        peer.send(json!({"cmd": "send", "text": text}));
    }
    let mut stored = 0;
    while stored < texts.len() {
        let receipt = peer.next_event("store receipts", |v| {
            v["event"] == "stored" || v["event"] == "not_stored"
        });
        assert_eq!(receipt["event"], "stored", "{receipt}");
        stored += 1;
    }
}

/// The texts a newcomer is shown of its room's history, once `count` have come.
fn history_shown(peer: &Proc, count: usize) -> Vec<String> {
    let mut shown = Vec::new();
    while shown.len() < count {
        let event = peer.next_event("history", |v| v["event"] == "history");
        let messages = event["messages"].as_array().cloned().unwrap_or_default();
        shown.extend(
            messages
                .iter()
                .filter_map(|m| m["text"].as_str().map(str::to_owned)),
        );
    }
    shown
}

#[test]
fn relays_apart_for_a_while_end_with_the_same_history_once_linked() {
    let dir = temp_dir("federation-sync");
    let ports = (free_port().to_string(), free_port().to_string());
    let relay_args = |seed: &'static str, port: &'static str| {
        vec![
            "--secret-key-seed",
            seed,
            "--port",
            port,
            "--ws-port",
            "0",
            "--webrtc-port",
            "0",
        ]
    };
    let (a_port, b_port): (&'static str, &'static str) = (
        Box::leak(ports.0.into_boxed_str()),
        Box::leak(ports.1.into_boxed_str()),
    );
    let a_id = seeded_id(9);

    // Apart: each relay files messages the other never saw.
    let (a, _, a_tcp, _) = start_relay_with(&dir.join("a"), &relay_args("9", a_port));
    let (mut alice, _) = start_peer(&a_tcp, "alice", &dir.join("alice"));
    let on_a: Vec<String> = (0..3).map(|i| format!("on a {i}")).collect();
    send_stored(&mut alice, &on_a);
    let (b, _, b_tcp, _) = start_relay_with(&dir.join("b"), &relay_args("10", b_port));
    let (mut bob, _) = start_peer(&b_tcp, "bob", &dir.join("bob"));
    let on_b: Vec<String> = (0..2).map(|i| format!("on b {i}")).collect();
    send_stored(&mut bob, &on_b);
    drop((alice, bob));

    // Both come back naming each other: each takes history only from relays its operator
    // named, and pulls what it lacks from the other.
    drop((a, b));
    let a_addr = format!("/ip4/127.0.0.1/tcp/{a_port}/p2p/{a_id}");
    let b_addr = format!("/ip4/127.0.0.1/tcp/{b_port}/p2p/{}", seeded_id(10));
    let mut a_args = relay_args("9", a_port);
    a_args.extend(["--peer", &b_addr]);
    let (a, _, _, _) = start_relay_with(&dir.join("a"), &a_args);
    let mut b_args = relay_args("10", b_port);
    b_args.extend(["--peer", &a_addr]);
    let (b, _, _, _) = start_relay_with(&dir.join("b"), &b_args);
    for (name, relay, filed) in [("B", &b, "filed=3"), ("A", &a, "filed=2")] {
        let line = relay.log_line(&format!("{name} reconciled"), LINK_WAIT, |l| {
            l.contains("history reconciled")
        });
        assert!(line.contains(filed), "{name}: {line}");
    }

    // A newcomer on either relay is shown all five.
    let mut all: Vec<String> = on_a.iter().chain(&on_b).cloned().collect();
    all.sort();
    for (name, relay_tcp) in [("carol", &b_tcp), ("dave", &a_tcp)] {
        let (newcomer, _) = start_peer(relay_tcp, name, &dir.join(name));
        let mut shown = history_shown(&newcomer, all.len());
        shown.sort();
        assert_eq!(shown, all, "{name} sees both sides' messages, once");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_peer_on_two_relays_chats_on_when_one_goes_down() {
    let dir = temp_dir("federation-two");
    let (a, a_id, a_tcp, _) = start_relay(&dir.join("a"));
    let (b, _, b_tcp, _) = start_relay_with(&dir.join("b"), &["--peer", &a_tcp]);
    linked(&b, "B", &a_id);
    let (mut dave, dave_id) = start_peer_on(&[&a_tcp, &b_tcp], "dave", &dir.join("dave"));
    for _ in 0..2 {
        dave.next_event("a reservation on each relay", |v| {
            v["event"] == "reservation_accepted"
        });
    }
    let (mut erin, erin_id) = start_peer(&b_tcp, "erin", &dir.join("erin"));
    dave.next_event("erin joins", |v| {
        v["event"] == "member_joined" && v["peer"] == erin_id.as_str()
    });
    erin.next_event("dave joins", |v| {
        v["event"] == "member_joined" && v["peer"] == dave_id.as_str()
    });

    drop(a);
    dave.send(json!({"cmd": "send", "text": "A is gone, still here"}));
    let got = erin.next_event("dave's message", |v| v["event"] == "message");
    assert_eq!(got["text"], "A is gone, still here");
    erin.send(json!({"cmd": "send", "text": "and so am I"}));
    let got = dave.next_event("erin's message", |v| v["event"] == "message");
    assert_eq!(got["text"], "and so am I");
    let _ = std::fs::remove_dir_all(dir);
}

/// Two relays that name each other, each with a fixed address and id (so that each can name the
/// other before it runs): (A, C, A's TCP address, C's TCP address, A's id, C's id).
fn relays_naming_each_other(dir: &std::path::Path) -> (Proc, Proc, String, String, String, String) {
    let (a_port, c_port) = (free_port().to_string(), free_port().to_string());
    let (a_id, c_id) = (seeded_id(21), seeded_id(22));
    let a_addr = format!("/ip4/127.0.0.1/tcp/{a_port}/p2p/{a_id}");
    let c_addr = format!("/ip4/127.0.0.1/tcp/{c_port}/p2p/{c_id}");
    let args = |seed: &'static str, port: &str, peer: &str| -> Vec<String> {
        [
            "--secret-key-seed",
            seed,
            "--port",
            port,
            "--ws-port",
            "0",
            "--webrtc-port",
            "0",
            "--peer",
            peer,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let a_args = args("21", &a_port, &c_addr);
    let c_args = args("22", &c_port, &a_addr);
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let c_args: Vec<&str> = c_args.iter().map(String::as_str).collect();
    let (a, _, a_tcp, _) = start_relay_with(&dir.join("a"), &a_args);
    let (c, _, c_tcp, _) = start_relay_with(&dir.join("c"), &c_args);
    linked(&a, "A", &c_id);
    linked(&c, "C", &a_id);
    (a, c, a_tcp, c_tcp, a_id, c_id)
}

#[test]
fn a_dm_reaches_a_peer_reachable_only_through_another_relay_online_and_offline() {
    let dir = temp_dir("federation-mail");
    let (a, c, a_tcp, c_tcp, _, _) = relays_naming_each_other(&dir);
    // Carol reaches others only through C: a circuit through A cannot reach her, and the DHT has
    // no address of hers.
    let (mut carol, carol_id) = relay_only_peer(&c_tcp, "carol", &dir.join("carol"));
    let (mut alice, alice_id) = start_peer(&a_tcp, "alice", &dir.join("alice"));
    // Relay-only means what it says: carol's DHT lookups used to dial alice directly (the
    // relays' DHT holds her address), which showed alice carol's IP address and carried the DMs
    // below straight to her.
    let alice_addr = alice.next_event("alice's address", |v| {
        v["event"] == "listening" && v["addr"].as_str().is_some_and(|a| a.contains("/tcp/"))
    });
    let direct = alice.try_event(Duration::from_secs(3), |v| {
        v["event"] == "connected" && v["peer"] == carol_id.as_str() && v["relayed"] == false
    });
    assert!(
        direct.is_none(),
        "carol connected to alice directly: {direct:?}"
    );
    let alice_addr = format!(
        "{}/p2p/{alice_id}",
        alice_addr["addr"].as_str().unwrap_or_default()
    );
    carol.send(json!({"cmd": "connect", "addr": alice_addr}));
    let refused = carol.next_event("the dial refused", |v| {
        v["event"] == "error" || v["event"] == "dialed"
    });
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("relay-only"),
        "{refused}"
    );
    let receipt = |alice: &Proc| {
        alice.next_event("the dm's receipt", |v| {
            v["event"] == "dm_stored" || v["event"] == "dm_failed" || v["event"] == "dm_delivered"
        })
    };
    let delivered = |alice: &Proc, id: &serde_json::Value| {
        let notice = alice.next_event("the delivery notice", |v| {
            v["event"] == "dm_delivered" && v["peer"] == carol_id.as_str()
        });
        assert_eq!(&notice["id"], id, "{notice}");
    };

    // Online: kept at A, taken by C, shown to carol at once (the first right after the link
    // came up: A names C in its hints once it has seen the link).
    for text in ["across relays, online", "and again"] {
        let sent = Instant::now();
        alice.send(json!({"cmd": "dm", "peer": carol_id, "text": text}));
        let kept = receipt(&alice);
        assert_eq!(kept["event"], "dm_stored", "{kept}");
        let dm = carol.next_event("the dm", |v| v["event"] == "direct_message");
        println!(
            "a DM to a relay-only peer on another relay shown after {} ms",
            sent.elapsed().as_millis()
        );
        assert_eq!(
            (dm["text"].as_str(), dm["from"].as_str()),
            (Some(text), Some(alice_id.as_str()))
        );
        delivered(&alice, &kept["id"]);
    }
    c.log_line("C took the mail", WAIT, |l| {
        l.contains("mail taken from a relay")
    });

    // Offline: carol away when it is sent, back on C later.
    carol.signal("-TERM");
    assert!(carol.child.wait().expect("carol exits").success());
    drop(carol);
    alice.send(json!({"cmd": "dm", "peer": carol_id, "text": "while you were away"}));
    let kept = receipt(&alice);
    assert_eq!(kept["event"], "dm_stored", "{kept}");
    let (carol, _) = relay_only_peer(&c_tcp, "carol", &dir.join("carol"));
    let dm = carol.next_event("the dm kept for her", |v| v["event"] == "direct_message");
    assert_eq!(
        (dm["text"].as_str(), dm["stored"].as_bool()),
        (Some("while you were away"), Some(true))
    );
    delivered(&alice, &kept["id"]);
    // Once: neither A's copy nor C's is shown again (A forgot it when C said it was fetched).
    let again = carol.try_event(Duration::from_secs(3), |v| v["event"] == "direct_message");
    assert!(again.is_none(), "a DM shown twice: {again:?}");
    drop((a, c));
    let _ = std::fs::remove_dir_all(dir);
}

/// `count` chat messages of one author, one a millisecond up to now, as a relay files them.
fn backlog(count: usize) -> Vec<p2p_chat_shared::store::HistoryItem> {
    let author = libp2p::PeerId::random();
    let now = p2p_chat_shared::text::now_unix_ms();
    (0..count)
        .map(|i| {
            let text = format!("message {i} of the backlog, about as long as a chat line");
            let envelope = Envelope::message("ann", &text).expect("envelope");
            p2p_chat_shared::store::HistoryItem {
                id: envelope.id.clone(),
                from: author,
                ts: now - (count - i) as u64,
                payload: String::from_utf8(envelope.to_bytes()).expect("utf8"),
            }
        })
        .collect()
}

/// `p2p-chat relay`'s store in `data_dir` with `items` filed in `room` before the relay starts.
fn filled_store(
    data_dir: &std::path::Path,
    room: &str,
    items: &[p2p_chat_shared::store::HistoryItem],
) {
    use futures::SinkExt;
    std::fs::create_dir_all(data_dir).expect("data dir");
    let opened = p2p_chat::relay::store::open(&data_dir.join("store.redb"), Default::default())
        .expect("store");
    let mut handle = opened.handle;
    futures::executor::block_on(async {
        for item in items {
            let job = p2p_chat_shared::store::StoreJob::Append {
                room: room.to_owned(),
                item: item.clone(),
            };
            handle.send(job).await.expect("store takes it");
        }
    });
    drop(handle);
    opened.thread.join().expect("store thread");
}

/// Figures for the README: a relay that missed 10,000 messages (or 100 of them) catches up
/// from another.
/// `cargo test -p p2p-chat --test federation reconciliation_figures -- --ignored --nocapture`
#[test]
#[ignore = "figures: run by hand"]
fn reconciliation_figures() {
    let count = 10_000;
    let items = backlog(count);
    let bytes: usize = items.iter().map(|i| i.payload.len()).sum();
    for missed in [count, 1_000, 100] {
        let dir = temp_dir(&format!("federation-figures-{missed}"));
        filled_store(&dir.join("a"), "lobby", &items);
        filled_store(&dir.join("b"), "lobby", &items[missed..]);
        let (_a, a_id, a_tcp, _) = start_relay(&dir.join("a"));
        let started = Instant::now();
        let (b, _, _, _) = start_relay_with(&dir.join("b"), &["--peer", &a_tcp]);
        linked(&b, "B", &a_id);
        let line = b.log_line("B caught up", Duration::from_secs(120), |l| {
            l.contains("history reconciled")
        });
        let total = started.elapsed();
        let field = |name: &str| -> String {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or("?")
                .to_owned()
        };
        println!(
            "B missed {missed} of {count} messages ({bytes} bytes of payload in all): caught up \
             {} ms after starting (reconciliation and pulls {} ms); filed {}, {} rounds, {} bytes \
             of negentropy messages, {} bytes of messages pulled",
            total.as_millis(),
            field("ms"),
            field("filed"),
            field("rounds"),
            field("sync_bytes"),
            field("message_bytes"),
        );
        assert_eq!(field("filed"), missed.to_string());
        let _ = std::fs::remove_dir_all(dir);
    }
}
