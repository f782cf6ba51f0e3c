//! `/metrics`: on the operator's address only, with libp2p's metrics and ours, and figures that
//! follow what happens on the relay.

mod common;

use std::time::Duration;

use common::*;
use p2p_chat::relay::http;
use p2p_chat_shared::native::metrics::CoreMetrics;

const ROOM: &str = "lobby";

/// A relay on loopback that records metrics, and its operator address serving them.
async fn metered_relay() -> (
    p2p_chat_shared::native::Node,
    libp2p::Multiaddr,
    std::net::SocketAddr,
) {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = CoreMetrics::new(&mut registry);
    let (relay, relay_addr) = relay_with_metrics(None, Default::default(), Some(metrics)).await;
    let admin = http::serve_admin("127.0.0.1:0".parse().expect("addr"), registry)
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
    let _ = std::fs::remove_dir_all(web);
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
