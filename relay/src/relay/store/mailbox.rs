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
/// (recipient, id) → the relay a DM was taken from, for a DM taken from another relay: told
/// when the recipient has it.
pub(super) const MAIL_ORIGIN: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("mail_origin");

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
    pub(super) fn deposit(
        &self,
        tx: &redb::WriteTransaction,
        from: PeerId,
        deposit: &Deposit,
        now: u64,
        bytes: &mut i64,
    ) -> Result<StoreResponse, redb::Error> {
        let to = deposit.to.to_base58();
        let mut ids = tx.open_table(MAILBOX_IDS)?;
        if ids.get((to.as_str(), deposit.id.as_str()))?.is_some() {
            return Ok(StoreResponse::Deposited {
                id: deposit.id.clone(),
            });
        }
        let from = from.to_base58();
        let mut depositors = tx.open_table(DEPOSITORS)?;
        let mine = depositors.get(from.as_str())?.map_or(0, |v| v.value());
        if mine >= self.retention.mailbox_max_per_depositor {
            return Ok(StoreResponse::error(format!(
                "you have {mine} direct messages waiting at this relay; the limit is {} until some are fetched",
                self.retention.mailbox_max_per_depositor
            )));
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
                return Ok(StoreResponse::error(format!(
                    "the mailbox of {} is full ({held} messages waiting)",
                    deposit.to
                )));
            };
            mailbox.remove((to.as_str(), at, id.as_str()))?;
            ids.remove((to.as_str(), id.as_str()))?;
            tx.open_table(MAIL_ORIGIN)?
                .remove((to.as_str(), id.as_str()))?;
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
        Ok(StoreResponse::Deposited {
            id: deposit.id.clone(),
        })
    }
}

/// The recipient has these DMs: forget them (taking their bytes off `bytes`), and note for each
/// depositor that it was fetched. Those taken from another relay go in `copies`, with the relay
/// (to be told).
pub(super) fn ack(
    tx: &redb::WriteTransaction,
    recipient: PeerId,
    acked: &[String],
    now: u64,
    bytes: &mut i64,
    copies: &mut Vec<(PeerId, String)>,
) -> Result<StoreResponse, redb::Error> {
    let to = recipient.to_base58();
    let mut ids = tx.open_table(MAILBOX_IDS)?;
    let mut mailbox = tx.open_table(MAILBOX)?;
    let mut delivered = tx.open_table(DELIVERED)?;
    let mut depositors = tx.open_table(DEPOSITORS)?;
    let mut origins = tx.open_table(MAIL_ORIGIN)?;
    let mut count = 0;
    for id in acked {
        let Some(stored_at) = ids.remove((to.as_str(), id.as_str()))?.map(|v| v.value()) else {
            continue;
        };
        let origin = origins.remove((to.as_str(), id.as_str()))?;
        if let Some(origin) = origin.and_then(|o| o.value().parse::<PeerId>().ok()) {
            copies.push((origin, id.clone()));
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
    /// Keeps DMs for `to` taken from the relay `origin`, each as its depositor's, within the
    /// same limits as a deposit; skips what is already here, was fetched here before, or is
    /// malformed. How many were new.
    pub(super) fn take(
        &self,
        tx: &redb::WriteTransaction,
        origin: PeerId,
        to: PeerId,
        dms: &[MailboxDm],
        now: u64,
        bytes: &mut i64,
    ) -> Result<usize, redb::Error> {
        let recipient = to.to_base58();
        let mut new = 0;
        for dm in dms.iter().take(MAX_IDS_PER_REQUEST) {
            if dm.id.is_empty() || dm.id.len() > MAX_ID_CHARS || dm.sealed.len() > MAX_SEALED_CHARS
            {
                tracing::warn!(%origin, %to, "a relay handed over a malformed DM; dropped");
                continue;
            }
            let depositor = dm.from.to_base58();
            let fetched = tx.open_table(DELIVERED)?;
            if fetched.get((depositor.as_str(), dm.id.as_str()))?.is_some() {
                continue;
            }
            let here = tx.open_table(MAILBOX_IDS)?;
            if here.get((recipient.as_str(), dm.id.as_str()))?.is_some() {
                continue;
            }
            drop((fetched, here));
            let deposit = Deposit {
                to,
                id: dm.id.clone(),
                sealed: dm.sealed.clone(),
            };
            match self.deposit(tx, dm.from, &deposit, now, bytes)? {
                StoreResponse::Deposited { .. } => {
                    let origin = origin.to_base58();
                    tx.open_table(MAIL_ORIGIN)?
                        .insert((recipient.as_str(), dm.id.as_str()), origin.as_str())?;
                    new += 1;
                }
                other => {
                    tracing::info!(%origin, %to, ?other, "a DM from another relay not kept here; it stays there");
                }
            }
        }
        Ok(new)
    }
}

/// The peers mail waits for here, at most `limit`.
pub(super) fn recipients(
    tx: &redb::ReadTransaction,
    limit: usize,
) -> Result<Vec<PeerId>, redb::Error> {
    let ids = tx.open_table(MAILBOX_IDS)?;
    let mut found = Vec::new();
    let mut from = String::new();
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

    fn take_mail(store: &mut Store, origin: PeerId, to: PeerId, dms: Vec<MailboxDm>) -> usize {
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

    fn news(store: &mut Store) -> futures::channel::mpsc::Receiver<super::super::MailNews> {
        let (sender, receiver) = futures::channel::mpsc::channel(16);
        store.news = Some(sender);
        receiver
    }

    #[test]
    fn mail_taken_from_another_relay_is_kept_once_and_reported_when_fetched() {
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
        // C takes it: kept as alice's, once however often it is handed over.
        let StoreResponse::Mailbox { dms } =
            request(&mut a, relay_c, StoreRequest::MailFor { to: carol })
        else {
            panic!("a mailbox");
        };
        assert_eq!(take_mail(&mut c, relay_a, carol, dms.clone()), 1);
        assert_eq!(take_mail(&mut c, relay_a, carol, dms.clone()), 0);
        assert_eq!(waiting_for(&mut a, carol), [alice], "A keeps it until told");
        assert_eq!(waiting_for(&mut c, carol), [alice]);
        // Carol fetches it at C: C tells A, A forgets it, and alice's status poll says so.
        let ack = StoreRequest::Ack {
            ids: vec!["dm-1".into()],
        };
        assert_eq!(
            request(&mut c, carol, ack),
            StoreResponse::Acked { count: 1 }
        );
        let told = c_news.try_recv().ok();
        assert_eq!(
            told,
            Some(MailNews::Delivered {
                origin: relay_a,
                to: carol,
                ids: vec!["dm-1".into()],
            })
        );
        let report = StoreRequest::MailDelivered {
            to: carol,
            ids: vec!["dm-1".into()],
        };
        assert_eq!(
            request(&mut a, relay_c, report),
            StoreResponse::Acked { count: 1 }
        );
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
        // Handed over again (a report that came late): not kept again, not shown twice.
        assert_eq!(take_mail(&mut c, relay_a, carol, dms), 0);
        assert!(waiting_for(&mut c, carol).is_empty());
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
        assert_eq!(take_mail(&mut c, relay_a, carol, junk), 0);
        let _ = std::fs::remove_dir_all(dir_a);
        let _ = std::fs::remove_dir_all(dir_c);
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
