//! The mailbox in the store: sealed DMs deposited for an offline recipient (at most
//! [`super::Retention::mailbox_max_per_peer`] each), fetched by it oldest first, forgotten when
//! it acknowledges them; the depositor then learns they were delivered.

use libp2p::PeerId;
use p2p_chat_shared::store::{Deposit, MailboxDm, StoreResponse, MAX_IDS_PER_REQUEST};
use redb::{ReadableTable, TableDefinition};

use super::{after, Store};

/// (recipient, stored at, id) → (depositor, sealed).
pub(super) const MAILBOX: TableDefinition<(&str, u64, &str), (&str, &str)> =
    TableDefinition::new("mailbox");
/// (recipient, id) → stored at.
pub(super) const MAILBOX_IDS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("mailbox_ids");
/// (depositor, id) → fetched at: what a depositor's status poll reads.
pub(super) const DELIVERED: TableDefinition<(&str, &str), u64> = TableDefinition::new("delivered");

impl Store {
    /// Keeps a sealed DM for its recipient (once per id), unless the recipient's mailbox is full.
    pub(super) fn deposit(
        &self,
        tx: &redb::WriteTransaction,
        from: PeerId,
        deposit: &Deposit,
        now: u64,
    ) -> Result<StoreResponse, redb::Error> {
        let to = deposit.to.to_base58();
        let mut ids = tx.open_table(MAILBOX_IDS)?;
        if ids.get((to.as_str(), deposit.id.as_str()))?.is_some() {
            return Ok(StoreResponse::Deposited {
                id: deposit.id.clone(),
            });
        }
        let held = ids
            .range((to.as_str(), "")..(after(&to).as_str(), ""))?
            .count() as u64;
        if held >= self.retention.mailbox_max_per_peer {
            return Ok(StoreResponse::error(format!(
                "the mailbox of {} is full ({held} messages waiting)",
                deposit.to
            )));
        }
        let mut mailbox = tx.open_table(MAILBOX)?;
        let from = from.to_base58();
        mailbox.insert(
            (to.as_str(), now, deposit.id.as_str()),
            (from.as_str(), deposit.sealed.as_str()),
        )?;
        ids.insert((to.as_str(), deposit.id.as_str()), now)?;
        Ok(StoreResponse::Deposited {
            id: deposit.id.clone(),
        })
    }
}

/// The recipient has these DMs: forget them, and note for each depositor that it was fetched.
pub(super) fn ack(
    tx: &redb::WriteTransaction,
    recipient: PeerId,
    acked: &[String],
    now: u64,
) -> Result<StoreResponse, redb::Error> {
    let to = recipient.to_base58();
    let mut ids = tx.open_table(MAILBOX_IDS)?;
    let mut mailbox = tx.open_table(MAILBOX)?;
    let mut delivered = tx.open_table(DELIVERED)?;
    let mut count = 0;
    for id in acked {
        let Some(stored_at) = ids.remove((to.as_str(), id.as_str()))?.map(|v| v.value()) else {
            continue;
        };
        let depositor = mailbox
            .remove((to.as_str(), stored_at, id.as_str()))?
            .map(|v| v.value().0.to_owned());
        if let Some(depositor) = depositor {
            delivered.insert((depositor.as_str(), id.as_str()), now)?;
        }
        count += 1;
    }
    Ok(StoreResponse::Acked { count })
}

/// The DMs kept for `recipient`, oldest first, at most [`MAX_IDS_PER_REQUEST`].
pub(super) fn fetch(
    tx: &redb::ReadTransaction,
    recipient: PeerId,
) -> Result<StoreResponse, redb::Error> {
    let mailbox = tx.open_table(MAILBOX)?;
    let to = recipient.to_base58();
    let mut dms = Vec::new();
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
        dms.push(MailboxDm {
            id: id.to_owned(),
            from: depositor,
            sealed: sealed.to_owned(),
            stored_at,
        });
    }
    Ok(StoreResponse::Mailbox { dms })
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
