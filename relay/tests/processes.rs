//! The real binary: `p2p-chat relay` and `p2p-chat peer --json` processes on loopback.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::procs::*;
use serde_json::{json, Value};

#[test]
fn a_relay_and_two_peer_processes_chat_dm_and_say_goodbye() {
    let dir = temp_dir("chat");
    let (relay, relay_id, relay_tcp, relay_webrtc) = start_relay(&dir.join("relay"));
    assert!(
        relay_tcp.ends_with(&format!("/p2p/{relay_id}")),
        "{relay_tcp}"
    );
    let (mut alice, alice_id) = start_peer(&relay_tcp, "alice", &dir.join("alice"));
    let (mut bob, bob_id) = start_peer(&relay_tcp, "bob", &dir.join("bob"));

    let joined = |id: &str| {
        let id = id.to_owned();
        move |v: &Value| v["event"] == "member_joined" && v["peer"] == id.as_str()
    };
    alice.next_event("bob in the member list", joined(&bob_id));
    bob.next_event("alice in the member list", joined(&alice_id));

    alice.send(json!({"cmd": "send", "text": "hi bob"}));
    let got = bob.next_event("alice's message", |v| v["event"] == "message");
    assert_eq!(
        (
            got["text"].as_str(),
            got["nick"].as_str(),
            got["from"].as_str()
        ),
        (Some("hi bob"), Some("alice"), Some(alice_id.as_str()))
    );
    bob.send(json!({"cmd": "send", "text": "hi alice"}));
    let got = alice.next_event("bob's message", |v| v["event"] == "message");
    assert_eq!(got["text"], "hi alice");

    alice.send(json!({"cmd": "dm", "peer": bob_id, "text": "just you"}));
    let receipt = alice.next_event("dm receipt", |v| {
        v["event"] == "dm_delivered" || v["event"] == "dm_failed"
    });
    assert_eq!(receipt["event"], "dm_delivered", "{receipt}");
    let dm = bob.next_event("the dm", |v| v["event"] == "direct_message");
    assert_eq!(
        (dm["text"].as_str(), dm["from"].as_str()),
        (Some("just you"), Some(alice_id.as_str()))
    );

    // Each sees its own figures: one message and one DM each way, the room with the other.
    alice.send(json!({"cmd": "stats"}));
    let stats = alice.next_event("alice's stats", |v| v["event"] == "stats");
    assert_eq!(
        (
            &stats["messages_sent"],
            &stats["messages_received"],
            &stats["dms_sent"],
            &stats["dms_received"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(0)),
        "{stats}"
    );
    assert!(stats["connections"]["tcp"].as_u64() >= Some(1), "{stats}");
    assert_eq!(stats["rooms"][0]["room"], "lobby", "{stats}");
    assert_eq!(stats["rooms"][0]["members"], 1, "{stats}");
    bob.send(json!({"cmd": "stats"}));
    let stats = bob.next_event("bob's stats", |v| v["event"] == "stats");
    assert_eq!(
        (&stats["messages_sent"], &stats["dms_received"]),
        (&json!(1), &json!(1)),
        "{stats}"
    );

    // Bad input gets one clear line and the peer goes on.
    bob.send(json!({"cmd": "dm", "peer": "nobody", "text": "x"}));
    let error = bob.next_event("an error", |v| v["event"] == "error");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not a peer id"),
        "{error}"
    );
    bob.send(json!({"cmd": "connect", "addr": "not-an-address"}));
    bob.next_event("an error", |v| v["event"] == "error");
    bob.send(json!({"cmd": "send", "text": "x".repeat(20_000)}));
    let error = bob.next_event("an error", |v| v["event"] == "error");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("limit"),
        "{error}"
    );

    // The WebRTC-direct handshake works in the real binary (no rustls provider panic).
    bob.send(json!({"cmd": "connect", "addr": relay_webrtc}));
    let dialed = bob.next_event("webrtc-direct dial", |v| {
        v["event"] == "dialed" || v["event"] == "error"
    });
    assert_eq!(dialed["event"], "dialed", "{dialed}");
    assert_eq!(dialed["peer"], relay_id.as_str());

    // SIGTERM: alice says goodbye and exits cleanly.
    alice.signal("-TERM");
    let left = bob.next_event("alice leaving", |v| v["event"] == "member_left");
    assert_eq!(
        (left["peer"].as_str(), left["reason"].as_str()),
        (Some(alice_id.as_str()), Some("left"))
    );
    let status = alice.child.wait().expect("alice exits");
    assert!(status.success(), "{status}");

    drop(relay);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_restarted_relay_keeps_its_peer_id_and_certhash() {
    let dir = temp_dir("restart");
    let (first, id, _, webrtc) = start_relay(&dir);
    drop(first);
    let (_second, id_again, _, webrtc_again) = start_relay(&dir);
    assert_eq!(id, id_again);
    let certhash = |addr: &str| {
        addr.split("/certhash/")
            .nth(1)
            .map(|s| s.split('/').next().unwrap_or_default().to_owned())
    };
    assert_eq!(certhash(&webrtc), certhash(&webrtc_again));
    assert!(certhash(&webrtc).is_some());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_frozen_peer_is_dropped_by_the_relay() {
    let dir = temp_dir("frozen");
    let (relay, _, relay_tcp, _) = start_relay(&dir.join("relay"));
    let (peer, peer_id) = start_peer(&relay_tcp, "sleepy", &dir.join("peer"));
    relay.stderr_line(
        "the peer's connection",
        &format!("peer connected peer={peer_id}"),
        WAIT,
    );
    // A stopped process keeps its sockets open but answers nothing, like a closed laptop.
    peer.signal("-STOP");
    let started = Instant::now();
    relay.stderr_line(
        "the relay to drop the frozen peer",
        &format!("peer disconnected peer={peer_id}"),
        Duration::from_secs(60),
    );
    eprintln!(
        "frozen peer dropped after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    peer.signal("-CONT");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_peer_reading_plain_lines_from_a_pipe_chats_and_exits_at_end_of_input() {
    let dir = temp_dir("pipe");
    let (_relay, _, relay_tcp, _) = start_relay(&dir.join("relay"));
    let (listener, _) = start_peer(&relay_tcp, "listener", &dir.join("listener"));
    let mut talker = spawn(&[
        "peer",
        "--relay",
        &relay_tcp,
        "--nick",
        "talker",
        "--no-mdns",
        "--no-upnp",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--data-dir",
        dir.join("talker").to_str().expect("utf8"),
    ]);
    talker.next_line("the talker's greeting", |l| l.starts_with("p2p-chat peer "));
    listener.next_event("the talker joining", |v| {
        v["event"] == "member_joined" && v["nick"] == "talker"
    });
    writeln!(talker.stdin.as_mut().expect("stdin"), "plain words").expect("write");
    let got = listener.next_event("the plain line", |v| {
        v["event"] == "message" && v["text"] == "plain words"
    });
    assert_eq!(got["nick"], "talker");
    // The talker sees the listener's join as a plain line, not JSON.
    talker.next_line("a human-readable notice", |l| {
        l.starts_with("* listener (") && l.ends_with("joined lobby")
    });
    drop(talker.stdin.take()); // end of input
                               // Its goodbye, or (when the goodbye raced a connection opened just before it) the relay's
                               // notice that it disconnected: either way the talker leaves the list at once.
    listener.next_event("the talker leaving", |v| {
        v["event"] == "member_left" && (v["reason"] == "left" || v["reason"] == "disconnected")
    });
    assert!(talker.child.wait().expect("exits").success());
    let _ = std::fs::remove_dir_all(dir);
}

/// `p2p-chat health` with `env` set, run to its end: whether it succeeded, its stdout and stderr.
fn health(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .arg("health")
        .args(args)
        .env_remove("P2P_CHAT_HTTP_ADDR")
        .envs(env.iter().copied())
        .output()
        .expect("p2p-chat health runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn p2p_chat_health_succeeds_only_while_the_relay_answers_healthy() {
    let dir = temp_dir("health");
    let relay = spawn(&[
        "relay",
        "--listen-addr",
        "127.0.0.1",
        "--port",
        "0",
        "--http-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().expect("utf8"),
    ]);
    let web = relay.next_line("the web address", |l| l.starts_with("web app: http://"));
    let http = web.trim_start_matches("web app: http://").to_owned();
    relay.next_line("the relay listening", |l| l.starts_with("listening: "));

    // The address from the environment, as in the container image.
    let (ok, out, err) = health(&[], &[("P2P_CHAT_HTTP_ADDR", &http)]);
    assert!(ok, "health failed: {out} {err}");
    let answer: Value = serde_json::from_str(out.trim()).expect("the answer is JSON");
    assert_eq!(answer["status"], "ok", "{out}");

    drop(relay);
    let (ok, _, err) = health(&["--http-addr", &http], &[]);
    assert!(!ok, "health succeeded with the relay gone");
    assert!(
        err.contains(&format!("cannot reach the relay's HTTP server at {http}")),
        "{err}"
    );

    // Something else on the port, even answering 200: refused by name, not taken for a
    // healthy relay. A server answering as a stalled relay does: not healthy.
    for (reply, expected) in [
        (
            &b"SSH-2.0-OpenSSH_9.2\r\n"[..],
            "did not answer /healthz as the relay does",
        ),
        (
            &b"HTTP/1.1 200 OK\r\n\r\n<html>a web server's page</html>"[..],
            "not the relay's /healthz answer",
        ),
        (
            &b"HTTP/1.1 503 Service Unavailable\r\n\r\n{\"status\":\"stalled\"}"[..],
            "is not healthy: /healthz answered 503",
        ),
    ] {
        let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let other_addr = other.local_addr().expect("addr").to_string();
        let server = std::thread::spawn(move || {
            if let Ok((mut stream, _)) = other.accept() {
                // The request first: closing on unread bytes would reset the connection.
                let _ = std::io::Read::read(&mut stream, &mut [0; 1024]);
                let _ = stream.write_all(reply);
            }
        });
        let (ok, _, err) = health(&["--http-addr", &other_addr], &[]);
        assert!(!ok, "health took {reply:?} for a healthy relay");
        assert!(err.contains(expected), "{expected:?} not in {err}");
        let _ = server.join();
    }

    // A server that never answers: the wait is bounded.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr").to_string();
    let started = Instant::now();
    let (ok, _, err) = health(&["--http-addr", &silent_addr, "--timeout", "1s"], &[]);
    assert!(!ok, "health succeeded against a silent server");
    assert!(err.contains("did not answer /healthz within 1s"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
    let _ = std::fs::remove_dir_all(dir);
}

/// `deploy/p2p-chat-relay.service`: systemd finds nothing to remark in it, and the relay takes
/// every setting it gives (a misspelt `P2P_CHAT_*` name would be ignored without a word). Only
/// the addresses a test may use are changed: loopback, free ports, a temporary data directory,
/// and a self-signed certificate where systemd would hand over the ACME client's.
#[test]
fn the_systemd_unit_passes_systemd_analyze_and_the_relay_takes_its_settings() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/p2p-chat-relay.service"
    ))
    .expect("the unit file");
    let dir = temp_dir("unit");
    std::fs::create_dir_all(&dir).expect("test dir");
    let copy = dir.join("p2p-chat-relay.service");
    // systemd-analyze wants the binary of ExecStart to be there.
    std::fs::write(&copy, unit.replace("/usr/local/bin/p2p-chat", BIN)).expect("write the unit");
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (Debian's systemd package) runs");
    let remarks = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        verify.status.success() && remarks.trim().is_empty(),
        "{remarks}"
    );

    // The certificate and key come from systemd's credentials directory (%d), under the names
    // the unit's LoadCredential lines give them.
    let loaded: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.strip_prefix("LoadCredential="))
        .filter_map(|spec| spec.split_once(':').map(|(id, _)| id))
        .collect();
    let credential = |name: &str| {
        let value = unit
            .lines()
            .find_map(|line| line.strip_prefix(&format!("Environment={name}=")))
            .unwrap_or_else(|| panic!("the unit sets no {name}"));
        let id = value
            .strip_prefix("%d/")
            .unwrap_or_else(|| panic!("{name} is not in the credentials directory: {value}"));
        assert!(
            loaded.contains(&id),
            "{name} names {id}, which no LoadCredential loads: {loaded:?}"
        );
        id.to_owned()
    };
    let (cert_id, key_id) = (
        credential("P2P_CHAT_TLS_CERT"),
        credential("P2P_CHAT_TLS_KEY"),
    );
    let credentials = dir.join("credentials");
    std::fs::create_dir_all(&credentials).expect("credentials dir");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=chat.example.org", "-keyout"])
        .arg(credentials.join(&key_id))
        .arg("-out")
        .arg(credentials.join(&cert_id))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(made.success(), "openssl made no certificate");

    let settings: Vec<(String, String)> = unit
        .lines()
        .filter_map(|line| line.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let v = v.replace("%d", credentials.to_str().expect("utf8"));
            (k.to_owned(), v)
        })
        .collect();
    let names: Vec<&str> = settings.iter().map(|(k, _)| k.as_str()).collect();
    for name in [
        "P2P_CHAT_DATA_DIR",
        "P2P_CHAT_WEB_DIR",
        "P2P_CHAT_HTTP_ADDR",
        "P2P_CHAT_EXTERNAL_ADDR",
        "P2P_CHAT_TLS_CERT",
        "P2P_CHAT_TLS_KEY",
    ] {
        assert!(names.contains(&name), "the unit sets no {name}: {names:?}");
    }
    let data = dir.join("data");
    let mut command = std::process::Command::new(BIN);
    command.arg("relay").env_clear();
    for (name, value) in &settings {
        let value = match name.as_str() {
            "P2P_CHAT_DATA_DIR" => data.to_str().expect("utf8").to_owned(),
            "P2P_CHAT_HTTP_ADDR" => "127.0.0.1:0".to_owned(),
            _ => value.clone(),
        };
        command.env(name, value);
    }
    command
        .env("P2P_CHAT_LISTEN_ADDR", "127.0.0.1")
        .env("P2P_CHAT_PORT", "0")
        .env("P2P_CHAT_ADMIN_ADDR", "127.0.0.1:0");
    let relay = spawn_command(&mut command);
    let id = relay.next_line("the relay's peer id", |l| l.starts_with("peer id: "));
    let id = id.trim_start_matches("peer id: ");
    relay.next_line("its data directory", |l| {
        l == format!("data dir: {}", data.display())
    });
    let external = settings
        .iter()
        .find(|(k, _)| k == "P2P_CHAT_EXTERNAL_ADDR")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    for addr in external.split(',') {
        relay.next_line("an external address of the unit", |l| {
            l == format!("external: {addr}/p2p/{id}")
        });
    }
    // The certificate was taken: the relay listens on /tls/ws.
    relay.next_line("the /tls/ws listener", |l| {
        l.starts_with("listening: ") && l.contains("/tls/ws/")
    });
    drop(relay);
    let _ = std::fs::remove_dir_all(dir);
}

/// Compose files pass a setting left unset as an empty variable: a blank
/// `P2P_CHAT_EXTERNAL_ADDR` or `P2P_CHAT_PEERS` means no address. (An empty external address
/// was announced, and kept the relay from announcing its listen addresses; an empty peer
/// stopped it from starting.) An empty item beside others, or given as a flag, is still refused.
#[test]
fn blank_address_settings_mean_none_and_empty_items_are_refused() {
    let dir = temp_dir("empty-addrs");
    let relay_command = |dir: &std::path::Path| {
        let mut command = std::process::Command::new(BIN);
        command
            .args(["relay", "--listen-addr", "127.0.0.1", "--port", "0"])
            .args(["--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir)
            .env_remove("P2P_CHAT_EXTERNAL_ADDR")
            .env_remove("P2P_CHAT_PEERS");
        command
    };
    let mut command = relay_command(&dir.join("blank"));
    command
        .env("P2P_CHAT_EXTERNAL_ADDR", "")
        .env("P2P_CHAT_PEERS", " ");
    let relay = spawn_command(&mut command);
    let mut before = Vec::new();
    relay.next_line("the relay listening", |l| {
        before.push(l.to_owned());
        l.starts_with("listening: ")
    });
    assert!(
        !before.iter().any(|l| l.starts_with("external: ")),
        "{before:#?}"
    );
    drop(relay);

    // A relay that should refuse to start: its error, once it has exited.
    let refused = |mut command: std::process::Command| {
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("p2p-chat starts");
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let running = matches!(child.try_wait(), Ok(None));
        let _ = child.kill();
        let out = child.wait_with_output().expect("output");
        assert!(!running, "the relay started");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let mut extra_comma = relay_command(&dir.join("comma"));
    extra_comma.env(
        "P2P_CHAT_PEERS",
        "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDp5EG3kbNz1JNahWepHjgTsQhSXyW7k3Uex9QqQz4CLN,",
    );
    let err = refused(extra_comma);
    assert!(err.contains("an empty address (an extra comma?)"), "{err}");
    let mut empty_flag = relay_command(&dir.join("flag"));
    empty_flag.args(["--external-addr", ""]);
    let err = refused(empty_flag);
    assert!(err.contains("an empty address (an extra comma?)"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
