//! Compact uids and resourceVersions for the per-key-set and per-Secret records.
//!
//! The caches keep one or two of these per object and only ever compare them for equality, so
//! they are stored without a heap allocation in the shapes the API server hands out (a decimal
//! resourceVersion, a lowercase UUID), and as text otherwise: both are opaque to clients, and
//! the text form keeps any other shape exact. Each string has exactly one form, so equality of
//! tokens is equality of the strings.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    /// A decimal number without leading zeros, as etcd-backed resourceVersions are.
    Number(u64),
    /// A lowercase UUID (`8-4-4-4-12` hex digits), as uids are.
    Uuid([u8; 16]),
    Text(Box<str>),
}

fn number(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
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
        Token(if let Some(n) = number(s) {
            Repr::Number(n)
        } else if let Some(u) = uuid(s) {
            Repr::Uuid(u)
        } else {
            Repr::Text(s.into())
        })
    }

    /// Whether this is the token of `s`, without building one.
    pub fn is(&self, s: &str) -> bool {
        match &self.0 {
            Repr::Number(n) => number(s) == Some(*n),
            Repr::Uuid(u) => uuid(s).as_ref() == Some(u),
            // Never a number or a UUID: `new` would not have kept it as text.
            Repr::Text(t) => **t == *s,
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Number(n) => write!(f, "{n}"),
            Repr::Uuid(u) => {
                for (i, byte) in u.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
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
            "1234567",
            "18446744073709551615",
            "18446744073709551616", // beyond u64
            "007",
            "",
            "-1",
            "12a",
            "0b7e8a8e-6f7d-4a53-9d0e-6a1c3f2b9e11",
            "0B7E8A8E-6F7D-4A53-9D0E-6A1C3F2B9E11", // uppercase: kept as text
            "0b7e8a8e-6f7d-4a53-9d0e-6a1c3f2b9e1",
            "0b7e8a8e-6f7d-4a53-9d0e_6a1c3f2b9e11",
            "0b7e8a8e-6f7d-4a53-9d0e-6a1c3f2b9eé",
            "uid-a",
        ];
        for a in samples {
            let t = Token::new(a);
            assert_eq!(t.to_string(), a, "{a:?} round trip");
            for b in samples {
                assert_eq!(t.is(b), a == b, "{a:?} vs {b:?}");
                assert_eq!(t == Token::new(b), a == b, "{a:?} vs {b:?}");
            }
        }
        assert!(matches!(Token::new("1234567").0, Repr::Number(_)));
        assert!(matches!(
            Token::new("0b7e8a8e-6f7d-4a53-9d0e-6a1c3f2b9e11").0,
            Repr::Uuid(_)
        ));
        assert_eq!(std::mem::size_of::<Token>(), 24);
        assert_eq!(std::mem::size_of::<Option<Token>>(), 24);
    }
}
