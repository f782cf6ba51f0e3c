//! File sharing in the CLI peer: `/share`, `/get`, `/files`, and serving what we have.
//!
//! [`Files`] keeps a record of every file shared or fetched ([`disk`]), remembers the offers seen
//! in rooms and DMs (with who offered them), serves complete files over the file protocol, and
//! runs downloads as tasks of their own that report through the peer's reply channel.

pub mod disk;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use p2p_chat_shared::core::Client;
use p2p_chat_shared::files::fetch::{self, FetchError, FetchEvent, Network, PieceSink, Resume};
use p2p_chat_shared::files::serve::{self, Library, Served};
use p2p_chat_shared::files::wire::{Request, Status};
use p2p_chat_shared::files::{FileOffer, Hash, Manifest, FILE_PROTOCOL};
use serde::Serialize;
use tokio::sync::mpsc;

use super::output::Reply;
use disk::{Dir, Record};

/// Downloads at once.
pub const MAX_DOWNLOADS: usize = 4;

/// Offers remembered from messages (the oldest go first).
pub const MAX_SEEN_OFFERS: usize = 1024;

/// Shortest id prefix `/get` accepts.
pub const MIN_ID_PREFIX: usize = 8;

/// Hex digits of a file's id shown in text: enough that no one can make another file whose id
/// starts the same (64 bits of SHA-256), short enough to type.
pub const SHOWN_ID_DIGITS: usize = 16;

/// The part of a file's id shown in text.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(SHOWN_ID_DIGITS)]
}

/// How often a download reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// A file as `/files` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    /// The file's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// `shared`/`downloaded` (we have it whole and serve it), `downloading`, `partial`
    /// (stopped; `/get` resumes), or `offered` (seen, not fetched).
    pub state: &'static str,
    /// Where the whole file is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Bytes served to others since start.
    pub served: u64,
}

#[derive(Default)]
struct Shelf {
    records: HashMap<String, Record>,
    /// Offers seen, not fetched, in the order seen.
    seen: HashMap<String, (FileOffer, Vec<PeerId>, u64)>,
    seen_count: u64,
    downloading: HashMap<String, ()>,
    served: HashMap<String, u64>,
    /// Ids of files we shared ourselves (the rest were fetched).
    ours: HashMap<String, ()>,
}

/// The CLI peer's files: cloneable, shared by the session, the server and the downloads.
#[derive(Clone)]
pub struct Files {
    shelf: Arc<Mutex<Shelf>>,
    dir: Dir,
    client: Client,
    cap: u64,
    replies: mpsc::Sender<Reply>,
}

fn lock(shelf: &Mutex<Shelf>) -> std::sync::MutexGuard<'_, Shelf> {
    shelf.lock().unwrap_or_else(|e| e.into_inner())
}

impl Files {
    /// Loads the records in `dir`, announces the files we have whole, and starts serving them.
    pub async fn start(
        dir: PathBuf,
        client: Client,
        cap: u64,
        replies: mpsc::Sender<Reply>,
    ) -> Self {
        let dir = Dir(dir);
        let loaded = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || dir.load())
                .await
                .unwrap_or_default()
        };
        let mut shelf = Shelf::default();
        for record in loaded {
            if record.path.is_some() {
                let _ = client.provide(record.offer.id_hash()).await;
            }
            shelf.records.insert(record.offer.id.clone(), record);
        }
        let files = Self {
            shelf: Arc::new(Mutex::new(shelf)),
            dir,
            client,
            cap,
            replies,
        };
        files.serve();
        files
    }

    fn serve(&self) {
        let Some(mut control) = self.client.streams() else {
            tracing::error!("this node has no file streams: files are not served");
            return;
        };
        let incoming = match control.accept(FILE_PROTOCOL) {
            Ok(incoming) => incoming,
            Err(e) => {
                tracing::error!(error = %e, "cannot serve files");
                return;
            }
        };
        let library = ShelfLibrary(self.shelf.clone());
        let shelf = self.shelf.clone();
        tokio::spawn(serve::serve(incoming, library, move |served| {
            if let Served::Sent { file, bytes, .. } = served {
                *lock(&shelf).served.entry(file).or_default() += bytes;
            }
        }));
    }

    /// Remembers an offer seen in a message from `from`.
    pub fn saw_offer(&self, offer: &FileOffer, from: PeerId) {
        let mut shelf = lock(&self.shelf);
        if let Some(record) = shelf.records.get_mut(&offer.id) {
            if !record.providers.contains(&from) && record.providers.len() < fetch::MAX_PROVIDERS {
                record.providers.push(from);
            }
            return;
        }
        shelf.seen_count += 1;
        let order = shelf.seen_count;
        let entry = shelf
            .seen
            .entry(offer.id.clone())
            .or_insert_with(|| (offer.clone(), Vec::new(), order));
        if !entry.1.contains(&from) && entry.1.len() < fetch::MAX_PROVIDERS {
            entry.1.push(from);
        }
        if shelf.seen.len() > MAX_SEEN_OFFERS {
            let oldest = shelf
                .seen
                .iter()
                .min_by_key(|(_, (_, _, order))| *order)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                shelf.seen.remove(&id);
            }
        }
    }

    /// Hashes `path` into an offer, keeps its record and announces it; the offer to send.
    pub async fn share(&self, path: PathBuf) -> Result<FileOffer, String> {
        let cap = self.cap;
        let path = tokio::fs::canonicalize(&path)
            .await
            .map_err(|e| format!("cannot share {}: {e}", path.display()))?;
        let hashing = path.clone();
        let (offer, manifest) = tokio::task::spawn_blocking(move || disk::hash_file(&hashing, cap))
            .await
            .map_err(|e| e.to_string())??;
        let record = Record {
            offer: offer.clone(),
            manifest: Some(manifest),
            path: Some(path),
            providers: Vec::new(),
        };
        self.save(record.clone()).await?;
        {
            let mut shelf = lock(&self.shelf);
            shelf.ours.insert(offer.id.clone(), ());
            shelf.records.insert(offer.id.clone(), record);
        }
        let _ = self.client.provide(offer.id_hash()).await;
        Ok(offer)
    }

    async fn save(&self, record: Record) -> Result<(), String> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || dir.save(&record))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot keep the file's record: {e}"))
    }

    /// The files we have, are fetching, or saw offered.
    pub fn list(&self) -> Vec<FileEntry> {
        let shelf = lock(&self.shelf);
        let served = |id: &str| shelf.served.get(id).copied().unwrap_or(0);
        let mut out: Vec<FileEntry> = shelf
            .records
            .values()
            .map(|r| FileEntry {
                id: r.offer.id.clone(),
                name: r.offer.name.clone(),
                size: r.offer.size,
                state: match (&r.path, shelf.downloading.contains_key(&r.offer.id)) {
                    (Some(_), _) if shelf.ours.contains_key(&r.offer.id) => "shared",
                    (Some(_), _) => "downloaded",
                    (None, true) => "downloading",
                    (None, false) => "partial",
                },
                path: r.path.clone(),
                served: served(&r.offer.id),
            })
            .collect();
        out.extend(shelf.seen.values().map(|(offer, _, _)| FileEntry {
            id: offer.id.clone(),
            name: offer.name.clone(),
            size: offer.size,
            state: "offered",
            path: None,
            served: 0,
        }));
        out.sort_by(|a, b| (a.state, &a.name).cmp(&(b.state, &b.name)));
        out
    }

    /// The full id that `prefix` names among the files we know.
    fn resolve(&self, prefix: &str) -> Result<String, String> {
        let prefix = prefix.to_ascii_lowercase();
        if prefix.len() < MIN_ID_PREFIX || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "{prefix:?} is not a file id: give at least {MIN_ID_PREFIX} of its hex digits (/files lists them)"
            ));
        }
        let shelf = lock(&self.shelf);
        let mut ids: Vec<&String> = shelf
            .records
            .keys()
            .chain(shelf.seen.keys())
            .filter(|id| id.starts_with(&prefix))
            .collect();
        ids.dedup();
        match ids.as_slice() {
            [id] => Ok((*id).clone()),
            [] => Err(format!(
                "no file {prefix} here: /get works on files offered in your rooms and DMs since this peer started, and on downloads begun before (/files lists them)"
            )),
            _ => {
                let names: Vec<String> = ids
                    .iter()
                    .map(|id| {
                        let name = shelf
                            .records
                            .get(*id)
                            .map(|r| r.offer.name.as_str())
                            .or_else(|| shelf.seen.get(*id).map(|s| s.0.name.as_str()))
                            .unwrap_or("");
                        format!("{id} ({})", p2p_chat_shared::text::display_safe(name))
                    })
                    .collect();
                Err(format!(
                    "{prefix} names {} files: give more digits of one of {}",
                    ids.len(),
                    names.join(", ")
                ))
            }
        }
    }

    /// Starts (or resumes) fetching file `prefix` into `dir`; progress and the outcome come
    /// through the reply channel.
    pub async fn get(&self, prefix: &str, dir: PathBuf) -> Result<Reply, String> {
        let id = self.resolve(prefix)?;
        let meta = tokio::fs::metadata(&dir)
            .await
            .map_err(|e| format!("cannot save into {}: {e}", dir.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        let record = {
            let mut shelf = lock(&self.shelf);
            if shelf.downloading.contains_key(&id) {
                return Err(format!("{id} is already downloading"));
            }
            if shelf.downloading.len() >= MAX_DOWNLOADS {
                return Err(format!(
                    "{MAX_DOWNLOADS} downloads are running; wait for one to finish"
                ));
            }
            let record = match shelf.records.get(&id) {
                Some(record) => record.clone(),
                None => {
                    let Some((offer, providers, _)) = shelf.seen.get(&id).cloned() else {
                        return Err(format!("no file {id} here"));
                    };
                    Record {
                        offer,
                        manifest: None,
                        path: None,
                        providers,
                    }
                }
            };
            if let Some(path) = &record.path {
                return Err(format!("you have it already: {}", path.display()));
            }
            if record.offer.size > self.cap {
                return Err(format!(
                    "{} is {} bytes; the limit is {} bytes (--max-file-size)",
                    record.offer.name, record.offer.size, self.cap
                ));
            }
            shelf.downloading.insert(id.clone(), ());
            shelf.seen.remove(&id);
            shelf.records.insert(id.clone(), record.clone());
            record
        };
        if let Err(e) = self.save(record.clone()).await {
            lock(&self.shelf).downloading.remove(&id);
            return Err(e);
        }
        let reply = Reply::FileStarted {
            id: id.clone(),
            name: record.offer.name.clone(),
            size: record.offer.size,
            providers: record.providers.len(),
        };
        let files = self.clone();
        tokio::spawn(async move {
            let outcome = files.download(record, dir).await;
            lock(&files.shelf).downloading.remove(&id);
            let _ = files.replies.send(outcome).await;
        });
        Ok(reply)
    }

    /// Fetches `record`'s file into `dir`; what to tell the person.
    async fn download(&self, mut record: Record, dir: PathBuf) -> Reply {
        let truth = match self.download_as_offered(record.clone(), dir.clone()).await {
            Ok(reply) => return reply,
            Err(truth) => truth,
        };
        // The offer said something other than the file's own manifest (a forged copy of it
        // arrived first): start over from what the manifest says; the name is only a name.
        let (id, name) = (record.offer.id.clone(), record.offer.name.clone());
        tracing::info!(%id, "an offer did not describe its file; fetching the file its id names");
        if truth.size > self.cap {
            return Reply::FileFailed {
                id,
                name,
                error: format!(
                    "the file is {} bytes, not what its offer said; the limit is {} bytes (--max-file-size)",
                    truth.size, self.cap
                ),
            };
        }
        record.offer.size = truth.size;
        record.offer.piece = truth.piece;
        record.offer.sha256 = p2p_chat_shared::files::to_hex(&truth.sha256);
        // The manifest came checked against the id: no need to ask for it again.
        record.manifest = Some(*truth);
        let _ = tokio::fs::remove_file(self.dir.part(&id)).await;
        if let Err(e) = self.save(record.clone()).await {
            tracing::warn!(error = %e, "cannot keep a corrected offer");
        }
        lock(&self.shelf).records.insert(id.clone(), record.clone());
        match self.download_as_offered(record, dir).await {
            Ok(reply) => reply,
            Err(_) => Reply::FileFailed {
                id,
                name,
                error: "its providers disagree about what the file is".into(),
            },
        }
    }

    /// Fetches `record`'s file as its offer describes it; `Err` with the file's manifest when
    /// the offer does not describe it.
    async fn download_as_offered(
        &self,
        mut record: Record,
        dir: PathBuf,
    ) -> Result<Reply, Box<Manifest>> {
        let offer = record.offer.clone();
        let (id, name) = (offer.id.clone(), offer.name.clone());
        let failed = |error: String| Reply::FileFailed {
            id: id.clone(),
            name: name.clone(),
            error,
        };
        let part_path = self.dir.part(&id);
        let resume = {
            let (part, offer, manifest) =
                (part_path.clone(), offer.clone(), record.manifest.clone());
            tokio::task::spawn_blocking(move || {
                let have = manifest
                    .as_ref()
                    .map(|m| disk::verified_pieces(&part, &offer, m))
                    .unwrap_or_default();
                Resume {
                    manifest,
                    have: have.into_iter().collect(),
                }
            })
            .await
            .unwrap_or_default()
        };
        let part = {
            let (path, offer) = (part_path.clone(), offer.clone());
            match tokio::task::spawn_blocking(move || disk::open_part(&path, &offer)).await {
                Ok(Ok(file)) => Arc::new(file),
                Ok(Err(e)) => {
                    return Ok(failed(format!("cannot write {}: {e}", part_path.display())))
                }
                Err(e) => return Ok(failed(e.to_string())),
            }
        };
        let Some(control) = self.client.streams() else {
            return Ok(failed("this node has no file streams".into()));
        };
        let net = PeerNet {
            client: self.client.clone(),
            control,
        };
        let mut sink = PartSink(part);
        let started = Instant::now();
        let resumed_bytes: u64 = resume
            .have
            .iter()
            .map(|i| u64::from(offer.piece_span(*i).1))
            .sum();
        // The first piece is reported at once, then every PROGRESS_EVERY.
        let mut last_report: Option<Instant> = None;
        let replies = self.replies.clone();
        let dir_for_manifest = self.dir.clone();
        let mut with_manifest = record.clone();
        let result = fetch::fetch(
            &offer,
            resume,
            &record.providers.clone(),
            &net,
            &mut sink,
            |event| match event {
                FetchEvent::Manifest(m) => {
                    // Kept before any piece is written: a restart resumes from what is kept.
                    with_manifest.manifest = Some(m);
                    if let Err(e) = dir_for_manifest.save(&with_manifest) {
                        tracing::warn!(error = %e, "cannot keep a download's manifest; it would start over after a restart");
                    }
                }
                FetchEvent::Piece {
                    have, providers, ..
                } => {
                    let done = have == offer.size;
                    if done || last_report.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) {
                        last_report = Some(Instant::now());
                        let secs = started.elapsed().as_secs_f64().max(0.001);
                        let _ = replies.try_send(Reply::FileProgress {
                            id: id.clone(),
                            name: name.clone(),
                            have,
                            size: offer.size,
                            bytes_per_sec: ((have - resumed_bytes.min(have)) as f64 / secs) as u64,
                            providers,
                        });
                    }
                }
                FetchEvent::Bad { peer, reason } => {
                    let _ = replies.try_send(Reply::FileBadProvider {
                        id: id.clone(),
                        peer,
                        reason,
                    });
                }
            },
        )
        .await;
        if with_manifest.manifest.is_some() {
            record.manifest = with_manifest.manifest;
            if let Some(r) = lock(&self.shelf).records.get_mut(&id) {
                r.manifest = record.manifest.clone();
            }
        }
        match result {
            Ok(()) => {}
            Err(FetchError::NotAsOffered(truth)) => return Err(truth),
            Err(e) => return Ok(failed(format!("{e} (/get {} resumes)", short_id(&id)))),
        }
        let checked = {
            let (part, offer) = (part_path.clone(), offer.clone());
            tokio::task::spawn_blocking(move || disk::whole_matches(&part, &offer)).await
        };
        match checked {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                let _ = tokio::fs::remove_file(&part_path).await;
                return Ok(failed(
                    "every piece matches the file's manifest, but the whole does not match its SHA-256: nothing was saved".into(),
                ));
            }
            Ok(Err(e)) => return Ok(failed(format!("cannot read the download back: {e}"))),
            Err(e) => return Ok(failed(e.to_string())),
        }
        let placed = {
            let (part, dir, name) = (part_path.clone(), dir.clone(), name.clone());
            tokio::task::spawn_blocking(move || disk::place(&part, &dir, &name)).await
        };
        let path = match placed {
            Ok(Ok(path)) => path,
            Ok(Err(e)) => return Ok(failed(format!("cannot save into {}: {e}", dir.display()))),
            Err(e) => return Ok(failed(e.to_string())),
        };
        record.path = Some(path.clone());
        let _ = self.save(record.clone()).await;
        lock(&self.shelf).records.insert(id.clone(), record);
        // We have it whole: we serve it, and say so.
        let _ = self.client.provide(offer.id_hash()).await;
        let secs = started.elapsed().as_secs_f64();
        Ok(Reply::FileSaved {
            id,
            name,
            path: path.display().to_string(),
            size: offer.size,
            resumed: resumed_bytes,
            secs,
        })
    }
}

/// Serves the complete files on the shelf.
struct ShelfLibrary(Arc<Mutex<Shelf>>);

impl Library for ShelfLibrary {
    async fn answer(&self, request: Request) -> (Status, Vec<u8>) {
        let id = p2p_chat_shared::files::to_hex(request.file());
        let record = lock(&self.0).records.get(&id).cloned();
        let Some(record) = record.filter(|r| r.path.is_some()) else {
            return (Status::Unknown, b"no such file here".to_vec());
        };
        match request {
            Request::Manifest(_) => match record.manifest {
                Some(manifest) => (Status::Ok, manifest.to_bytes()),
                None => (Status::Unknown, b"no such file here".to_vec()),
            },
            Request::Piece(_, index) if index >= record.offer.pieces() => {
                (Status::BadRequest, b"no such piece".to_vec())
            }
            Request::Piece(_, index) => {
                match tokio::task::spawn_blocking(move || disk::read_piece(&record, index)).await {
                    Ok(Ok(piece)) => (Status::Ok, piece),
                    Ok(Err(reason)) => (Status::Unavailable, reason.into_bytes()),
                    Err(e) => (Status::Unavailable, e.to_string().into_bytes()),
                }
            }
        }
    }
}

/// Streams to providers: reached through the chat core (directly, or through a relay circuit),
/// then opened on that connection.
struct PeerNet {
    client: Client,
    control: libp2p_stream::Control,
}

impl Network for PeerNet {
    type Stream = libp2p::Stream;

    async fn open(&self, peer: PeerId) -> Result<libp2p::Stream, String> {
        self.client.reach(peer).await.map_err(|e| e.to_string())?;
        self.control
            .clone()
            .open_stream(peer, FILE_PROTOCOL)
            .await
            .map_err(|e| e.to_string())
    }

    async fn providers(&self, file: &Hash) -> Vec<PeerId> {
        self.client.providers(*file).await.unwrap_or_default()
    }
}

/// Pieces into the partial download.
struct PartSink(Arc<std::fs::File>);

impl PieceSink for PartSink {
    async fn write(&mut self, _index: u32, offset: u64, bytes: Vec<u8>) -> Result<(), String> {
        let file = self.0.clone();
        tokio::task::spawn_blocking(move || disk::write_piece(&file, offset, &bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

/// Where `/get` saves when given no directory.
pub fn default_download_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."))
}
