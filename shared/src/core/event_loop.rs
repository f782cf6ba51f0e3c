//! The [`EventLoop`]: owns the swarm and the core state, and `select!`s over the command inbox,
//! the swarm and a one-second housekeeping tick. Handlers live in sibling modules by concern.

use std::collections::HashMap;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use futures_timer::Delay;
use libp2p::Swarm;
use web_time::Instant;

use super::client::{Command, Reply};
use super::peers::Peers;
use super::reservations::Reservations;
use super::rooms::{Room, SeenIds};
use super::store::StoreClient;
use super::{CoreConfig, Event};
use crate::behaviour::{Behaviour, Extension};
use crate::hub::Hub;

/// Housekeeping period: presence, member expiry, relay retries, timeouts.
const TICK: Duration = Duration::from_secs(1);

/// How long a shutdown keeps polling the swarm so that goodbyes leave the machine.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// The next answer of the hub's store backend; never, without a hub.
async fn hub_answer(
    hub: &mut Option<Hub>,
) -> (
    libp2p::request_response::ResponseChannel<crate::rpc::Response>,
    crate::store::StoreResponse,
) {
    match hub {
        Some(hub) => hub.next_answer().await,
        None => futures::future::pending().await,
    }
}

/// The chat core's event loop. Run it to completion with [`EventLoop::run`].
pub struct EventLoop<X: Extension> {
    pub(super) swarm: Swarm<Behaviour<X>>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    /// Events dropped since the UI last kept up.
    missed: u64,
    pub(super) listen_addrs_are_external: bool,
    /// Peers are reached through relay circuits only (`--relay-only`).
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) relay_only: bool,
    pub(super) nick: String,
    /// Rooms we are in (as a peer).
    pub(super) rooms: HashMap<String, Room>,
    /// The relay's part: rooms followed for its peers, the store served (a relay only).
    pub(super) hub: Option<Hub>,
    pub(super) seen: SeenIds,
    /// Notices (join, presence, leave, gone) counted, apart from messages: a busy room's
    /// presences must not push messages out of `seen`, nor the reverse.
    pub(super) seen_notices: SeenIds,
    pub(super) peers: Peers,
    /// Relays we use and our reservations on them.
    pub(super) reservations: Reservations,
    pub(super) pending: super::commands::Pending,
    /// File sharing's reaches and provider lookups (none in the browser build yet).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(super) files: super::files::FilesPending,
    pub(super) nat_status: String,
    pub(super) dropped_payloads: u64,
    /// The stores we use (our relays): catch-up, receipts, mailbox.
    pub(super) store: StoreClient,
    pub(super) identity: Option<libp2p::identity::Keypair>,
    /// Time of the last message we sent (unix ms); the next one gets a later one.
    pub(super) last_sent_ts: u64,
    tick: Delay,
    shutdown: Option<(Instant, Vec<Reply<()>>)>,
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) traffic: Traffic,
    /// Where to record metrics, if anywhere.
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) metrics: Option<crate::native::metrics::CoreMetrics>,
}

/// What went through this core, for [`super::Stats`].
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug)]
pub(super) struct Traffic {
    pub(super) started: Instant,
    pub(super) messages_sent: u64,
    pub(super) messages_received: u64,
    pub(super) dms_sent: u64,
    pub(super) dms_received: u64,
}

/// Completes when `timer` (if armed) fires; never when it is not.
async fn until(timer: &mut Option<Delay>) {
    match timer {
        Some(delay) => delay.await,
        None => futures::future::pending().await,
    }
}

impl<X: Extension> EventLoop<X> {
    pub(super) fn new(
        swarm: Swarm<Behaviour<X>>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
        config: CoreConfig,
    ) -> Self {
        Self {
            swarm,
            commands,
            events,
            missed: 0,
            listen_addrs_are_external: config.listen_addrs_are_external,
            #[cfg(not(target_arch = "wasm32"))]
            relay_only: config.relay_only,
            nick: config.nick.into(),
            rooms: HashMap::new(),
            hub: Hub::for_role(config.role, config.store, config.limits, &config.peering),
            seen: SeenIds::default(),
            seen_notices: SeenIds::default(),
            peers: Peers::default(),
            reservations: Reservations::default(),
            pending: Default::default(),
            files: Default::default(),
            nat_status: "unknown".to_owned(),
            dropped_payloads: 0,
            store: StoreClient::default(),
            identity: config.identity,
            last_sent_ts: 0,
            tick: Delay::new(TICK),
            shutdown: None,
            #[cfg(not(target_arch = "wasm32"))]
            traffic: Traffic {
                started: Instant::now(),
                messages_sent: 0,
                messages_received: 0,
                dms_sent: 0,
                dms_received: 0,
            },
            #[cfg(not(target_arch = "wasm32"))]
            metrics: config.metrics,
        }
    }

    /// Runs until every [`super::Client`] is dropped or one asks for a shutdown.
    pub async fn run(mut self) {
        loop {
            futures::select_biased! {
                command = self.commands.next() => match command {
                    Some(command) => self.on_command(command),
                    None => {
                        self.start_shutdown(None);
                    }
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                (channel, response) = hub_answer(&mut self.hub).fuse() => {
                    crate::hub::respond(&mut self.swarm, channel, response);
                }
                () = until(&mut self.store.receipt_timer).fuse() => self.on_receipt_timer(),
                () = until(&mut self.reservations.retry_timer).fuse() => self.on_retry_timer(),
                _ = (&mut self.tick).fuse() => {
                    if self.on_tick() {
                        break;
                    }
                }
            }
        }
        if let Some((_, replies)) = self.shutdown.take() {
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
        tracing::debug!("chat core stopped");
    }

    /// Hands an event to the UI without ever waiting for it. Not inlined: it is called from
    /// everywhere, and one copy keeps the browser build small.
    #[inline(never)]
    pub(super) fn emit(&mut self, event: Event) {
        #[cfg(not(target_arch = "wasm32"))]
        match &event {
            Event::Message(_) => self.traffic.messages_received += 1,
            Event::DirectMessage(_) => self.traffic.dms_received += 1,
            _ => {}
        }
        if self.missed > 0 {
            match self.events.try_send(Event::Lagged {
                missed: self.missed,
            }) {
                Ok(()) => self.missed = 0,
                Err(e) if e.is_disconnected() => return,
                Err(_) => {
                    self.missed += 1;
                    return;
                }
            }
        }
        if let Err(e) = self.events.try_send(event) {
            if e.is_full() {
                self.missed += 1;
                if self.missed == 1 {
                    tracing::warn!("user interface is not keeping up; dropping events");
                }
            }
        }
    }

    /// Says goodbye in every room, then stops after a short grace period.
    pub(super) fn start_shutdown(&mut self, reply: Option<Reply<()>>) {
        if self.shutdown.is_none() {
            // Goodbyes only, no unsubscriptions: gossipsub sends control messages ahead of
            // messages, and a closing browser tab may get just one write out. The
            // subscriptions end with the connections.
            let rooms: Vec<String> = self.rooms.keys().cloned().collect();
            for room in rooms {
                self.announce(&room, crate::envelope::Kind::Leave);
            }
            self.shutdown = Some((Instant::now() + SHUTDOWN_GRACE, Vec::new()));
            self.tick.reset(SHUTDOWN_GRACE);
        }
        if let (Some(reply), Some((_, replies))) = (reply, self.shutdown.as_mut()) {
            replies.push(reply);
        }
    }

    /// Periodic housekeeping. Returns `true` when the loop should stop.
    fn on_tick(&mut self) -> bool {
        let now = Instant::now();
        if let Some((deadline, _)) = &self.shutdown {
            if now >= *deadline {
                return true;
            }
        }
        self.tick.reset(TICK);
        self.rooms_tick(now);
        self.reservations_tick(now);
        self.pending_tick(now);
        self.files_tick(now);
        self.store_tick(now);
        if let Some(hub) = self.hub.as_mut() {
            hub.tick(&mut self.swarm);
        }
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(metrics) = &self.metrics {
            metrics.set_connections(self.peers.connection_addrs(), self.peers.peer_count());
            if let Some(hub) = &self.hub {
                metrics.set_hub(hub.figures(), hub.room_members());
            }
        }
        false
    }
}
