//! The load side of a benchmark: chat peers in this process (the same chat core and transports
//! as `p2p-chat peer`, listening on nothing, so everything goes through the relay), and a
//! workload of numbered room messages whose every delivery is timed and counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::{stream, StreamExt};
use libp2p::{identity::Keypair, Multiaddr};
use p2p_chat_shared::core::{Client, Event};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use p2p_chat_shared::native::{start_peer, Node, PeerSetup};

/// Longest wait for one peer to get its reservation and its room.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Peers being set up at once (the relay accepts 512 pending connections).
const SETUP_CONCURRENCY: usize = 64;

/// How long receivers keep listening after the last expected delivery, to catch duplicates.
const DUPLICATE_GRACE: Duration = Duration::from_millis(300);

/// A chat peer of the benchmark, joined to `room` through the relay.
pub struct Peer {
    /// The running node.
    pub node: Node,
    /// Its room.
    pub room: String,
}

/// Starts one peer per entry of `rooms` (the room each joins), each reserved on the relay and
/// ready in its room; `SETUP_CONCURRENCY` at a time. Returns them in the order of `rooms`.
pub async fn start_peers(
    relay: &Multiaddr,
    rooms: Vec<String>,
    deadline: Instant,
) -> anyhow::Result<Vec<Peer>> {
    let count = rooms.len();
    let started = stream::iter(rooms.into_iter().enumerate())
        .map(|(i, room)| start_one(relay.clone(), i, room))
        .buffered(SETUP_CONCURRENCY)
        .collect::<Vec<anyhow::Result<Peer>>>();
    match tokio::time::timeout_at(deadline, started).await {
        Ok(started) => started.into_iter().collect(),
        Err(_) => bail!("the {count} peers were not all set up within the time limit"),
    }
}

async fn start_one(relay: Multiaddr, index: usize, room: String) -> anyhow::Result<Peer> {
    let setup = PeerSetup::behind_relay(&format!("bench-{index}"));
    let mut node = start_peer(Keypair::generate_ed25519(), &setup).await?;
    let ready = tokio::time::timeout(SETUP_TIMEOUT, async {
        node.client.use_relay(vec![relay]).await?;
        while let Some(event) = node.events.next().await {
            if matches!(event, Event::ReservationAccepted { .. }) {
                break;
            }
        }
        node.client.join(room.clone()).await?;
        loop {
            let rooms = node.client.rooms().await?;
            if rooms.iter().any(|r| r.room == room && r.ready) {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    match ready {
        Ok(Ok(())) => Ok(Peer { node, room }),
        Ok(Err(e)) => Err(e).with_context(|| format!("bench peer {index}")),
        Err(_) => bail!("bench peer {index} was not in room {room} after {SETUP_TIMEOUT:?}"),
    }
}

/// Waits until every peer lists every other peer of its room as a member: the relay then
/// forwards each one's messages to all the others.
pub async fn wait_for_members(peers: &[Peer], deadline: Instant) -> anyhow::Result<()> {
    let mut by_room: HashMap<&str, usize> = HashMap::new();
    for p in peers {
        *by_room.entry(p.room.as_str()).or_default() += 1;
    }
    for (i, peer) in peers.iter().enumerate() {
        let want = by_room[peer.room.as_str()] - 1;
        loop {
            let info = peer.node.client.peers(Some(peer.room.clone())).await?;
            if info.members.len() >= want {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "bench peer {i} sees {} of the {want} other members of {}",
                    info.members.len(),
                    peer.room
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// How senders pace themselves.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Message `i` (numbered across all senders) leaves `i / rate` seconds after the start.
    Rate(u64),
    /// A send waits while more than this many deliveries are outstanding (1 with one receiver:
    /// one message at a time).
    Window(u64),
}

/// One message of a workload: who sends it, and how many peers must receive it.
#[derive(Debug, Clone, Copy)]
pub struct Planned {
    /// Index of the sending peer.
    pub sender: usize,
    /// Receivers expected (the sender's room, minus the sender).
    pub fanout: u64,
}

/// Messages spread round-robin over `peers`: `count` in all.
pub fn round_robin(peers: &[Peer], count: u64) -> Vec<Planned> {
    let mut room_size: HashMap<&str, u64> = HashMap::new();
    for p in peers {
        *room_size.entry(p.room.as_str()).or_default() += 1;
    }
    (0..count)
        .map(|i| {
            let sender = (i % peers.len() as u64) as usize;
            Planned {
                sender,
                fanout: room_size[peers[sender].room.as_str()] - 1,
            }
        })
        .collect()
}

/// `count` messages from peer 0 to its one room-mate.
pub fn from_first_to_second(count: u64) -> Vec<Planned> {
    let one = Planned {
        sender: 0,
        fanout: 1,
    };
    vec![one; usize::try_from(count).unwrap_or(usize::MAX)]
}

/// What a workload measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Publish-to-delivery time of every first delivery.
    pub latencies: Vec<Duration>,
    /// Deliveries expected (each message times its receivers).
    pub expected: u64,
    /// First deliveries.
    pub delivered: u64,
    /// Copies of a message a receiver had already had.
    pub duplicates: u64,
    /// Events the core dropped because a receiver fell behind.
    pub lagged: u64,
    /// Sends the core refused.
    pub send_errors: u64,
    /// Store receipts the senders got.
    pub stored: u64,
    /// First send to last first delivery.
    pub elapsed: Duration,
}

impl Outcome {
    /// First deliveries per second.
    pub fn deliveries_per_second(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Messages (not deliveries) per second, for a workload where each has `fanout` receivers.
    pub fn messages_per_second(&self, fanout: u64) -> f64 {
        self.deliveries_per_second() / fanout.max(1) as f64
    }

    /// First deliveries over expected ones.
    pub fn delivery_ratio(&self) -> f64 {
        if self.expected == 0 {
            return 1.0;
        }
        self.delivered as f64 / self.expected as f64
    }
}

struct Tracker {
    start: Instant,
    /// Send time of each message, nanoseconds after `start` plus one; 0 until sent.
    sent_at: Vec<AtomicU64>,
    /// Deliveries owed by the messages sent so far.
    owed: AtomicU64,
    delivered: AtomicU64,
    /// Nanoseconds after `start` of the last first delivery.
    last_delivery: AtomicU64,
    progress: Notify,
}

impl Tracker {
    fn outstanding(&self) -> u64 {
        self.owed
            .load(Ordering::Acquire)
            .saturating_sub(self.delivered.load(Ordering::Acquire))
    }
}

/// Runs `plan` over `peers` (text: the message's number) and times every delivery, until every
/// expected delivery arrived or `deadline` passed. The peers' event streams are drained
/// meanwhile and handed back.
pub async fn run(
    peers: &mut [Peer],
    plan: &[Planned],
    pace: Pace,
    deadline: Instant,
) -> anyhow::Result<Outcome> {
    let tracker = Arc::new(Tracker {
        start: Instant::now(),
        sent_at: (0..plan.len()).map(|_| AtomicU64::new(0)).collect(),
        owed: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        last_delivery: AtomicU64::new(0),
        progress: Notify::new(),
    });
    let expected: u64 = plan.iter().map(|m| m.fanout).sum();
    let (stop_tx, stop_rx) = watch::channel(false);

    // One receiver per peer: owns the peer's events for the whole run.
    let mut receivers = Vec::new();
    for peer in peers.iter_mut() {
        let (events_tx, events) = futures::channel::mpsc::channel(1);
        let events = std::mem::replace(&mut peer.node.events, events);
        drop(events_tx);
        receivers.push(tokio::spawn(receive(
            events,
            tracker.clone(),
            stop_rx.clone(),
            deadline,
        )));
    }

    // One sender per sending peer, each with its share of the plan.
    let mut shares: HashMap<usize, Vec<(usize, u64)>> = HashMap::new();
    for (number, m) in plan.iter().enumerate() {
        shares.entry(m.sender).or_default().push((number, m.fanout));
    }
    let senders: Vec<_> = shares
        .into_iter()
        .map(|(sender, share)| {
            let client = peers[sender].node.client.clone();
            let room = peers[sender].room.clone();
            tokio::spawn(send(client, room, share, tracker.clone(), pace, deadline))
        })
        .collect();
    let mut send_errors = 0;
    for sender in senders {
        send_errors += sender.await.context("sender task")?;
    }
    // Every expected delivery, or the deadline.
    while tracker.delivered.load(Ordering::Acquire) < expected && Instant::now() < deadline {
        let notified = tracker.progress.notified();
        if tracker.delivered.load(Ordering::Acquire) >= expected {
            break;
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
    tokio::time::sleep(DUPLICATE_GRACE).await;
    let _ = stop_tx.send(true);

    let mut outcome = Outcome {
        expected,
        send_errors,
        ..Outcome::default()
    };
    for (peer, receiver) in peers.iter_mut().zip(receivers) {
        let r = receiver.await.context("receiver task")?;
        peer.node.events = r.events;
        outcome.latencies.extend(r.latencies);
        outcome.delivered += r.delivered;
        outcome.duplicates += r.duplicates;
        outcome.lagged += r.lagged;
        outcome.stored += r.stored;
    }
    let first_send = tracker
        .sent_at
        .iter()
        .map(|t| t.load(Ordering::Acquire))
        .filter(|&t| t > 0)
        .min()
        .unwrap_or(1);
    let last = tracker.last_delivery.load(Ordering::Acquire);
    outcome.elapsed = Duration::from_nanos(last.saturating_sub(first_send - 1));
    Ok(outcome)
}

fn nanos_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

async fn send(
    client: Client,
    room: String,
    share: Vec<(usize, u64)>,
    tracker: Arc<Tracker>,
    pace: Pace,
    deadline: Instant,
) -> u64 {
    let mut errors = 0;
    for (number, fanout) in share {
        match pace {
            Pace::Rate(rate) => {
                let at =
                    tracker.start + Duration::from_secs_f64(number as f64 / rate.max(1) as f64);
                tokio::time::sleep_until(at.min(deadline)).await;
            }
            Pace::Window(window) => loop {
                let notified = tracker.progress.notified();
                if tracker.outstanding() < window {
                    break;
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    break;
                }
            },
        }
        if Instant::now() >= deadline {
            break;
        }
        tracker.owed.fetch_add(fanout, Ordering::AcqRel);
        tracker.sent_at[number].store(nanos_since(tracker.start) + 1, Ordering::Release);
        if client
            .send_message(&room, number.to_string())
            .await
            .is_err()
        {
            errors += 1;
            tracker.owed.fetch_sub(fanout, Ordering::AcqRel);
        }
    }
    errors
}

struct Received {
    events: futures::channel::mpsc::Receiver<Event>,
    latencies: Vec<Duration>,
    delivered: u64,
    duplicates: u64,
    lagged: u64,
    stored: u64,
}

async fn receive(
    mut events: futures::channel::mpsc::Receiver<Event>,
    tracker: Arc<Tracker>,
    mut stop: watch::Receiver<bool>,
    deadline: Instant,
) -> Received {
    let mut seen = vec![false; tracker.sent_at.len()];
    let mut r = Received {
        events: futures::channel::mpsc::channel(1).1,
        latencies: Vec::new(),
        delivered: 0,
        duplicates: 0,
        lagged: 0,
        stored: 0,
    };
    loop {
        let event = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tokio::time::sleep_until(deadline) => break,
            event = events.next() => event,
        };
        match event {
            None => break,
            Some(Event::Message(m)) => {
                let Some(number) = m.text.parse::<usize>().ok().filter(|&n| n < seen.len()) else {
                    continue;
                };
                let sent = tracker.sent_at[number].load(Ordering::Acquire);
                if sent == 0 {
                    continue; // a late copy from an earlier phase
                }
                if seen[number] {
                    r.duplicates += 1;
                    continue;
                }
                seen[number] = true;
                let now = nanos_since(tracker.start);
                r.latencies
                    .push(Duration::from_nanos(now.saturating_sub(sent - 1)));
                r.delivered += 1;
                tracker.last_delivery.fetch_max(now, Ordering::AcqRel);
                tracker.delivered.fetch_add(1, Ordering::AcqRel);
                tracker.progress.notify_waiters();
            }
            Some(Event::Lagged { missed }) => r.lagged += missed,
            Some(Event::Stored { .. }) => r.stored += 1,
            Some(_) => {}
        }
    }
    r.events = events;
    r
}
