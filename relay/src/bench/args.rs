//! Flags of `p2p-chat bench`: the scenario and its knobs.

use std::time::Duration;

use clap::{Args, Subcommand};

use crate::cli::parse_duration;

/// Flags of `p2p-chat bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Stop the scenario after this long, whatever it has done (e.g. 110s, 5m).
    #[arg(long, global = true, default_value = "110s", value_parser = parse_duration)]
    pub time_limit: Duration,
}

/// Benchmark scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Two peers through the relay: publish-to-delivery latency one message at a time, at a
    /// steady rate, then the most messages per second the pair sustains.
    Latency {
        /// Messages in each of the first two phases.
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
        /// Messages per second in the steady phase.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        /// Messages in the throughput phase (sent as fast as the window allows; 0 skips it).
        #[arg(long, default_value_t = 40_000)]
        burst: u64,
    },
    /// One room of N peers, all sending: deliveries per second and the delivery ratio.
    Fanout {
        /// Peers in the room.
        #[arg(long, default_value_t = 50)]
        peers: usize,
        /// Messages sent in all (spread over the peers).
        #[arg(long, default_value_t = 2_000)]
        messages: u64,
    },
    /// Many rooms at once, every peer sending in its own room.
    Rooms {
        /// Rooms.
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        /// Peers per room.
        #[arg(long, default_value_t = 5)]
        room_size: usize,
        /// Messages sent in all (spread over the peers).
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
    },
    /// N idle peers connected to the relay (in rooms of --room-size, each with a reservation):
    /// the relay's memory per connection and its CPU at rest, how long a newcomer takes to
    /// connect, `/healthz`'s answer time, and whether rooms still carry messages. The peers are
    /// light ones (only what the relay sees of a chat peer at rest), in worker processes.
    Idle {
        /// Peers.
        #[arg(long, default_value_t = 1_000)]
        peers: usize,
        /// Peers per room.
        #[arg(long, default_value_t = 5)]
        room_size: usize,
        /// How long the relay is watched at rest once everyone is connected (e.g. 10s).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        rest: Duration,
        /// Every Nth room's peers connect over QUIC, the others over TCP (0: all TCP). QUIC
        /// connections share one socket at the relay, TCP ones take one each: the relay holds at
        /// most `ulimit -n` TCP peers.
        #[arg(long, default_value_t = 2)]
        quic_every: usize,
        /// Rooms probed (a message from one member to the others) once everyone is connected.
        #[arg(long, default_value_t = 200)]
        sample_rooms: usize,
        /// Full chat peers in this process instead of light peers in workers (to compare).
        #[arg(long)]
        full_peers: bool,
        /// Light peers per worker process (each takes a socket; a process may hold `ulimit -n`).
        #[arg(long, default_value_t = 5_000)]
        peers_per_worker: usize,
    },
    /// A worker of `bench idle`: light peers for a slice of its rooms (started by the bench).
    #[command(hide = true)]
    LightPeers(super::light::Slice),
    /// A peer catching up on N stored messages of a room: time to complete.
    History {
        /// Messages stored before the catch-up.
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
    },
    /// Relays of one network (each of the others naming the first): the latency a hop between
    /// relays adds (two peers on one relay, then on two), and one room with peers on every
    /// relay, all sending: delivery ratio, duplicates, deliveries per second, each relay's CPU.
    Federation {
        /// Relays.
        #[arg(long, default_value_t = 3)]
        relays: usize,
        /// Peers on each relay, in the one room.
        #[arg(long, default_value_t = 5)]
        peers: usize,
        /// Messages sent in the room in all (spread over the peers).
        #[arg(long, default_value_t = 3_000)]
        messages: u64,
        /// Messages sent one at a time in each of the two hop phases.
        #[arg(long, default_value_t = 1_000)]
        hop_messages: u64,
    },
    /// Two honest peers' latency at rest and while a third floods their room at 10,000 msg/s
    /// (a relay with its limits on, as in production).
    Abuse {
        /// Honest messages in each phase.
        #[arg(long, default_value_t = 200)]
        messages: u64,
        /// Honest messages per second (within the publish limit).
        #[arg(long, default_value_t = 10)]
        rate: u64,
    },
}
