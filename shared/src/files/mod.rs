//! File sharing: a file is offered in a room or a DM, and fetched piece by piece, each piece
//! checked against its SHA-256 before it is kept, from every peer that has it.
//!
//! # An offer
//!
//! A room message or DM envelope carries an optional `file` field (older peers ignore it and show
//! the body, which names the file):
//!
//! ```json
//! {"id":"<64 hex>","name":"cat.png","size":81234,"type":"image/png","sha256":"<64 hex>","piece":262144}
//! ```
//!
//! | field | meaning |
//! | --- | --- |
//! | `id` | the file's id: SHA-256 of its [`Manifest`], which commits to `size`, `piece`, `sha256` and every piece |
//! | `name` | a file name, no directory: 1–255 bytes, no `/`, `\`, control characters, not `.` or `..` |
//! | `size` | bytes, at most [`MAX_FILE_BYTES`] (a peer's own cap may be lower) |
//! | `type` | media type (`image/png`), at most 127 bytes; `application/octet-stream` when unknown |
//! | `sha256` | SHA-256 of the whole file |
//! | `piece` | piece size in bytes: a power of two from 16 KiB to 1 MiB ([`PIECE_BYTES`] when we offer) |
//!
//! Piece `i` is bytes `i*piece .. min((i+1)*piece, size)`; an empty file has no pieces.
//!
//! # The protocol
//!
//! [`FILE_PROTOCOL`]: a downloader opens streams to a provider and asks, one request at a time
//! per stream, for the *manifest* or a piece ([`wire`]). It checks the manifest against `id`
//! (and the offer against the manifest: an offer altered on its way is caught there, without
//! blaming the providers), each piece against the manifest, and the whole file against
//! `sha256`.
//!
//! The manifest's bytes: `size` (8 bytes, big-endian) · `piece` (4 bytes, big-endian) · `sha256`
//! (32 bytes) · the SHA-256 of each piece in order (32 bytes each).
//! Several streams to several providers run at once ([`fetch`]); what a provider serves and how
//! much it takes at once is [`serve`]'s.

pub mod fetch;
pub mod serve;
pub mod wire;

use data_encoding::HEXLOWER;
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file protocol's id.
pub const FILE_PROTOCOL: StreamProtocol = StreamProtocol::new("/p2p-chat/file/1.0.0");

/// The piece size of the files we offer.
pub const PIECE_BYTES: u32 = 256 * 1024;

/// Smallest piece size accepted in an offer.
pub const MIN_PIECE_BYTES: u32 = 16 * 1024;

/// Largest piece size accepted in an offer: the most a downloader holds per piece in flight.
pub const MAX_PIECE_BYTES: u32 = 1024 * 1024;

/// Most pieces a file may have: bounds its manifest to 512 KiB and a little.
pub const MAX_PIECES: u64 = 16 * 1024;

/// Largest file any offer may announce (4 GiB); each peer's own cap is lower by default
/// ([`DEFAULT_MAX_FILE_BYTES`]).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// The default cap on a file a peer offers or fetches.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// Longest file name, in bytes.
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// Longest media type, in bytes.
pub const MAX_MEDIA_TYPE_BYTES: usize = 127;

/// The media type of a file whose type is unknown.
pub const UNKNOWN_MEDIA_TYPE: &str = "application/octet-stream";

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// Bytes of a manifest before its piece hashes.
pub const MANIFEST_HEADER_BYTES: u32 = 44;

/// Largest manifest: its header and [`MAX_PIECES`] hashes.
pub const MAX_MANIFEST_BYTES: u32 = MANIFEST_HEADER_BYTES + 32 * MAX_PIECES as u32;

/// What a file's id is the hash of: its size, piece size, whole-file hash and piece hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Bytes.
    pub size: u64,
    /// Piece size.
    pub piece: u32,
    /// SHA-256 of the whole file.
    pub sha256: Hash,
    /// SHA-256 of each piece, in order.
    pub pieces: Vec<Hash>,
}

impl Manifest {
    /// Its bytes (see the module doc).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(MANIFEST_HEADER_BYTES as usize + 32 * self.pieces.len());
        bytes.extend_from_slice(&self.size.to_be_bytes());
        bytes.extend_from_slice(&self.piece.to_be_bytes());
        bytes.extend_from_slice(&self.sha256);
        for piece in &self.pieces {
            bytes.extend_from_slice(piece);
        }
        bytes
    }

    /// The file's id: SHA-256 of its bytes.
    pub fn id(&self) -> Hash {
        sha256(&self.to_bytes())
    }

    /// A manifest from its bytes, if they are one: a valid piece size, as many hashes as the
    /// size implies, within [`MAX_FILE_BYTES`] and [`MAX_PIECES`].
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (size, rest) = bytes.split_first_chunk::<8>()?;
        let (piece, rest) = rest.split_first_chunk::<4>()?;
        let (whole, rest) = rest.split_first_chunk::<32>()?;
        let (size, piece) = (u64::from_be_bytes(*size), u32::from_be_bytes(*piece));
        let valid = piece.is_power_of_two()
            && (MIN_PIECE_BYTES..=MAX_PIECE_BYTES).contains(&piece)
            && size <= MAX_FILE_BYTES;
        let count = size.div_ceil(u64::from(piece.max(1)));
        if !valid || count > MAX_PIECES || rest.len() as u64 != count * 32 {
            return None;
        }
        let pieces = rest
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok())
            .collect();
        Some(Self {
            size,
            piece,
            sha256: *whole,
            pieces,
        })
    }

    /// Whether `offer` says what this manifest does (size, piece size, whole-file hash).
    pub fn describes(&self, offer: &FileOffer) -> bool {
        self.size == offer.size && self.piece == offer.piece && to_hex(&self.sha256) == offer.sha256
    }
}

/// A hash as 64 lowercase hex digits.
pub fn to_hex(hash: &Hash) -> String {
    HEXLOWER.encode(hash)
}

/// 64 hex digits (either case) as a hash.
pub fn from_hex(text: &str) -> Option<Hash> {
    let bytes = HEXLOWER.decode(text.to_ascii_lowercase().as_bytes()).ok()?;
    bytes.try_into().ok()
}

/// A file on offer, validated ([`RawOffer::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOffer {
    /// The SHA-256 of its [`Manifest`], in hex: the file's id.
    pub id: String,
    /// A file name without any directory.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Media type.
    #[serde(rename = "type")]
    pub media_type: String,
    /// SHA-256 of the whole file, in hex.
    pub sha256: String,
    /// Piece size in bytes.
    pub piece: u32,
}

/// An offer as it arrives: every field optional, so that a missing one is our error to report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawOffer {
    id: Option<String>,
    name: Option<String>,
    size: Option<u64>,
    #[serde(rename = "type")]
    media_type: Option<String>,
    sha256: Option<String>,
    piece: Option<u32>,
}

impl RawOffer {
    /// Whether no field is set (no offer at all).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl From<&FileOffer> for RawOffer {
    fn from(o: &FileOffer) -> Self {
        Self {
            id: Some(o.id.clone()),
            name: Some(o.name.clone()),
            size: Some(o.size),
            media_type: Some(o.media_type.clone()),
            sha256: Some(o.sha256.clone()),
            piece: Some(o.piece),
        }
    }
}

/// Why an offer, a file name or a file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// A field is missing.
    #[error("the file offer has no `{0}`")]
    Missing(&'static str),
    /// `id` or `sha256` is not 64 hex digits.
    #[error("the file offer's `{0}` is not 64 hex digits")]
    BadHash(&'static str),
    /// The name cannot be a file name here.
    #[error("{0}")]
    BadName(#[from] NameError),
    /// The media type is too long or not printable ASCII.
    #[error("the media type must be 1-127 printable ASCII characters")]
    BadMediaType,
    /// The piece size is not a power of two in range.
    #[error("piece size {0} is not a power of two from 16 KiB to 1 MiB")]
    BadPieceSize(u32),
    /// The file is larger than the cap.
    #[error("the file is {size} bytes; the limit is {cap} bytes (--max-file-size)")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap it broke.
        cap: u64,
    },
    /// More pieces than [`MAX_PIECES`].
    #[error("the file would have {0} pieces; the limit is {MAX_PIECES}")]
    TooManyPieces(u64),
}

/// Why a name cannot be a file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty.
    #[error("a file name cannot be empty")]
    Empty,
    /// Longer than [`MAX_FILE_NAME_BYTES`].
    #[error("the file name is {0} bytes; the limit is {MAX_FILE_NAME_BYTES}")]
    TooLong(usize),
    /// It names a directory, or a path.
    #[error("{0:?} is not a plain file name: no '/', '\\', '.' or '..'")]
    Path(String),
    /// Control or invisible characters (a right-to-left override can disguise an extension).
    #[error("the file name has control or invisible characters")]
    Control,
}

/// Checks a file name from the network or a user: one path component, never a directory.
pub fn validate_name(name: &str) -> Result<&str, NameError> {
    if name.trim().is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_FILE_NAME_BYTES {
        return Err(NameError::TooLong(name.len()));
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(NameError::Path(name.to_owned()));
    }
    if name
        .chars()
        .any(|c| c.is_control() || crate::text::is_invisible(c))
    {
        return Err(NameError::Control);
    }
    Ok(name)
}

impl RawOffer {
    /// Checks every field (see the module doc), and the size against `cap`.
    pub fn validate(self, cap: u64) -> Result<FileOffer, OfferError> {
        let id = self.id.ok_or(OfferError::Missing("id"))?;
        let id = to_hex(&from_hex(&id).ok_or(OfferError::BadHash("id"))?);
        let sha256 = self.sha256.ok_or(OfferError::Missing("sha256"))?;
        let sha256 = to_hex(&from_hex(&sha256).ok_or(OfferError::BadHash("sha256"))?);
        let name = self.name.ok_or(OfferError::Missing("name"))?;
        validate_name(&name)?;
        let size = self.size.ok_or(OfferError::Missing("size"))?;
        let cap = cap.min(MAX_FILE_BYTES);
        if size > cap {
            return Err(OfferError::TooLarge { size, cap });
        }
        let media_type = self
            .media_type
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| UNKNOWN_MEDIA_TYPE.to_owned());
        if media_type.len() > MAX_MEDIA_TYPE_BYTES
            || !media_type.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(OfferError::BadMediaType);
        }
        let piece = self.piece.ok_or(OfferError::Missing("piece"))?;
        if !piece.is_power_of_two() || !(MIN_PIECE_BYTES..=MAX_PIECE_BYTES).contains(&piece) {
            return Err(OfferError::BadPieceSize(piece));
        }
        let pieces = size.div_ceil(u64::from(piece));
        if pieces > MAX_PIECES {
            return Err(OfferError::TooManyPieces(pieces));
        }
        Ok(FileOffer {
            id,
            name,
            size,
            media_type,
            sha256,
            piece,
        })
    }
}

impl FileOffer {
    /// How many pieces the file has.
    pub fn pieces(&self) -> u32 {
        // At most MAX_PIECES, checked in `validate`.
        u32::try_from(self.size.div_ceil(u64::from(self.piece))).unwrap_or(u32::MAX)
    }

    /// Where piece `index` starts in the file, and its length.
    pub fn piece_span(&self, index: u32) -> (u64, u32) {
        let start = u64::from(index) * u64::from(self.piece);
        let len = self.size.saturating_sub(start).min(u64::from(self.piece));
        // At most `piece`, a u32.
        (start, len as u32)
    }

    /// The file's id as a hash.
    pub fn id_hash(&self) -> Hash {
        from_hex(&self.id).unwrap_or_default()
    }

    /// The body text of the message that carries the offer, for peers that show only text.
    pub fn summary(&self) -> String {
        format!("📎 {} ({})", self.name, human_bytes(self.size))
    }
}

/// `bytes` as a person reads them: `812 B`, `79.3 KiB`, `10.0 MiB` (integer arithmetic: the
/// browser build carries no float formatting for it).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let (mut unit, mut div) = (0, 1024u64);
    while bytes / div >= 1024 && unit < UNITS.len() - 1 {
        div *= 1024;
        unit += 1;
    }
    // The remainder is below `div` (at most 2^40): ten times it fits.
    let (mut whole, mut tenth) = (bytes / div, (bytes % div * 10 + div / 2) / div);
    if tenth == 10 {
        (whole, tenth) = (whole + 1, 0);
    }
    format!("{whole}.{tenth} {}", UNITS[unit])
}

/// Builds an offer and its manifest from a file's pieces, given in order (each exactly
/// [`PIECE_BYTES`] but the last). The caller has checked `name` and `size`.
pub struct OfferBuilder {
    whole: Sha256,
    manifest: Vec<Hash>,
    size: u64,
}

impl Default for OfferBuilder {
    fn default() -> Self {
        Self {
            whole: Sha256::new(),
            manifest: Vec::new(),
            size: 0,
        }
    }
}

impl OfferBuilder {
    /// Adds the next piece.
    pub fn piece(&mut self, bytes: &[u8]) {
        self.whole.update(bytes);
        self.manifest.push(sha256(bytes));
        self.size += bytes.len() as u64;
    }

    /// The offer (pieces of [`PIECE_BYTES`]) and its manifest.
    pub fn finish(self, name: &str, media_type: &str) -> (FileOffer, Manifest) {
        let manifest = Manifest {
            size: self.size,
            piece: PIECE_BYTES,
            sha256: self.whole.finalize().into(),
            pieces: self.manifest,
        };
        let offer = FileOffer {
            id: to_hex(&manifest.id()),
            name: name.to_owned(),
            size: manifest.size,
            media_type: media_type.to_owned(),
            sha256: to_hex(&manifest.sha256),
            piece: manifest.piece,
        };
        (offer, manifest)
    }
}

/// A guess at a file's media type from its name, for the few types a chat shows differently.
pub fn media_type_of(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("txt" | "log" | "md") => "text/plain",
        Some("pdf") => "application/pdf",
        Some("json") => "application/json",
        _ => UNKNOWN_MEDIA_TYPE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer_of(bytes: &[u8], name: &str) -> (FileOffer, Manifest) {
        let mut builder = OfferBuilder::default();
        for chunk in bytes.chunks(PIECE_BYTES as usize) {
            builder.piece(chunk);
        }
        builder.finish(name, media_type_of(name))
    }

    #[test]
    fn an_offer_names_its_pieces_by_their_root_and_survives_the_wire() {
        let bytes: Vec<u8> = (0..PIECE_BYTES * 2 + 10).map(|i| (i % 251) as u8).collect();
        let (offer, manifest) = offer_of(&bytes, "data.bin");
        assert_eq!(offer.pieces(), 3);
        assert_eq!(manifest.pieces.len(), 3);
        assert_eq!(offer.id_hash(), manifest.id());
        assert!(manifest.describes(&offer));
        assert_eq!(
            Manifest::from_bytes(&manifest.to_bytes()),
            Some(manifest.clone())
        );
        assert_eq!(offer.sha256, to_hex(&sha256(&bytes)));
        assert_eq!(offer.piece_span(2), (u64::from(PIECE_BYTES) * 2, 10));
        let json = serde_json::to_string(&offer).expect("serialises");
        let raw: RawOffer = serde_json::from_str(&json).expect("parses");
        assert_eq!(raw.validate(DEFAULT_MAX_FILE_BYTES), Ok(offer));
    }

    #[test]
    fn an_empty_file_has_no_pieces() {
        let (offer, manifest) = offer_of(&[], "empty.txt");
        assert_eq!((offer.pieces(), manifest.pieces.len()), (0, 0));
        assert_eq!(offer.media_type, "text/plain");
    }

    #[test]
    fn a_manifest_commits_to_size_piece_and_whole_and_refuses_bad_bytes() {
        let (offer, manifest) = offer_of(&[1u8; 300_000], "x.bin");
        let mut altered = offer.clone();
        altered.size += 1;
        assert!(!manifest.describes(&altered), "a changed size is caught");
        let bytes = manifest.to_bytes();
        assert_eq!(Manifest::from_bytes(&bytes[..bytes.len() - 1]), None);
        let mut bigger = bytes.clone();
        bigger.extend_from_slice(&[0; 32]);
        assert_eq!(Manifest::from_bytes(&bigger), None, "one hash too many");
        let mut bad_piece = bytes.clone();
        bad_piece[8..12].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(Manifest::from_bytes(&bad_piece), None);
        assert_eq!(Manifest::from_bytes(&[]), None);
    }

    #[test]
    fn names_that_would_leave_the_download_directory_are_refused() {
        for bad in [
            "../etc/passwd",
            "a/b",
            "..",
            ".",
            "c:\\x",
            "",
            "  ",
            "a\u{0}b",
            "invoice\u{202E}fdp.exe",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_name(&"x".repeat(256)).is_err());
        assert_eq!(validate_name("report 2026.pdf"), Ok("report 2026.pdf"));
        assert_eq!(validate_name("..hidden"), Ok("..hidden"));
    }

    #[test]
    fn hostile_offers_get_clear_errors() {
        let (offer, _) = offer_of(b"hello", "hello.txt");
        let good = RawOffer::from(&offer);
        let with = |f: fn(&mut RawOffer)| {
            let mut raw = good.clone();
            f(&mut raw);
            raw.validate(DEFAULT_MAX_FILE_BYTES)
        };
        assert_eq!(with(|r| r.id = None), Err(OfferError::Missing("id")));
        assert_eq!(
            with(|r| r.id = Some("zz".into())),
            Err(OfferError::BadHash("id"))
        );
        assert!(matches!(
            with(|r| r.name = Some("../../.bashrc".into())),
            Err(OfferError::BadName(NameError::Path(_)))
        ));
        assert!(matches!(
            with(|r| r.size = Some(DEFAULT_MAX_FILE_BYTES + 1)),
            Err(OfferError::TooLarge { .. })
        ));
        assert_eq!(
            with(|r| r.piece = Some(1000)),
            Err(OfferError::BadPieceSize(1000))
        );
        assert_eq!(
            with(|r| r.media_type = Some("text/html; x=\"<script>\" \n".into())),
            Err(OfferError::BadMediaType)
        );
        // A 4 GiB file in 16 KiB pieces would need a 8 MiB manifest.
        let huge = with(|r| {
            r.size = Some(MAX_FILE_BYTES);
            r.piece = Some(MIN_PIECE_BYTES);
        });
        assert!(huge.is_err());
        let mut raw = good.clone();
        raw.size = Some(MAX_FILE_BYTES);
        raw.piece = Some(MIN_PIECE_BYTES);
        assert_eq!(
            raw.validate(u64::MAX),
            Err(OfferError::TooManyPieces(
                MAX_FILE_BYTES / u64::from(MIN_PIECE_BYTES)
            ))
        );
    }

    #[test]
    fn sizes_read_as_a_person_reads_them() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(10 * 1024 * 1024), "10.0 MiB");
        assert_eq!(human_bytes(81_234), "79.3 KiB");
        assert_eq!(human_bytes(u64::MAX), "16777216.0 TiB");
    }
}
