//! Git's `gpg.ssh.allowedSignersFile` format (the `ALLOWED SIGNERS` section
//! of `ssh-keygen(1)`).
//!
//! One entry a line: `PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY [COMMENT]`.
//! Empty lines and lines starting with `#` are ignored. Principals are a
//! comma-separated list of patterns (`*` and `?` wildcards, `!` negation),
//! optionally in double quotes. Options are comma-separated:
//! `namespaces="git,file"`, `valid-after="YYYYMMDD[HHMM[SS]][Z]"`,
//! `valid-before=...` and `cert-authority`.
//!
//! Unlike `ssh-keygen`, which reads `valid-after`/`valid-before` in the
//! machine's local time zone unless they end in `Z`, this parser always reads
//! them as UTC: the verdict must not depend on the machine it runs on.

use std::fmt;
use std::path::Path;

use ssh_key::PublicKey;
use ssh_key::public::KeyData;

use crate::error::{Error, ParseError};

/// One line of an allowed-signers file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedSigner {
    /// The 1-based line it was read from.
    pub line: usize,
    /// The principal patterns, as written (comma-separated).
    pub principals: String,
    /// `namespaces="..."`: the namespace patterns the key may sign in
    /// (`None`: any namespace).
    pub namespaces: Option<String>,
    /// `valid-after`, in seconds since the Unix epoch (UTC).
    pub valid_after: Option<i64>,
    /// `valid-before`, in seconds since the Unix epoch (UTC).
    pub valid_before: Option<i64>,
    /// `cert-authority`: the key is a certificate authority. Such entries are
    /// kept but never match (SSH certificates are not supported).
    pub cert_authority: bool,
    /// The public key.
    pub key: PublicKey,
}

impl AllowedSigner {
    /// Whether `identity` matches this entry's principal patterns.
    pub fn matches_principal(&self, identity: &str) -> bool {
        match_pattern_list(identity, &self.principals)
    }

    /// Whether the entry allows signatures in `namespace`.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespaces
            .as_deref()
            .is_none_or(|list| match_pattern_list(namespace, list))
    }

    /// Why the entry does not allow a signature made at `time` (seconds
    /// since the epoch), or `None` if it does.
    pub fn time_refusal(&self, time: i64) -> Option<TimeRefusal> {
        if let Some(after) = self.valid_after
            && time < after
        {
            return Some(TimeRefusal::NotYetValid { valid_after: after });
        }
        if let Some(before) = self.valid_before
            && time > before
        {
            return Some(TimeRefusal::Expired {
                valid_before: before,
            });
        }
        None
    }
}

/// Why an [`AllowedSigner`] entry refuses a signature time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeRefusal {
    /// Before `valid-after`.
    NotYetValid {
        /// The entry's `valid-after` (seconds since the epoch).
        valid_after: i64,
    },
    /// After `valid-before`.
    Expired {
        /// The entry's `valid-before` (seconds since the epoch).
        valid_before: i64,
    },
}

/// A parsed allowed-signers file.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AllowedSigners {
    entries: Vec<AllowedSigner>,
}

impl fmt::Debug for AllowedSigners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllowedSigners")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl AllowedSigners {
    /// Parses the text of an allowed-signers file. The first bad line is an
    /// error naming it.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            entries.push(parse_line(trimmed, line)?);
        }
        Ok(Self { entries })
    }

    /// Reads and parses an allowed-signers file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|source| Error::AllowedSigners {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[AllowedSigner] {
        &self.entries
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries (not `cert-authority`) whose key is `key`.
    pub fn entries_for_key<'a>(
        &'a self,
        key: &'a KeyData,
    ) -> impl Iterator<Item = &'a AllowedSigner> + 'a {
        self.entries
            .iter()
            .filter(move |e| !e.cert_authority && e.key.key_data() == key)
    }

    /// Whether any `cert-authority` entry is present.
    pub fn has_cert_authorities(&self) -> bool {
        self.entries.iter().any(|e| e.cert_authority)
    }
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Splits off the first token: a double-quoted string or a run of
/// non-whitespace; returns (token, rest).
fn split_token(s: &str, line: usize) -> Result<(String, &str), ParseError> {
    let s = s.trim_start();
    if let Some(inner) = s.strip_prefix('"') {
        let end = inner
            .find('"')
            .ok_or_else(|| err(line, "unterminated quoted principals"))?;
        let token = &inner[..end];
        let rest = &inner[end + 1..];
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            return Err(err(line, "garbage after quoted principals"));
        }
        Ok((token.to_owned(), rest))
    } else {
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        Ok((s[..end].to_owned(), &s[end..]))
    }
}

/// Splits off the options field: up to the first whitespace outside double
/// quotes.
fn split_options(s: &str, line: usize) -> Result<(&str, &str), ParseError> {
    let s = s.trim_start();
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Ok((&s[..i], &s[i..])),
            _ => {}
        }
    }
    if quoted {
        return Err(err(line, "unterminated quote in options"));
    }
    Ok((s, ""))
}

/// Splits the options on commas outside double quotes.
fn split_option_list(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn dequote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

fn looks_like_key_type(token: &str) -> bool {
    token.starts_with("ssh-") || token.starts_with("ecdsa-") || token.starts_with("sk-")
}

fn parse_line(text: &str, line: usize) -> Result<AllowedSigner, ParseError> {
    let (principals, rest) = split_token(text, line)?;
    if principals.is_empty() {
        return Err(err(line, "empty principals"));
    }
    let rest = rest.trim_start();
    if rest.is_empty() {
        return Err(err(line, "missing public key"));
    }
    let mut namespaces = None;
    let mut valid_after = None;
    let mut valid_before = None;
    let mut cert_authority = false;
    let first = rest.split_whitespace().next().unwrap_or_default();
    let key_text = if looks_like_key_type(first) {
        rest
    } else {
        let (options, after) = split_options(rest, line)?;
        for option in split_option_list(options) {
            let (name, value) = match option.split_once('=') {
                Some((n, v)) => (n, Some(dequote(v))),
                None => (option, None),
            };
            match (name.to_ascii_lowercase().as_str(), value) {
                ("cert-authority", None) => cert_authority = true,
                ("namespaces", Some(v)) => namespaces = Some(v.to_owned()),
                ("valid-after", Some(v)) => valid_after = Some(parse_time(v, line)?),
                ("valid-before", Some(v)) => valid_before = Some(parse_time(v, line)?),
                _ => return Err(err(line, format!("unsupported option `{option}`"))),
            }
        }
        after.trim_start()
    };
    if key_text.is_empty() {
        return Err(err(line, "missing public key"));
    }
    let key = PublicKey::from_openssh(key_text)
        .map_err(|e| err(line, format!("invalid public key: {e}")))?;
    Ok(AllowedSigner {
        line,
        principals,
        namespaces,
        valid_after,
        valid_before,
        cert_authority,
        key,
    })
}

/// Parses `YYYYMMDD[HHMM[SS]]` with an optional trailing `Z`, as UTC.
pub(crate) fn parse_time(value: &str, line: usize) -> Result<i64, ParseError> {
    let digits = value.strip_suffix(['Z', 'z']).unwrap_or(value);
    let bad = || {
        err(
            line,
            format!("invalid time `{value}` (expected YYYYMMDD[HHMM[SS]][Z])"),
        )
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 8 | 12 | 14) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, ParseError> {
        digits
            .get(range)
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(bad)
    };
    let year = num(0..4)?;
    let month = num(4..6)?;
    let day = num(6..8)?;
    let (hour, minute) = if digits.len() >= 12 {
        (num(8..10)?, num(10..12)?)
    } else {
        (0, 0)
    };
    let second = if digits.len() == 14 { num(12..14)? } else { 0 };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// OpenSSH's `match_pattern_list`: a comma-separated list of patterns, each
/// possibly negated with `!`; a negated match wins over any positive one.
pub(crate) fn match_pattern_list(s: &str, list: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        let pattern = pattern.trim();
        if let Some(negated) = pattern.strip_prefix('!') {
            if match_pattern(s.as_bytes(), negated.as_bytes()) {
                return false;
            }
        } else if match_pattern(s.as_bytes(), pattern.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// Glob match with `*` (any run) and `?` (any one byte).
fn match_pattern(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                si += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFNwgwun6nqSpIDKGEc9867E4+DRowi9QWIE3pHxiE2m alice";

    #[test]
    fn patterns() {
        assert!(match_pattern_list("alice@example.com", "*@example.com"));
        assert!(match_pattern_list(
            "alice@example.com",
            "bob@x,alice@example.co?"
        ));
        assert!(!match_pattern_list(
            "alice@example.com",
            "*@example.com,!alice@*"
        ));
        assert!(!match_pattern_list("alice@example.org", "*@example.com"));
        assert!(match_pattern_list("git", "git,file"));
        assert!(!match_pattern_list("git", "file"));
        assert!(match_pattern_list("", "*"));
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("19700101", 1).unwrap(), 0);
        assert_eq!(parse_time("20000301", 1).unwrap(), 951_868_800);
        assert_eq!(parse_time("202401021530Z", 1).unwrap(), 1_704_209_400);
        assert_eq!(parse_time("20240102153005", 1).unwrap(), 1_704_209_405);
        assert!(parse_time("2024010", 1).is_err());
        assert!(parse_time("20241301", 1).is_err());
    }

    #[test]
    fn parses_lines() {
        let text = format!(
            "# comment\n\nalice@example.com {KEY}\n\"*@example.com,bob\" namespaces=\"git,file\",valid-after=\"20240101\",valid-before=20250101Z {KEY}\nca@x cert-authority {KEY}\n"
        );
        let s = AllowedSigners::parse(&text).unwrap();
        assert_eq!(s.entries().len(), 3);
        let e = &s.entries()[1];
        assert_eq!(e.line, 4);
        assert_eq!(e.principals, "*@example.com,bob");
        assert_eq!(e.namespaces.as_deref(), Some("git,file"));
        assert_eq!(e.valid_after, Some(1_704_067_200));
        assert!(e.valid_before.is_some());
        assert!(s.entries()[2].cert_authority);
        assert_eq!(s.entries_for_key(s.entries()[0].key.key_data()).count(), 2);
    }

    #[test]
    fn reports_bad_line() {
        let text = format!("alice {KEY}\nbob frobnicate {KEY}\n");
        let e = AllowedSigners::parse(&text).unwrap_err();
        assert_eq!(e.line, 2);
        let e = AllowedSigners::parse("alice ssh-ed25519 AAAAnotbase64").unwrap_err();
        assert_eq!(e.line, 1);
        let e = AllowedSigners::parse("alice\n").unwrap_err();
        assert_eq!(e.line, 1);
    }
}
