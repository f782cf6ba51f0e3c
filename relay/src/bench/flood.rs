//! A flooder for `bench abuse`: a bare gossipsub node (no p2p-chat rules of its own) that joins a
//! room through the relay and publishes as fast as it can, and, each time the relay disconnects
//! it, comes back with a fresh identity, as a real attacker with throwaway keys would.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use p2p_chat_shared::protocol::MAX_RPC_BYTES;
use tokio::time::Instant;

/// Messages published per batch, and the pause between batches: 10,000 a second at most.
const BATCH: u64 = 100;
const PAUSE: Duration = Duration::from_millis(10);

/// What the flooder did.
#[derive(Debug, Default)]
pub struct Flooded {
    /// Messages its gossipsub took for sending.
    pub published: AtomicU64,
    /// Identities it used (one more each time the relay disconnected it).
    pub identities: AtomicU64,
}

/// Floods `room` through the relay at `relay` (with `/p2p`) until `stop` is set or `deadline`.
pub async fn flood(
    relay: Multiaddr,
    room: String,
    stop: Arc<AtomicBool>,
    stats: Arc<Flooded>,
    deadline: Instant,
) {
    let Some(relay_id) = p2p_chat_shared::addr::peer_at_end(&relay) else {
        return;
    };
    while !stop.load(Ordering::Acquire) && Instant::now() < deadline {
        stats.identities.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = one_identity(&relay, relay_id, &room, &stop, &stats, deadline).await {
            tracing::debug!(error = %e, "flooder identity ended");
        }
    }
}

async fn one_identity(
    relay: &Multiaddr,
    relay_id: PeerId,
    room: &str,
    stop: &AtomicBool,
    stats: &Flooded,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            Default::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .max_transmit_size(MAX_RPC_BYTES)
                .max_control_message_size(MAX_RPC_BYTES)
                .build()
                .map_err(|e| e.to_string())?;
            let behaviour: gossipsub::Behaviour =
                gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(behaviour)
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let topic = IdentTopic::new(room);
    swarm.behaviour_mut().subscribe(&topic)?;
    swarm.dial(relay.clone())?;
    let mut flooding = false;
    let mut batch = 0u64;
    let mut next = tokio::time::interval(PAUSE);
    loop {
        if stop.load(Ordering::Acquire) || Instant::now() >= deadline {
            return Ok(());
        }
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, .. })
                    if peer_id == relay_id => flooding = true,
                SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == relay_id => {
                    return Ok(());
                }
                SwarmEvent::OutgoingConnectionError { .. } => {
                    // Refused (a ban, or the per-IP cap): try again with a new identity.
                    tokio::time::sleep(PAUSE).await;
                    return Ok(());
                }
                _ => {}
            },
            _ = next.tick(), if flooding => {
                for i in 0..BATCH {
                    let text = format!("flood {batch}-{i}");
                    if swarm.behaviour_mut().publish(topic.clone(), text.into_bytes()).is_ok() {
                        stats.published.fetch_add(1, Ordering::AcqRel);
                    }
                }
                batch += 1;
            }
        }
    }
}
