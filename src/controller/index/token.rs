//! Compact strings for the per-key-set and per-Secret records: uids, resourceVersions and
//! fingerprints.
//!
//! The index keeps a few of these per object and only ever compare them for equality, so they
//! are stored without a heap allocation where they can be: a lowercase UUID as its 16 bytes, up
//! to 22 bytes inline (every resourceVersion etcd hands out, every fingerprint), and only
//! anything longer as text on the heap. Each string has exactly one form, so equality of tokens
//! is equality of the strings, whatever shape a server uses.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(Repr);

const INLINE: usize = 22;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    /// A lowercase UUID (`8-4-4-4-12` hex digits), as uids are.
    Uuid([u8; 16]),
    /// Up to [`INLINE`] bytes (never a UUID: that takes 36).
    Short { len: u8, bytes: [u8; INLINE] },
    /// Anything longer that is not a UUID.
    Text(Box<str>),
}

const DASHES: [usize; 4] = [8, 13, 18, 23];

fn uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || DASHES.iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut digits = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !DASHES.contains(i))
        .map(|(_, &c)| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        });
    let mut out = [0u8; 16];
    for byte in &mut out {
        *byte = (digits.next()?? << 4) | digits.next()??;
    }
    Some(out)
}

impl Token {
    pub fn new(s: &str) -> Self {
        Token(if let Some(u) = uuid(s) {
            Repr::Uuid(u)
        } else if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Repr::Short {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Repr::Text(s.into())
        })
    }

    /// Whether this is the token of `s`, without building one.
    pub fn is(&self, s: &str) -> bool {
        match &self.0 {
            Repr::Uuid(u) => uuid(s).as_ref() == Some(u),
            Repr::Short { len, bytes } => &bytes[..*len as usize] == s.as_bytes(),
            // Equal text is never a UUID: `new` would have kept it as one.
            Repr::Text(t) => **t == *s,
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Uuid(u) => {
                for (i, byte) in u.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Repr::Short { len, bytes } => f.write_str(
                std::str::from_utf8(&bytes[..*len as usize]).expect("copied from a str"),
            ),
            Repr::Text(t) => f.write_str(t),
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_comes_back_exactly_and_compares_as_itself() {
        let samples = [
            "0",
            "7",
            "007",
            "",
            "1234567",
            "18446744073709551616",
            "sha256:0123abcd",
            "uid-a",
            "0b7e8a8e-6f7d-4a53-9d0e-6a1c3f2b9e11",
            "0B7E8A8E-6F7D-4A53-9D0E-6A1C3F2B9E11", // uppercase: not kept as a UUID
            "0b7e8a8e-6f7d-4a53-9d0e-6a1c3f2b9e1",
            "0b7e8a8e-6f7d-4a53-9d0e_6a1c3f2b9e11",
            "0b7e8a8e-6f7d-4a53-9d0e-6a1c3f2b9eé",
            "ééééééééééé",  // 22 bytes in UTF-8
            "éééééééééééx", // 23
            "a string well beyond twenty-two bytes",
        ];
        for a in samples {
            let t = Token::new(a);
            assert_eq!(t.to_string(), a, "{a:?} round trip");
            for b in samples {
                assert_eq!(t.is(b), a == b, "{a:?} vs {b:?}");
                assert_eq!(t == Token::new(b), a == b, "{a:?} vs {b:?}");
            }
        }
        let form = |s: &str| Token::new(s).0;
        assert!(matches!(form("1234567"), Repr::Short { .. }));
        assert!(matches!(form("sha256:0123abcd"), Repr::Short { .. }));
        assert_eq!("ééééééééééé".len(), INLINE);
        assert!(matches!(form("ééééééééééé"), Repr::Short { .. }));
        assert!(matches!(form("éééééééééééx"), Repr::Text(_)));
        assert!(matches!(
            form("0b7e8a8e-6f7d-4a53-9d0e-6a1c3f2b9e11"),
            Repr::Uuid(_)
        ));
        assert_eq!(std::mem::size_of::<Token>(), 24);
        assert_eq!(std::mem::size_of::<Option<Token>>(), 24);
    }
}
