//! `/metrics`: on the operator's address only, with libp2p's metrics and ours, and figures that
//! follow what happens on the relay.

mod common;

use std::time::Duration;

use common::*;
use p2p_chat::relay::http;
use p2p_chat_shared::native::metrics::CoreMetrics;

const ROOM: &str = "lobby";

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
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = CoreMetrics::new(&mut registry);
    let (relay, relay_addr) = relay_with_metrics(None, Default::default(), Some(metrics)).await;
    let admin = http::serve_admin("127.0.0.1:0".parse().expect("addr"), registry)
        .await
        .expect("operator http");
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

    let mut alice = hidden_peer("alice").await;
    through_relay(&mut alice, &relay_addr).await;
    ready(&mut alice, ROOM).await;
    let mut bob = hidden_peer("bob").await;
    through_relay(&mut bob, &relay_addr).await;
    ready(&mut bob, ROOM).await;
    wait_member(&mut bob, ROOM, alice.peer_id).await;
    alice
        .client
        .send_message(ROOM, "counted")
        .await
        .expect("send");
    wait_message(&mut bob, ROOM, "counted").await;

    // The gauges are set every second: wait for them to show both peers.
    let deadline = tokio::time::Instant::now() + WAIT;
    let text = loop {
        let (status, headers, body) = http_get(admin, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            headers.contains("content-type: application/openmetrics-text"),
            "{headers}"
        );
        if sample(&body, "p2p_chat_connected_peers") == Some(2.0) {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gauges never showed two peers:\n{body}"
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
    let received =
        sample(&text, "libp2p_gossipsub_messages_total").expect("libp2p's gossipsub metrics");
    assert!(received >= 1.0, "{text}");
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
