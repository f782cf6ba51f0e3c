//! Sealed direct messages: what a store keeps for a recipient who was offline, unreadable to the
//! store.
//!
//! A DM envelope is signed with the sender's libp2p identity key (Ed25519), then encrypted to the
//! recipient's identity key with HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20-Poly1305, base mode; the `hpke` crate). The recipient's X25519 key is its Ed25519 key
//! under the standard birational map (`ed25519-dalek`'s `to_montgomery` / `to_scalar_bytes`, as
//! libsodium and age do); no other key is needed.
//!
//! # Bytes
//!
//! `sealed` = base64 of `enc (32 bytes) ‖ ciphertext`, with `info` = `p2p-chat/dm-seal/1`. The
//! plaintext is the JSON object `{"key":"<base64 protobuf public key of the sender>",
//! "to":"<recipient peer id>","envelope":"<the DM envelope's JSON>","sig":"<base64 signature>"}`,
//! where `sig` signs `p2p-chat/dm-seal/1 signature\0<to>\0<envelope>`. Naming the recipient inside
//! the signature stops anyone from re-sealing a message they received to someone else as if the
//! sender had sent it there.

use data_encoding::BASE64;
use hpke::{
    aead::ChaCha20Poly1305, kdf::HkdfSha256, kem::X25519HkdfSha256, Deserializable, Kem, OpModeR,
    OpModeS, Serializable,
};
use libp2p::identity::{Keypair, PublicKey};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::envelope::{Envelope, Kind, RawEnvelope};

const INFO: &[u8] = b"p2p-chat/dm-seal/1";
const SIGNATURE_DOMAIN: &[u8] = b"p2p-chat/dm-seal/1 signature";
/// Bytes of HPKE's encapsulated key for X25519.
const ENC_BYTES: usize = 32;

type KemX = X25519HkdfSha256;

/// Why a message could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key is not Ed25519 (the only kind p2p-chat uses).
    #[error("{0} has no Ed25519 key to encrypt to")]
    NotEd25519(String),
    /// Decryption failed: not for us, or tampered with.
    #[error("could not decrypt (not for this peer, or altered)")]
    Decrypt,
    /// Decrypted, but the contents are not a signed DM for us.
    #[error("sealed message is malformed: {0}")]
    Malformed(String),
    /// The signature does not verify.
    #[error("the sender's signature does not verify")]
    BadSignature,
    /// Signed for another recipient.
    #[error("the message was signed for another recipient")]
    WrongRecipient,
}

#[derive(Serialize, Deserialize)]
struct Inner {
    key: String,
    to: String,
    envelope: String,
    sig: String,
}

fn signed_bytes(to: &str, envelope: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SIGNATURE_DOMAIN.len() + to.len() + envelope.len() + 2);
    bytes.extend_from_slice(SIGNATURE_DOMAIN);
    bytes.push(0);
    bytes.extend_from_slice(to.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(envelope.as_bytes());
    bytes
}

/// The Ed25519 public key inside an Ed25519 peer id.
fn peer_public_key(peer: &PeerId) -> Result<libp2p::identity::ed25519::PublicKey, SealError> {
    let not_ed = || SealError::NotEd25519(peer.to_string());
    let multihash = peer.as_ref();
    // Ed25519 peer ids inline the key: the "identity" multihash (code 0) of its protobuf.
    if multihash.code() != 0 {
        return Err(not_ed());
    }
    PublicKey::try_decode_protobuf(multihash.digest())
        .map_err(|_| not_ed())?
        .try_into_ed25519()
        .map_err(|_| not_ed())
}

fn x25519_public(peer: &PeerId) -> Result<<KemX as Kem>::PublicKey, SealError> {
    let ed = peer_public_key(peer)?;
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&ed.to_bytes())
        .map_err(|_| SealError::NotEd25519(peer.to_string()))?;
    <KemX as Kem>::PublicKey::from_bytes(verifying.to_montgomery().as_bytes())
        .map_err(|_| SealError::NotEd25519(peer.to_string()))
}

fn x25519_private(key: &Keypair) -> Result<<KemX as Kem>::PrivateKey, SealError> {
    let not_ed = || SealError::NotEd25519("this peer".to_owned());
    let ed = key.clone().try_into_ed25519().map_err(|_| not_ed())?;
    let seed: [u8; 32] = ed.secret().as_ref().try_into().map_err(|_| not_ed())?;
    let scalar = ed25519_dalek::SigningKey::from_bytes(&seed).to_scalar_bytes();
    <KemX as Kem>::PrivateKey::from_bytes(&scalar).map_err(|_| not_ed())
}

/// Signs `envelope` (a DM) with `sender` and encrypts it to `to`; base64 of the sealed bytes.
pub fn seal(sender: &Keypair, to: &PeerId, envelope: &Envelope) -> Result<String, SealError> {
    let recipient = x25519_public(to)?;
    let to = to.to_string();
    let envelope =
        String::from_utf8(envelope.to_bytes()).map_err(|e| SealError::Malformed(e.to_string()))?;
    let sig = sender
        .sign(&signed_bytes(&to, &envelope))
        .map_err(|e| SealError::Malformed(e.to_string()))?;
    let inner = Inner {
        key: BASE64.encode(&sender.public().encode_protobuf()),
        to,
        envelope,
        sig: BASE64.encode(&sig),
    };
    let plaintext = serde_json::to_vec(&inner).map_err(|e| SealError::Malformed(e.to_string()))?;
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, KemX>(
        &OpModeS::Base,
        &recipient,
        INFO,
        &plaintext,
        &[],
        &mut rand::rng(),
    )
    .map_err(|e| SealError::Malformed(e.to_string()))?;
    let mut sealed = enc.to_bytes().to_vec();
    sealed.extend_from_slice(&ciphertext);
    Ok(BASE64.encode(&sealed))
}

/// Decrypts a sealed DM addressed to `recipient` and checks its signature: the sender (from the
/// signing key) and the envelope.
pub fn open(recipient: &Keypair, sealed: &str) -> Result<(PeerId, Envelope), SealError> {
    let bytes = BASE64
        .decode(sealed.as_bytes())
        .map_err(|e| SealError::Malformed(format!("not base64: {e}")))?;
    if bytes.len() <= ENC_BYTES {
        return Err(SealError::Malformed("too short".to_owned()));
    }
    let (enc, ciphertext) = bytes.split_at(ENC_BYTES);
    let enc = <KemX as Kem>::EncappedKey::from_bytes(enc).map_err(|_| SealError::Decrypt)?;
    let private = x25519_private(recipient)?;
    let plaintext = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, KemX>(
        &OpModeR::Base,
        &private,
        &enc,
        INFO,
        ciphertext,
        &[],
    )
    .map_err(|_| SealError::Decrypt)?;
    let inner: Inner =
        serde_json::from_slice(&plaintext).map_err(|e| SealError::Malformed(e.to_string()))?;
    let key_bytes = BASE64
        .decode(inner.key.as_bytes())
        .map_err(|e| SealError::Malformed(format!("sender key: {e}")))?;
    let key = PublicKey::try_decode_protobuf(&key_bytes)
        .map_err(|e| SealError::Malformed(format!("sender key: {e}")))?;
    let sig = BASE64
        .decode(inner.sig.as_bytes())
        .map_err(|e| SealError::Malformed(format!("signature: {e}")))?;
    if !key.verify(&signed_bytes(&inner.to, &inner.envelope), &sig) {
        return Err(SealError::BadSignature);
    }
    if inner.to != recipient.public().to_peer_id().to_string() {
        return Err(SealError::WrongRecipient);
    }
    let raw: RawEnvelope = serde_json::from_slice(inner.envelope.as_bytes())
        .map_err(|e| SealError::Malformed(format!("envelope: {e}")))?;
    let envelope = raw
        .validate()
        .map_err(|e| SealError::Malformed(e.to_string()))?;
    if envelope.kind != Kind::Dm {
        return Err(SealError::Malformed(format!(
            "expected a `dm` envelope, got `{}`",
            envelope.kind.as_str()
        )));
    }
    Ok((key.to_peer_id(), envelope))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(text: &str) -> Envelope {
        Envelope::dm("alice", text).expect("test setup")
    }

    #[test]
    fn the_recipient_opens_what_was_sealed_to_it_and_learns_the_sender() {
        let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let envelope = dm("meet at noon");
        let sealed = seal(&alice, &bob.public().to_peer_id(), &envelope).expect("test setup");
        assert!(!sealed.contains("noon"));
        let (from, opened) = open(&bob, &sealed).expect("test setup");
        assert_eq!(from, alice.public().to_peer_id());
        assert_eq!(opened, envelope);
    }

    #[test]
    fn nobody_else_can_open_it_and_tampering_is_caught() {
        let (alice, bob, eve) = (
            Keypair::generate_ed25519(),
            Keypair::generate_ed25519(),
            Keypair::generate_ed25519(),
        );
        let sealed = seal(&alice, &bob.public().to_peer_id(), &dm("secret")).expect("test setup");
        assert_eq!(open(&eve, &sealed), Err(SealError::Decrypt));
        let mut bytes = BASE64.decode(sealed.as_bytes()).expect("test setup");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(open(&bob, &BASE64.encode(&bytes)), Err(SealError::Decrypt));
        assert!(matches!(open(&bob, "@@@"), Err(SealError::Malformed(_))));
        assert!(matches!(open(&bob, "AAAA"), Err(SealError::Malformed(_))));
    }

    #[test]
    fn a_message_resealed_to_another_recipient_is_refused() {
        // Bob got a signed message from Alice; he seals its signed contents to Carol.
        let (alice, bob, carol) = (
            Keypair::generate_ed25519(),
            Keypair::generate_ed25519(),
            Keypair::generate_ed25519(),
        );
        let envelope = String::from_utf8(dm("for bob only").to_bytes()).expect("test setup");
        let bob_id = bob.public().to_peer_id().to_string();
        let inner = Inner {
            key: BASE64.encode(&alice.public().encode_protobuf()),
            to: bob_id.clone(),
            sig: BASE64.encode(
                &alice
                    .sign(&signed_bytes(&bob_id, &envelope))
                    .expect("test setup"),
            ),
            envelope,
        };
        let recipient = x25519_public(&carol.public().to_peer_id()).expect("test setup");
        let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, KemX>(
            &OpModeS::Base,
            &recipient,
            INFO,
            &serde_json::to_vec(&inner).expect("test setup"),
            &[],
            &mut rand::rng(),
        )
        .expect("test setup");
        let mut sealed = enc.to_bytes().to_vec();
        sealed.extend_from_slice(&ct);
        assert_eq!(
            open(&carol, &BASE64.encode(&sealed)),
            Err(SealError::WrongRecipient)
        );
    }

    fn worst_bodies() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(0u8..0x20, 0..crate::protocol::MAX_BODY_BYTES + 10)
                .prop_map(|b| String::from_utf8(b).unwrap_or_default()),
            proptest::collection::vec(any::<char>(), 0..6000).prop_map(|c| c.into_iter().collect()),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Every DM body the composer accepts (`Envelope::dm`) can be sealed and deposited at a
        /// relay: the deposit is within every limit the store checks.
        #[test]
        fn every_dm_the_composer_accepts_can_be_sealed_and_deposited(body in worst_bodies()) {
            use crate::store::{Deposit, StoreRequest, MAX_STORE_REQUEST_BYTES};
            let Ok(envelope) = Envelope::dm("alice", &body) else {
                return Ok(());
            };
            let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
            let to = bob.public().to_peer_id();
            let sealed = seal(&alice, &to, &envelope);
            proptest::prop_assert!(sealed.is_ok(), "{:?}", sealed);
            let request = StoreRequest::Deposit(Deposit {
                to,
                id: envelope.id.clone(),
                sealed: sealed.unwrap_or_default(),
            });
            proptest::prop_assert_eq!(request.validate(), Ok(()));
            let bytes = serde_json::to_vec(&request).map_or(usize::MAX, |b| b.len());
            proptest::prop_assert!(bytes <= MAX_STORE_REQUEST_BYTES, "{} bytes", bytes);
        }
    }
}
