//! Rules about text that admission (CEL) and the controller must apply identically: one
//! definition of whitespace, and the shape of names Kubernetes accepts in labels and annotations.

/// Every character Rust's `char::is_whitespace` accepts (Unicode `White_Space`), which is what
/// the controller checks. CEL's `\s` is ASCII-only, so the admission rule spells the same set out
/// as `whitespace_class!`; a unit test proves the two lists equal, an integration test proves
/// the API server refuses each.
pub const WHITESPACE: &[char] = &[
    '\t', '\n', '\u{0B}', '\u{0C}', '\r', ' ', '\u{85}', '\u{A0}', '\u{1680}', '\u{2000}',
    '\u{2001}', '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}',
    '\u{2009}', '\u{200A}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}',
];

/// [`WHITESPACE`] as an RE2 character class, for CEL rules (a macro so `concat!` can use it).
#[macro_export]
#[doc(hidden)]
macro_rules! whitespace_class {
    () => {
        r"[\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"
    };
}

/// C0 and C1 control characters (and DEL) as an RE2 class, for CEL rules: exactly the
/// characters Rust's `char::is_control` accepts, which is what the controller checks. Text from
/// users is data: a label holding `ESC ] 52` could otherwise rewrite an admin's clipboard when a
/// tool prints it.
#[macro_export]
#[doc(hidden)]
macro_rules! control_class {
    () => {
        r"[\x00-\x1f\x7f-\x{9f}]"
    };
}

/// True when `s` holds a C0 or C1 control character.
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Characters that change how a terminal shows the text around them without being control
/// characters: bidirectional overrides and isolates, zero-width marks, line and paragraph
/// separators, the byte order mark.
fn is_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `s` safe to print on a terminal: every control or format character written as a visible
/// `\u{..}` escape, everything else as it is.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || is_format(c)) {
        return s.into();
    }
    s.chars()
        .map(|c| match c.is_control() || is_format(c) {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect::<String>()
        .into()
}

/// Label and annotation key prefixes that make other controllers copy or expose a Secret
/// (replication and reflection tools). Refused in `spec.secret.labels` and `.annotations`: an
/// editor of key sets who may not read Secrets must not be able to have the key set's Secret
/// copied somewhere they can read it (docs/security.md). The chart can add more.
pub const DENIED_SECRET_METADATA_PREFIXES: &[&str] = &[
    "replicator.v1.mittwald.de/",
    "reflector.v1.k8s.emberstack.com/",
    "kubed.appscode.com/",
];

/// The CEL rule over a map's keys refusing [`DENIED_SECRET_METADATA_PREFIXES`].
pub fn denied_prefixes_rule() -> String {
    let refused: Vec<String> = DENIED_SECRET_METADATA_PREFIXES
        .iter()
        .map(|p| format!("!k.startsWith('{p}')"))
        .collect();
    format!("self.all(k, {})", refused.join(" && "))
}

/// The first key in `keys` under a denied prefix, built-in or `extra`, with that prefix.
pub fn denied_key<'a>(
    keys: impl IntoIterator<Item = &'a String>,
    extra: &'a [String],
) -> Option<(&'a str, &'a str)> {
    let prefixes = DENIED_SECRET_METADATA_PREFIXES
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str));
    let prefixes: Vec<&str> = prefixes.collect();
    keys.into_iter().find_map(|k| {
        prefixes
            .iter()
            .find(|p| k.starts_with(**p))
            .map(|p| (k.as_str(), *p))
    })
}

/// Longest label value Kubernetes accepts; the key set's name becomes one on its Secret.
pub const MAX_LABEL_VALUE: usize = 63;

/// RE2 patterns for CEL rules, the same checks as [`is_qualified_name`] and [`is_label_value`]
/// (macros so `concat!` can build rule text from them).
#[macro_export]
#[doc(hidden)]
macro_rules! qualified_name_pattern {
    () => {
        r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
    };
}
#[macro_export]
#[doc(hidden)]
macro_rules! label_value_pattern {
    () => {
        r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
    };
}

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.len() <= MAX_LABEL_VALUE
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            b.first().is_some_and(edge)
                && b.last().is_some_and(edge)
                && b.iter().all(|c| edge(c) || *c == b'-')
        })
}

/// A label or annotation key: an optional DNS subdomain prefix and `/`, then a name of up to 63
/// characters (what the API server accepts).
pub fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_name_part(name),
        None => is_name_part(key),
    }
}

/// A label value: empty, or a name of up to 63 characters.
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_name_part(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_and_values_follow_kubernetes() {
        for ok in ["team", "example.com/team", "a", "A_b.c-d", &"x".repeat(63)] {
            assert!(is_qualified_name(ok), "{ok}");
        }
        for bad in [
            "",
            "bad key!",
            "/x",
            "x/",
            "-x",
            "x-",
            "Example.com/x",
            &"x".repeat(64),
            "a/b/c",
        ] {
            assert!(!is_qualified_name(bad), "{bad}");
        }
        assert!(is_label_value("") && is_label_value("v1.2_3"));
        assert!(
            !is_label_value("-x") && !is_label_value(&"x".repeat(64)) && !is_label_value("a b")
        );
    }

    #[test]
    fn the_cel_control_class_is_exactly_what_the_controller_refuses() {
        assert_eq!(control_class!(), r"[\x00-\x1f\x7f-\x{9f}]");
        let controls: Vec<u32> = (0..=char::MAX as u32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_control())
            .map(|c| c as u32)
            .collect();
        let listed: Vec<u32> = (0x00..=0x1f).chain(0x7f..=0x9f).collect();
        assert_eq!(controls, listed);
    }

    #[test]
    fn the_denied_prefixes_rule_and_messages_name_each_prefix() {
        let rule = denied_prefixes_rule();
        for prefix in DENIED_SECRET_METADATA_PREFIXES {
            assert!(
                rule.contains(&format!("!k.startsWith('{prefix}')")),
                "{rule}"
            );
        }
        let crd = crate::crd_yaml();
        for prefix in DENIED_SECRET_METADATA_PREFIXES {
            assert_eq!(
                crd.matches(&format!("keys under {prefix}")).count()
                    + crd.matches(&format!(", {prefix}")).count()
                    + crd.matches(&format!(" or {prefix}")).count(),
                2,
                "both messages name {prefix}"
            );
        }
    }

    #[test]
    fn printable_text_cannot_drive_a_terminal() {
        assert_eq!(printable("GitHub pipeline ✓"), "GitHub pipeline ✓");
        let osc52 = "x\u{1b}]52;c;aGk=\u{7}y";
        assert_eq!(printable(osc52), r"x\u{1b}]52;c;aGk=\u{7}y");
        assert_eq!(printable("a\u{9b}2Jb"), r"a\u{9b}2Jb", "C1 CSI");
        assert_eq!(
            printable("evil\u{202e}txt"),
            r"evil\u{202e}txt",
            "bidi override"
        );
        assert_eq!(printable("two\nlines\r"), r"two\u{a}lines\u{d}");
        assert!(has_control("a\u{85}") && !has_control("a\u{202e}"));
    }

    #[test]
    fn the_whitespace_table_is_exactly_what_the_controller_trims() {
        let all: Vec<char> = (0..=char::MAX as u32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        assert_eq!(all, WHITESPACE);
    }

    #[test]
    fn the_cel_class_lists_the_same_characters() {
        // Expand the class by hand: single escapes and one range.
        let class = whitespace_class!();
        let inner = &class[1..class.len() - 1];
        let mut chars = vec!['\t', '\n', '\u{0C}', '\r', ' '];
        let mut rest = inner
            .replace(r"\t", "")
            .replace(r"\n", "")
            .replace(r"\f", "")
            .replace(r"\r", "")
            .replace(' ', "");
        let range = r"\x{2000}-\x{200A}";
        assert!(rest.contains(range));
        chars.extend((0x2000..=0x200A).filter_map(char::from_u32));
        rest = rest.replace(range, "");
        for hex in rest.split(r"\x{").filter(|s| !s.is_empty()) {
            let hex = hex.strip_suffix('}').expect("closed escape");
            chars.push(char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap());
        }
        chars.sort();
        assert_eq!(chars, WHITESPACE);
    }
}
