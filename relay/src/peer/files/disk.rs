//! Files on disk for the CLI peer: the record of each file shared or fetched
//! (`DATA_DIR/files/<id>.json`), the partial download beside it (`<id>.part`), hashing a file
//! into an offer, reading a piece to serve (checked against its hash first), and writing pieces.
//!
//! Everything here blocks; callers run it on tokio's blocking threads.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use libp2p::PeerId;
use p2p_chat_shared::files::{
    from_hex, sha256, to_hex, validate_name, FileOffer, Hash, Manifest, OfferBuilder, RawOffer,
    MAX_FILE_BYTES, PIECE_BYTES,
};
use serde::{Deserialize, Serialize};

/// Largest record file read back, in bytes (a manifest of the most pieces, in hex, and more).
const MAX_RECORD_BYTES: u64 = 2 * 1024 * 1024;

/// What we know of one file: its offer, its manifest once known, where the whole file is (ours,
/// or fetched and checked), and who else has it.
#[derive(Debug, Clone)]
pub struct Record {
    /// The offer.
    pub offer: FileOffer,
    /// The manifest, once known.
    pub manifest: Option<Manifest>,
    /// The complete file, checked, when we have one: we serve it.
    pub path: Option<PathBuf>,
    /// Peers that offered it or said they have it.
    pub providers: Vec<PeerId>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    offer: RawOffer,
    #[serde(default)]
    manifest: Option<Vec<String>>,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    providers: Vec<String>,
}

impl Record {
    fn to_stored(&self) -> Stored {
        Stored {
            offer: RawOffer::from(&self.offer),
            manifest: self
                .manifest
                .as_ref()
                .map(|m| m.pieces.iter().map(to_hex).collect()),
            path: self.path.clone(),
            providers: self.providers.iter().map(|p| p.to_base58()).collect(),
        }
    }

    /// A record as read from disk, checked like anything from outside: the offer validated, the
    /// manifest matching the id.
    fn from_stored(stored: Stored) -> Result<Self, String> {
        let offer = stored
            .offer
            .validate(MAX_FILE_BYTES)
            .map_err(|e| e.to_string())?;
        let manifest = match stored.manifest {
            None => None,
            Some(hex) => {
                let pieces: Option<Vec<Hash>> = hex.iter().map(|h| from_hex(h)).collect();
                let manifest = Manifest {
                    size: offer.size,
                    piece: offer.piece,
                    sha256: from_hex(&offer.sha256).unwrap_or_default(),
                    pieces: pieces.ok_or("a manifest entry is not a hash")?,
                };
                if manifest.id() != offer.id_hash() {
                    return Err("its manifest does not match the file's id".into());
                }
                Some(manifest)
            }
        };
        if stored.path.is_some() && manifest.is_none() {
            return Err("a whole file without its manifest".into());
        }
        let providers = stored
            .providers
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
        Ok(Self {
            offer,
            manifest,
            path: stored.path,
            providers,
        })
    }
}

/// Where a file's record and partial download live.
#[derive(Debug, Clone)]
pub struct Dir(pub PathBuf);

impl Dir {
    /// The record of file `id`.
    pub fn record(&self, id: &str) -> PathBuf {
        self.0.join(format!("{id}.json"))
    }

    /// The partial download of file `id`.
    pub fn part(&self, id: &str) -> PathBuf {
        self.0.join(format!("{id}.part"))
    }

    /// Saves `record` (written aside, then renamed over the old one).
    pub fn save(&self, record: &Record) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.0)?;
        let json = serde_json::to_vec(&record.to_stored()).map_err(std::io::Error::other)?;
        let path = self.record(&record.offer.id);
        let aside = path.with_extension("json.new");
        std::fs::write(&aside, json)?;
        std::fs::rename(aside, path)
    }

    /// Every record that reads back; each one that does not is named in the log and skipped.
    pub fn load(&self) -> Vec<Record> {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return Vec::new();
        };
        let mut records = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match read_record(&path) {
                Ok(record) => records.push(record),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipped a file record")
                }
            }
        }
        records
    }
}

fn read_record(path: &Path) -> Result<Record, String> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err("larger than any record".into());
    }
    parse_record(&bytes)
}

/// A record's bytes, checked like anything from outside.
pub fn parse_record(bytes: &[u8]) -> Result<Record, String> {
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Record::from_stored(stored)
}

/// Reads `path` piece by piece into an offer and its manifest; refuses files over `cap`.
pub fn hash_file(path: &Path, cap: u64) -> Result<(FileOffer, Manifest), String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no usable file name", path.display()))?;
    validate_name(name).map_err(|e| e.to_string())?;
    let mut file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let cap = cap.min(MAX_FILE_BYTES);
    if meta.len() > cap {
        return Err(format!(
            "{} is {} bytes; the limit is {cap} bytes (--max-file-size)",
            path.display(),
            meta.len()
        ));
    }
    let mut builder = OfferBuilder::default();
    let mut piece = vec![0u8; PIECE_BYTES as usize];
    let mut total = 0u64;
    loop {
        let n = read_full(&mut file, &mut piece).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > cap {
            return Err(format!(
                "{} grew past the limit while being read",
                path.display()
            ));
        }
        builder.piece(&piece[..n]);
        if n < piece.len() {
            break;
        }
    }
    Ok(builder.finish(name, p2p_chat_shared::files::media_type_of(name)))
}

/// Fills `buf` as far as the file goes.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Piece `index` of `record`'s complete file, checked against its hash; `Err` when the file is
/// gone or changed since it was shared.
pub fn read_piece(record: &Record, index: u32) -> Result<Vec<u8>, String> {
    let (Some(path), Some(manifest)) = (&record.path, &record.manifest) else {
        return Err("not here in full".into());
    };
    let due = manifest.pieces.get(index as usize).ok_or("past the end")?;
    let (start, len) = record.offer.piece_span(index);
    let file = File::open(path).map_err(|_| "the file went away".to_owned())?;
    let mut piece = vec![0u8; len as usize];
    file.read_exact_at(&mut piece, start)
        .map_err(|_| "the file changed since it was shared".to_owned())?;
    if sha256(&piece) != *due {
        return Err("the file changed since it was shared".into());
    }
    Ok(piece)
}

/// The pieces of a partial download that match the manifest (kept across a restart).
pub fn verified_pieces(part: &Path, offer: &FileOffer, manifest: &Manifest) -> Vec<u32> {
    let Ok(file) = File::open(part) else {
        return Vec::new();
    };
    let mut have = Vec::new();
    let mut piece = vec![0u8; offer.piece as usize];
    for index in 0..offer.pieces() {
        let (start, len) = offer.piece_span(index);
        let buf = &mut piece[..len as usize];
        if file.read_exact_at(buf, start).is_ok()
            && manifest.pieces.get(index as usize) == Some(&sha256(buf))
        {
            have.push(index);
        }
    }
    have
}

/// Writes `bytes` at `offset` of a partial download.
pub fn write_piece(part: &File, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    part.write_all_at(bytes, offset)
}

/// Opens (or creates) the partial download of `offer`, sized to the file.
pub fn open_part(path: &Path, offer: &FileOffer) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.set_len(offer.size)?;
    Ok(file)
}

/// Checks the whole partial download against the offer's SHA-256.
pub fn whole_matches(part: &Path, offer: &FileOffer) -> std::io::Result<bool> {
    use sha2::Digest;
    let mut file = File::open(part)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest: Hash = hasher.finalize().into();
    Ok(to_hex(&digest) == offer.sha256)
}

/// Moves a checked download into `dir` under its offered name, or `name (1).ext`, `name (2).ext`
/// … when taken; never anywhere but in `dir`, never over anything there, and never as a hidden
/// file (a leading `.` becomes `_`: an offer must not plant a `.profile` in a home directory).
pub fn place(part: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    // `name` is one path component (checked in the offer): the joins stay in `dir`.
    let visible;
    let name = match name.strip_prefix('.') {
        Some(rest) => {
            visible = format!("_{rest}");
            visible.as_str()
        }
        None => name,
    };
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    for n in 0..1000 {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem} ({n}){ext}"))
        };
        if candidate.symlink_metadata().is_ok() {
            continue;
        }
        // A hard link fails if the name was taken in the meantime; then the partial goes.
        match std::fs::hard_link(part, &candidate) {
            Ok(()) => {
                std::fs::remove_file(part)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) => {
                // Another file system: copy into a file that did not exist (never through a
                // link planted there meanwhile), then remove the partial.
                let created = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&candidate);
                let mut target = match created {
                    Ok(target) => target,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                };
                let copied = File::open(part)
                    .and_then(|mut from| std::io::copy(&mut from, &mut target))
                    .and_then(|_| target.sync_all());
                if let Err(e) = copied {
                    // No half-written file is left where a person would take it for the file.
                    let _ = std::fs::remove_file(&candidate);
                    return Err(e);
                }
                std::fs::remove_file(part)?;
                return Ok(candidate);
            }
        }
    }
    Err(std::io::Error::other(format!(
        "{name} and its 999 numbered variants are all taken in {}",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_never_overwrites_a_file_of_the_same_name() {
        let dir = tempdir("place");
        std::fs::write(dir.join("a.txt"), "mine").expect("written");
        let part = dir.join("x.part");
        std::fs::write(&part, "theirs").expect("written");
        let placed = place(&part, &dir, "a.txt").expect("placed");
        assert_eq!(placed, dir.join("a (1).txt"));
        assert_eq!(
            std::fs::read_to_string(dir.join("a.txt")).expect("read"),
            "mine"
        );
        assert_eq!(std::fs::read_to_string(placed).expect("read"), "theirs");
        assert!(!part.exists());
        std::fs::write(&part, "hidden").expect("written");
        let placed = place(&part, &dir, ".profile").expect("placed");
        assert_eq!(placed, dir.join("_profile"), "no hidden file is planted");
    }

    #[test]
    fn a_record_whose_manifest_does_not_match_its_id_is_refused() {
        let dir = tempdir("records");
        let file = dir.join("data.bin");
        std::fs::write(&file, vec![7u8; 300_000]).expect("written");
        let (offer, manifest) = hash_file(&file, u64::MAX).expect("hashed");
        let record = Record {
            offer,
            manifest: Some(manifest),
            path: Some(file),
            providers: vec![],
        };
        let files = Dir(dir.join("files"));
        files.save(&record).expect("saved");
        assert_eq!(files.load().len(), 1);
        let mut bad = record.clone();
        if let Some(m) = bad.manifest.as_mut() {
            m.pieces[0] = [0; 32];
        }
        files.save(&bad).expect("saved");
        assert!(files.load().is_empty(), "a forged manifest is not loaded");
    }

    #[test]
    fn a_shared_file_that_changed_is_not_served() {
        let dir = tempdir("changed");
        let file = dir.join("notes.txt");
        std::fs::write(&file, "first version").expect("written");
        let (offer, manifest) = hash_file(&file, u64::MAX).expect("hashed");
        let record = Record {
            offer,
            manifest: Some(manifest),
            path: Some(file.clone()),
            providers: vec![],
        };
        assert_eq!(read_piece(&record, 0).expect("served"), b"first version");
        std::fs::write(&file, "later version").expect("written");
        assert!(read_piece(&record, 0).is_err());
    }

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("p2p-chat-disk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
