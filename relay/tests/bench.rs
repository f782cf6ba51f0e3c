//! `p2p-chat bench` end to end, small: the harness runs its relay process and peers, stops by
//! itself, and prints figures that show every message delivered once. The rooms run is also the
//! regression test of two limits the benchmark found: a relay serving more than 100 rooms (each
//! peer used to ignore all of the hub's subscriptions), and more than 60 peers from one address.
//!
//! Opt-in: they start benchmark processes, so a plain `cargo test` skips them;
//! `./scripts/test.sh` (and so CI) runs them with `cargo test -p p2p-chat --test bench --
//! --ignored`.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_p2p-chat");

/// Runs `p2p-chat bench <args>` and returns its JSON line.
fn bench(args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .arg("bench")
        .args(args)
        .args(["--time-limit", "100s"])
        .output()
        .expect("p2p-chat bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}");
    let line = stdout.lines().last().expect("a JSON line");
    serde_json::from_str(line).expect("the last line is JSON")
}

#[test]
#[ignore = "starts benchmark processes: run with --ignored (scripts/test.sh does)"]
fn the_latency_bench_times_every_message_once() {
    let r = bench(&[
        "latency",
        "--messages",
        "200",
        "--rate",
        "500",
        "--burst",
        "300",
    ]);
    for phase in ["one_at_a_time", "steady"] {
        assert_eq!(r[format!("{phase}_delivered")], 200, "{r}");
        assert_eq!(r[format!("{phase}_duplicates")], 0, "{r}");
        assert_eq!(r[format!("{phase}_samples")], 200, "{r}");
        let p50 = r[format!("{phase}_p50_ms")].as_f64().expect("p50");
        let max = r[format!("{phase}_max_ms")].as_f64().expect("max");
        assert!(p50 > 0.0 && p50 <= max, "{r}");
    }
    assert_eq!(r["throughput_delivery_ratio"], 1.0, "{r}");
    assert!(r["relay_rss_mib"].as_f64().expect("rss") > 1.0, "{r}");
}

#[test]
#[ignore = "starts benchmark processes: run with --ignored (scripts/test.sh does)"]
fn a_relay_with_more_than_100_rooms_and_peers_from_one_address_delivers_everything() {
    let r = bench(&[
        "rooms",
        "--rooms",
        "110",
        "--room-size",
        "2",
        "--messages",
        "440",
    ]);
    assert_eq!(r["peers"], 220, "{r}");
    assert_eq!(r["load_expected"], 440, "{r}");
    assert_eq!(r["load_delivery_ratio"], 1.0, "{r}");
    assert_eq!(r["load_duplicates"], 0, "{r}");
}

#[test]
#[ignore = "starts benchmark processes: run with --ignored (scripts/test.sh does)"]
fn the_history_bench_catches_up_on_everything_in_order() {
    let r = bench(&["history", "--messages", "500"]);
    assert_eq!(r["caught_up"], 500, "{r}");
    assert_eq!(r["in_order"], true, "{r}");
}

#[test]
#[ignore = "starts benchmark processes: run with --ignored (scripts/test.sh does)"]
fn the_federation_bench_carries_one_room_over_relays_once() {
    let r = bench(&[
        "federation",
        "--relays",
        "3",
        "--peers",
        "2",
        "--messages",
        "300",
        "--hop-messages",
        "100",
    ]);
    for phase in ["same_relay", "across_relays"] {
        assert_eq!(r[format!("{phase}_delivered")], 100, "{r}");
        assert_eq!(r[format!("{phase}_duplicates")], 0, "{r}");
    }
    assert_eq!(r["room_peers"], 6, "{r}");
    assert_eq!(r["room_delivered"], 300 * 5, "{r}");
    assert_eq!(r["room_delivery_ratio"], 1.0, "{r}");
    assert_eq!(r["room_duplicates"], 0, "{r}");
}

#[test]
#[ignore = "starts benchmark processes: run with --ignored (scripts/test.sh does)"]
fn the_capacity_bench_holds_light_peers_that_still_chat() {
    // Two workers: light peers over TCP and QUIC, reserved, in rooms of 5. (Small: a debug
    // build of the relay times out QUIC handshakes when it takes hundreds at once.)
    let r = bench(&[
        "idle",
        "--peers",
        "400",
        "--peers-per-worker",
        "200",
        "--rest",
        "2s",
        "--sample-rooms",
        "40",
    ]);
    assert_eq!(r["set_up"], 400, "{r}");
    assert_eq!(r["workers"], 2, "{r}");
    assert!(
        r["relay_connected_peers"].as_u64().expect("peers") >= 400,
        "{r}"
    );
    assert_eq!(r["lost"], 0, "{r}");
    let delivered = r["probe_delivered"].as_str().expect("probe");
    let (got, of) = delivered.split_once('/').expect("n/m");
    assert_eq!(got, of, "{r}");
    assert!(of.parse::<u64>().expect("count") >= 40 * 4, "{r}");
    assert!(
        r["relay_kib_per_connection"].as_f64().expect("kib") > 0.0,
        "{r}"
    );
    assert!(r["newcomer_s"].as_f64().expect("newcomer") < 10.0, "{r}");
}

#[test]
#[ignore = "starts benchmark processes: run with --ignored (scripts/test.sh does)"]
fn a_profiler_wrapping_the_relay_is_given_time_to_write_its_output() {
    // A stand-in for `heaptrack -o FILE`: runs the relay, then takes a while to write.
    let dir = std::env::temp_dir().join(format!("p2p-chat-wrapper-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let script = dir.join("wrap.sh");
    let output = dir.join("profile");
    std::fs::write(
        &script,
        format!("\"$@\"\nsleep 3\necho written > '{}'\n", output.display()),
    )
    .expect("wrapper script");
    let out = Command::new(BIN)
        .args(["bench", "idle", "--peers", "10", "--peers-per-worker", "10"])
        .args(["--rest", "1s", "--sample-rooms", "2", "--quic-every", "0"])
        .args(["--time-limit", "100s"])
        .env("BENCH_RELAY_WRAPPER", format!("sh {}", script.display()))
        .output()
        .expect("p2p-chat bench runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&output).ok().as_deref(),
        Some("written\n"),
        "the wrapper was killed before it wrote its output"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[ignore = "starts benchmark processes: run with --ignored (scripts/test.sh does)"]
fn a_light_peer_worker_stops_setting_up_once_the_bench_is_gone() {
    // A "relay" that takes connections and never answers: every set-up waits (up to a minute,
    // three times) until the worker sees its bench gone.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let _held: Vec<_> = silent.incoming().collect();
    });
    let id = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    let mut worker = Command::new(BIN)
        .args(["bench", "light-peers", "--relay-tcp"])
        .arg(format!("/ip4/127.0.0.1/tcp/{port}/p2p/{id}"))
        .arg("--relay-quic")
        .arg(format!("/ip4/127.0.0.1/udp/{port}/quic-v1/p2p/{id}"))
        .args(["--first", "0", "--count", "4", "--room-size", "2"])
        .args(["--quic-every", "0", "--sample-rooms", "1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("worker starts");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        worker.try_wait().expect("status").is_none(),
        "the worker is setting up"
    );
    // The bench's end of the pipe closes, as when the bench is killed.
    drop(worker.stdin.take());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while worker.try_wait().expect("status").is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ended = worker.try_wait().expect("status");
    let _ = worker.kill();
    assert!(
        ended.is_some(),
        "the worker went on setting up peers for a bench that is gone"
    );
}
