//! Key generation and fingerprints. Pure apart from reading the OS CSPRNG.
//!
//! A [`KeyValue`] never prints itself: `Debug` shows only its fingerprint, it has no `Display`,
//! and its bytes are wiped when dropped. The only way out is [`KeyValue::expose`], used when
//! the Secret's data is built.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{TryRng, rngs::SysRng};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::KeyFormat;

/// A generated or stored key value.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue(Zeroizing<String>);

impl KeyValue {
    /// Wraps a value read back from the Secret.
    pub fn from_stored(value: String) -> Self {
        KeyValue(Zeroizing::new(value))
    }

    /// The key itself. Only the Secret's data may be built from this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(self.expose().as_bytes())
    }
}

impl std::fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyValue({})", self.fingerprint())
    }
}

/// The OS random source failed; carries no key material.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomSourceError(String);

/// Draws a new key from the operating system's CSPRNG.
pub fn generate(format: KeyFormat) -> Result<KeyValue, RandomSourceError> {
    match format {
        KeyFormat::Hex32 => {
            let bytes = random_bytes::<16>()?;
            Ok(KeyValue(Zeroizing::new(hex::encode(*bytes))))
        }
        KeyFormat::Base64Url256 => {
            let bytes = random_bytes::<32>()?;
            Ok(KeyValue(Zeroizing::new(URL_SAFE_NO_PAD.encode(*bytes))))
        }
    }
}

pub fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, RandomSourceError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    SysRng
        .try_fill_bytes(bytes.as_mut())
        .map_err(|e| RandomSourceError(e.to_string()))?;
    Ok(bytes)
}

/// `sha256:` + the first 8 hex characters of SHA-256 of the key: enough to tell keys apart in
/// status and Events, far too little to recover anything.
pub fn fingerprint(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    format!("sha256:{}", &hex::encode(digest)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn hex32_is_32_lowercase_hex_characters() {
        for _ in 0..100 {
            let k = generate(KeyFormat::Hex32).unwrap();
            assert_eq!(k.expose().len(), 32);
            assert!(
                k.expose()
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            );
        }
    }

    #[test]
    fn base64url256_is_43_unpadded_urlsafe_characters_of_32_bytes() {
        for _ in 0..100 {
            let k = generate(KeyFormat::Base64Url256).unwrap();
            assert_eq!(k.expose().len(), 43);
            assert!(
                k.expose()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            );
            assert_eq!(URL_SAFE_NO_PAD.decode(k.expose()).unwrap().len(), 32);
        }
    }

    #[test]
    fn keys_do_not_repeat_and_use_every_hex_digit() {
        let keys: Vec<KeyValue> = (0..2000)
            .map(|_| generate(KeyFormat::Hex32).unwrap())
            .collect();
        let distinct: HashSet<&str> = keys.iter().map(KeyValue::expose).collect();
        assert_eq!(distinct.len(), keys.len());
        // 64,000 hex digits from a uniform source: each of the 16 appears about 4,000 times.
        // A broken source (constant, biased, or only a few bits) lands far outside 3,500..4,500.
        let mut counts = [0usize; 16];
        for k in &keys {
            for c in k.expose().chars() {
                counts[c.to_digit(16).unwrap() as usize] += 1;
            }
        }
        for (digit, n) in counts.iter().enumerate() {
            assert!((3500..4500).contains(n), "digit {digit:x} seen {n} times");
        }
    }

    #[test]
    fn fingerprint_is_the_sha256_prefix() {
        // SHA-256("abc") = ba7816bf8f01cfea...
        assert_eq!(fingerprint(b"abc"), "sha256:ba7816bf");
        let k = KeyValue::from_stored("abc".into());
        assert_eq!(k.fingerprint(), "sha256:ba7816bf");
    }

    #[test]
    fn debug_never_shows_the_value() {
        let k = generate(KeyFormat::Hex32).unwrap();
        let shown = format!("{k:?} {:?}", Some(&k));
        assert!(!shown.contains(k.expose()), "{shown}");
        assert!(shown.contains(&k.fingerprint()));
    }
}
