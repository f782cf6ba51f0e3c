//! Mail across relays: a DM that could not reach its recipient waits, sealed, at the relay of its
//! sender ([`super::store`]'s mailbox). When the recipient uses another relay of the network,
//! that relay takes the mail to it:
//!
//! 1. the relay that keeps mail for a peer tells the relays its operator named (`--peer`) whom it
//!    keeps mail for (`mail_waiting`): at once for each new deposit, to each relay whose link
//!    comes up, and every [`REHINT_EVERY`];
//! 2. a relay told so remembers it (for [`WAITING_TTL`]), and when the recipient is connected to
//!    it, now or later, takes the mail (`mail_for`), keeps it in its own mailbox under its
//!    depositor, and tells the recipient ([`p2p_chat_shared::envelope::Kind::Mail`]), which
//!    fetches it at once;
//! 3. once the recipient has fetched it, the relay tells the first one (`mail_delivered`), which
//!    forgets it and answers its sender's status poll "delivered".
//!
//! Mail crosses only links both operators chose: a relay hands over mail, and takes another's word
//! that it was delivered, only with the relays its operator named (the hub refuses the requests
//! of any other), and this driver talks only to those. The DMs are sealed to their recipient, so
//! no relay can read them; a relay that took mail can at worst lose its copy, and the first relay
//! still has it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, SinkExt, StreamExt};
use libp2p::PeerId;
use p2p_chat_shared::core::Client;
use p2p_chat_shared::store::{
    StoreHandle, StoreJob, StoreRequest, StoreResponse, MAX_IDS_PER_REQUEST,
};
use tokio::time::Instant;

use super::store::MailNews;

/// How often the driver looks for relays whose link just came up, and tries again what failed.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// How often a relay tells the relays it named again whom it keeps mail for.
pub const REHINT_EVERY: Duration = Duration::from_secs(60 * 60);
/// How long a relay remembers that another keeps mail for a peer (told again every
/// [`REHINT_EVERY`] while it does).
pub const WAITING_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// Most recipients a relay names in one go (a link coming up, the hourly reminder).
pub const MAX_RECIPIENTS_TOLD: usize = 10_000;
/// Most recipients remembered as having mail at other relays; beyond it, what other relays tell
/// is ignored until some is taken or forgotten.
pub const MAX_REMEMBERED: usize = 100_000;
/// Most exchanges with other relays under way at once.
const MAX_IN_FLIGHT: usize = 64;
/// Failed takes of a peer's mail from a relay after which it is left until that relay tells
/// again (at the latest in [`REHINT_EVERY`]).
const MAX_TAKE_FAILURES: u32 = 5;
/// Most "delivered" reports kept for a relay whose link is down.
const MAX_UNREPORTED_PER_RELAY: usize = 10_000;

/// A connection to this relay opened or closed (from the relay's event loop).
#[derive(Debug, Clone, Copy)]
pub enum Presence {
    /// The first connection of a peer.
    Connected(PeerId),
    /// The last connection of a peer closed.
    Disconnected(PeerId),
}

/// How an exchange with another relay ended.
enum Outcome {
    /// A take of `to`'s mail from `relay`: the DMs it handed over (`got`), how many were new
    /// here, and whether there may be more; or why it failed.
    Took {
        relay: PeerId,
        to: PeerId,
        result: Result<(usize, usize), String>,
    },
    /// A "delivered" report; `Err` gives it back to be sent again.
    Reported {
        relay: PeerId,
        result: Result<(), (PeerId, Vec<String>)>,
    },
    /// A hint, whatever its answer.
    Told,
}

/// The driver's state.
struct Mail {
    client: Client,
    store: StoreHandle,
    /// Peers connected here.
    present: HashSet<PeerId>,
    /// Named relays linked now.
    linked: HashSet<PeerId>,
    /// Recipient → the relays that said they keep mail for it: when, and takes that failed since.
    remembered: HashMap<PeerId, HashMap<PeerId, (Instant, u32)>>,
    /// Takes under way: (recipient, relay).
    taking: HashSet<(PeerId, PeerId)>,
    /// Recipients to tell the linked relays about.
    to_tell: HashSet<PeerId>,
    /// Reports for relays not linked now: relay → (recipient, ids).
    unreported: HashMap<PeerId, Vec<(PeerId, Vec<String>)>>,
    in_flight: FuturesUnordered<BoxFuture<'static, Outcome>>,
    next_rehint: Instant,
}

/// Runs the exchange until the chat core stops.
pub async fn run(
    client: Client,
    store: StoreHandle,
    mut news: mpsc::Receiver<MailNews>,
    mut presence: mpsc::Receiver<Presence>,
) {
    let mut mail = Mail {
        client,
        store,
        present: HashSet::new(),
        linked: HashSet::new(),
        remembered: HashMap::new(),
        taking: HashSet::new(),
        to_tell: HashSet::new(),
        unreported: HashMap::new(),
        in_flight: FuturesUnordered::new(),
        next_rehint: Instant::now() + REHINT_EVERY,
    };
    let mut look = tokio::time::interval(LOOK_EVERY);
    loop {
        tokio::select! {
            item = news.next() => match item {
                Some(item) => mail.on_news(item),
                None => return,
            },
            item = presence.next() => match item {
                Some(Presence::Connected(peer)) => {
                    mail.present.insert(peer);
                    mail.take_for(peer);
                }
                Some(Presence::Disconnected(peer)) => {
                    mail.present.remove(&peer);
                }
                None => return,
            },
            Some(outcome) = mail.in_flight.next(), if !mail.in_flight.is_empty() => {
                mail.on_outcome(outcome);
            }
            _ = look.tick() => {
                if !mail.look().await {
                    return;
                }
            }
        }
        // Everything that arrived meanwhile, then the hints, in as few requests as it takes.
        while let Ok(item) = news.try_recv() {
            mail.on_news(item);
        }
        mail.tell();
    }
}

impl Mail {
    fn on_news(&mut self, news: MailNews) {
        match news {
            MailNews::Deposited { to } => {
                if self.present.contains(&to) {
                    // Its direct delivery failed although it is here: it fetches now.
                    let client = self.client.clone();
                    self.start(async move {
                        let _ = client.notify_mail(to).await;
                        Outcome::Told
                    });
                }
                self.to_tell.insert(to);
            }
            MailNews::Waiting { at, to } => {
                let now = Instant::now();
                for peer in to {
                    if self.remembered.len() >= MAX_REMEMBERED
                        && !self.remembered.contains_key(&peer)
                    {
                        tracing::warn!(relay = %at, "too many recipients with mail elsewhere remembered; a hint was ignored");
                        break;
                    }
                    self.remembered
                        .entry(peer)
                        .or_default()
                        .insert(at, (now, 0));
                    if self.present.contains(&peer) {
                        self.take(peer, at);
                    }
                }
            }
            MailNews::Delivered { origin, to, ids } => self.report(origin, to, ids),
        }
    }

    /// Takes the mail other relays keep for `peer`, which just connected.
    fn take_for(&mut self, peer: PeerId) {
        let relays: Vec<PeerId> = self
            .remembered
            .get(&peer)
            .map(|r| r.keys().copied().collect())
            .unwrap_or_default();
        for relay in relays {
            self.take(peer, relay);
        }
    }

    /// Takes `to`'s mail from `relay`, keeps it here and tells `to`.
    fn take(&mut self, to: PeerId, relay: PeerId) {
        if !self.linked.contains(&relay)
            || self.in_flight.len() >= MAX_IN_FLIGHT
            || !self.taking.insert((to, relay))
        {
            return; // tried again at the next look
        }
        let (client, mut store) = (self.client.clone(), self.store.clone());
        self.start(async move {
            let result = async {
                let dms = match client.ask_store(relay, StoreRequest::MailFor { to }).await {
                    Ok(StoreResponse::Mailbox { dms }) => dms,
                    Ok(StoreResponse::Error { reason }) => return Err(reason),
                    Ok(other) => return Err(format!("an answer that is not mail: {other:?}")),
                    Err(_) => return Err("the relay is stopping".to_owned()),
                };
                if dms.is_empty() {
                    return Ok((0, 0));
                }
                let got = dms.len();
                let (reply, answer) = futures::channel::oneshot::channel();
                let job = StoreJob::TakeMail {
                    origin: relay,
                    to,
                    dms,
                    reply,
                };
                store
                    .send(job)
                    .await
                    .map_err(|_| "the store stopped".to_owned())?;
                let new = answer.await.map_err(|_| "the store stopped".to_owned())??;
                if new > 0 {
                    let _ = client.notify_mail(to).await;
                }
                Ok((got, new))
            }
            .await;
            Outcome::Took { relay, to, result }
        });
    }

    /// Tells `relay` that `to` fetched these DMs here, or keeps that for when it is linked.
    fn report(&mut self, relay: PeerId, to: PeerId, ids: Vec<String>) {
        if !self.linked.contains(&relay) || self.in_flight.len() >= MAX_IN_FLIGHT {
            let queue = self.unreported.entry(relay).or_default();
            if queue.len() < MAX_UNREPORTED_PER_RELAY {
                queue.push((to, ids));
            } else {
                tracing::warn!(%relay, "too many delivery reports waiting for a relay; one dropped (the relay keeps that DM until it expires)");
            }
            return;
        }
        let client = self.client.clone();
        self.start(async move {
            let request = StoreRequest::MailDelivered {
                to,
                ids: ids.clone(),
            };
            let result = match client.ask_store(relay, request).await {
                Ok(StoreResponse::Acked { .. }) => Ok(()),
                Ok(other) => {
                    tracing::debug!(%relay, ?other, "a delivery report was not taken");
                    Err((to, ids))
                }
                Err(_) => Err((to, ids)),
            };
            Outcome::Reported { relay, result }
        });
    }

    fn start(&mut self, exchange: impl std::future::Future<Output = Outcome> + Send + 'static) {
        self.in_flight.push(exchange.boxed());
    }

    fn on_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Took { relay, to, result } => {
                self.taking.remove(&(to, relay));
                match result {
                    Ok((got, new)) => {
                        if new > 0 {
                            tracing::info!(%relay, recipient = %to, new, "mail taken from a relay for a peer connected here");
                        }
                        // A full answer leaves more there: taken once these are delivered.
                        if got < MAX_IDS_PER_REQUEST {
                            self.forget(to, relay);
                        }
                    }
                    Err(reason) => {
                        let failures = self
                            .remembered
                            .get_mut(&to)
                            .and_then(|relays| relays.get_mut(&relay))
                            .map(|(_, failures)| {
                                *failures += 1;
                                *failures
                            });
                        if failures.is_some_and(|f| f >= MAX_TAKE_FAILURES) {
                            tracing::warn!(%relay, recipient = %to, reason, "mail not taken; left until the relay tells again");
                            self.forget(to, relay);
                        } else {
                            tracing::debug!(%relay, recipient = %to, reason, "mail not taken; tried again");
                        }
                    }
                }
            }
            Outcome::Reported { relay, result } => match result {
                Ok(()) => {
                    // What was left there for want of room in one answer comes next.
                    let more: Vec<PeerId> = self
                        .remembered
                        .iter()
                        .filter(|(to, relays)| {
                            self.present.contains(to) && relays.contains_key(&relay)
                        })
                        .map(|(to, _)| *to)
                        .take(MAX_IN_FLIGHT)
                        .collect();
                    for to in more {
                        self.take(to, relay);
                    }
                }
                Err((to, ids)) => {
                    let queue = self.unreported.entry(relay).or_default();
                    if queue.len() < MAX_UNREPORTED_PER_RELAY {
                        queue.push((to, ids));
                    }
                }
            },
            Outcome::Told => {}
        }
    }

    fn forget(&mut self, to: PeerId, relay: PeerId) {
        if let Some(relays) = self.remembered.get_mut(&to) {
            relays.remove(&relay);
            if relays.is_empty() {
                self.remembered.remove(&to);
            }
        }
    }

    /// Sends the hints gathered, in requests of at most [`MAX_IDS_PER_REQUEST`] recipients.
    fn tell(&mut self) {
        if self.to_tell.is_empty() || self.linked.is_empty() {
            self.to_tell.clear();
            return;
        }
        let recipients: Vec<PeerId> = self.to_tell.drain().collect();
        let relays: Vec<PeerId> = self.linked.iter().copied().collect();
        for relay in relays {
            self.tell_relay(relay, &recipients);
        }
    }

    fn tell_relay(&mut self, relay: PeerId, recipients: &[PeerId]) {
        for chunk in recipients.chunks(MAX_IDS_PER_REQUEST) {
            let (client, to) = (self.client.clone(), chunk.to_vec());
            self.start(async move {
                if let Ok(StoreResponse::Error { reason }) = client
                    .ask_store(relay, StoreRequest::MailWaiting { to })
                    .await
                {
                    tracing::debug!(%relay, reason, "a relay did not take a mail hint");
                }
                Outcome::Told
            });
        }
    }

    /// Every [`LOOK_EVERY`]: links that came up get our recipients and their reports, what
    /// failed is tried again, what was remembered too long is forgotten; `false` once the chat
    /// core stopped.
    async fn look(&mut self) -> bool {
        let Ok((relays, _)) = self.client.federation().await else {
            return false;
        };
        let now = Instant::now();
        let rehint = now >= self.next_rehint;
        if rehint {
            self.next_rehint = now + REHINT_EVERY;
        }
        let fresh: Vec<PeerId> = relays
            .iter()
            .filter(|r| rehint || !self.linked.contains(r))
            .copied()
            .collect();
        self.linked = relays.into_iter().collect();
        if !fresh.is_empty() {
            let (reply, answer) = futures::channel::oneshot::channel();
            let job = StoreJob::MailRecipients {
                limit: MAX_RECIPIENTS_TOLD,
                reply,
            };
            if self.store.send(job).await.is_err() {
                return false;
            }
            match answer.await {
                Ok(Ok(recipients)) if !recipients.is_empty() => {
                    for relay in &fresh {
                        self.tell_relay(*relay, &recipients);
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the store did not list whom it keeps mail for")
                }
                Err(_) => return false,
            }
        }
        let linked: Vec<PeerId> = self.linked.iter().copied().collect();
        for relay in linked {
            for (to, ids) in self.unreported.remove(&relay).unwrap_or_default() {
                self.report(relay, to, ids);
            }
        }
        self.remembered.retain(|_, relays| {
            relays.retain(|_, (at, _)| now.duration_since(*at) < WAITING_TTL);
            !relays.is_empty()
        });
        let due: Vec<(PeerId, PeerId)> = self
            .remembered
            .iter()
            .filter(|(to, _)| self.present.contains(to))
            .flat_map(|(to, relays)| relays.keys().map(move |relay| (*to, *relay)))
            .take(MAX_IN_FLIGHT)
            .collect();
        for (to, relay) in due {
            self.take(to, relay);
        }
        true
    }
}
