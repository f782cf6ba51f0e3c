//! The relay under test: `p2p-chat relay` started as its own process (so that its memory and CPU
//! are its own) on loopback, in a temporary data directory, and read through `/proc`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use libp2p::{core::multiaddr::Protocol, Multiaddr};
use p2p_chat_shared::addr::is_relayed;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the relay may take to print its addresses.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for `BENCH_RELAY_WRAPPER` (a profiler) to end once the relay was told to stop:
/// heaptrack takes seconds to write a profile of thousands of connections.
const WRAPPER_EXIT_WAIT: Duration = Duration::from_secs(120);

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ: 100 on every Linux architecture
/// this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// A running relay process; killed when dropped.
pub struct RelayProcess {
    child: Child,
    /// The relay's own process (under `BENCH_RELAY_WRAPPER`, the wrapper's descendant).
    pid: u32,
    /// Whether it runs under a wrapper, which is then not the relay.
    wrapped: bool,
    /// Its TCP address, with `/p2p`.
    pub addr: Multiaddr,
    /// Its QUIC address, with `/p2p`.
    pub quic: Multiaddr,
    /// Its HTTP server (`/healthz`).
    http: std::net::SocketAddr,
    /// Its data directory (store, identity) and log file; removed when dropped.
    dir: PathBuf,
}

/// The words of environment variable `name` (split at spaces; none when it is unset):
/// `BENCH_RELAY_FLAGS`, more flags for the relay (e.g. `--no-metrics`, to measure what metrics
/// cost), and `BENCH_RELAY_WRAPPER`, a command the relay runs under (e.g. `heaptrack -o
/// /tmp/relay`, for a heap profile of the relay under the bench's load).
fn env_words(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `root` and the processes under it (a few levels down: a wrapper is a script or two),
/// searched through `/proc`.
fn process_tree(root: u32) -> Vec<u32> {
    let parent_of = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = stat.rsplit_once(')')?.1;
        after.split_whitespace().nth(1)?.parse().ok()
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![root];
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid: &u32| {
            let mut at = pid;
            for _ in 0..8 {
                if at == root {
                    return true;
                }
                match parent_of(at) {
                    Some(parent) if parent > 1 => at = parent,
                    _ => return false,
                }
            }
            false
        })
        .collect()
}

impl RelayProcess {
    /// Starts `p2p-chat relay` on loopback with OS-chosen ports, plus `extra` flags, without
    /// its limits on one peer: a bench measures what the relay can carry.
    pub async fn start(extra: &[String]) -> anyhow::Result<Self> {
        Self::spawn(extra, false).await
    }

    /// Starts it with its limits on one peer at their defaults, as a public relay runs (only
    /// the per-IP caps are lifted: every bench peer comes from 127.0.0.1).
    pub async fn start_limited(extra: &[String]) -> anyhow::Result<Self> {
        Self::spawn(extra, true).await
    }

    async fn spawn(extra: &[String], limited: bool) -> anyhow::Result<Self> {
        // Every bench peer comes from 127.0.0.1; a bench that measures capacity lifts the
        // per-peer limits too (`bench abuse` keeps them).
        let mut limits = vec!["--rate-per-ip", "1000000", "--connections-per-ip", "0"];
        limits.extend(["--rooms-per-ip", "1000000"]);
        if !limited {
            limits.extend(["--rooms-per-peer", "1000000", "--publish-per-sec", "0"]);
        }
        let exe = std::env::current_exe().context("cannot find the p2p-chat binary")?;
        let dir = std::env::temp_dir().join(format!("p2p-chat-bench-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let log = std::fs::File::create(dir.join("relay.log")).context("relay log file")?;
        let wrapper = env_words("BENCH_RELAY_WRAPPER");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&exe);
                command
            }
            None => Command::new(&exe),
        };
        let mut child = command
            .args(["relay", "--port", "0", "--listen-addr", "127.0.0.1"])
            .args([
                "--http-addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(&dir)
            .arg("--web-dir")
            .arg(dir.join("no-web-app"))
            .args(&limits)
            .args(extra)
            .args(env_words("BENCH_RELAY_FLAGS"))
            .env(
                "RUST_LOG",
                // As the relay's own default: a chat peer's GRAFT of the relay is ignored with
                // a warning from gossipsub (`relay/src/main.rs`).
                std::env::var("BENCH_RELAY_LOG")
                    .unwrap_or("warn,libp2p_gossipsub::behaviour=error".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the relay process")?;
        let pid = child.id().context("relay process has no pid")?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut addr, mut http, mut quic) = (None, None, None);
        let found = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("web app: http://") {
                    http = rest.parse::<std::net::SocketAddr>().ok();
                }
                if let Some(rest) = line.strip_prefix("listening: ") {
                    if let Ok(a) = rest.parse::<Multiaddr>() {
                        if is_plain_tcp(&a) {
                            addr = Some(a);
                        } else if a.iter().any(|p| p == Protocol::QuicV1) && !is_relayed(&a) {
                            quic = Some(a);
                        }
                    }
                }
                if addr.is_some() && http.is_some() && quic.is_some() {
                    return true;
                }
            }
            false
        })
        .await;
        let (Ok(true), Some(addr), Some(http), Some(quic)) = (found, addr, http, quic) else {
            bail!(
                "the relay did not come up within {START_TIMEOUT:?}; see {}",
                dir.join("relay.log").display()
            );
        };
        // Keep draining its stdout so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let wrapped = !wrapper.is_empty();
        let pid = if wrapped {
            let tree = process_tree(pid);
            let runs_exe = |pid: &u32| {
                std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|path| path == exe)
            };
            match tree.iter().copied().find(runs_exe) {
                Some(relay) => relay,
                None => {
                    // Not left running: the wrapper's children do not die with it.
                    for pid in tree {
                        let _ = std::process::Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .status();
                    }
                    bail!(
                        "no process under the BENCH_RELAY_WRAPPER runs {}",
                        exe.display()
                    );
                }
            }
        } else {
            pid
        };
        Ok(Self {
            child,
            pid,
            wrapped,
            addr,
            quic,
            http,
            dir,
        })
    }

    /// Resident memory, bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("relay process status")?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .context("no VmRSS in /proc/<pid>/status")?;
        Ok(kib * 1024)
    }

    /// CPU time used so far (user + system).
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        cpu_time(&self.pid.to_string())
    }

    /// Peers the relay counts as connected (`/healthz`).
    pub async fn connected_peers(&self) -> anyhow::Result<u64> {
        crate::health::ask(self.http)
            .await?
            .connected_peers
            .context("/healthz has no connected_peers")
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if self.wrapped {
            // Stopped as an operator stops it, so that the wrapper (a profiler) sees it end.
            let _ = std::process::Command::new("kill")
                .arg(self.pid.to_string())
                .status();
            // A profiler writes its output once the relay has ended.
            let deadline = std::time::Instant::now() + WRAPPER_EXIT_WAIT;
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            // The relay is the wrapper's child: killing the wrapper would leave it running.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
        let _ = self.child.start_kill();
        if std::env::var_os("BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// CPU time (user + system) used so far by process `pid` (`self`: this one).
pub fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("process stat")?;
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let after = stat.rsplit_once(')').map(|(_, r)| r).context("stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
        bail!("unreadable /proc/{pid}/stat");
    };
    Ok(Duration::from_secs_f64(
        (user + system) as f64 / TICKS_PER_SECOND,
    ))
}

fn is_plain_tcp(addr: &Multiaddr) -> bool {
    let mut protocols = addr.iter();
    matches!(protocols.next(), Some(Protocol::Ip4(_)))
        && matches!(protocols.next(), Some(Protocol::Tcp(_)))
        && matches!(protocols.next(), Some(Protocol::P2p(_)))
}
