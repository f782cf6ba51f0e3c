//! The store when the machine misbehaves: a full disk (a small filesystem the test mounts) and a
//! damaged file. Nothing acknowledged may be lost, nothing may be acknowledged that was not kept,
//! and the store says what is wrong.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{http_get, temp_dir};
use futures::channel::oneshot;
use futures::SinkExt;
use libp2p::PeerId;
use p2p_chat::relay::store::{self, Opened, Retention};
use p2p_chat_shared::store::{HistoryItem, HistoryQuery, StoreJob, StoreRequest, StoreResponse};
use p2p_chat_shared::text::now_unix_ms;

const ROOM: &str = "lobby";

/// A tmpfs of `size` mounted at a fresh directory, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = temp_dir("faults-disk");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "cannot mount a tmpfs at {} (this test needs root, as the README's test command has)",
            dir.display()
        );
        Self(dir)
    }

    fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount failed");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn ask(
    handle: &mut p2p_chat_shared::store::StoreHandle,
    request: StoreRequest,
) -> StoreResponse {
    let (reply, answer) = oneshot::channel();
    handle
        .send(StoreJob::Request {
            from: PeerId::random(),
            request,
            reply,
        })
        .await
        .expect("the store takes work");
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .expect("the store answers")
        .expect("an answer")
}

/// Files message `id` and asks for its receipt: `Ok` when the store confirms it keeps it.
async fn keep(
    handle: &mut p2p_chat_shared::store::StoreHandle,
    author: PeerId,
    id: &str,
) -> Result<(), String> {
    let item = HistoryItem {
        id: id.to_owned(),
        from: author,
        ts: now_unix_ms(),
        payload: "x".repeat(16 * 1024),
    };
    handle
        .send(StoreJob::Append {
            room: ROOM.to_owned(),
            item,
        })
        .await
        .expect("the store takes work");
    let receipt = StoreRequest::Receipt {
        room: ROOM.to_owned(),
        ids: vec![id.to_owned()],
    };
    match ask(handle, receipt).await {
        StoreResponse::Stored { ids, .. } if ids == [id] => Ok(()),
        StoreResponse::Stored { .. } => Err("not confirmed".to_owned()),
        StoreResponse::Error { reason } => Err(reason),
        other => panic!("unexpected answer {other:?}"),
    }
}

async fn stored_ids(handle: &mut p2p_chat_shared::store::StoreHandle) -> Vec<String> {
    let mut all = Vec::new();
    let mut after = None;
    for _ in 0..1000 {
        let query = HistoryQuery {
            room: ROOM.to_owned(),
            after: after.clone(),
            ..Default::default()
        };
        match ask(handle, StoreRequest::Query(query)).await {
            StoreResponse::Page { messages, next } => {
                all.extend(messages.into_iter().map(|m| m.id));
                match next {
                    Some(cursor) => after = Some(cursor),
                    None => return all,
                }
            }
            other => panic!("history query failed: {other:?}"),
        }
    }
    panic!("history did not end")
}

fn open(path: &Path) -> Opened {
    store::open(path, Retention::default()).expect("the store opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_acknowledges_nothing_false_says_so_and_recovers_when_space_returns() {
    let disk = SmallDisk::mount("3m");
    let path = disk.0.join("store.redb");
    let Opened {
        mut handle,
        thread,
        health,
        ..
    } = open(&path);
    let author = PeerId::random();
    let mut acked = Vec::new();
    let mut refusal = None;
    for i in 0..1000 {
        let id = format!("m{i:04}");
        match keep(&mut handle, author, &id).await {
            Ok(()) => acked.push(id),
            Err(reason) => {
                refusal = Some(reason);
                break;
            }
        }
    }
    let reason = refusal.expect("the disk filled up within 1000 messages of 16 KiB");
    assert!(reason.contains("cannot write"), "a clear reason: {reason}");
    let failing = health.failing().expect("health says the store is failing");
    assert!(failing.contains("cannot write"), "{failing}");
    // While the disk is full, nothing new is confirmed, and what was kept before still is.
    assert!(keep(&mut handle, author, "while-full").await.is_err());
    let earlier = StoreRequest::Receipt {
        room: ROOM.to_owned(),
        ids: vec![acked[0].clone(), "while-full".to_owned()],
    };
    match ask(&mut handle, earlier).await {
        StoreResponse::Stored { ids, reason } => {
            assert_eq!(ids, [acked[0].clone()], "only the message kept before");
            let reason = reason.expect("why the other is not kept");
            assert!(reason.contains("cannot write"), "{reason}");
        }
        other => panic!("a message kept before the disk filled is still confirmed: {other:?}"),
    }

    // Space comes back: the store finds out by itself, with nothing to write, and writes again.
    disk.grow("64m");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while health.failing().is_some() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        health.failing().is_none(),
        "an idle store says it writes again once space is back"
    );
    let mut recovered = false;
    for i in 0..50 {
        if keep(&mut handle, author, &format!("after-{i}"))
            .await
            .is_ok()
        {
            recovered = true;
            acked.push(format!("after-{i}"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the store recovered when space returned");
    assert!(health.failing().is_none(), "health is ok again");

    // Every acknowledged message is there after a restart.
    drop(handle);
    thread.join().expect("the store thread ends");
    let Opened {
        mut handle, thread, ..
    } = open(&path);
    let stored = stored_ids(&mut handle).await;
    for id in &acked {
        assert!(stored.contains(id), "{id} was acknowledged but is gone");
    }
    drop(handle);
    thread.join().expect("the store thread ends");
}

#[test]
fn a_damaged_store_file_is_refused_with_the_file_and_what_to_do() {
    let dir = temp_dir("faults-damaged");
    let path = dir.join("store.redb");
    std::fs::write(&path, vec![0x5a; 64 * 1024]).expect("write junk");
    let error = match store::open(&path, Retention::default()) {
        Ok(_) => panic!("a damaged file must not open as an empty store"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(error.contains("move it aside"), "{error}");
    assert_eq!(
        std::fs::read(&path).expect("still there").len(),
        64 * 1024,
        "the damaged file is left as it was"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_says_degraded_while_the_store_cannot_write_and_pages_carry_security_headers() {
    use p2p_chat::relay::http;
    use p2p_chat_shared::native::{start_relay, RelaySetup};
    let disk = SmallDisk::mount("3m");
    let Opened {
        mut handle,
        health,
        thread,
        ..
    } = open(&disk.0.join("store.redb"));
    let setup = RelaySetup {
        store: Some(handle.clone()),
        ..RelaySetup::in_memory()
    };
    let node = start_relay(libp2p::identity::Keypair::generate_ed25519(), setup)
        .await
        .expect("relay starts");
    let web = temp_dir("faults-web");
    let loader = "import init from '/app.js'; await init();";
    std::fs::write(
        web.join("index.html"),
        format!("<!doctype html><script type=\"module\">{loader}</script>"),
    )
    .expect("index");
    let addr = http::serve(
        "127.0.0.1:0".parse().expect("addr"),
        web.clone(),
        node.peer_id,
        http::BrowserAddrs::default(),
        node.client.clone(),
        Some(health.clone()),
    )
    .await
    .expect("http");

    let (status, headers, body) = http_get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(
        headers.contains("x-content-type-options: nosniff"),
        "{headers}"
    );
    assert!(headers.contains("frame-ancestors 'none'"), "{headers}");
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(loader));
    assert!(
        headers.contains(&format!("'sha256-{}'", hash.to_lowercase())),
        "the app's inline loader is allowed by its hash: {headers}"
    );
    assert!(body.contains(loader));
    let (status, _, body) = http_get(addr, "/healthz").await;
    assert_eq!((status, body.contains("\"ok\"")), (200, true), "{body}");

    let author = PeerId::random();
    let mut full = false;
    for i in 0..1000 {
        if keep(&mut handle, author, &format!("m{i:04}"))
            .await
            .is_err()
        {
            full = true;
            break;
        }
    }
    assert!(full, "the disk filled up");
    let (status, _, body) = http_get(addr, "/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("degraded") && body.contains("cannot write"),
        "{body}"
    );

    disk.grow("64m");
    let mut ok = false;
    for i in 0..50 {
        if keep(&mut handle, author, &format!("after-{i}"))
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ok, "the store recovered");
    let (status, _, body) = http_get(addr, "/healthz").await;
    assert_eq!((status, body.contains("\"ok\"")), (200, true), "{body}");
    // The store closes its file before the disk goes away.
    node.client.shutdown().await.expect("relay stops");
    drop((node, handle));
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .expect("join")
        .expect("the store thread ends");
    let _ = std::fs::remove_dir_all(web);
}
