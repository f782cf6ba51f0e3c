//! mDNS discovery for real, inside two network namespaces this test creates and joins with a
//! veth pair: multicast stays between them and never reaches the machine's own interface.
//! Needs root (`ip netns`, iproute2). Where namespaces cannot be made the test fails, saying
//! why; set `P2P_CHAT_SKIP_NETNS=1` to skip it there on purpose (it then says so loudly).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Most output lines of a child held unread.
const OUTPUT_LINES: usize = 100_000;

const BIN: &str = env!("CARGO_BIN_EXE_p2p-chat");

/// Two namespaces joined by a veth pair; deleted when dropped.
struct Testbed {
    names: [String; 2],
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Testbed {
    fn create() -> Option<Self> {
        let pid = std::process::id();
        let names = [format!("p2pchat-a-{pid}"), format!("p2pchat-b-{pid}")];
        let bed = Self {
            names: names.clone(),
        };
        let (a, b) = (&names[0], &names[1]);
        let (va, vb) = (format!("vpa{pid}"), format!("vpb{pid}"));
        let ok = ip(&["netns", "add", a])
            && ip(&["netns", "add", b])
            && ip(&[
                "link", "add", &va, "netns", a, "type", "veth", "peer", "name", &vb, "netns", b,
            ])
            && ip(&["-n", a, "addr", "add", "10.77.0.1/24", "dev", &va])
            && ip(&["-n", b, "addr", "add", "10.77.0.2/24", "dev", &vb])
            && ip(&["-n", a, "link", "set", &va, "up"])
            && ip(&["-n", b, "link", "set", &vb, "up"])
            && ip(&["-n", a, "link", "set", "lo", "up"])
            && ip(&["-n", b, "link", "set", "lo", "up"]);
        ok.then_some(bed)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

struct Peer {
    child: Child,
    lines: Receiver<Value>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn start(netns: &str, nick: &str, data_dir: &std::path::Path) -> Self {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                netns,
                BIN,
                "peer",
                "--json",
                "--no-upnp",
                "--nick",
                nick,
            ])
            .args(["--listen", "/ip4/0.0.0.0/tcp/0", "--data-dir"])
            .arg(data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("peer starts");
        let stdout = child.stdout.take().expect("stdout");
        // Bounded, and far more than a test reads: a reader never blocks the child.
        let (tx, lines) = sync_channel(OUTPUT_LINES);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str(&line) {
                    if tx.send(value).is_err() {
                        break;
                    }
                }
            }
        });
        Self { child, lines }
    }

    fn wait(&self, what: &str, mut pick: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) if pick(&v) => return v,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("timed out waiting for {what}");
    }

    fn send(&mut self, command: Value) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{command}").expect("write");
    }
}

#[test]
fn two_peers_on_one_lan_find_each_other_with_mdns_and_chat() {
    if std::env::var_os("P2P_CHAT_SKIP_NETNS").is_some() {
        eprintln!("SKIPPED (P2P_CHAT_SKIP_NETNS is set): mDNS discovery in network namespaces");
        return;
    }
    let Some(_bed) = Testbed::create() else {
        panic!(
            "cannot create network namespaces here (needs root and iproute2); \
             set P2P_CHAT_SKIP_NETNS=1 to skip this test on purpose"
        );
    };
    let dir = std::env::temp_dir().join(format!("p2p-chat-mdns-{}", std::process::id()));
    let mut ann = Peer::start(&_bed.names[0], "ann", &dir.join("ann"));
    let ann_id = ann.wait("ann ready", |v| v["event"] == "ready")["peer_id"].clone();
    ann.wait("ann listening on the LAN", |v| {
        v["event"] == "listening"
            && v["addr"]
                .as_str()
                .is_some_and(|a| a.starts_with("/ip4/10.77.0.1/"))
    });
    // The newcomer asks the LAN who is there; ann answers, and bob dials her.
    let bob = Peer::start(&_bed.names[1], "bob", &dir.join("bob"));
    let bob_id = bob.wait("bob ready", |v| v["event"] == "ready")["peer_id"].clone();
    bob.wait("bob discovers ann", |v| {
        v["event"] == "discovered" && v["peers"].as_array().is_some_and(|p| p.contains(&ann_id))
    });
    ann.wait("bob in ann's room", |v| {
        v["event"] == "member_joined" && v["peer"] == bob_id
    });
    ann.send(json!({"cmd": "send", "text": "found you on the LAN"}));
    let got = bob.wait("ann's message", |v| v["event"] == "message");
    assert_eq!(got["text"], "found you on the LAN");
    let _ = std::fs::remove_dir_all(dir);
}
