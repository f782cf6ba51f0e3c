//! `/metrics`: on the operator's address only, with libp2p's metrics and ours, and figures that
//! follow what happens on the relay.

mod common;

use std::time::Duration;

use common::*;
use p2p_chat::relay::monitor::Monitor;
use p2p_chat::relay::{http, store};
use p2p_chat_shared::native::metrics::CoreMetrics;

const ROOM: &str = "lobby";

/// A relay on loopback with a store, that records metrics, and its operator address serving
/// them and the monitor page.
async fn metered_relay() -> (
    p2p_chat_shared::native::Node,
    libp2p::Multiaddr,
    std::net::SocketAddr,
) {
    let mut registry = prometheus_client::registry::Registry::default();
    let store_metrics = store::StoreMetrics::new(&mut registry);
    let dir = temp_dir("metrics-store");
    let opened = store::open_metered(
        &dir.join("store.redb"),
        Default::default(),
        store_metrics.clone(),
    )
    .expect("store");
    let metrics = CoreMetrics::new(registry);
    let (relay, relay_addr) = relay_with_metrics(
        Some(opened.handle),
        Default::default(),
        Some(metrics.clone()),
    )
    .await;
    let monitor = Monitor::new(relay.peer_id, metrics, Some(store_metrics));
    let hosts = vec!["prometheus-scrapes-me.internal".to_owned()];
    let admin = http::serve_admin("127.0.0.1:0".parse().expect("addr"), monitor, hosts)
        .await
        .expect("operator http");
    (relay, relay_addr, admin)
}

/// The sample of room messages the relay forwarded.
const FORWARDED: &str = r#"p2p_chat_room_messages_total{outcome="forwarded"}"#;

/// The forwarded counter, once our figures have had a second to follow (they are set every
/// second).
async fn forwarded_now(admin: std::net::SocketAddr) -> f64 {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (_, _, text) = http_get(admin, "/metrics").await;
    sample(&text, FORWARDED).expect("the forwarded counter")
}

/// The value of the sample `name` (with its labels, as exposed), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_address_serves_metrics_that_follow_the_relay_and_the_public_one_does_not() {
    let (relay, relay_addr, admin) = metered_relay().await;
    let web = temp_dir("metrics-web");
    std::fs::write(web.join("index.html"), "<!doctype html><title>chat</title>").expect("index");
    let public = http::serve(
        "127.0.0.1:0".parse().expect("addr"),
        web.clone(),
        relay.peer_id,
        http::BrowserAddrs::default(),
        relay.client.clone(),
        None,
    )
    .await
    .expect("public http");

    let (alice, mut bob) = two_members(&relay_addr, ROOM).await;
    let before = forwarded_now(admin).await;
    alice
        .client
        .send_message(ROOM, "counted")
        .await
        .expect("send");
    wait_message(&mut bob, ROOM, "counted").await;

    // The figures follow every second: wait for them to show both peers and the message.
    let deadline = tokio::time::Instant::now() + WAIT;
    let text = loop {
        let accept = "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n";
        let (status, headers, body) = http_get_with(admin, "/metrics", accept).await;
        assert_eq!(status, 200);
        assert!(
            headers.contains("content-type: application/openmetrics-text"),
            "Prometheus asks for OpenMetrics and gets it: {headers}"
        );
        let grew = sample(&body, FORWARDED).is_some_and(|n| n > before);
        if sample(&body, "p2p_chat_connected_peers") == Some(2.0) && grew {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the figures never showed two peers and the message forwarded:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        sample(&text, r#"p2p_chat_connections{transport="tcp"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"p2p_chat_connections{transport="quic"}"#),
        Some(0.0),
        "{text}"
    );
    assert_eq!(sample(&text, "p2p_chat_rooms"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"p2p_chat_room_messages_total{outcome="over_limit"}"#
        ),
        Some(0.0),
        "{text}"
    );
    let received =
        sample(&text, "libp2p_gossipsub_messages_total").expect("libp2p's gossipsub metrics");
    assert!(received >= 1.0, "{text}");
    // Both peers took a reservation (the relay server's events, through the extension).
    assert_eq!(
        sample(
            &text,
            r#"libp2p_relay_events_total{event="ReservationReqAccepted"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        text.contains("libp2p_swarm_connections_established_total"),
        "{text}"
    );
    assert_eq!(sample(&text, "p2p_chat_reservations"), Some(2.0), "{text}");
    // Bandwidth by transport (libp2p-metrics), both ways over TCP.
    for direction in ["Inbound", "Outbound"] {
        let bytes = text.lines().find_map(|line| {
            let rest = line.strip_prefix("libp2p_bandwidth_bytes_total{")?;
            let (labels, value) = rest.split_once("} ")?;
            (labels.contains("/tcp") && labels.contains(&format!("direction=\"{direction}\"")))
                .then(|| value.trim().parse::<f64>().ok())?
        });
        assert!(
            bytes.is_some_and(|n| n > 0.0),
            "{direction} TCP bytes: {text}"
        );
    }
    // The store: the message filed, what it holds, each peer's catch-up query on joining.
    let filed = sample(&text, "p2p_chat_store_filed_messages_total").expect("filed");
    assert!(filed >= 1.0, "{text}");
    assert!(
        sample(&text, "p2p_chat_history_queries_total").is_some_and(|n| n >= 2.0),
        "{text}"
    );
    assert!(
        text.contains("p2p_chat_history_query_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("p2p_chat_store_commit_seconds_count"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("# EOF"),
        "an OpenMetrics exposition ends with # EOF"
    );

    let (status, _, body) = http_get(public, "/metrics").await;
    assert_eq!(
        status, 404,
        "the public address must not serve metrics: {body}"
    );
    assert!(!body.contains("p2p_chat_"), "{body}");
    for path in ["/monitor", "/monitor.json"] {
        let (status, _, body) = http_get(public, path).await;
        assert_eq!(
            status, 404,
            "the public address must not serve {path}: {body}"
        );
    }
    let _ = std::fs::remove_dir_all(web);
}

/// `/monitor.json` once `done` says it shows what the test waits for.
async fn monitor_until(
    admin: std::net::SocketAddr,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _, body) = http_get(admin, "/monitor.json").await;
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if done(&json) {
            return json;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the monitor never showed {what}: {json:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_shows_the_peers_rooms_events_and_store_of_the_relay() {
    let (relay, relay_addr, admin) = metered_relay().await;
    let (status, headers, page) = http_get(admin, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("/monitor.js"), "{page}");
    assert!(
        headers.contains("content-security-policy: default-src 'self'"),
        "{headers}"
    );
    let (status, _, script) = http_get(admin, "/monitor.js").await;
    assert_eq!(status, 200);
    assert!(script.contains("/monitor.json"));

    let (alice, mut bob) = two_members(&relay_addr, ROOM).await;
    alice
        .client
        .send_message(ROOM, "shown")
        .await
        .expect("send");
    wait_message(&mut bob, ROOM, "shown").await;
    let json = monitor_until(
        admin,
        "two peers in the room and the message stored",
        |json| {
            let last = json["samples"].as_array().and_then(|s| s.last()).cloned();
            let peers = last.as_ref().and_then(|s| s["peers"].as_i64());
            let room = &json["rooms"][0];
            peers == Some(2)
                && room["room"] == ROOM
                && room["members"] == 2
                && json["store"]["room_messages"]
                    .as_u64()
                    .is_some_and(|n| n >= 1)
        },
    )
    .await;
    assert_eq!(json["peer_id"], relay.peer_id.to_string());
    assert_eq!(json["rooms_total"], 1);
    assert!(
        json["store"]["content_bytes"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{json:#}"
    );
    assert_eq!(json["store"]["max_bytes"], store::DEFAULT_MAX_BYTES);
    let events = json["events"].as_array().expect("events");
    for (kind, peer) in [("connected", alice.peer_id), ("reservation", bob.peer_id)] {
        assert!(
            events
                .iter()
                .any(|e| e["kind"] == kind && e["peer"] == peer.to_string()),
            "{kind} of {peer}: {json:#}"
        );
    }
    // Only the samples taken after the one the page already has.
    let last = json["samples"]
        .as_array()
        .and_then(|s| s.last())
        .expect("a sample")["at_ms"]
        .as_u64()
        .expect("at_ms");
    let (_, _, body) = http_get(admin, &format!("/monitor.json?since={last}")).await;
    let newer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(newer["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .all(|s| s["at_ms"].as_u64() > Some(last)));
    let (status, _, _) = http_get(admin, "/monitor.json?since=yesterday").await;
    assert_eq!(status, 400, "a since that is not a number is refused");

    // Bob leaves: the page says so, and his reservation is gone (Alice's is not).
    let bob_id = bob.peer_id;
    drop(bob);
    monitor_until(
        admin,
        "bob's disconnection and one reservation left",
        |json| {
            let last = json["samples"].as_array().and_then(|s| s.last()).cloned();
            let reservations = last.as_ref().and_then(|s| s["reservations"].as_i64());
            let gone = json["events"].as_array().is_some_and(|events| {
                events
                    .iter()
                    .any(|e| e["kind"] == "disconnected" && e["peer"] == bob_id.to_string())
            });
            gone && reservations == Some(1)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_that_rebinds_its_name_to_the_operator_address_reads_nothing() {
    let (_relay, _relay_addr, admin) = metered_relay().await;
    let port = admin.port();
    for path in ["/", "/metrics", "/monitor.json"] {
        let host = format!("attacker.example:{port}");
        let (status, _, body) = http_get_for(admin, &host, path, "").await;
        assert_eq!(status, 421, "{path} for {host}: {body}");
        assert!(!body.contains("p2p_chat"), "{body}");
        let allowed = [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("prometheus-scrapes-me.internal:{port}"),
        ];
        for host in allowed {
            let (status, _, _) = http_get_for(admin, &host, path, "").await;
            assert_eq!(status, 200, "{path} for {host}");
        }
    }
}

/// Prometheus, started on loopback with a scrape config of its own; stopped when dropped.
struct Prometheus {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    dir: std::path::PathBuf,
}

impl Prometheus {
    /// Scrapes `target` every second.
    fn start(target: std::net::SocketAddr) -> Self {
        let binary = std::path::Path::new("/usr/bin/prometheus");
        assert!(
            binary.is_file(),
            "Prometheus is not installed: run ./scripts/test.sh (its setup installs Debian's \
             prometheus package), or apt-get install prometheus"
        );
        let dir = temp_dir("prometheus");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: relay\n    \
                 static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .expect("config");
        let addr = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("address")
        };
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = std::process::Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        Self { child, addr, dir }
    }

    /// Fails the test with Prometheus's log if it has exited (a port taken meanwhile, say).
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
            panic!("Prometheus exited ({status}):\n{log}");
        }
    }

    /// The value of an instant query's first sample, once Prometheus answers with one.
    async fn query(&self, promql: &str) -> Option<f64> {
        let mut encoded = String::new();
        for byte in promql.bytes() {
            if byte.is_ascii_alphanumeric() || b"_-.".contains(&byte) {
                encoded.push(char::from(byte));
            } else {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        }
        let path = format!("/api/v1/query?query={encoded}");
        let connected = tokio::net::TcpStream::connect(self.addr).await.is_ok();
        if !connected {
            return None;
        }
        let (status, _, body) = http_get(self.addr, &path).await;
        if status != 200 {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        json["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_relay_and_sees_the_chat() {
    let (_relay, relay_addr, admin) = metered_relay().await;
    let mut prometheus = Prometheus::start(admin);

    let (alice, mut bob) = two_members(&relay_addr, ROOM).await;
    let before = forwarded_now(admin).await;
    const SENT: usize = 5;
    for i in 0..SENT {
        alice
            .client
            .send_message(ROOM, &format!("scraped {i}"))
            .await
            .expect("send");
        wait_message(&mut bob, ROOM, &format!("scraped {i}")).await;
    }

    // Prometheus scrapes every second: wait until what it stored shows the chat (presence
    // notices count too: at least the messages sent more than before).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        prometheus.assert_running();
        let peers = prometheus.query("p2p_chat_connected_peers").await;
        let messages = prometheus.query(FORWARDED).await;
        if peers == Some(2.0) && messages.is_some_and(|n| n >= before + SENT as f64) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus never showed 2 peers and {SENT} more messages forwarded than {before}: \
             {peers:?}, {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let up = prometheus.query(r#"up{job="relay"}"#).await;
    assert_eq!(up, Some(1.0), "the scrape target is up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_finds_nothing_wrong_with_the_exposition() {
    let (_relay, relay_addr, admin) = metered_relay().await;
    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, &relay_addr).await;
    ready(&mut alice, ROOM).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await; // the figures follow every second
    let (status, headers, exposition) = http_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4"),
        "without asking for OpenMetrics, the older text format: {headers}"
    );
    assert!(
        exposition.contains("p2p_chat_connected_peers 1"),
        "{exposition}"
    );
    let promtool = std::path::Path::new("/usr/bin/promtool");
    assert!(
        promtool.is_file(),
        "promtool is not installed: run ./scripts/test.sh (its setup installs Debian's \
         prometheus package), or apt-get install prometheus"
    );
    let mut check = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool starts");
    {
        use std::io::Write;
        let mut stdin = check.stdin.take().expect("stdin");
        stdin.write_all(exposition.as_bytes()).expect("write");
    }
    let output = check.wait_with_output().expect("promtool");
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {}{}\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_peers_make_the_relay_dial_add_no_bandwidth_series() {
    let (relay, _relay_addr, admin) = metered_relay().await;
    // What a peer can have the relay dial (an AutoNAT dial-back, a Kademlia lookup's answer):
    // a new protocol stack each time, 60 of them.
    for i in 0..60usize {
        let mut stack = String::from("/ip4/127.0.0.1/tcp/9");
        for _ in 0..i / 10 {
            stack.push_str("/tls");
        }
        for _ in 0..i % 10 {
            stack.push_str("/ws");
        }
        let addr: libp2p::Multiaddr = stack.parse().expect("address");
        let _ = relay.client.connect(addr).await;
    }
    let (_, _, text) = http_get(admin, "/metrics").await;
    let stacks: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|line| {
            let labels = line.strip_prefix("libp2p_bandwidth_bytes_total{protocols=\"")?;
            labels.split_once('"').map(|(stack, _)| stack)
        })
        .collect();
    // Only the stacks a transport of ours dials get a series: /tcp, /tcp/ws, /tcp/tls/ws.
    let expected = ["/ip4/tcp", "/ip4/tcp/tls/ws", "/ip4/tcp/ws"];
    assert_eq!(stacks.into_iter().collect::<Vec<_>>(), expected, "{text}");
}
