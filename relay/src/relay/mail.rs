//! Mail across relays: a DM that could not reach its recipient waits, sealed, at the relay of its
//! sender ([`super::store`]'s mailbox). When the recipient uses another relay of the network,
//! that relay takes the mail to it:
//!
//! 1. the relay that keeps mail for a peer tells the relays its operator named (`--peer`) whom it
//!    keeps mail for (`mail_waiting`): for each new deposit (gathered over [`HINT_EVERY`]), to a
//!    relay whose link comes up (again), and every [`REHINT_EVERY`];
//! 2. a relay told so remembers it (for [`WAITING_TTL`]), and while the recipient is connected to
//!    it, now or later, takes the mail (`mail_for`) into its own mailbox, under each DM's
//!    depositor and with its age, and tells the recipient
//!    ([`p2p_chat_shared::envelope::Kind::Mail`]), which fetches it at once. It takes again when
//!    told again, and after reporting what was fetched (a mailbox answer stops at a page);
//! 3. once the recipient has fetched it, the relay tells the first one (`mail_delivered`), which
//!    forgets it and answers its sender's status poll "delivered". Reports wait in the store
//!    until the first relay takes them, across restarts and broken links.
//!
//! Mail crosses only links both operators chose: a relay hands over mail, and takes another's
//! word that it was delivered, only with the relays its operator named (the hub refuses the
//! requests of any other, and gives them a token bucket of their own), and this driver talks
//! only to those. The DMs are sealed to their recipient, so no relay can read them; a named relay
//! is trusted not to lie about deliveries, as it is with history.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
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

/// How often the driver looks for relays whose link came up, and tries again what failed.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// Deposits' hints are gathered for this long, so that a burst of DMs is one request per relay.
pub const HINT_EVERY: Duration = Duration::from_millis(100);
/// How often a relay tells the relays it named again whom it keeps mail for.
pub const REHINT_EVERY: Duration = Duration::from_secs(60 * 60);
/// How often a relay sends again the delivery reports another did not take.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// How long a relay remembers that another keeps mail for a peer (told again every
/// [`REHINT_EVERY`] while it does).
pub const WAITING_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// Recipients listed from the store at a time, when telling a relay all of them.
const LIST_PAGE: usize = 1000;
/// Most recipients waiting to be named to one relay (a listing waits while there are more).
const MAX_UNTOLD: usize = 10_000;
/// Most recipients remembered as having mail at other relays; beyond it, what other relays tell
/// is ignored until some is taken or forgotten.
pub const MAX_REMEMBERED: usize = 100_000;
/// Most exchanges with other relays (and questions to the store) under way at once.
const MAX_IN_FLIGHT: usize = 64;
/// Report ids read from the store at a time, for one relay.
const REPORTS_PAGE: usize = 10 * MAX_IDS_PER_REQUEST;
/// Failed takes of a peer's mail from a relay after which it is left until that relay tells
/// again (at the latest in [`REHINT_EVERY`]).
const MAX_TAKE_FAILURES: u32 = 6;
/// The wait before the first retry of a failed take (doubling with each failure).
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// The first wait before another take when the other relay was busy (not counted as a failure;
/// doubling while it stays busy, up to 16 times as long).
const BUSY_RETRY: Duration = Duration::from_secs(5);
/// A reconnection takes a peer's mail again only this long after the last take.
const RETAKE_AFTER: Duration = Duration::from_secs(30);

/// The peers connected to this relay, kept by the relay's event loop (as state, not events: a
/// peer that left is never taken for present).
#[derive(Debug, Clone, Default)]
pub struct Present(Arc<Mutex<HashSet<PeerId>>>);

impl Present {
    /// `peer`'s first connection opened.
    pub fn connected(&self, peer: PeerId) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(peer);
        }
    }

    /// `peer`'s last connection closed.
    pub fn gone(&self, peer: &PeerId) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(peer);
        }
    }

    /// Exactly these peers (after the relay's event loop missed events).
    pub fn reset(&self, peers: impl IntoIterator<Item = PeerId>) {
        if let Ok(mut set) = self.0.lock() {
            *set = peers.into_iter().collect();
        }
    }

    fn contains(&self, peer: &PeerId) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(peer))
    }
}

/// How an exchange with another relay, or a question to the store, ended.
enum Outcome {
    /// A take of `to`'s mail from `relay`, started at hint `generation`: (DMs handed over, new
    /// here, reported at once), or why it failed.
    Took {
        relay: PeerId,
        to: PeerId,
        generation: u64,
        result: Result<(usize, usize, usize), String>,
    },
    /// A round of delivery reports to `relay`: the recipients reported, whether more may wait,
    /// and whether to try again later (`relay` was busy or away).
    Reported {
        relay: PeerId,
        recipients: Vec<PeerId>,
        more: bool,
        later: bool,
    },
    /// Hints to `relay`; the recipients to name again when it was busy or away.
    Told { relay: PeerId, again: Vec<PeerId> },
    /// A page of the recipients to name to `relay`: where the listing goes on, if it does;
    /// `None` when the store could not list them (tried again at the next look).
    Listed {
        relay: PeerId,
        page: Option<(Vec<PeerId>, Option<PeerId>)>,
    },
}

/// What is remembered of another relay's mail for a peer.
#[derive(Debug, Clone, Copy)]
struct Remembered {
    /// When it last said so.
    since: Instant,
    /// How many times it said so: a take started before the latest hint takes again.
    generation: u64,
    /// Takes that failed since.
    failures: u32,
    /// When to try again after a failure.
    retry_at: Option<Instant>,
    /// When the last take started: a peer that reconnects in a loop does not make the other
    /// relay send the same page again and again.
    last_taken: Option<Instant>,
    /// Takes answered "busy" in a row.
    busy: u32,
}

/// The driver's state.
struct Mail {
    client: Client,
    store: StoreHandle,
    /// Peers connected here.
    present: Present,
    /// Named relays linked now.
    linked: HashSet<PeerId>,
    /// Named relays ever linked: a connection of one is a link coming up (again).
    known: HashSet<PeerId>,
    /// Recipient → what the relays that keep mail for it said.
    remembered: HashMap<PeerId, HashMap<PeerId, Remembered>>,
    /// Until when hints ignored for want of room (a flood of made-up recipients) may still be
    /// missing: a peer that connects meanwhile is asked for at every linked relay, told or not
    /// (every relay tells everything again within [`REHINT_EVERY`]).
    overflowed_until: Option<Instant>,
    /// Takes under way: (recipient, relay).
    taking: HashSet<(PeerId, PeerId)>,
    /// Recipients to name to each relay.
    untold: HashMap<PeerId, HashSet<PeerId>>,
    /// When the gathered hints go out.
    next_hints: Option<Instant>,
    /// Relays to name all our recipients to, and where the listing stands.
    listings: HashMap<PeerId, Option<PeerId>>,
    listing: HashSet<PeerId>,
    /// Relays with delivery reports to send, and when.
    reports_due: HashMap<PeerId, Instant>,
    reporting: HashSet<PeerId>,
    in_flight: FuturesUnordered<BoxFuture<'static, Outcome>>,
    next_rehint: Instant,
    next_reports: Instant,
}

/// Runs the exchange until the chat core stops.
pub async fn run(
    client: Client,
    store: StoreHandle,
    mut news: mpsc::Receiver<MailNews>,
    present: Present,
    mut arrivals: mpsc::Receiver<PeerId>,
) {
    let now = Instant::now();
    let mut mail = Mail {
        client,
        store,
        present,
        linked: HashSet::new(),
        known: HashSet::new(),
        remembered: HashMap::new(),
        overflowed_until: None,
        taking: HashSet::new(),
        untold: HashMap::new(),
        next_hints: None,
        listings: HashMap::new(),
        listing: HashSet::new(),
        reports_due: HashMap::new(),
        reporting: HashSet::new(),
        in_flight: FuturesUnordered::new(),
        next_rehint: now + REHINT_EVERY,
        next_reports: now + REPORT_EVERY,
    };
    let mut look = tokio::time::interval(LOOK_EVERY);
    loop {
        let hints_at = mail.next_hints;
        tokio::select! {
            item = news.next() => match item {
                Some(item) => mail.on_news(item),
                None => return,
            },
            item = arrivals.next() => match item {
                Some(peer) => mail.on_connected(peer),
                None => return,
            },
            Some(outcome) = mail.in_flight.next(), if !mail.in_flight.is_empty() => {
                mail.on_outcome(outcome);
            }
            () = sleep_until(hints_at), if hints_at.is_some() => {
                mail.next_hints = None;
                mail.send_hints();
            }
            _ = look.tick() => {
                if !mail.look().await {
                    return;
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

impl Mail {
    fn on_news(&mut self, news: MailNews) {
        match news {
            MailNews::Deposited { to } => {
                if self.present.contains(&to) {
                    // Its direct delivery failed although it is connected here: if this is one
                    // of its relays, it fetches now (the hints go out all the same: it may be
                    // connected here without using this relay's mailbox).
                    self.notify(to);
                }
                for relay in &self.linked {
                    let untold = self.untold.entry(*relay).or_default();
                    if untold.len() < MAX_UNTOLD {
                        untold.insert(to);
                    }
                }
                if !self.linked.is_empty() && self.next_hints.is_none() {
                    self.next_hints = Some(Instant::now() + HINT_EVERY);
                }
            }
            MailNews::Waiting { at, to } => {
                for peer in to {
                    let present = self.present.contains(&peer);
                    // Full: only for a peer connected here (taken now, then forgotten).
                    if !present
                        && self.remembered.len() >= MAX_REMEMBERED
                        && !self.remembered.contains_key(&peer)
                    {
                        if self.overflowed_until.is_none() {
                            tracing::warn!(relay = %at, max = MAX_REMEMBERED, "too many recipients with mail at other relays remembered; hints ignored, a peer that connects is asked for instead");
                        }
                        self.overflowed_until = Some(Instant::now() + REHINT_EVERY);
                        continue;
                    }
                    self.remember(peer, at);
                    if present {
                        self.take(peer, at);
                    }
                }
            }
            MailNews::Delivered { origin } => {
                // (Not sooner than a busy relay asked.)
                self.reports_due.entry(origin).or_insert_with(Instant::now);
                self.send_reports(origin);
            }
        }
    }

    /// Remembers that `relay` keeps mail for `peer` (a new hint).
    fn remember(&mut self, peer: PeerId, relay: PeerId) {
        let now = Instant::now();
        let entry = self
            .remembered
            .entry(peer)
            .or_default()
            .entry(relay)
            .or_insert(Remembered {
                since: now,
                generation: 0,
                failures: 0,
                retry_at: None,
                last_taken: None,
                busy: 0,
            });
        entry.since = now;
        entry.generation += 1;
        entry.failures = 0;
        entry.retry_at = None;
        // New mail there: the next connection takes it, however soon.
        entry.last_taken = None;
    }

    fn on_connected(&mut self, peer: PeerId) {
        if self.known.contains(&peer) {
            // A link back up (it may have restarted and forgotten what we told it): everything
            // again, and the reports it did not take.
            self.listings.insert(peer, None);
            self.reports_due.insert(peer, Instant::now());
        }
        let overflowed = self
            .overflowed_until
            .is_some_and(|until| Instant::now() < until);
        if overflowed && !self.remembered.contains_key(&peer) {
            let linked: Vec<PeerId> = self.linked.iter().copied().collect();
            for relay in linked {
                self.remember(peer, relay);
            }
        }
        let now = Instant::now();
        let mut relays = Vec::new();
        for (relay, entry) in self.remembered.get_mut(&peer).into_iter().flatten() {
            match entry.last_taken.map(|at| at + RETAKE_AFTER) {
                // Taken a moment ago: again a little later (a peer that reconnects in a loop
                // does not make the other relay send the same page again and again).
                Some(at) if now < at => {
                    entry.retry_at.get_or_insert(at);
                }
                _ => relays.push(*relay),
            }
        }
        for relay in relays {
            self.take(peer, relay);
        }
    }

    fn notify(&mut self, to: PeerId) {
        let client = self.client.clone();
        tokio::spawn(async move {
            let _ = client.notify_mail(to).await;
        });
    }

    /// Takes `to`'s mail from `relay`, keeps it here and tells `to`.
    fn take(&mut self, to: PeerId, relay: PeerId) {
        let Some(generation) = self
            .remembered
            .get(&to)
            .and_then(|r| r.get(&relay))
            .map(|r| r.generation)
        else {
            return;
        };
        if self.taking.contains(&(to, relay)) {
            return;
        }
        let Some(entry) = self.remembered.get_mut(&to).and_then(|r| r.get_mut(&relay)) else {
            return;
        };
        if !self.linked.contains(&relay) || self.in_flight.len() >= MAX_IN_FLIGHT {
            // At the next look (a link seen there first, or room for it).
            entry.retry_at.get_or_insert_with(Instant::now);
            return;
        }
        entry.last_taken = Some(Instant::now());
        self.taking.insert((to, relay));
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
                    return Ok((0, 0, 0));
                }
                let got = dms.len();
                let (reply, answer) = oneshot::channel();
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
                let (new, reported) =
                    answer.await.map_err(|_| "the store stopped".to_owned())??;
                if new > 0 {
                    let _ = client.notify_mail(to).await;
                }
                Ok((got, new, reported))
            }
            .await;
            Outcome::Took {
                relay,
                to,
                generation,
                result,
            }
        });
    }

    /// Sends `relay` the delivery reports the store keeps for it, a page at a time.
    fn send_reports(&mut self, relay: PeerId) {
        let due = self
            .reports_due
            .get(&relay)
            .is_some_and(|at| *at <= Instant::now());
        if !due
            || !self.linked.contains(&relay)
            || self.in_flight.len() >= MAX_IN_FLIGHT
            || !self.reporting.insert(relay)
        {
            return;
        }
        self.reports_due.remove(&relay);
        let (client, mut store) = (self.client.clone(), self.store.clone());
        self.start(async move {
            let (reply, answer) = oneshot::channel();
            let job = StoreJob::MailReports {
                origin: relay,
                limit: REPORTS_PAGE,
                reply,
            };
            let pending = match store.send(job).await {
                Ok(()) => answer.await.ok().and_then(Result::ok),
                Err(_) => None,
            };
            let Some(pending) = pending else {
                return Outcome::Reported {
                    relay,
                    recipients: Vec::new(),
                    more: false,
                    later: true,
                };
            };
            let more = pending.iter().map(|(_, ids)| ids.len()).sum::<usize>() >= REPORTS_PAGE;
            let mut recipients = Vec::new();
            for (to, ids) in pending {
                for chunk in ids.chunks(MAX_IDS_PER_REQUEST) {
                    let request = StoreRequest::MailDelivered {
                        to,
                        ids: chunk.to_vec(),
                    };
                    match client.ask_store(relay, request).await {
                        Ok(StoreResponse::Acked { .. }) => {
                            let (reply, done) = oneshot::channel();
                            let job = StoreJob::MailReported {
                                origin: relay,
                                to,
                                ids: chunk.to_vec(),
                                reply,
                            };
                            let forgotten = match store.send(job).await {
                                Ok(()) => done.await.unwrap_or(false),
                                Err(_) => false,
                            };
                            if !forgotten {
                                // The store cannot write now: no round after this one yet.
                                return Outcome::Reported {
                                    relay,
                                    recipients,
                                    more: false,
                                    later: true,
                                };
                            }
                        }
                        Ok(StoreResponse::Error { reason }) => {
                            // Busy, or it stopped naming us: the reports wait in the store.
                            tracing::debug!(%relay, reason, "delivery reports not taken; sent again later");
                            return Outcome::Reported {
                                relay,
                                recipients,
                                more: false,
                                later: true,
                            };
                        }
                        Ok(_) | Err(_) => {
                            return Outcome::Reported {
                                relay,
                                recipients,
                                more: false,
                                later: true,
                            };
                        }
                    }
                }
                recipients.push(to);
            }
            Outcome::Reported {
                relay,
                recipients,
                more,
                later: false,
            }
        });
    }

    fn start(&mut self, exchange: impl std::future::Future<Output = Outcome> + Send + 'static) {
        self.in_flight.push(exchange.boxed());
    }

    fn on_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Took {
                relay,
                to,
                generation,
                result,
            } => {
                self.taking.remove(&(to, relay));
                if let Ok((_, new, reported)) = result {
                    if new > 0 {
                        tracing::info!(%relay, recipient = %to, new, "mail taken from a relay for a peer connected here");
                    }
                    if reported > 0 {
                        self.reports_due.entry(relay).or_insert_with(Instant::now);
                        self.send_reports(relay);
                    }
                }
                let present = self.present.contains(&to);
                let Some(entry) = self.remembered.get_mut(&to).and_then(|r| r.get_mut(&relay))
                else {
                    return;
                };
                let hinted_since = entry.generation != generation;
                match result {
                    Ok((got, _, _)) => {
                        entry.failures = 0;
                        entry.busy = 0;
                        entry.retry_at = None;
                        if hinted_since {
                            // New mail there meanwhile: taken now, or when it is back.
                            if present {
                                self.take(to, relay);
                            }
                        } else if got == 0 {
                            // All taken (what is here waits for its recipient to fetch it).
                            self.forget(to, relay);
                        }
                        // Otherwise more may wait there, behind a full answer: taken again
                        // once the reports of what was fetched here made room.
                    }
                    Err(reason) if reason.contains("busy") => {
                        // Not a failure: later, less often while it stays busy.
                        entry.busy = entry.busy.saturating_add(1);
                        let wait = BUSY_RETRY * 2u32.pow(entry.busy.min(4));
                        entry.retry_at = Some(Instant::now() + wait);
                    }
                    Err(reason) => {
                        entry.failures += 1;
                        let failures = entry.failures;
                        entry.retry_at =
                            Some(Instant::now() + FIRST_RETRY * 2u32.pow(failures.min(10) - 1));
                        if failures >= MAX_TAKE_FAILURES {
                            tracing::warn!(%relay, recipient = %to, reason, "mail not taken; left until the relay tells again");
                            self.forget(to, relay);
                        } else {
                            tracing::debug!(%relay, recipient = %to, reason, failures, "mail not taken; tried again later");
                        }
                    }
                }
            }
            Outcome::Reported {
                relay,
                recipients,
                more,
                later,
            } => {
                self.reporting.remove(&relay);
                // What was left there for want of room in one answer comes next.
                for to in recipients {
                    if self.present.contains(&to) {
                        self.take(to, relay);
                    }
                }
                if more {
                    self.reports_due.insert(relay, Instant::now());
                } else if later {
                    self.reports_due
                        .entry(relay)
                        .or_insert(Instant::now() + REPORT_EVERY);
                }
                // Including reports made while these were under way.
                self.send_reports(relay);
            }
            Outcome::Told { relay, again } => {
                if !again.is_empty() {
                    let untold = self.untold.entry(relay).or_default();
                    for to in again {
                        if untold.len() < MAX_UNTOLD {
                            untold.insert(to);
                        }
                    }
                }
            }
            Outcome::Listed { relay, page } => {
                self.listing.remove(&relay);
                let Some((recipients, next)) = page else {
                    return;
                };
                let untold = self.untold.entry(relay).or_default();
                untold.extend(recipients);
                match next {
                    Some(next) => {
                        self.listings.insert(relay, Some(next));
                    }
                    None => {
                        self.listings.remove(&relay);
                    }
                }
                self.send_hints();
            }
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

    /// Sends the hints gathered to each linked relay, [`MAX_IDS_PER_REQUEST`] recipients a
    /// request.
    fn send_hints(&mut self) {
        let relays: Vec<PeerId> = self.untold.keys().copied().collect();
        for relay in relays {
            if !self.linked.contains(&relay) {
                // Named again when the link comes back.
                self.untold.remove(&relay);
                continue;
            }
            while self.in_flight.len() < MAX_IN_FLIGHT {
                let Some(untold) = self.untold.get_mut(&relay) else {
                    break;
                };
                let chunk: Vec<PeerId> = untold.iter().take(MAX_IDS_PER_REQUEST).copied().collect();
                if chunk.is_empty() {
                    self.untold.remove(&relay);
                    break;
                }
                for to in &chunk {
                    untold.remove(to);
                }
                let client = self.client.clone();
                self.start(async move {
                    let request = StoreRequest::MailWaiting { to: chunk.clone() };
                    let again = match client.ask_store(relay, request).await {
                        Ok(StoreResponse::Acked { .. }) => Vec::new(),
                        Ok(StoreResponse::Error { reason }) => {
                            tracing::debug!(%relay, reason, "a relay did not take a mail hint");
                            // Busy: named again at the next look. Refused: it would be again.
                            if reason.contains("busy") {
                                chunk
                            } else {
                                Vec::new()
                            }
                        }
                        Ok(_) | Err(_) => chunk,
                    };
                    Outcome::Told { relay, again }
                });
            }
        }
    }

    /// Lists the next page of our recipients for `relay`.
    fn list_for(&mut self, relay: PeerId, after: Option<PeerId>) {
        let room = self.untold.get(&relay).map_or(0, HashSet::len) + LIST_PAGE <= MAX_UNTOLD;
        if !room || self.in_flight.len() >= MAX_IN_FLIGHT || !self.listing.insert(relay) {
            return;
        }
        let mut store = self.store.clone();
        self.start(async move {
            let (reply, answer) = oneshot::channel();
            let job = StoreJob::MailRecipients {
                after,
                limit: LIST_PAGE,
                reply,
            };
            let listed = match store.send(job).await {
                Ok(()) => answer.await.ok().and_then(Result::ok),
                Err(_) => None,
            };
            let page = listed.map(|recipients| {
                let next = (recipients.len() >= LIST_PAGE)
                    .then(|| recipients.last().copied())
                    .flatten();
                (recipients, next)
            });
            Outcome::Listed { relay, page }
        });
    }

    /// Every [`LOOK_EVERY`]: links that came up get our recipients and their reports, failed
    /// takes whose time came are tried again, what was remembered too long is forgotten;
    /// `false` once the chat core stopped.
    async fn look(&mut self) -> bool {
        let Ok((relays, _)) = self.client.federation().await else {
            return false;
        };
        let now = Instant::now();
        let rehint = now >= self.next_rehint;
        if rehint {
            self.next_rehint = now + REHINT_EVERY;
        }
        if now >= self.next_reports {
            self.next_reports = now + REPORT_EVERY;
            for relay in &relays {
                self.reports_due.entry(*relay).or_insert(now);
            }
        }
        for relay in &relays {
            if rehint || !self.linked.contains(relay) {
                self.listings.insert(*relay, None);
                self.reports_due.insert(*relay, now);
            }
        }
        self.linked = relays.into_iter().collect();
        self.known.extend(self.linked.iter().copied());
        self.listings.retain(|relay, _| self.linked.contains(relay));
        let listings: Vec<(PeerId, Option<PeerId>)> =
            self.listings.iter().map(|(r, a)| (*r, *a)).collect();
        for (relay, after) in listings {
            self.list_for(relay, after);
        }
        self.send_hints();
        let due: Vec<PeerId> = self.reports_due.keys().copied().collect();
        for relay in due {
            self.send_reports(relay);
        }
        self.remembered.retain(|_, relays| {
            relays.retain(|_, r| now.duration_since(r.since) < WAITING_TTL);
            !relays.is_empty()
        });
        let retries: Vec<(PeerId, PeerId)> = self
            .remembered
            .iter()
            .filter(|(to, _)| self.present.contains(to))
            .flat_map(|(to, relays)| {
                relays
                    .iter()
                    .filter(|(_, r)| r.retry_at.is_some_and(|at| at <= now))
                    .map(move |(relay, _)| (*to, *relay))
            })
            .filter(|(to, relay)| {
                self.linked.contains(relay) && !self.taking.contains(&(*to, *relay))
            })
            .take(MAX_IN_FLIGHT)
            .collect();
        for (to, relay) in retries {
            self.take(to, relay);
        }
        true
    }
}
