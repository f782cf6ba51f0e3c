//! Fuzz harnesses: every decoder of bytes that come from the network or from disk, each fed
//! arbitrary bytes. A harness returns normally for any input; a panic, an abort or a hang is a
//! finding. The binaries in `src/bin` hand AFL++'s inputs to these (`scripts/fuzz.sh`); the
//! seed test runs the checked-in corpus through them in every `cargo test`.

use std::sync::OnceLock;

use libp2p::identity::Keypair;
use libp2p::request_response::Codec;
use p2p_chat_shared::envelope::{decode_envelope, decode_room_payload};
use p2p_chat_shared::protocol::{DM_PROTOCOL, STORE_PROTOCOL};
use p2p_chat_shared::rpc::ChatCodec;
use p2p_chat_shared::store::{
    HistoryItem, HistoryQuery, StoreJob, StoreRequest, StoreResponse, MAX_PAGE_BYTES,
    MAX_STORE_RESPONSE_BYTES,
};

/// A harness: any bytes in, returns normally unless it found a bug.
pub type Harness = fn(&[u8]);

/// The targets, by name (the names of the binaries and of the seed folders).
pub const TARGETS: [(&str, Harness); 6] = [
    ("room_payload", room_payload),
    ("rpc", rpc),
    ("sealed_dm", sealed_dm),
    ("store_query", store_query),
    ("key_file", key_file),
    ("files", files),
];

/// File sharing: the file protocol's frames as a provider reads a request and a downloader
/// reads an answer of the length it expects, an offer as it arrives in a message, the CLI's
/// record of a file as read back from disk, and a manifest. The first byte picks which.
pub fn files(data: &[u8]) {
    use p2p_chat_shared::files::{wire, RawOffer, MAX_FILE_BYTES};
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            let _ = futures::executor::block_on(wire::read_request(&mut &*bytes));
        }
        1 => {
            let Some((expected, rest)) = bytes.split_first_chunk::<4>() else {
                return;
            };
            // What a downloader expects is at most a piece or a manifest of the most pieces.
            let expected = u32::from_be_bytes(*expected) % (1024 * 1024 + 1);
            let _ = futures::executor::block_on(wire::read_response(&mut &*rest, expected));
        }
        2 => {
            if let Ok(raw) = serde_json::from_slice::<RawOffer>(bytes) {
                let _ = raw.validate(MAX_FILE_BYTES);
            }
        }
        3 => {
            let _ = p2p_chat::peer::files::disk::parse_record(bytes);
        }
        _ => {
            if let Some(manifest) = p2p_chat_shared::files::Manifest::from_bytes(bytes) {
                assert_eq!(
                    manifest.to_bytes(),
                    bytes,
                    "a manifest reads back as its bytes"
                );
            }
        }
    }
}

/// A room payload from gossipsub (an envelope or plain text), and a DM envelope.
pub fn room_payload(data: &[u8]) {
    let _ = decode_room_payload(data);
    let _ = decode_envelope(data);
}

/// The request-response codec of both protocols: requests and responses, as read from a stream.
/// The first byte picks the protocol.
pub fn rpc(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let protocol = if which % 2 == 0 {
        DM_PROTOCOL
    } else {
        STORE_PROTOCOL
    };
    futures::executor::block_on(async {
        let mut codec = ChatCodec;
        let _ = codec.read_request(&protocol, &mut &*bytes).await;
        let _ = codec.read_response(&protocol, &mut &*bytes).await;
    });
}

/// A sealed DM opened by its recipient (the mailbox's bytes come from the relay).
pub fn sealed_dm(data: &[u8]) {
    static KEY: OnceLock<Keypair> = OnceLock::new();
    let key = KEY.get_or_init(Keypair::generate_ed25519);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = p2p_chat_shared::seal::open(key, text);
    }
}

/// A store request as the relay reads it and validated; the reads (history queries, mailbox
/// fetches and status, reconciliation rounds and pulls from another relay) are then answered by a real store holding a few hundred messages, and
/// the answer must stay within what a peer reads. (Writes are checked by their validation only:
/// a receipt waits up to 10 s by design, and deposits would grow the store without end.)
pub fn store_query(data: &[u8]) {
    let Ok(request) = serde_json::from_slice::<StoreRequest>(data) else {
        return;
    };
    if request.validate().is_err() {
        return;
    }
    if !matches!(
        request,
        StoreRequest::Query(_)
            | StoreRequest::Fetch
            | StoreRequest::Status { .. }
            | StoreRequest::Reconcile { .. }
            | StoreRequest::Pull { .. }
            | StoreRequest::Rooms
    ) {
        return;
    }
    let Some(store) = test_store() else {
        panic!("the test store did not open");
    };
    let (reply, answer) = futures::channel::oneshot::channel();
    let job = StoreJob::Request {
        from: libp2p::PeerId::random(),
        request,
        reply,
    };
    if store.clone().try_send(job).is_err() {
        return;
    }
    let Ok(answer) = futures::executor::block_on(answer) else {
        return;
    };
    let size = serde_json::to_vec(&answer).map_or(0, |json| json.len());
    assert!(
        size <= MAX_STORE_RESPONSE_BYTES,
        "an answer of {size} bytes"
    );
    if let StoreResponse::Page { messages, .. } = answer {
        let bytes: usize = messages.iter().map(HistoryItem::json_len).sum();
        assert!(bytes <= MAX_PAGE_BYTES, "a page of {bytes} bytes");
    }
}

/// A store in a temporary directory with messages in two rooms (one of them with payloads that
/// escape badly), opened once per process.
fn test_store() -> Option<p2p_chat_shared::store::StoreHandle> {
    static STORE: OnceLock<Option<p2p_chat_shared::store::StoreHandle>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("p2p-chat-fuzz-{}", std::process::id()));
            std::fs::create_dir_all(&dir).ok()?;
            let opened =
                p2p_chat::relay::store::open(&dir.join("store.redb"), Default::default()).ok()?;
            let mut handle = opened.handle;
            let from = libp2p::PeerId::random();
            // Recent, so that retention (30 days) keeps them for the whole run.
            let now = p2p_chat_shared::text::now_unix_ms() - 1000;
            for i in 0..300u64 {
                let room = if i % 3 == 0 { "escapes" } else { "lobby" };
                let payload = if i % 3 == 0 {
                    "\u{1}".repeat(20 * 1024)
                } else {
                    format!("message {i}")
                };
                let item = HistoryItem {
                    id: format!("m{i}"),
                    from,
                    ts: now + i / 2,
                    payload,
                };
                let job = StoreJob::Append {
                    room: room.to_owned(),
                    item,
                };
                futures::executor::block_on(futures::SinkExt::send(&mut handle, job)).ok()?;
            }
            // A read after the writes: answered once they are filed.
            let (reply, answer) = futures::channel::oneshot::channel();
            let query = StoreRequest::Query(HistoryQuery {
                room: "lobby".to_owned(),
                ..Default::default()
            });
            futures::executor::block_on(futures::SinkExt::send(
                &mut handle,
                StoreJob::Request {
                    from,
                    request: query,
                    reply,
                },
            ))
            .ok()?;
            futures::executor::block_on(answer).ok()?;
            Some(handle)
        })
        .clone()
}

/// A key file as `p2p-chat` reads it (`--key-file`, `identity.key`).
pub fn key_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = p2p_chat::identity::parse_key(text);
    }
}
