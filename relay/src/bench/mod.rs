//! `p2p-chat bench`: measures the relay under load. Every scenario starts `p2p-chat relay` as a
//! process of its own on loopback (so that its memory and CPU are measured alone, with its store
//! on as in production), runs chat peers in this process, drives a bounded workload and prints a
//! table and one JSON line.
//!
//! - [`args`]: the scenarios and their knobs.
//! - [`relay_proc`]: the relay process, its addresses, RSS and CPU time.
//! - [`load`]: the peers and the timed workload.
//! - [`scenarios`]: latency, fanout, rooms, idle, history, abuse, federation.
//! - [`flood`]: the flooder of `bench abuse`.
//! - [`light`]: the light peers of `bench idle`, in worker processes.
//! - [`stats`]: percentiles and the report.

pub mod args;
pub mod flood;
pub mod light;
pub mod load;
pub mod relay_proc;
pub mod scenarios;
pub mod stats;

use tokio::time::Instant;

pub use args::{BenchArgs, Scenario};

/// Runs one scenario and prints its report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + args.time_limit;
    let (name, report) = match args.scenario {
        Scenario::Latency {
            messages,
            rate,
            burst,
        } => (
            "latency",
            scenarios::latency(messages, rate, burst, deadline).await?,
        ),
        Scenario::Fanout { peers, messages } => (
            "fanout",
            scenarios::rooms("fanout", 1, peers, messages, deadline).await?,
        ),
        Scenario::Rooms {
            rooms,
            room_size,
            messages,
        } => (
            "rooms",
            scenarios::rooms("rooms", rooms, room_size, messages, deadline).await?,
        ),
        Scenario::Idle {
            peers,
            room_size,
            rest,
            quic_every,
            sample_rooms,
            full_peers,
            peers_per_worker,
        } => {
            let report = if full_peers {
                scenarios::idle(peers, room_size, rest, deadline).await?
            } else {
                let shape = scenarios::Capacity {
                    peers,
                    room_size,
                    rest,
                    quic_every,
                    sample_rooms,
                    peers_per_worker,
                };
                scenarios::capacity(shape, args.time_limit, deadline).await?
            };
            ("idle", report)
        }
        // A worker of `bench idle`: it prints its own lines.
        Scenario::LightPeers(slice) => return light::worker(slice).await,
        Scenario::History { messages } => {
            ("history", scenarios::history(messages, deadline).await?)
        }
        Scenario::Federation {
            relays,
            peers,
            messages,
            hop_messages,
        } => (
            "federation",
            scenarios::federation(relays, peers, messages, hop_messages, deadline).await?,
        ),
        Scenario::Abuse { messages, rate } => {
            ("abuse", scenarios::abuse(messages, rate, deadline).await?)
        }
    };
    crate::say(report.render(name));
    Ok(())
}
