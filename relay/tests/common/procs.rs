//! The real binary as child processes: `p2p-chat relay` and `p2p-chat peer --json` on
//! loopback, their output lines waited on with bounded waits.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_p2p-chat");

/// Most output lines of a child held unread.
const OUTPUT_LINES: usize = 100_000;

pub const WAIT: Duration = Duration::from_secs(25);

/// A child process with its output lines arriving on a channel; killed when dropped.
pub struct Proc {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    errors: Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn(args: &[&str]) -> Proc {
    spawn_command(Command::new(BIN).args(args))
}

/// `p2p-chat` with `args`, in the network namespace `netns` (`ip netns exec`).
pub fn spawn_in_netns(netns: &str, args: &[&str]) -> Proc {
    spawn_command(
        Command::new("ip")
            .args(["netns", "exec", netns, BIN])
            .args(args),
    )
}

pub fn spawn_command(command: &mut Command) -> Proc {
    // P2P_CHAT_PROC_RUST_LOG=FILTER gives the children another log filter (with
    // P2P_CHAT_PROC_LOGS, to read after a failure).
    let filter = std::env::var("P2P_CHAT_PROC_RUST_LOG")
        .unwrap_or_else(|_| "info,dtls=error,webrtc=error,webrtc_ice=error".to_owned());
    let mut child = command
        .env("RUST_LOG", filter)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("p2p-chat starts");
    // P2P_CHAT_PROC_LOGS=DIR keeps every child's output in DIR/<pid>.{out,err}, to read after a
    // failure.
    let keep = std::env::var_os("P2P_CHAT_PROC_LOGS").map(PathBuf::from);
    let pid = child.id();
    let pipe = |reader: Box<dyn std::io::Read + Send>, kind: &str| {
        // Bounded, and far more than a test reads: a reader never blocks the child.
        let (tx, rx) = sync_channel(OUTPUT_LINES);
        let mut copy = keep
            .as_ref()
            .and_then(|dir| std::fs::File::create(dir.join(format!("{pid}.{kind}"))).ok());
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                if let Some(file) = copy.as_mut() {
                    let _ = writeln!(file, "{line}");
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let lines = pipe(Box::new(child.stdout.take().expect("stdout")), "out");
    let errors = pipe(Box::new(child.stderr.take().expect("stderr")), "err");
    let stdin = child.stdin.take();
    Proc {
        child,
        stdin,
        lines,
        errors,
    }
}

impl Proc {
    pub fn next_line(&self, what: &str, mut pick: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if pick(&line) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("timed out waiting for {what}");
    }

    pub fn next_event(&self, what: &str, mut pick: impl FnMut(&Value) -> bool) -> Value {
        let line = self.next_line(what, |line| {
            serde_json::from_str(line)
                .map(|v| pick(&v))
                .unwrap_or(false)
        });
        serde_json::from_str(&line).expect("json")
    }

    /// The next event `pick` accepts within `within`, if any.
    pub fn try_event(
        &self,
        within: Duration,
        mut pick: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Ok(value) = serde_json::from_str::<Value>(&line) {
                        if pick(&value) {
                            return Some(value);
                        }
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    pub fn stderr_line(&self, what: &str, needle: &str, within: Duration) -> String {
        self.log_line(what, within, |line| line.contains(needle))
    }

    /// The next line of the child's log `pick` accepts within `within`.
    pub fn log_line(
        &self,
        what: &str,
        within: Duration,
        mut pick: impl FnMut(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.errors.recv_timeout(left) {
                Ok(line) if pick(&line) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("timed out waiting for {what}");
    }

    pub fn send(&mut self, command: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{command}").expect("write command");
        stdin.flush().expect("flush");
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("p2p-chat-proc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Starts a relay on loopback; returns it, its peer id, TCP and WebRTC-direct addresses.
pub fn start_relay(data_dir: &Path) -> (Proc, String, String, String) {
    start_relay_with(data_dir, &[])
}

/// A relay process with `extra` flags.
pub fn start_relay_with(data_dir: &Path, extra: &[&str]) -> (Proc, String, String, String) {
    // Port 0 (the OS picks) unless `extra` names one.
    let port = if extra.contains(&"--port") {
        vec![]
    } else {
        vec!["--port", "0"]
    };
    let mut args = vec![
        "relay",
        "--listen-addr",
        "127.0.0.1",
        "--http-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.to_str().expect("utf8"),
    ];
    args.extend_from_slice(&port);
    args.extend_from_slice(extra);
    let relay = spawn(&args);
    let id = relay.next_line("relay peer id", |l| l.starts_with("peer id: "));
    let id = id.trim_start_matches("peer id: ").to_owned();
    let (mut tcp, mut webrtc) = (None, None);
    while tcp.is_none() || webrtc.is_none() {
        let line = relay.next_line("relay addresses", |l| l.starts_with("listening: "));
        let addr = line.trim_start_matches("listening: ").to_owned();
        if addr.contains("/webrtc-direct/certhash/") {
            webrtc = Some(addr);
        } else if addr.contains("/tcp/") && !addr.contains("/ws") {
            tcp = Some(addr);
        }
    }
    (relay, id, tcp.expect("tcp"), webrtc.expect("webrtc"))
}

pub fn start_peer(relay: &str, nick: &str, data_dir: &Path) -> (Proc, String) {
    start_peer_on(&[relay], nick, data_dir)
}

/// A peer process holding a reservation on each of `relays`.
pub fn start_peer_on(relays: &[&str], nick: &str, data_dir: &Path) -> (Proc, String) {
    let mut args = vec!["peer"];
    for relay in relays {
        args.extend(["--relay", relay]);
    }
    // WebRTC-direct dials need a UDP socket of their own: listen on one too.
    args.extend([
        "--nick",
        nick,
        "--json",
        "--no-mdns",
        "--no-upnp",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--listen",
        "/ip4/127.0.0.1/udp/0/webrtc-direct",
        "--data-dir",
        data_dir.to_str().expect("utf8"),
    ]);
    let peer = spawn(&args);
    let ready = peer.next_event("ready", |v| v["event"] == "ready");
    (peer, ready["peer_id"].as_str().expect("peer id").to_owned())
}

/// A CLI peer that reaches others only through `relay` (its IP address stays hidden).
pub fn relay_only_peer(relay: &str, nick: &str, dir: &Path) -> (Proc, String) {
    relay_only_peer_with(relay, nick, dir, &[])
}

/// The same, with `extra` flags.
pub fn relay_only_peer_with(relay: &str, nick: &str, dir: &Path, extra: &[&str]) -> (Proc, String) {
    let dir = dir.to_str().expect("utf8");
    let mut args = vec![
        "peer",
        "--relay",
        relay,
        "--relay-only",
        "--nick",
        nick,
        "--json",
    ];
    args.extend_from_slice(&["--data-dir", dir]);
    args.extend_from_slice(extra);
    let peer = spawn(&args);
    let ready = peer.next_event("ready", |v| v["event"] == "ready");
    peer.next_event("a reservation", |v| v["event"] == "reservation_accepted");
    (peer, ready["peer_id"].as_str().expect("peer id").to_owned())
}
