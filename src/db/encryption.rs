//! Encryption at rest of configuration columns (`--encryption-key`), AES-GCM
//! with a random 96-bit nonce per value, stored base64 beside the value.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;

use super::{DbError, DbResult};

/// A 16-byte (AES-128) or 32-byte (AES-256) key, as Concourse accepts.
#[derive(Clone)]
pub struct EncryptionKey(Vec<u8>);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptionKey({} bytes, redacted)", self.0.len())
    }
}

impl EncryptionKey {
    pub fn parse_flag(value: &str) -> Result<EncryptionKey, KeyLengthError> {
        match value.len() {
            16 | 32 => Ok(EncryptionKey(value.as_bytes().to_vec())),
            n => Err(KeyLengthError(n)),
        }
    }
}

/// An encryption key of a length AES-GCM has no variant for.
#[derive(Debug, thiserror::Error)]
#[error("must be 16 or 32 bytes long, got {0}")]
pub struct KeyLengthError(usize);

pub(super) enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
}

impl Cipher {
    pub(super) fn new(key: &EncryptionKey) -> Cipher {
        match key.0.len() {
            16 => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(&key.0).expect("16-byte key"))),
            _ => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(&key.0).expect("32-byte key"))),
        }
    }

    /// Returns the base64 ciphertext and the base64 nonce.
    pub(super) fn encrypt(&self, plaintext: &str) -> DbResult<(String, String)> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let nonce_ref = Nonce::from_slice(&nonce);
        let sealed = match self {
            Cipher::Aes128(c) => c.encrypt(nonce_ref, plaintext.as_bytes()),
            Cipher::Aes256(c) => c.encrypt(nonce_ref, plaintext.as_bytes()),
        }
        .map_err(|_| DbError::Encryption("failed to encrypt configuration".into()))?;
        Ok((BASE64.encode(sealed), BASE64.encode(nonce)))
    }

    pub(super) fn decrypt(&self, ciphertext: &str, nonce: &str) -> DbResult<String> {
        let wrong_key = || {
            DbError::Encryption(
                "cannot decrypt stored configuration: the --encryption-key differs from the one it was written with"
                    .into(),
            )
        };
        let sealed = BASE64.decode(ciphertext).map_err(|_| wrong_key())?;
        let nonce = BASE64.decode(nonce).map_err(|_| wrong_key())?;
        if nonce.len() != 12 {
            return Err(wrong_key());
        }
        let nonce = Nonce::from_slice(&nonce);
        let plain = match self {
            Cipher::Aes128(c) => c.decrypt(nonce, sealed.as_slice()),
            Cipher::Aes256(c) => c.decrypt(nonce, sealed.as_slice()),
        }
        .map_err(|_| wrong_key())?;
        String::from_utf8(plain).map_err(|_| wrong_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_both_key_sizes() {
        for key in ["0123456789abcdef", "0123456789abcdef0123456789abcdef"] {
            let cipher = Cipher::new(&EncryptionKey::parse_flag(key).unwrap());
            let (sealed, nonce) = cipher.encrypt("{\"jobs\":[]}").unwrap();
            assert!(!sealed.contains("jobs"));
            assert_eq!(cipher.decrypt(&sealed, &nonce).unwrap(), "{\"jobs\":[]}");
        }
    }

    #[test]
    fn another_key_cannot_decrypt() {
        let a = Cipher::new(&EncryptionKey::parse_flag("0123456789abcdef").unwrap());
        let b = Cipher::new(&EncryptionKey::parse_flag("fedcba9876543210").unwrap());
        let (sealed, nonce) = a.encrypt("secret").unwrap();
        assert!(b.decrypt(&sealed, &nonce).is_err());
    }

    #[test]
    fn rejects_keys_of_other_lengths() {
        assert!(EncryptionKey::parse_flag("short").is_err());
        assert!(EncryptionKey::parse_flag(&"x".repeat(24)).is_err());
    }
}
