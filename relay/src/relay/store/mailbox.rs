//! The mailbox in the store: sealed DMs deposited for an offline recipient, fetched by it oldest
//! first, forgotten when it acknowledges them; the depositor then learns they were delivered.
//!
//! Bounded both ways, so that nobody can fill the disk or block someone's mail:
//! - per depositor ([`super::Retention::mailbox_max_per_depositor`], over all its recipients):
//!   deposits for made-up peer ids cost the depositor its own allowance;
//! - per recipient ([`super::Retention::mailbox_max_per_peer`]): a full mailbox makes room for a
//!   new deposit by dropping the oldest DM of whoever holds the most there, when that is more
//!   than the new depositor holds. Junk from one sender thus never keeps out someone else's.

use libp2p::PeerId;
use p2p_chat_shared::envelope::MAX_ID_CHARS;
use p2p_chat_shared::store::{
    Deposit, MailboxDm, StoreResponse, MAX_IDS_PER_REQUEST, MAX_PAGE_BYTES, MAX_SEALED_CHARS,
};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

use super::bytes::dm_bytes;
use super::{after, Store};

/// (recipient, stored at, id) → (depositor, sealed).
pub(super) const MAILBOX: TableDefinition<(&str, u64, &str), (&str, &str)> =
    TableDefinition::new("mailbox");
/// (recipient, id) → stored at.
pub(super) const MAILBOX_IDS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("mailbox_ids");
/// (depositor, id) → fetched at: what a depositor's status poll reads.
pub(super) const DELIVERED: TableDefinition<(&str, &str), u64> = TableDefinition::new("delivered");
/// depositor → DMs it has waiting.
pub(super) const DEPOSITORS: TableDefinition<&str, u64> =
    TableDefinition::new("mailbox_depositors");
/// (recipient, id, relay) for a DM taken from another relay (from more than one, maybe): each
/// is told when the recipient has it.
pub(super) const MAIL_ORIGIN: TableDefinition<(&str, &str, &str), ()> =
    TableDefinition::new("mail_origin");
/// (relay, recipient, id) → fetched at: what a relay is still to be told was fetched here.
pub(super) const MAIL_REPORTS: TableDefinition<(&str, &str, &str), u64> =
    TableDefinition::new("mail_reports");

/// The relays a DM kept here was taken from.
fn origins_of(
    origins: &redb::Table<(&str, &str, &str), ()>,
    to: &str,
    id: &str,
) -> Result<Vec<String>, redb::Error> {
    let mut found = Vec::new();
    for entry in origins.range((to, id, "")..(to, after(id).as_str(), ""))? {
        found.push(entry?.0.value().2.to_owned());
    }
    Ok(found)
}

/// Forgets where a DM that is gone (expired, evicted, shed) came from.
pub(super) fn forget_origins(
    origins: &mut redb::Table<(&str, &str, &str), ()>,
    to: &str,
    id: &str,
) -> Result<(), redb::Error> {
    for origin in origins_of(origins, to, id)? {
        origins.remove((to, id, origin.as_str()))?;
    }
    Ok(())
}

/// Counts what each depositor has waiting, once, for a store written before the count was kept.
pub(super) fn count_depositors(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    let mut depositors = tx.open_table(DEPOSITORS)?;
    if !depositors.is_empty()? {
        return Ok(());
    }
    let mailbox = tx.open_table(MAILBOX)?;
    let mut counts: std::collections::HashMap<String, u64> = Default::default();
    for entry in mailbox.iter()? {
        let (_, value) = entry?;
        *counts.entry(value.value().0.to_owned()).or_default() += 1;
    }
    for (depositor, count) in counts {
        depositors.insert(depositor.as_str(), count)?;
    }
    Ok(())
}

/// Changes what `depositor` has waiting by `delta`.
pub(super) fn count_deposit(
    depositors: &mut redb::Table<&str, u64>,
    depositor: &str,
    delta: i64,
) -> Result<(), redb::Error> {
    let held = depositors.get(depositor)?.map_or(0, |v| v.value());
    let held = held.saturating_add_signed(delta);
    if held == 0 {
        depositors.remove(depositor)?;
    } else {
        depositors.insert(depositor, held)?;
    }
    Ok(())
}

impl Store {
    /// Keeps a sealed DM for its recipient (once per id), unless the recipient's mailbox is full;
    /// adds the bytes it takes (less any DM it evicts) to `bytes`.
    /// Whether it was new comes with the answer (a deposit already here is answered
    /// "deposited" again).
    pub(super) fn deposit(
        &self,
        tx: &redb::WriteTransaction,
        from: PeerId,
        deposit: &Deposit,
        now: u64,
        bytes: &mut i64,
    ) -> Result<(StoreResponse, bool), redb::Error> {
        let to = deposit.to.to_base58();
        let mut ids = tx.open_table(MAILBOX_IDS)?;
        if ids.get((to.as_str(), deposit.id.as_str()))?.is_some() {
            let answer = StoreResponse::Deposited {
                id: deposit.id.clone(),
            };
            return Ok((answer, false));
        }
        let from = from.to_base58();
        let mut depositors = tx.open_table(DEPOSITORS)?;
        let mine = depositors.get(from.as_str())?.map_or(0, |v| v.value());
        if mine >= self.retention.mailbox_max_per_depositor {
            let answer = StoreResponse::error(format!(
                "you have {mine} direct messages waiting at this relay; the limit is {} until some are fetched",
                self.retention.mailbox_max_per_depositor
            ));
            return Ok((answer, false));
        }
        let mut mailbox = tx.open_table(MAILBOX)?;
        let held = ids
            .range((to.as_str(), "")..(after(&to).as_str(), ""))?
            .count() as u64;
        if held >= self.retention.mailbox_max_per_peer {
            // Full: the oldest DM of whoever holds the most here makes room, if that is more
            // than this depositor holds.
            type Oldest = (u64, String, u64);
            let mut by_depositor: std::collections::HashMap<String, (u64, Oldest)> =
                Default::default();
            for entry in mailbox.range((to.as_str(), 0, "")..(after(&to).as_str(), 0, ""))? {
                let (key, value) = entry?;
                let (_, at, id) = key.value();
                let (depositor, sealed) = value.value();
                let slot = by_depositor.entry(depositor.to_owned()).or_insert_with(|| {
                    let size = dm_bytes(&to, id, depositor, sealed);
                    (0, (at, id.to_owned(), size))
                });
                slot.0 += 1;
            }
            let own = by_depositor.get(&from).map_or(0, |(n, _)| *n);
            let top = by_depositor
                .into_iter()
                .max_by_key(|(_, (n, _))| *n)
                .filter(|(_, (n, _))| *n > own);
            let Some((evicted, (_, (at, id, size)))) = top else {
                let answer = StoreResponse::error(format!(
                    "the mailbox of {} is full ({held} messages waiting)",
                    deposit.to
                ));
                return Ok((answer, false));
            };
            mailbox.remove((to.as_str(), at, id.as_str()))?;
            ids.remove((to.as_str(), id.as_str()))?;
            forget_origins(&mut tx.open_table(MAIL_ORIGIN)?, &to, &id)?;
            count_deposit(&mut depositors, &evicted, -1)?;
            *bytes -= size as i64;
            tracing::info!(recipient = %deposit.to, depositor = evicted, "full mailbox: the oldest DM of its largest depositor made room");
        }
        mailbox.insert(
            (to.as_str(), now, deposit.id.as_str()),
            (from.as_str(), deposit.sealed.as_str()),
        )?;
        ids.insert((to.as_str(), deposit.id.as_str()), now)?;
        count_deposit(&mut depositors, &from, 1)?;
        *bytes += dm_bytes(&to, &deposit.id, &from, &deposit.sealed) as i64;
        let answer = StoreResponse::Deposited {
            id: deposit.id.clone(),
        };
        Ok((answer, true))
    }
}

/// The recipient has these DMs: forget them (taking their bytes off `bytes`), and note for each
/// depositor that it was fetched. The relays any of them was taken from are to be told
/// ([`MAIL_REPORTS`]); they go in `told`.
pub(super) fn ack(
    tx: &redb::WriteTransaction,
    recipient: PeerId,
    acked: &[String],
    now: u64,
    bytes: &mut i64,
    told: &mut Vec<PeerId>,
) -> Result<StoreResponse, redb::Error> {
    let to = recipient.to_base58();
    let mut ids = tx.open_table(MAILBOX_IDS)?;
    let mut mailbox = tx.open_table(MAILBOX)?;
    let mut delivered = tx.open_table(DELIVERED)?;
    let mut depositors = tx.open_table(DEPOSITORS)?;
    let mut origins = tx.open_table(MAIL_ORIGIN)?;
    let mut reports = tx.open_table(MAIL_REPORTS)?;
    let mut count = 0;
    for id in acked {
        let Some(stored_at) = ids.remove((to.as_str(), id.as_str()))?.map(|v| v.value()) else {
            continue;
        };
        for origin in origins_of(&origins, &to, id)? {
            origins.remove((to.as_str(), id.as_str(), origin.as_str()))?;
            reports.insert((origin.as_str(), to.as_str(), id.as_str()), now)?;
            if let Ok(origin) = origin.parse::<PeerId>() {
                if !told.contains(&origin) {
                    told.push(origin);
                }
            }
        }
        let removed = mailbox.remove((to.as_str(), stored_at, id.as_str()))?;
        let depositor = removed.map(|v| {
            let (depositor, sealed) = v.value();
            *bytes -= dm_bytes(&to, id, depositor, sealed) as i64;
            depositor.to_owned()
        });
        if let Some(depositor) = depositor {
            delivered.insert((depositor.as_str(), id.as_str()), now)?;
            count_deposit(&mut depositors, &depositor, -1)?;
        }
        count += 1;
    }
    Ok(StoreResponse::Acked { count })
}

/// The DMs kept for `recipient`, oldest first, at most [`MAX_IDS_PER_REQUEST`] and about
/// [`MAX_PAGE_BYTES`] (the rest on the next fetch, once these are acknowledged).
pub(super) fn fetch(
    tx: &redb::ReadTransaction,
    recipient: PeerId,
) -> Result<StoreResponse, redb::Error> {
    let mailbox = tx.open_table(MAILBOX)?;
    let to = recipient.to_base58();
    let mut dms = Vec::new();
    let mut bytes = 0;
    for entry in mailbox
        .range((to.as_str(), 0, "")..(after(&to).as_str(), 0, ""))?
        .take(MAX_IDS_PER_REQUEST)
    {
        let (key, value) = entry?;
        let (_, stored_at, id) = key.value();
        let (depositor, sealed) = value.value();
        let Ok(depositor) = depositor.parse::<PeerId>() else {
            continue;
        };
        if bytes > MAX_PAGE_BYTES {
            break;
        }
        bytes += sealed.len() + id.len();
        dms.push(MailboxDm {
            id: id.to_owned(),
            from: depositor,
            sealed: sealed.to_owned(),
            stored_at,
        });
    }
    Ok(StoreResponse::Mailbox { dms })
}

impl Store {
    /// Keeps DMs for `to` taken from the relay `origin`, each as its depositor's and dated as
    /// it was there, within the same limits as a deposit. One already here is not kept twice
    /// (`origin` is told too when the recipient fetches it); one fetched here before is reported
    /// to `origin` at once; a malformed one is dropped. (new, reported).
    pub(super) fn take(
        &self,
        tx: &redb::WriteTransaction,
        origin: PeerId,
        to: PeerId,
        dms: &[MailboxDm],
        now: u64,
        bytes: &mut i64,
    ) -> Result<(usize, usize), redb::Error> {
        let recipient = to.to_base58();
        let origin_id = origin.to_base58();
        let (mut new, mut reported) = (0, 0);
        for dm in dms.iter().take(MAX_IDS_PER_REQUEST) {
            if dm.id.is_empty() || dm.id.len() > MAX_ID_CHARS || dm.sealed.len() > MAX_SEALED_CHARS
            {
                tracing::warn!(%origin, %to, "a relay handed over a malformed DM; dropped");
                continue;
            }
            let (id, depositor) = (dm.id.as_str(), dm.from.to_base58());
            let fetched = tx
                .open_table(DELIVERED)?
                .get((depositor.as_str(), id))?
                .is_some();
            if fetched {
                tx.open_table(MAIL_REPORTS)?
                    .insert((origin_id.as_str(), recipient.as_str(), id), now)?;
                reported += 1;
                continue;
            }
            let here = tx
                .open_table(MAILBOX_IDS)?
                .get((recipient.as_str(), id))?
                .map(|at| at.value());
            if let Some(at) = here {
                // The same DM only if the same depositor left it (ids are the sender's choice).
                let same = tx
                    .open_table(MAILBOX)?
                    .get((recipient.as_str(), at, id))?
                    .is_some_and(|v| v.value().0 == depositor);
                if !same {
                    tracing::warn!(%origin, %to, "a relay handed over a DM under the id of another depositor's; dropped");
                    continue;
                }
            } else {
                let deposit = Deposit {
                    to,
                    id: dm.id.clone(),
                    sealed: dm.sealed.clone(),
                };
                // Its age goes with it: a DM does not live longer for having moved.
                let at = dm.stored_at.min(now);
                match self.deposit(tx, dm.from, &deposit, at, bytes)? {
                    (_, true) => new += 1,
                    (other, false) => {
                        tracing::info!(%origin, %to, ?other, "a DM from another relay not kept here; it stays there");
                        continue;
                    }
                }
            }
            tx.open_table(MAIL_ORIGIN)?
                .insert((recipient.as_str(), id, origin_id.as_str()), ())?;
        }
        Ok((new, reported))
    }
}

/// What `origin` is still to be told was fetched here: by recipient, at most `limit` ids.
pub(super) fn reports(
    tx: &redb::ReadTransaction,
    origin: PeerId,
    limit: usize,
) -> Result<Vec<(PeerId, Vec<String>)>, redb::Error> {
    let table = tx.open_table(MAIL_REPORTS)?;
    let origin = origin.to_base58();
    let mut found: Vec<(PeerId, Vec<String>)> = Vec::new();
    for entry in table
        .range((origin.as_str(), "", "")..(after(&origin).as_str(), "", ""))?
        .take(limit)
    {
        let (key, _) = entry?;
        let (_, to, id) = key.value();
        let Ok(to) = to.parse::<PeerId>() else {
            continue;
        };
        match found.last_mut() {
            Some((last, ids)) if *last == to => ids.push(id.to_owned()),
            _ => found.push((to, vec![id.to_owned()])),
        }
    }
    Ok(found)
}

/// `origin` took these reports.
pub(super) fn reported(
    tx: &redb::WriteTransaction,
    origin: PeerId,
    to: PeerId,
    ids: &[String],
) -> Result<(), redb::Error> {
    let mut table = tx.open_table(MAIL_REPORTS)?;
    let (origin, to) = (origin.to_base58(), to.to_base58());
    for id in ids {
        table.remove((origin.as_str(), to.as_str(), id.as_str()))?;
    }
    Ok(())
}

/// The peers mail waits for here, in order, after `start`, at most `limit`.
pub(super) fn recipients(
    tx: &redb::ReadTransaction,
    start: Option<PeerId>,
    limit: usize,
) -> Result<Vec<PeerId>, redb::Error> {
    let ids = tx.open_table(MAILBOX_IDS)?;
    let mut found = Vec::new();
    let mut from = start.map_or_else(String::new, |p| after(&p.to_base58()));
    while found.len() < limit {
        let Some(entry) = ids.range((from.as_str(), "")..)?.next() else {
            break;
        };
        let (key, _) = entry?;
        let to = key.value().0.to_owned();
        if let Ok(peer) = to.parse::<PeerId>() {
            found.push(peer);
        }
        from = after(&to);
    }
    Ok(found)
}

/// Which of `ids`, deposited by `depositor`, were fetched by their recipients.
pub(super) fn status(
    tx: &redb::ReadTransaction,
    depositor: PeerId,
    ids: Vec<String>,
) -> Result<StoreResponse, redb::Error> {
    let delivered = tx.open_table(DELIVERED)?;
    let me = depositor.to_base58();
    let mut done = Vec::new();
    for id in ids {
        if delivered.get((me.as_str(), id.as_str()))?.is_some() {
            done.push(id);
        }
    }
    Ok(StoreResponse::Status { delivered: done })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{store, temp};
    use super::super::Retention;
    use super::*;
    use p2p_chat_shared::store::{StoreJob, StoreRequest};
    use p2p_chat_shared::text::now_unix_ms;

    fn deposit(store: &mut Store, from: PeerId, to: PeerId, id: &str) -> StoreResponse {
        let (reply, answer) = futures::channel::oneshot::channel();
        let request = StoreRequest::Deposit(Deposit {
            to,
            id: id.to_owned(),
            sealed: "c2VhbGVk".to_owned(),
        });
        store.process(vec![StoreJob::Request {
            from,
            request,
            reply,
        }]);
        futures::executor::block_on(answer).expect("an answer")
    }

    fn waiting_for(store: &mut Store, to: PeerId) -> Vec<PeerId> {
        match store.read(to, StoreRequest::Fetch) {
            Ok(StoreResponse::Mailbox { dms }) => dms.into_iter().map(|d| d.from).collect(),
            other => panic!("expected a mailbox, got {other:?}"),
        }
    }

    fn request(store: &mut Store, from: PeerId, request: StoreRequest) -> StoreResponse {
        let (reply, answer) = futures::channel::oneshot::channel();
        store.process(vec![StoreJob::Request {
            from,
            request,
            reply,
        }]);
        futures::executor::block_on(answer).expect("an answer")
    }

    fn take_mail(
        store: &mut Store,
        origin: PeerId,
        to: PeerId,
        dms: Vec<MailboxDm>,
    ) -> (usize, usize) {
        let (reply, answer) = futures::channel::oneshot::channel();
        store.process(vec![StoreJob::TakeMail {
            origin,
            to,
            dms,
            reply,
        }]);
        futures::executor::block_on(answer)
            .expect("an answer")
            .expect("taken")
    }

    fn reports_for(store: &mut Store, origin: PeerId) -> Vec<(PeerId, Vec<String>)> {
        let (reply, answer) = futures::channel::oneshot::channel();
        store.process(vec![StoreJob::MailReports {
            origin,
            limit: 100,
            reply,
        }]);
        futures::executor::block_on(answer)
            .expect("an answer")
            .expect("read")
    }

    fn news(store: &mut Store) -> futures::channel::mpsc::Receiver<super::super::MailNews> {
        let (sender, receiver) = futures::channel::mpsc::channel(16);
        store.news = Some(sender);
        receiver
    }

    #[test]
    fn mail_taken_from_another_relay_is_kept_once_and_reported_until_told() {
        use super::super::MailNews;
        // Relay A keeps a DM from alice for carol; carol is on relay C.
        let (dir_a, dir_c) = (temp(), temp());
        let mut a = store(&dir_a, Retention::default());
        let mut c = store(&dir_c, Retention::default());
        let (relay_a, relay_c) = (PeerId::random(), PeerId::random());
        let (alice, carol) = (PeerId::random(), PeerId::random());
        let mut a_news = news(&mut a);
        let mut c_news = news(&mut c);
        assert!(matches!(
            deposit(&mut a, alice, carol, "dm-1"),
            StoreResponse::Deposited { .. }
        ));
        assert_eq!(
            a_news.try_recv().ok(),
            Some(MailNews::Deposited { to: carol }),
            "a deposit is news for the other relays"
        );
        deposit(&mut a, alice, carol, "dm-1");
        assert!(a_news.try_recv().is_err(), "the same deposit again is not");
        // C takes it: kept as alice's, once however often it is handed over.
        let StoreResponse::Mailbox { dms } =
            request(&mut a, relay_c, StoreRequest::MailFor { to: carol })
        else {
            panic!("a mailbox");
        };
        assert_eq!(take_mail(&mut c, relay_a, carol, dms.clone()), (1, 0));
        assert_eq!(take_mail(&mut c, relay_a, carol, dms.clone()), (0, 0));
        assert_eq!(waiting_for(&mut a, carol), [alice], "A keeps it until told");
        assert_eq!(waiting_for(&mut c, carol), [alice]);
        // Carol fetches it at C: C keeps a report for A until A takes it.
        let ack = StoreRequest::Ack {
            ids: vec!["dm-1".into()],
        };
        assert_eq!(
            request(&mut c, carol, ack),
            StoreResponse::Acked { count: 1 }
        );
        assert_eq!(
            c_news.try_recv().ok(),
            Some(MailNews::Delivered { origin: relay_a })
        );
        let due = vec![(carol, vec!["dm-1".to_owned()])];
        assert_eq!(reports_for(&mut c, relay_a), due);
        assert!(reports_for(&mut c, relay_c).is_empty());
        // Handed over again before A was told: not kept again, reported again.
        assert_eq!(take_mail(&mut c, relay_a, carol, dms.clone()), (0, 1));
        assert!(waiting_for(&mut c, carol).is_empty());
        // A takes the report: it forgets the DM, and alice's status poll says so.
        let report = StoreRequest::MailDelivered {
            to: carol,
            ids: vec!["dm-1".into()],
        };
        assert_eq!(
            request(&mut a, relay_c, report),
            StoreResponse::Acked { count: 1 }
        );
        let (reply, done) = futures::channel::oneshot::channel();
        c.process(vec![StoreJob::MailReported {
            origin: relay_a,
            to: carol,
            ids: vec!["dm-1".into()],
            reply,
        }]);
        assert_eq!(futures::executor::block_on(done), Ok(true));
        assert!(reports_for(&mut c, relay_a).is_empty());
        assert!(waiting_for(&mut a, carol).is_empty());
        let status = StoreRequest::Status {
            ids: vec!["dm-1".into()],
        };
        assert_eq!(
            request(&mut a, alice, status),
            StoreResponse::Status {
                delivered: vec!["dm-1".into()]
            }
        );
        // Malformed DMs from a relay are dropped.
        let bad = |id: &str, sealed: String| MailboxDm {
            id: id.to_owned(),
            from: alice,
            sealed,
            stored_at: 0,
        };
        let junk = vec![
            bad("", "c2VhbGVk".into()),
            bad(&"i".repeat(MAX_ID_CHARS + 1), "c2VhbGVk".into()),
            bad("big", "x".repeat(MAX_SEALED_CHARS + 1)),
        ];
        assert_eq!(take_mail(&mut c, relay_a, carol, junk), (0, 0));
        let _ = std::fs::remove_dir_all(dir_a);
        let _ = std::fs::remove_dir_all(dir_c);
    }

    #[test]
    fn a_dm_taken_from_two_relays_is_kept_once_and_both_are_told() {
        let dir = temp();
        let mut c = store(&dir, Retention::default());
        let (relay_a, relay_b) = (PeerId::random(), PeerId::random());
        let (alice, carol) = (PeerId::random(), PeerId::random());
        let dm = MailboxDm {
            id: "dm-1".into(),
            from: alice,
            sealed: "c2VhbGVk".into(),
            stored_at: now_unix_ms() - 1000,
        };
        assert_eq!(take_mail(&mut c, relay_a, carol, vec![dm.clone()]), (1, 0));
        assert_eq!(take_mail(&mut c, relay_b, carol, vec![dm.clone()]), (0, 0));
        // Under the same id from another depositor: not taken for the same DM (its relay is not
        // told it was delivered when carol fetches alice's).
        let relay_m = PeerId::random();
        let impostor = MailboxDm {
            from: PeerId::random(),
            ..dm.clone()
        };
        assert_eq!(take_mail(&mut c, relay_m, carol, vec![impostor]), (0, 0));
        let StoreResponse::Mailbox { dms } = request(&mut c, carol, StoreRequest::Fetch) else {
            panic!("a mailbox");
        };
        assert_eq!(dms.len(), 1);
        assert_eq!(dms[0].stored_at, dm.stored_at, "its age goes with it");
        let ack = StoreRequest::Ack {
            ids: vec!["dm-1".into()],
        };
        request(&mut c, carol, ack);
        for relay in [relay_a, relay_b] {
            assert_eq!(
                reports_for(&mut c, relay),
                vec![(carol, vec!["dm-1".to_owned()])]
            );
        }
        assert!(reports_for(&mut c, relay_m).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn junk_from_one_sender_neither_blocks_a_mailbox_nor_fills_the_disk() {
        let dir = temp();
        let mut store = store(
            &dir,
            Retention {
                mailbox_max_per_peer: 10,
                mailbox_max_per_depositor: 25,
                ..Retention::default()
            },
        );
        let (alice, bob, mallory) = (PeerId::random(), PeerId::random(), PeerId::random());
        for i in 0..10 {
            let answer = deposit(&mut store, mallory, alice, &format!("junk-{i}"));
            assert!(
                matches!(answer, StoreResponse::Deposited { .. }),
                "{answer:?}"
            );
        }
        // Alice's mailbox is full of junk; bob's DM still gets in, in place of the oldest junk.
        let answer = deposit(&mut store, bob, alice, "hello");
        assert!(
            matches!(answer, StoreResponse::Deposited { .. }),
            "{answer:?}"
        );
        let waiting = waiting_for(&mut store, alice);
        assert_eq!(waiting.len(), 10);
        assert!(waiting.contains(&bob));
        // More junk for alice is refused: it would only take junk's own places.
        for i in 10..20 {
            let answer = deposit(&mut store, mallory, alice, &format!("junk-{i}"));
            assert!(matches!(answer, StoreResponse::Error { .. }), "{answer:?}");
        }
        assert!(waiting_for(&mut store, alice).contains(&bob));
        // Junk for made-up recipients stops at the depositor's allowance.
        let mut refused = None;
        for i in 0..100 {
            match deposit(&mut store, mallory, PeerId::random(), &format!("fake-{i}")) {
                StoreResponse::Deposited { .. } => {}
                StoreResponse::Error { reason } => {
                    refused = Some((i, reason));
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let (at, reason) = refused.expect("the depositor's limit was reached");
        assert_eq!(at, 25 - 9, "9 junk DMs wait for alice; 16 more fit");
        assert!(reason.contains("limit"), "{reason}");
        // A fetched DM frees its depositor's allowance.
        let ack = StoreRequest::Ack {
            ids: (1..10).map(|i| format!("junk-{i}")).collect(),
        };
        let (reply, answer) = futures::channel::oneshot::channel();
        store.process(vec![StoreJob::Request {
            from: alice,
            request: ack,
            reply,
        }]);
        futures::executor::block_on(answer).expect("acked");
        let answer = deposit(&mut store, mallory, PeerId::random(), "fake-after");
        assert!(
            matches!(answer, StoreResponse::Deposited { .. }),
            "{answer:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
