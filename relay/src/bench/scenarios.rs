//! The scenarios of `p2p-chat bench`: each starts its own relay process, sets up its peers,
//! drives its workload and returns a [`Report`].

use std::time::Duration;

use anyhow::{bail, Context};
use futures::StreamExt;
use libp2p::identity::Keypair;
use p2p_chat_shared::core::{Event, HistoryMark};
use tokio::time::Instant;

use super::load::{self, Outcome, Pace, Peer};
use super::relay_proc::{cpu_time, RelayProcess};
use super::stats::{round3, Latency, Report};
use p2p_chat_shared::native::{start_peer, PeerSetup};

/// Deliveries a throughput phase lets be outstanding, per receiver of a message: enough to keep
/// the relay busy, few enough that no queue on the way overflows.
const WINDOW_PER_RECEIVER: u64 = 200;

/// CPU used by the relay, and by this process (the peers), between two readings, as shares of
/// one core (100 % = one core busy).
struct CpuWatch {
    relay: Duration,
    peers: Duration,
    at: Instant,
}

impl CpuWatch {
    fn start(relay: &RelayProcess) -> anyhow::Result<Self> {
        Ok(Self {
            relay: relay.cpu()?,
            peers: cpu_time("self")?,
            at: Instant::now(),
        })
    }

    /// Adds `{name}_relay_cpu` and `{name}_peers_cpu`.
    fn report(&self, relay: &RelayProcess, report: &mut Report, name: &str) -> anyhow::Result<()> {
        let elapsed = self.at.elapsed().as_secs_f64().max(1e-9);
        let share = |used: Duration| round3(100.0 * used.as_secs_f64() / elapsed);
        let relay_used = relay.cpu()?.saturating_sub(self.relay);
        let peers_used = cpu_time("self")?.saturating_sub(self.peers);
        report.add(
            &format!("{name}_relay_cpu"),
            share(relay_used),
            "% of a core",
        );
        report.add(
            &format!("{name}_peers_cpu"),
            share(peers_used),
            "% of a core (this process: every peer)",
        );
        Ok(())
    }
}

fn mib(bytes: u64) -> f64 {
    round3(bytes as f64 / (1024.0 * 1024.0))
}

/// Adds the figures of a workload phase named `name`.
fn add_outcome(report: &mut Report, name: &str, outcome: &mut Outcome, fanout: u64) {
    report.add(&format!("{name}_delivered"), outcome.delivered, "");
    report.add(&format!("{name}_expected"), outcome.expected, "");
    report.add(
        &format!("{name}_delivery_ratio"),
        round3(outcome.delivery_ratio()),
        "",
    );
    report.add(&format!("{name}_duplicates"), outcome.duplicates, "");
    if outcome.lagged > 0 || outcome.send_errors > 0 {
        report.add(&format!("{name}_events_dropped"), outcome.lagged, "");
        report.add(&format!("{name}_send_errors"), outcome.send_errors, "");
    }
    report.add(
        &format!("{name}_messages_per_s"),
        outcome.messages_per_second(fanout).round(),
        "msg/s",
    );
    if fanout > 1 {
        report.add(
            &format!("{name}_deliveries_per_s"),
            outcome.deliveries_per_second().round(),
            "deliveries/s",
        );
    }
    report.add_latency(name, Latency::of(&mut outcome.latencies));
}

async fn setup(
    relay: &RelayProcess,
    rooms: Vec<String>,
    report: &mut Report,
    deadline: Instant,
) -> anyhow::Result<Vec<Peer>> {
    let started = Instant::now();
    let count = rooms.len();
    let peers = load::start_peers(&relay.addr, rooms, deadline).await?;
    load::wait_for_members(&peers, deadline).await?;
    report.add("peers", count, "");
    report.add(
        "setup_s",
        round3(started.elapsed().as_secs_f64()),
        "s (connect, reserve, join, see every member)",
    );
    Ok(peers)
}

/// Two peers through the relay.
pub async fn latency(
    messages: u64,
    rate: u64,
    burst: u64,
    deadline: Instant,
) -> anyhow::Result<Report> {
    let relay = RelayProcess::start(&[]).await?;
    let mut report = Report::default();
    let mut peers = setup(
        &relay,
        vec!["bench-latency".to_owned(); 2],
        &mut report,
        deadline,
    )
    .await?;
    let phases = [
        ("one_at_a_time", messages, Pace::Window(1)),
        ("steady", messages, Pace::Rate(rate)),
        ("throughput", burst, Pace::Window(WINDOW_PER_RECEIVER)),
    ];
    report.add("steady_rate", rate, "msg/s (target)");
    for (name, count, pace) in phases {
        if count == 0 {
            continue;
        }
        let cpu = CpuWatch::start(&relay)?;
        let mut outcome = load::run(
            &mut peers,
            &load::from_first_to_second(count),
            pace,
            deadline,
        )
        .await?;
        add_outcome(&mut report, name, &mut outcome, 1);
        cpu.report(&relay, &mut report, name)?;
    }
    report.add("relay_rss_mib", mib(relay.rss()?), "MiB");
    Ok(report)
}

/// Two honest peers chatting at `rate` through a relay with its limits on, at rest and then
/// while a flooder publishes 10,000 messages a second in their room (coming back with a fresh
/// identity each time it is disconnected): the honest latency in both, side by side.
pub async fn abuse(messages: u64, rate: u64, deadline: Instant) -> anyhow::Result<Report> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let relay = RelayProcess::start_limited(&[]).await?;
    let room = "bench-abuse";
    let mut report = Report::default();
    let mut peers = setup(&relay, vec![room.to_owned(); 2], &mut report, deadline).await?;
    report.add("honest_rate", rate, "msg/s");
    let mut medians = Vec::new();
    for flooded in [false, true] {
        let name = if flooded { "flooded" } else { "rest" };
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(super::flood::Flooded::default());
        let flooder = flooded.then(|| {
            tokio::spawn(super::flood::flood(
                relay.addr.clone(),
                room.to_owned(),
                stop.clone(),
                stats.clone(),
                deadline,
            ))
        });
        if flooded {
            // Let the flood reach its stride before the honest messages start.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let cpu = CpuWatch::start(&relay)?;
        let mut outcome = load::run(
            &mut peers,
            &load::from_first_to_second(messages),
            Pace::Rate(rate),
            deadline,
        )
        .await?;
        let elapsed = cpu.at.elapsed().as_secs_f64().max(1e-9);
        stop.store(true, Ordering::Release);
        if let Some(flooder) = flooder {
            let _ = flooder.await;
            let published = stats.published.load(Ordering::Acquire);
            report.add("flood_sent", published, "messages");
            report.add(
                "flood_rate",
                (published as f64 / (elapsed + 1.0)).round(),
                "msg/s offered",
            );
            report.add(
                "flooder_identities",
                stats.identities.load(Ordering::Acquire),
                "(a new one after each disconnection)",
            );
        }
        let latency = Latency::of(&mut outcome.latencies);
        medians.push(latency.as_ref().map(|l| (l.p50, l.p99)));
        add_outcome(&mut report, name, &mut outcome, 1);
        cpu.report(&relay, &mut report, name)?;
    }
    if let [Some((rest50, rest99)), Some((flood50, flood99))] = medians[..] {
        report.add(
            "p50_flooded_over_rest",
            round3(flood50 / rest50.max(1e-9)),
            "x (goal: under 2)",
        );
        report.add(
            "p99_flooded_over_rest",
            round3(flood99 / rest99.max(1e-9)),
            "x",
        );
    }
    report.add("relay_rss_mib", mib(relay.rss()?), "MiB");
    Ok(report)
}

/// `rooms` rooms of `size` peers, every peer sending its share of `messages`.
pub async fn rooms(
    name: &str,
    rooms: usize,
    size: usize,
    messages: u64,
    deadline: Instant,
) -> anyhow::Result<Report> {
    if size < 2 || rooms == 0 {
        bail!("a room needs at least 2 peers, and there must be at least one room");
    }
    let relay = RelayProcess::start(&[]).await?;
    let mut report = Report::default();
    report.add("rooms", rooms, "");
    report.add("room_size", size, "");
    let names = (0..rooms * size)
        .map(|i| format!("{name}-{}", i / size))
        .collect();
    let mut peers = setup(&relay, names, &mut report, deadline).await?;
    let base_rss = relay.rss()?;
    let fanout = (size - 1) as u64;
    let plan = load::round_robin(&peers, messages);
    let cpu = CpuWatch::start(&relay)?;
    let pace = Pace::Window(WINDOW_PER_RECEIVER * fanout);
    let mut outcome = load::run(&mut peers, &plan, pace, deadline).await?;
    report.add("messages", messages, "");
    add_outcome(&mut report, "load", &mut outcome, fanout);
    cpu.report(&relay, &mut report, "load")?;
    report.add("relay_rss_mib", mib(relay.rss()?), "MiB");
    report.add(
        "relay_rss_growth_mib",
        mib(relay.rss()?.saturating_sub(base_rss)),
        "MiB (during the load)",
    );
    Ok(report)
}

/// `relays` relay processes of one network (each of the others naming the first): two peers one
/// message at a time on one relay, then on two (the latency a hop between relays adds); then
/// one room of `per_relay` peers on every relay, all sending `messages`.
pub async fn federation(
    relays: usize,
    per_relay: usize,
    messages: u64,
    hop_messages: u64,
    deadline: Instant,
) -> anyhow::Result<Report> {
    if relays < 2 || per_relay == 0 {
        bail!("a network needs at least 2 relays, and a peer on each");
    }
    let mut network = vec![RelayProcess::start(&[]).await?];
    let first = network[0].addr.to_string();
    for _ in 1..relays {
        network.push(RelayProcess::start(&["--peer".to_owned(), first.clone()]).await?);
    }
    let started = Instant::now();
    for relay in &network[1..] {
        while relay.connected_peers().await? == 0 {
            if Instant::now() > deadline {
                bail!("a relay did not link to the first within the time limit");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut report = Report::default();
    report.add("relays", relays, "");
    report.add(
        "link_s",
        round3(started.elapsed().as_secs_f64()),
        "s (until every relay is linked to the first)",
    );
    for (name, second) in [("same_relay", 0), ("across_relays", 1)] {
        let room = format!("bench-hop-{name}");
        let mut pair = load::start_peers(&network[0].addr, vec![room.clone()], deadline).await?;
        pair.extend(load::start_peers(&network[second].addr, vec![room], deadline).await?);
        load::wait_for_members(&pair, deadline).await?;
        let plan = load::from_first_to_second(hop_messages);
        let mut outcome = load::run(&mut pair, &plan, Pace::Window(1), deadline).await?;
        add_outcome(&mut report, name, &mut outcome, 1);
    }
    let room = "bench-federation".to_owned();
    let mut peers = Vec::new();
    for relay in &network {
        let rooms = vec![room.clone(); per_relay];
        peers.extend(load::start_peers(&relay.addr, rooms, deadline).await?);
    }
    load::wait_for_members(&peers, deadline).await?;
    report.add("room_peers", peers.len(), "");
    let fanout = (peers.len() - 1) as u64;
    let plan = load::round_robin(&peers, messages);
    let before: Vec<Duration> = network
        .iter()
        .map(RelayProcess::cpu)
        .collect::<anyhow::Result<_>>()?;
    let at = Instant::now();
    let pace = Pace::Window(WINDOW_PER_RECEIVER * fanout);
    let mut outcome = load::run(&mut peers, &plan, pace, deadline).await?;
    let elapsed = at.elapsed().as_secs_f64().max(1e-9);
    report.add("messages", messages, "");
    add_outcome(&mut report, "room", &mut outcome, fanout);
    for (i, (relay, before)) in network.iter().zip(before).enumerate() {
        let used = relay.cpu()?.saturating_sub(before).as_secs_f64();
        report.add(
            &format!("relay{i}_cpu"),
            round3(100.0 * used / elapsed),
            "% of a core (during the room's load)",
        );
    }
    Ok(report)
}

/// `peers` idle peers in rooms of `size`: the relay's memory per connection and CPU at rest.
pub async fn idle(
    peers: usize,
    size: usize,
    rest: Duration,
    deadline: Instant,
) -> anyhow::Result<Report> {
    let relay = RelayProcess::start(&[]).await?;
    // Let the relay finish starting (listeners, store) before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base_rss = relay.rss()?;
    let mut report = Report::default();
    report.add("relay_rss_before_mib", mib(base_rss), "MiB");
    let started = Instant::now();
    let size = size.max(1);
    let names = (0..peers).map(|i| format!("idle-{}", i / size)).collect();
    let nodes = load::start_peers(&relay.addr, names, deadline).await?;
    let connected_after = started.elapsed();
    let connected = relay.connected_peers().await?;
    report.add("peers", peers, "");
    report.add("relay_connected_peers", connected, "(its /healthz)");
    report.add(
        "connect_s",
        round3(connected_after.as_secs_f64()),
        "s (connect, reserve, join)",
    );
    if connected < peers as u64 {
        bail!("the relay counts {connected} connected peers of {peers}");
    }
    // Joins, presence answers and the first pings settle; then the relay is watched at rest.
    let settle = Duration::from_secs(5).min(deadline.saturating_duration_since(Instant::now()));
    tokio::time::sleep(settle).await;
    let cpu = CpuWatch::start(&relay)?;
    let rest = rest.min(deadline.saturating_duration_since(Instant::now()));
    tokio::time::sleep(rest).await;
    let rss = relay.rss()?;
    report.add("rest_s", round3(rest.as_secs_f64()), "s");
    cpu.report(&relay, &mut report, "rest")?;
    report.add("relay_rss_mib", mib(rss), "MiB");
    report.add(
        "relay_kib_per_connection",
        round3(rss.saturating_sub(base_rss) as f64 / 1024.0 / peers.max(1) as f64),
        "KiB",
    );
    drop(nodes);
    Ok(report)
}

/// A newcomer catching up on `messages` stored messages.
pub async fn history(messages: u64, deadline: Instant) -> anyhow::Result<Report> {
    let keep = messages.max(10_000).to_string();
    let relay = RelayProcess::start(&["--history-max-per-room".to_owned(), keep]).await?;
    let room = "bench-history";
    let mut report = Report::default();
    // A writer and a live reader: the reader's deliveries pace the writer.
    let mut peers = setup(&relay, vec![room.to_owned(); 2], &mut report, deadline).await?;
    let plan = load::from_first_to_second(messages);
    let started = Instant::now();
    let outcome = load::run(
        &mut peers,
        &plan,
        Pace::Window(WINDOW_PER_RECEIVER),
        deadline,
    )
    .await?;
    let stored = outcome.stored
        + wait_stored(
            &mut peers[0],
            messages.saturating_sub(outcome.stored),
            deadline,
        )
        .await;
    report.add("stored", stored, "");
    report.add(
        "store_s",
        round3(started.elapsed().as_secs_f64()),
        "s (sent, delivered and acknowledged by the store)",
    );
    if outcome.delivered < messages || stored < messages {
        bail!(
            "only {} of {messages} messages were delivered and {stored} stored before the time limit",
            outcome.delivered
        );
    }

    // A new peer joins from the beginning of time.
    let setup = PeerSetup::behind_relay("bench-newcomer");
    let mut reader = start_peer(Keypair::generate_ed25519(), &setup).await?;
    reader.client.use_relay(vec![relay.addr.clone()]).await?;
    wait_event(&mut reader.events, deadline, |e| {
        matches!(e, Event::ReservationAccepted { .. })
    })
    .await
    .context("the newcomer got no reservation")?;
    let started = Instant::now();
    let mark = HistoryMark {
        newest_ts: 1,
        recent: vec![],
    };
    reader.client.join_after(room, Some(mark)).await?;
    let (mut got, mut in_order, mut last) = (0u64, true, None::<u64>);
    let done = wait_event(&mut reader.events, deadline, |e| match e {
        Event::History { messages, done, .. } => {
            for m in messages {
                let number = m.text.parse::<u64>().ok();
                in_order &= number > last;
                last = number;
                got += 1;
            }
            *done
        }
        _ => false,
    })
    .await;
    let took = started.elapsed();
    report.add("caught_up", got, "messages");
    report.add("in_order", in_order, "");
    report.add(
        "catch_up_ms",
        round3(took.as_secs_f64() * 1000.0),
        "ms (join to the last page shown)",
    );
    report.add(
        "catch_up_messages_per_s",
        (got as f64 / took.as_secs_f64().max(1e-9)).round(),
        "msg/s",
    );
    report.add("relay_rss_mib", mib(relay.rss()?), "MiB");
    if done.is_none() {
        bail!("the catch-up did not finish before the time limit ({got} messages)");
    }
    Ok(report)
}

/// Counts the sender's store receipts until `want` or the deadline.
async fn wait_stored(peer: &mut Peer, want: u64, deadline: Instant) -> u64 {
    let mut stored = 0;
    while stored < want {
        match tokio::time::timeout_at(deadline, peer.node.events.next()).await {
            Ok(Some(Event::Stored { .. })) => stored += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    stored
}

/// Waits for an event `pick` accepts; `None` at the deadline or when the stream ends.
async fn wait_event(
    events: &mut futures::channel::mpsc::Receiver<Event>,
    deadline: Instant,
    mut pick: impl FnMut(&Event) -> bool,
) -> Option<()> {
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(event)) if pick(&event) => return Some(()),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// The shape of a capacity run (`bench idle` with light peers).
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    /// Peers.
    pub peers: usize,
    /// Peers per room.
    pub room_size: usize,
    /// How long the relay is watched at rest.
    pub rest: Duration,
    /// Every Nth room over QUIC (0: none).
    pub quic_every: usize,
    /// Rooms probed in all.
    pub sample_rooms: usize,
    /// Light peers per worker process.
    pub peers_per_worker: usize,
}

/// A worker process of light peers.
struct Worker {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Worker {
    /// The next JSON line it prints, by `deadline`.
    async fn next(&mut self, deadline: Instant) -> anyhow::Result<serde_json::Value> {
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .context("a worker did not answer within the time limit")??
                .context("a worker ended")?;
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
                return Ok(value);
            }
        }
    }

    async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }
}

/// `bench idle` with light peers: `shape.peers` of them in worker processes, each reserved on
/// the relay and in a room; then the relay at rest, a newcomer, `/healthz` and a probe of the
/// rooms while they are all there.
pub async fn capacity(
    shape: Capacity,
    time_limit: Duration,
    deadline: Instant,
) -> anyhow::Result<Report> {
    use tokio::io::AsyncBufReadExt;
    let relay = RelayProcess::start(&[]).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base_rss = relay.rss()?;
    let mut report = Report::default();
    report.add("relay_rss_before_mib", mib(base_rss), "MiB");
    let size = shape.room_size.max(1);
    let per_worker = (shape.peers_per_worker / size).max(1) * size;
    let slices: Vec<(usize, usize)> = (0..shape.peers)
        .step_by(per_worker)
        .map(|first| (first, per_worker.min(shape.peers - first)))
        .collect();
    let started = Instant::now();
    let exe = std::env::current_exe().context("cannot find the p2p-chat binary")?;
    let mut workers = Vec::new();
    for (first, count) in &slices {
        let sample = shape.sample_rooms.div_ceil(slices.len());
        let mut child = tokio::process::Command::new(&exe)
            .args(["bench", "--time-limit"])
            .arg(format!("{}s", time_limit.as_secs()))
            .args(["light-peers", "--relay-tcp"])
            .arg(relay.addr.to_string())
            .arg("--relay-quic")
            .arg(relay.quic.to_string())
            .args(["--first", &first.to_string(), "--count", &count.to_string()])
            .args(["--room-size", &size.to_string()])
            .args(["--quic-every", &shape.quic_every.to_string()])
            .args(["--sample-rooms", &sample.to_string()])
            .env("RUST_LOG", "error")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a light-peer worker")?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let lines = tokio::io::BufReader::new(stdout).lines();
        workers.push(Worker {
            child,
            stdin,
            lines,
        });
    }
    let (mut ready, mut failed, mut errors) = (0, 0, Vec::new());
    for worker in &mut workers {
        let line = worker.next(deadline).await?;
        ready += line["ready"].as_u64().unwrap_or(0);
        failed += line["failed"].as_u64().unwrap_or(0);
        if let Some(list) = line["errors"].as_array() {
            errors.extend(list.iter().filter_map(|e| e.as_str().map(str::to_owned)));
        }
    }
    let connected_after = started.elapsed();
    let connected = relay.connected_peers().await?;
    report.add("peers", shape.peers, "");
    report.add("workers", workers.len(), "processes of light peers");
    report.add(
        "set_up",
        ready,
        "peers connected, reserved and in their room",
    );
    report.add(
        "connect_s",
        round3(connected_after.as_secs_f64()),
        "s (connect, reserve, join: all of them)",
    );
    report.add("relay_connected_peers", connected, "(its /healthz)");
    if failed > 0 {
        bail!(
            "{failed} of {} light peers were not set up: {errors:?}",
            shape.peers
        );
    }
    // Joins and the first pings settle; then the relay is watched at rest.
    let settle = Duration::from_secs(5).min(deadline.saturating_duration_since(Instant::now()));
    tokio::time::sleep(settle).await;
    let cpu = CpuWatch::start(&relay)?;
    let pids: Vec<String> = workers
        .iter()
        .filter_map(|w| w.child.id().map(|p| p.to_string()))
        .collect();
    let workers_cpu =
        |pids: &[String]| -> Duration { pids.iter().filter_map(|p| cpu_time(p).ok()).sum() };
    let workers_before = workers_cpu(&pids);
    let rested = Instant::now();
    let rest = shape
        .rest
        .min(deadline.saturating_duration_since(Instant::now()));
    tokio::time::sleep(rest).await;
    let rss = relay.rss()?;
    report.add("rest_s", round3(rest.as_secs_f64()), "s");
    cpu.report(&relay, &mut report, "rest")?;
    let workers_used = workers_cpu(&pids).saturating_sub(workers_before);
    report.add(
        "rest_workers_cpu",
        round3(100.0 * workers_used.as_secs_f64() / rested.elapsed().as_secs_f64().max(1e-9)),
        "% of a core (the light peers' processes)",
    );
    report.add("relay_rss_mib", mib(rss), "MiB");
    report.add(
        "relay_kib_per_connection",
        round3(rss.saturating_sub(base_rss) as f64 / 1024.0 / shape.peers.max(1) as f64),
        "KiB",
    );
    // While they are all there: /healthz, a newcomer (a full chat peer), and the rooms.
    let asked = Instant::now();
    relay.connected_peers().await?;
    report.add(
        "healthz_ms",
        round3(asked.elapsed().as_secs_f64() * 1e3),
        "ms",
    );
    let joined = Instant::now();
    let newcomer = load::start_peers(&relay.addr, vec!["newcomer".to_owned()], deadline).await?;
    report.add(
        "newcomer_s",
        round3(joined.elapsed().as_secs_f64()),
        "s (a chat peer: connect, reserve, join)",
    );
    drop(newcomer);
    let (mut rooms, mut expected, mut delivered, mut lost) = (0, 0, 0, 0);
    let mut max_ms = 0f64;
    let mut p50s = Vec::new();
    for worker in &mut workers {
        worker.send("probe").await?;
    }
    for worker in &mut workers {
        let line = worker.next(deadline).await?;
        let probe = &line["probe"];
        rooms += probe["rooms"].as_u64().unwrap_or(0);
        expected += probe["expected"].as_u64().unwrap_or(0);
        delivered += probe["delivered"].as_u64().unwrap_or(0);
        lost += probe["lost"].as_u64().unwrap_or(0);
        max_ms = max_ms.max(probe["max_ms"].as_f64().unwrap_or(0.0));
        p50s.push(probe["p50_ms"].as_f64().unwrap_or(0.0));
    }
    p50s.sort_by(f64::total_cmp);
    report.add("probed_rooms", rooms, "");
    report.add(
        "probe_delivered",
        format!("{delivered}/{expected}"),
        "messages across the probed rooms",
    );
    report.add(
        "probe_p50_ms",
        round3(p50s.get(p50s.len() / 2).copied().unwrap_or(0.0)),
        "ms (the median of the workers' medians)",
    );
    report.add("probe_max_ms", round3(max_ms), "ms");
    report.add("lost", lost, "light peers whose connection closed");
    for worker in &mut workers {
        let _ = worker.send("stop").await;
    }
    for mut worker in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker.child.wait()).await;
    }
    if delivered < expected {
        bail!("only {delivered} of {expected} probe messages arrived");
    }
    Ok(report)
}
