//! Light peers for capacity runs (`bench idle`): a bare libp2p client with only what the relay
//! sees of a chat peer at rest: noise and yamux over TCP (or QUIC), identify (the relay reads its
//! agent and protocols), ping (it answers the relay's), gossipsub (its room's subscription: it can
//! publish and receive there) and a circuit relay reservation. One costs this process a small
//! part of a full chat core, so that 20,000 fit on this machine beside the relay they load.
//!
//! Each worker is a process of its own (`p2p-chat bench light-peers`: a process may hold at most
//! as many sockets as `ulimit -n`, 20,000 here), started by the bench with a slice of whole
//! rooms. It talks JSON lines: it prints `{"ready":N,"failed":F,"setup_s":S}` once its peers are
//! set up, then answers `probe` on its stdin (the first member of some of its rooms publishes,
//! the others must receive) with `{"probe":{…}}`, and ends at `stop` or when its stdin closes
//! (during set-up too: a killed bench leaves no load behind).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::channel::mpsc;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, relay, tcp, yamux, Multiaddr, PeerId};
use p2p_chat_shared::protocol::{IDENTIFY_PROTOCOL_VERSION, MAX_RPC_BYTES};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

/// Light peers set up at once by one worker (the relay takes 512 pending connections).
const SETUP_CONCURRENCY: usize = 64;
/// Longest wait for one light peer's connection, room and reservation.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Tries to set up one light peer.
const SETUP_TRIES: u32 = 3;
/// How long the other members of a probed room have to receive its message.
const PROBE_WAIT: Duration = Duration::from_secs(10);

/// What a light peer is asked to do.
enum Command {
    /// Publish this text in the room.
    Publish(String),
}

/// The behaviour of a light peer.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct Light {
    relay_client: relay::client::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    gossipsub:
        gossipsub::Behaviour<gossipsub::IdentityTransform, gossipsub::WhitelistSubscriptionFilter>,
}

/// One light peer, as its worker holds it.
struct Handle {
    room: String,
    /// Whether its room is probed (its members watch what arrives).
    sampled: bool,
    commands: mpsc::Sender<Command>,
}

/// How a worker is set up (the flags of `bench light-peers`).
#[derive(Debug, Clone, clap::Args)]
pub struct Slice {
    /// The relay's TCP address, with `/p2p`.
    #[arg(long)]
    pub relay_tcp: Multiaddr,
    /// Its QUIC address, with `/p2p`.
    #[arg(long)]
    pub relay_quic: Multiaddr,
    /// Index of the first peer (peers `first..first + count`).
    #[arg(long)]
    pub first: usize,
    /// Peers.
    #[arg(long)]
    pub count: usize,
    /// Peers per room (peer `i` is in room `cap-{i / room_size}`).
    #[arg(long)]
    pub room_size: usize,
    /// Rooms whose peers use QUIC: every `quic_every`-th room (0: none).
    #[arg(long)]
    pub quic_every: usize,
    /// Rooms of this slice probed at each `probe`.
    #[arg(long)]
    pub sample_rooms: usize,
}

#[derive(Serialize)]
struct Ready {
    ready: usize,
    failed: usize,
    setup_s: f64,
    /// The first failures' reasons.
    errors: Vec<String>,
}

#[derive(Serialize, Default)]
struct Probe {
    rooms: usize,
    expected: usize,
    delivered: usize,
    p50_ms: f64,
    max_ms: f64,
    /// Light peers whose connection to the relay closed since they were set up.
    lost: u64,
}

/// Runs a worker: sets up `slice`'s peers, then answers `probe` until `stop` or end of input.
pub async fn worker(slice: Slice) -> anyhow::Result<()> {
    let relay_id =
        p2p_chat_shared::addr::peer_at_end(&slice.relay_tcp).context("the relay's /p2p")?;
    let lost = Arc::new(AtomicU64::new(0));
    let (deliveries, mut delivered) = mpsc::channel::<(String, Instant)>(4096);
    let started = Instant::now();
    let size = slice.room_size.max(1);
    let rooms_here = slice.count.div_ceil(size);
    let probe_every = (rooms_here / slice.sample_rooms.max(1)).max(1);
    let setups = futures::stream::iter(0..slice.count)
        .map(|n| {
            let index = slice.first + n;
            let room_index = index / size;
            let quic = slice.quic_every > 0 && room_index.is_multiple_of(slice.quic_every);
            let relay = if quic {
                slice.relay_quic.clone()
            } else {
                slice.relay_tcp.clone()
            };
            let sampled = (room_index - slice.first / size).is_multiple_of(probe_every);
            let watch = sampled.then(|| deliveries.clone());
            start_again(
                relay,
                relay_id,
                format!("cap-{room_index}"),
                watch,
                lost.clone(),
            )
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect::<Vec<anyhow::Result<Handle>>>();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let results = tokio::select! {
        results = setups => results,
        // The bench is gone (its end of the pipe closed, as when it is killed): so is the load.
        () = async { while let Ok(Some(_)) = lines.next_line().await {} } => return Ok(()),
    };
    drop(deliveries);
    let mut peers = Vec::new();
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(handle) => peers.push(handle),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let ready = Ready {
        ready: peers.len(),
        failed: errors.len(),
        setup_s: started.elapsed().as_secs_f64(),
        errors: errors.into_iter().take(5).collect(),
    };
    say(&ready);
    while let Ok(Some(line)) = lines.next_line().await {
        match line.trim() {
            "probe" => {
                let probe = probe(&mut peers, &mut delivered, size, &lost).await;
                say(&serde_json::json!({ "probe": probe }));
            }
            "stop" => break,
            _ => {}
        }
    }
    Ok(())
}

fn say(value: &impl Serialize) {
    if let Ok(line) = serde_json::to_string(value) {
        println!("{line}");
    }
}

/// One member of each sampled room publishes; its other members must receive.
async fn probe(
    peers: &mut [Handle],
    delivered: &mut mpsc::Receiver<(String, Instant)>,
    size: usize,
    lost: &AtomicU64,
) -> Probe {
    let mut sent: std::collections::HashMap<String, Instant> = Default::default();
    let mut rooms_seen = std::collections::HashSet::new();
    for peer in peers.iter_mut() {
        if !peer.sampled || !rooms_seen.insert(peer.room.clone()) {
            continue;
        }
        let text = format!("probe {} {}", peer.room, rand::random::<u64>());
        if peer
            .commands
            .try_send(Command::Publish(text.clone()))
            .is_ok()
        {
            sent.insert(text, Instant::now());
        }
    }
    let expected = sent.len() * size.saturating_sub(1);
    let mut result = Probe {
        rooms: sent.len(),
        expected,
        ..Probe::default()
    };
    let mut delays = Vec::new();
    let until = Instant::now() + PROBE_WAIT;
    while delays.len() < expected {
        match tokio::time::timeout_at(until, delivered.next()).await {
            Ok(Some((text, at))) => {
                if let Some(sent_at) = sent.get(&text) {
                    delays.push(at.saturating_duration_since(*sent_at).as_secs_f64() * 1e3);
                }
            }
            _ => break,
        }
    }
    delays.sort_by(f64::total_cmp);
    result.delivered = delays.len();
    result.p50_ms = delays.get(delays.len() / 2).copied().unwrap_or_default();
    result.max_ms = delays.last().copied().unwrap_or_default();
    result.lost = lost.load(Ordering::Acquire);
    result
}

/// [`start`], tried again (with a new identity) when it fails, as a real client would: a QUIC
/// handshake may time out while a relay (a debug build above all) takes hundreds at once.
async fn start_again(
    relay: Multiaddr,
    relay_id: PeerId,
    room: String,
    watch: Option<mpsc::Sender<(String, Instant)>>,
    lost: Arc<AtomicU64>,
) -> anyhow::Result<Handle> {
    let mut tries = 0;
    loop {
        tries += 1;
        let attempt = start(
            relay.clone(),
            relay_id,
            room.clone(),
            watch.clone(),
            lost.clone(),
        )
        .await;
        match attempt {
            Err(e) if tries < SETUP_TRIES => {
                tracing::debug!(error = %e, tries, "a light peer not set up; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            done => return done.with_context(|| format!("after {tries} tries")),
        }
    }
}

/// A light peer's behaviour in `room`: what the relay sees of a chat peer at rest.
fn light_behaviour(
    room: &IdentTopic,
    key: &libp2p::identity::Keypair,
    relay_client: relay::client::Behaviour,
) -> Result<Light, Box<dyn std::error::Error + Send + Sync>> {
    let gossipsub = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .max_transmit_size(MAX_RPC_BYTES)
        .max_control_message_size(MAX_RPC_BYTES)
        .build()
        .map_err(|e| e.to_string())?;
    // The relay tells every peer each room it starts to follow: a chat peer keeps the list (a
    // relay's rooms), a light peer only its own room, so that 20,000 of them fit in a few
    // processes. The relay cannot tell.
    let filter = gossipsub::WhitelistSubscriptionFilter([room.hash()].into());
    let gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
        MessageAuthenticity::Signed(key.clone()),
        gossipsub,
        filter,
    )?;
    let identify = identify::Behaviour::new(identify::Config::new(
        IDENTIFY_PROTOCOL_VERSION.to_owned(),
        key.public(),
    ));
    Ok(Light {
        relay_client,
        identify,
        ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(60))),
        gossipsub,
    })
}

/// Sets up one light peer: connected, subscribed to `room` (the relay follows it), reserved.
async fn start(
    relay: Multiaddr,
    relay_id: PeerId,
    room: String,
    watch: Option<mpsc::Sender<(String, Instant)>>,
    lost: Arc<AtomicU64>,
) -> anyhow::Result<Handle> {
    let topic = IdentTopic::new(room.clone());
    // Only the transport it dials with: QUIC's builds a TLS certificate, and each QUIC peer's
    // socket takes its own buffers.
    let over_quic = relay
        .iter()
        .any(|p| p == libp2p::multiaddr::Protocol::QuicV1);
    let builder = libp2p::SwarmBuilder::with_new_identity().with_tokio();
    let keep_idle =
        |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(3600));
    let mut swarm = if over_quic {
        builder
            .with_quic()
            .with_relay_client(noise::Config::new, yamux::Config::default)?
            .with_behaviour(|key, relay_client| light_behaviour(&topic, key, relay_client))?
            .with_swarm_config(keep_idle)
            .build()
    } else {
        builder
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_relay_client(noise::Config::new, yamux::Config::default)?
            .with_behaviour(|key, relay_client| light_behaviour(&topic, key, relay_client))?
            .with_swarm_config(keep_idle)
            .build()
    };
    let sampled = watch.is_some();
    swarm.behaviour_mut().gossipsub.subscribe(&topic)?;
    // The reservation dials the relay (a dial of our own beside it would make the relay
    // client's fail).
    swarm.listen_on(relay.with(libp2p::multiaddr::Protocol::P2pCircuit))?;
    let (mut in_room, mut reserved) = (false, false);
    let setup = tokio::time::timeout(SETUP_TIMEOUT, async {
        while !(in_room && reserved) {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(LightEvent::Gossipsub(gossipsub::Event::Subscribed {
                    peer_id,
                    topic: subscribed,
                })) if peer_id == relay_id && subscribed == topic.hash() => in_room = true,
                SwarmEvent::Behaviour(LightEvent::RelayClient(
                    relay::client::Event::ReservationReqAccepted { .. },
                )) => reserved = true,
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    anyhow::bail!("cannot connect: {error}")
                }
                SwarmEvent::ListenerClosed { reason, .. } => {
                    anyhow::bail!("no reservation: {reason:?}")
                }
                SwarmEvent::ConnectionClosed { cause, .. } => {
                    anyhow::bail!("connection closed during setup: {cause:?}")
                }
                _ => {}
            }
        }
        Ok(())
    })
    .await;
    match setup {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => anyhow::bail!("not set up within {SETUP_TIMEOUT:?}"),
    }
    let (commands, mut incoming) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::Behaviour(LightEvent::Gossipsub(gossipsub::Event::Message {
                        message, ..
                    })) => {
                        if let (Some(watch), Ok(text)) =
                            (watch.as_ref(), String::from_utf8(message.data))
                        {
                            let _ = watch.clone().try_send((text, Instant::now()));
                        }
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. }
                        if peer_id == relay_id =>
                    {
                        lost.fetch_add(1, Ordering::AcqRel);
                    }
                    _ => {}
                },
                command = incoming.next() => match command {
                    Some(Command::Publish(text)) => {
                        let _ = swarm.behaviour_mut().gossipsub.publish(topic.clone(), text.into_bytes());
                    }
                    // The worker is done with it.
                    None => return,
                },
            }
        }
    });
    Ok(Handle {
        room,
        sampled,
        commands,
    })
}
