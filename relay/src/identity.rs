//! Identity keys and the WebRTC certificate on disk, and the data directory they live in.
//!
//! # Key file
//!
//! What `p2p-chat genkey` prints and `--key-file` reads: `#` comment lines, then one line of
//! standard base64 holding the libp2p protobuf encoding of an Ed25519 keypair. A key file that
//! exists but cannot be read is an error, never silently replaced: the identity is the user's.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::{engine::general_purpose::STANDARD, Engine};
use libp2p::identity::Keypair;
use p2p_chat_shared::native::Certificate;

/// Why a key, certificate or data directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The TLS certificate or key for `/wss` is unusable.
    #[error("{path}: {reason}")]
    BadTls {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A key file the user named does not exist.
    #[error("key file {0} does not exist; make one with `p2p-chat genkey > {0}`")]
    MissingKey(PathBuf),
    /// The file exists but does not hold a key or certificate.
    #[error(
        "{path} is not a p2p-chat key file ({reason}); make one with `p2p-chat genkey > FILE`"
    )]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: KeyError,
    },
    /// The certificate file is damaged.
    #[error("{path} is not a WebRTC certificate ({reason}); delete it to make a new one (the certhash changes)")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |error| IdentityError::Io {
        path: path.to_owned(),
        error,
    }
}

/// The text of a key file for `key`.
pub fn key_file_text(key: &Keypair) -> String {
    let bytes = key
        .to_protobuf_encoding()
        .expect("an Ed25519 keypair always encodes");
    format!(
        "# p2p-chat identity key: keep this file secret\n# peer id: {}\n{}\n",
        key.public().to_peer_id(),
        STANDARD.encode(bytes)
    )
}

/// Why the text of a key file holds no key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Only comments and blank lines.
    #[error("no key line")]
    NoKeyLine,
    /// The key line is not base64.
    #[error("not base64: {0}")]
    NotBase64(#[from] base64::DecodeError),
    /// The bytes are not a libp2p key.
    #[error("not a libp2p key: {0}")]
    NotAKey(#[from] libp2p::identity::DecodingError),
}

/// Parses the text of a key file.
pub fn parse_key(text: &str) -> Result<Keypair, KeyError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or(KeyError::NoKeyLine)?;
    let bytes = STANDARD.decode(line)?;
    Ok(Keypair::from_protobuf_encoding(&bytes)?)
}

/// Reads the key at `path`, which must exist (a key file the user named).
pub fn load_key(path: &Path) -> Result<Keypair, IdentityError> {
    let text = fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => IdentityError::MissingKey(path.to_owned()),
        _ => IdentityError::Io {
            path: path.to_owned(),
            error: e,
        },
    })?;
    parse_key(&text).map_err(|reason| IdentityError::BadKey {
        path: path.to_owned(),
        reason,
    })
}

/// Reads the key at `path`, or creates one there when the file does not exist.
pub fn load_or_create_key(path: &Path) -> Result<Keypair, IdentityError> {
    match fs::read_to_string(path) {
        Ok(text) => parse_key(&text).map_err(|reason| IdentityError::BadKey {
            path: path.to_owned(),
            reason,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            write_private(path, key_file_text(&key).as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(IdentityError::Io {
            path: path.to_owned(),
            error: e,
        }),
    }
}

/// A deterministic key from a one-byte seed (tests and local setups only).
pub fn key_from_seed(seed: u8) -> Keypair {
    let mut bytes = [0u8; 32];
    bytes[0] = seed;
    Keypair::ed25519_from_bytes(bytes).expect("32 bytes is a valid Ed25519 secret")
}

/// Reads the WebRTC certificate at `path`, or creates one there.
pub fn load_or_create_certificate(path: &Path) -> Result<Certificate, IdentityError> {
    match fs::read_to_string(path) {
        Ok(pem) => Certificate::from_pem(&pem).map_err(|e| IdentityError::BadCertificate {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cert = p2p_chat_shared::native::new_certificate().map_err(|e| {
                IdentityError::BadCertificate {
                    path: path.to_owned(),
                    reason: e.to_string(),
                }
            })?;
            write_private(path, cert.serialize_pem().as_bytes())?;
            Ok(cert)
        }
        Err(e) => Err(IdentityError::Io {
            path: path.to_owned(),
            error: e,
        }),
    }
}

/// The TLS configuration for `/wss` from a PEM certificate chain and a PEM private key (PKCS#8
/// or PKCS#1), as an operator gets them from their certificate authority.
pub fn load_tls(cert: &Path, key: &Path) -> Result<libp2p::websocket::tls::Config, IdentityError> {
    use libp2p::websocket::tls;
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let bad = |path: &Path, reason: String| IdentityError::BadTls {
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|iter| iter.collect())
        .map_err(|e| bad(cert, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(bad(cert, "no certificate in it".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| bad(key, format!("not a PEM private key: {e}")))?;
    let key_bytes = key_der.secret_der().to_vec();
    // tls::PrivateKey::new panics on other formats (SEC1): check first.
    if PrivateKeyDer::try_from(key_bytes.clone()).is_err() {
        return Err(bad(
            key,
            "the key must be PKCS#8 or PKCS#1 (convert with `openssl pkcs8 -topk8 -nocrypt`)"
                .into(),
        ));
    }
    let certs = certs.into_iter().map(|c| tls::Certificate::new(c.to_vec()));
    tls::Config::new(tls::PrivateKey::new(key_bytes), certs).map_err(|e| {
        bad(
            cert,
            format!("certificate and key do not make a TLS configuration: {e}"),
        )
    })
}

/// Writes a secret file readable by its owner only, atomically (temp file, then rename).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// The default data directory: `$XDG_DATA_HOME/p2p-chat/<role>`, else
/// `~/.local/share/p2p-chat/<role>`, else `./.p2p-chat/<role>`.
pub fn default_data_dir(role: &str) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("p2p-chat").join(role)
}

/// A data directory held by this process (an exclusive lock on `<dir>/lock`).
#[derive(Debug)]
pub struct DataDir {
    /// The directory.
    pub path: PathBuf,
    _lock: File,
}

/// Takes the data directory `base`; when another process holds it and `fallback` is set, takes
/// the first free `base-2` … `base-9` instead (each with its own identity), so that two peers
/// started the same way on one machine do not share a peer id.
pub fn claim_data_dir(base: &Path, fallback: bool) -> Result<DataDir, IdentityError> {
    let tries = if fallback { 9 } else { 1 };
    for n in 1..=tries {
        let path = if n == 1 {
            base.to_owned()
        } else {
            let mut name = base.as_os_str().to_owned();
            name.push(format!("-{n}"));
            PathBuf::from(name)
        };
        fs::create_dir_all(&path).map_err(io_err(&path))?;
        let lock_path = path.join("lock");
        let lock = File::create(&lock_path).map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => return Ok(DataDir { path, _lock: lock }),
            Err(fs::TryLockError::WouldBlock) => continue,
            Err(fs::TryLockError::Error(e)) => {
                return Err(IdentityError::Io {
                    path: lock_path,
                    error: e,
                })
            }
        }
    }
    Err(IdentityError::Io {
        path: base.to_owned(),
        error: std::io::Error::other("in use by another p2p-chat process; pass --data-dir"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("p2p-chat-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_key_file_round_trips_and_keeps_the_peer_id() {
        let dir = temp_dir("key");
        let path = dir.join("identity.key");
        let first = load_or_create_key(&path).expect("created");
        let again = load_or_create_key(&path).expect("read back");
        assert_eq!(first.public().to_peer_id(), again.public().to_peer_id());
        let text = fs::read_to_string(&path).expect("readable");
        assert!(text.contains(&first.public().to_peer_id().to_string()));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_damaged_key_file_is_an_error_and_is_not_replaced() {
        let dir = temp_dir("badkey");
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("identity.key");
        fs::write(&path, "not a key\n").expect("write");
        let err = load_or_create_key(&path).expect_err("must refuse");
        assert!(err.to_string().contains("genkey"), "{err}");
        assert_eq!(
            fs::read_to_string(&path).expect("still there"),
            "not a key\n"
        );
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_second_process_gets_its_own_data_dir() {
        let base = temp_dir("lock").join("peer");
        let first = claim_data_dir(&base, true).expect("first");
        let second = claim_data_dir(&base, true).expect("second");
        assert_ne!(first.path, second.path);
        assert!(
            claim_data_dir(&base, false).is_err(),
            "no fallback: refused"
        );
        drop(first);
        assert_eq!(claim_data_dir(&base, false).expect("free again").path, base);
        let _ = fs::remove_dir_all(base.parent().expect("parent"));
    }
}
