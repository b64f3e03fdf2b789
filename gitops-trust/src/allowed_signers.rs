//! Git's `gpg.ssh.allowedSignersFile` format (the `ALLOWED SIGNERS` section
//! of `ssh-keygen(1)`).
//!
//! One entry a line: `PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY [COMMENT]`.
//! Empty lines and lines starting with `#` are ignored. Principals are a
//! comma-separated list of patterns (`*` and `?` wildcards, `!` negation),
//! optionally in double quotes. Options are comma-separated, names in any
//! case, values in double quotes (`\"` inside them is a quote):
//! `namespaces="git,file"`, `valid-after="YYYYMMDD[HHMM[SS]][Z|UTC]"`,
//! `valid-before="..."` and `cert-authority`.
//!
//! # What is refused
//! The parser refuses, naming the line, what `ssh-keygen` refuses
//! (`sshsigopt_parse` and `parse_principals_key_and_options` in OpenSSH's
//! `sshsig.c`), so that a file means here what it means to git:
//! - an unknown option, an option value without its double quotes, an
//!   option list ending in a comma;
//! - `namespaces`, `valid-after` or `valid-before` given twice;
//! - a time that is not `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`
//!   (optionally followed by `Z` or `UTC`), or is not after the epoch;
//!   `valid-before` not after `valid-after`;
//! - a missing or invalid public key, unterminated quotes.
//!
//! And, stricter than `ssh-keygen`, lines that can never verify anything,
//! which are mistakes:
//! - a principal or `namespaces` pattern list without a positive pattern
//!   (`!*`, `!alice,!bob`, `""`): a negated pattern never matches by itself
//!   (`PATTERNS` in `ssh_config(5)`), so `ssh-keygen` accepts the line but
//!   never verifies with it;
//! - a calendar date that does not exist (`20250230`), which `ssh-keygen`
//!   silently moves to another day.
//!
//! Unlike `ssh-keygen`, which reads `valid-after`/`valid-before` in the
//! machine's local time zone unless they end in `Z` (or `UTC`), this parser
//! always reads them as UTC: the verdict must not depend on the machine it
//! runs on.
//!
//! # When a key is valid
//! By default ([`SshValidity::CommitTimeAndNow`]) a key's
//! `valid-after`/`valid-before` window must contain both the committer time
//! *and* the time of verification. The committer time is written by the
//! signer: git's rule ([`SshValidity::CommitTime`], committer time only)
//! lets anyone holding a key whose `valid-before` has passed (a leaked key,
//! a departed employee's key) keep signing commits backdated into the
//! window. This is the rule the OpenPGP path follows too (a key must be
//! unexpired now). Choose git's rule with
//! [`AllowedSigners::with_validity`].

use std::fmt;
use std::path::Path;

use ssh_key::PublicKey;
use ssh_key::public::KeyData;

use crate::error::{Error, ParseError};

/// One line of an allowed-signers file.
///
/// Entries are made by [`AllowedSigners::parse`] only, which refuses what
/// `ssh-keygen` refuses and lines that can never verify anything (see the
/// [module documentation](self#what-is-refused)): an entry means here what
/// the same line means to git.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

/// Against which times an entry's `valid-after`/`valid-before` window is
/// checked (see the [module documentation](self#when-a-key-is-valid)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SshValidity {
    /// The window must contain the committer time and the time of
    /// verification: a key past its `valid-before` verifies nothing, however
    /// the commit is dated.
    #[default]
    CommitTimeAndNow,
    /// git's rule (`ssh-keygen -Y verify` with the committer time as
    /// `verify-time`): the window must contain the committer time only,
    /// which the signer chooses.
    CommitTime,
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

    /// Why the entry does not allow a signature with committer time `time`
    /// verified at `now` under `rule`, with the time that was refused; `None`
    /// if it allows it.
    pub fn validity_refusal(
        &self,
        time: i64,
        now: i64,
        rule: SshValidity,
    ) -> Option<(i64, TimeRefusal)> {
        if let Some(r) = self.time_refusal(time) {
            return Some((time, r));
        }
        match rule {
            SshValidity::CommitTime => None,
            SshValidity::CommitTimeAndNow => self.time_refusal(now).map(|r| (now, r)),
        }
    }
}

/// Why an [`AllowedSigner`] entry refuses a signature time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    validity: SshValidity,
}

impl fmt::Debug for AllowedSigners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllowedSigners")
            .field("entries", &self.entries.len())
            .field("validity", &self.validity)
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
        Ok(Self {
            entries,
            validity: SshValidity::default(),
        })
    }

    /// Sets the rule for `valid-after`/`valid-before`
    /// ([`SshValidity::CommitTimeAndNow`] by default).
    pub fn with_validity(mut self, rule: SshValidity) -> Self {
        self.validity = rule;
        self
    }

    /// The rule for `valid-after`/`valid-before`.
    pub fn validity(&self) -> SshValidity {
        self.validity
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

/// Splits off the options field: up to the first blank outside double
/// quotes, a `\"` not closing a quote (`sshkey_advance_past_options`).
fn split_options(s: &str, line: usize) -> Result<(&str, &str), ParseError> {
    let s = s.trim_start();
    let bytes = s.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => quoted = !quoted,
            b' ' | b'\t' if !quoted => return Ok((&s[..i], &s[i..])),
            _ => {}
        }
        i += 1;
    }
    if quoted {
        return Err(err(line, "unterminated quote in options"));
    }
    Ok((s, ""))
}

/// The options of one line.
#[derive(Default)]
struct Options {
    namespaces: Option<String>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
    cert_authority: bool,
}

/// Whether `rest` starts with `name=` (any case); returns what follows `=`.
fn option_value<'a>(rest: &'a str, name: &str) -> Option<&'a str> {
    let head = rest.get(..name.len())?;
    let tail = &rest[name.len()..];
    (head.eq_ignore_ascii_case(name) && tail.starts_with('=')).then(|| &tail[1..])
}

/// A double-quoted option value (`opt_dequote`): `\"` is a quote; returns
/// the value and what follows the closing quote.
fn dequote<'a>(rest: &'a str, name: &str, line: usize) -> Result<(String, &'a str), ParseError> {
    let Some(inner) = rest.strip_prefix('"') else {
        return Err(err(
            line,
            format!("the value of `{name}` must be in double quotes"),
        ));
    };
    let mut value = String::new();
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &inner[i + 1..])),
            '\\' if inner[i + 1..].starts_with('"') => {
                value.push('"');
                chars.next();
            }
            c => value.push(c),
        }
    }
    Err(err(line, format!("missing end quote in `{name}`")))
}

/// Parses the options field as `sshsigopt_parse` does.
fn parse_options(mut rest: &str, line: usize) -> Result<Options, ParseError> {
    let mut out = Options::default();
    while !rest.is_empty() {
        let option = rest;
        if let Some(after) = option_value(rest, "namespaces") {
            if out.namespaces.is_some() {
                return Err(err(line, "`namespaces` given twice"));
            }
            let (value, after) = dequote(after, "namespaces", line)?;
            check_pattern_list(&value, "namespaces", line)?;
            out.namespaces = Some(value);
            rest = after;
        } else if let Some(after) = option_value(rest, "valid-after") {
            if out.valid_after.is_some() {
                return Err(err(line, "`valid-after` given twice"));
            }
            let (value, after) = dequote(after, "valid-after", line)?;
            out.valid_after = Some(parse_time(&value, line)?);
            rest = after;
        } else if let Some(after) = option_value(rest, "valid-before") {
            if out.valid_before.is_some() {
                return Err(err(line, "`valid-before` given twice"));
            }
            let (value, after) = dequote(after, "valid-before", line)?;
            out.valid_before = Some(parse_time(&value, line)?);
            rest = after;
        } else if rest
            .get(.."cert-authority".len())
            .is_some_and(|h| h.eq_ignore_ascii_case("cert-authority"))
        {
            out.cert_authority = true;
            rest = &rest["cert-authority".len()..];
        }
        // Next option, after a comma (ssh-keygen skips an empty one).
        match rest.strip_prefix(',') {
            Some("") => return Err(err(line, "the options end with a comma")),
            Some(next) => rest = next,
            None if rest.is_empty() => {}
            None => {
                let name = option.split(',').next().unwrap_or(option);
                return Err(err(line, format!("unknown option `{name}`")));
            }
        }
    }
    if let (Some(after), Some(before)) = (out.valid_after, out.valid_before)
        && before <= after
    {
        return Err(err(line, "`valid-before` is not after `valid-after`"));
    }
    Ok(out)
}

/// Refuses a pattern list without a positive pattern: it can never match
/// (`match_pattern_list` returns a match only for a positive pattern).
fn check_pattern_list(list: &str, what: &str, line: usize) -> Result<(), ParseError> {
    let positive = list
        .split(',')
        .any(|p| !p.trim().is_empty() && !p.trim().starts_with('!'));
    if positive {
        Ok(())
    } else {
        Err(err(
            line,
            format!(
                "{what} `{list}` has no positive pattern, so it never matches (a negated pattern never matches by itself)"
            ),
        ))
    }
}

fn looks_like_key_type(token: &str) -> bool {
    token.starts_with("ssh-") || token.starts_with("ecdsa-") || token.starts_with("sk-")
}

fn parse_line(text: &str, line: usize) -> Result<AllowedSigner, ParseError> {
    let (principals, rest) = split_token(text, line)?;
    if principals.is_empty() {
        return Err(err(line, "empty principals"));
    }
    check_pattern_list(&principals, "the principals", line)?;
    let rest = rest.trim_start();
    if rest.is_empty() {
        return Err(err(line, "missing public key"));
    }
    let first = rest.split_whitespace().next().unwrap_or_default();
    let (options, key_text) = if looks_like_key_type(first) {
        (Options::default(), rest)
    } else {
        let (options, after) = split_options(rest, line)?;
        (parse_options(options, line)?, after.trim_start())
    };
    if key_text.is_empty() {
        return Err(err(line, "missing public key"));
    }
    let key = PublicKey::from_openssh(key_text)
        .map_err(|e| err(line, format!("invalid public key: {e}")))?;
    Ok(AllowedSigner {
        line,
        principals,
        namespaces: options.namespaces,
        valid_after: options.valid_after,
        valid_before: options.valid_before,
        cert_authority: options.cert_authority,
        key,
    })
}

/// Parses `YYYYMMDD[HHMM[SS]]` with an optional trailing `Z` or `UTC` (any
/// case), as UTC (`parse_absolute_time` in OpenSSH's `misc.c`, which
/// `sshsigopt_parse` also requires to be after the epoch). A date that does
/// not exist is refused.
pub(crate) fn parse_time(value: &str, line: usize) -> Result<i64, ParseError> {
    let bad = |why: &str| {
        err(
            line,
            format!("invalid time `{value}` ({why}; expected YYYYMMDD[HHMM[SS]][Z])"),
        )
    };
    let len = value.len();
    let digits = if len > 1 && value[len - 1..].eq_ignore_ascii_case("z") {
        &value[..len - 1]
    } else if len > 3
        && value
            .get(len - 3..)
            .is_some_and(|t| t.eq_ignore_ascii_case("utc"))
    {
        &value[..len - 3]
    } else {
        value
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 8 | 12 | 14) {
        return Err(bad("not a time"));
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, ParseError> {
        digits
            .get(range)
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| bad("not a time"))
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
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad("no such date or time"));
    }
    let t = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    if t <= 0 {
        return Err(bad("not after 1970-01-01T00:00:00Z"));
    }
    Ok(t)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
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
        assert_eq!(parse_time("19700102", 1).unwrap(), 86_400);
        assert_eq!(parse_time("20000301", 1).unwrap(), 951_868_800);
        assert_eq!(parse_time("20000301UTC", 1).unwrap(), 951_868_800);
        assert_eq!(parse_time("20000229z", 1).unwrap(), 951_782_400);
        assert_eq!(parse_time("202401021530Z", 1).unwrap(), 1_704_209_400);
        assert_eq!(parse_time("20240102153005", 1).unwrap(), 1_704_209_405);
        assert!(parse_time("2024010", 1).is_err());
        assert!(parse_time("20241301", 1).is_err());
        // The epoch itself (ssh-keygen: a zero time is no time), dates that
        // do not exist, junk.
        for bad in [
            "19700101",
            "19690101",
            "20250230",
            "20230229",
            "20240431",
            "202401012460",
            "2024010112",
            "Z",
            "UTC",
            "2024-01-01",
            "20240101ZZ",
            "",
        ] {
            assert!(parse_time(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_lines() {
        let text = format!(
            "# comment\n\nalice@example.com {KEY}\n\"*@example.com,bob\" namespaces=\"git,file\",valid-after=\"20240101\",VALID-BEFORE=\"20250101Z\" {KEY}\nca@x cert-authority {KEY}\n"
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
    fn refuses_what_ssh_keygen_refuses() {
        let cases = [
            // A pattern list with no positive pattern never matches.
            (format!("!* {KEY}"), "no positive pattern"),
            (format!("\"!alice,!bob\" {KEY}"), "no positive pattern"),
            (format!("\"\" {KEY}"), "empty principals"),
            (
                format!("a namespaces=\"!git\" {KEY}"),
                "no positive pattern",
            ),
            (format!("a namespaces=\"\" {KEY}"), "no positive pattern"),
            // Repeated options.
            (
                format!("a valid-before=\"20250101\",valid-before=\"20990101\" {KEY}"),
                "`valid-before` given twice",
            ),
            (
                format!("a valid-after=\"20250101\",Valid-After=\"20240101\" {KEY}"),
                "`valid-after` given twice",
            ),
            (
                format!("a namespaces=\"git\",namespaces=\"file\" {KEY}"),
                "`namespaces` given twice",
            ),
            // Unknown options, unquoted values, a trailing comma.
            (format!("a frobnicate {KEY}"), "unknown option `frobnicate`"),
            (format!("a no-cert-authority {KEY}"), "unknown option"),
            (
                format!("a cert-authority=yes {KEY}"),
                "unknown option `cert-authority=yes`",
            ),
            (format!("a namespaces {KEY}"), "unknown option `namespaces`"),
            (format!("a valid-after=20250101 {KEY}"), "double quotes"),
            (format!("a namespaces=\"git {KEY}"), "unterminated quote"),
            (format!("a cert-authority, {KEY}"), "end with a comma"),
            // Bad or inconsistent times.
            (
                format!("a valid-after=\"2025\" {KEY}"),
                "invalid time `2025`",
            ),
            (format!("a valid-after=\"19700101\" {KEY}"), "invalid time"),
            (
                format!("a valid-after=\"20250101\",valid-before=\"20250101\" {KEY}"),
                "not after `valid-after`",
            ),
        ];
        for (text, expected) in cases {
            let text = format!("# header\n\n{text}\n");
            let e = AllowedSigners::parse(&text).unwrap_err();
            assert_eq!(e.line, 3, "{text}");
            assert!(e.message.contains(expected), "{text}: {e}");
        }
        // What ssh-keygen accepts: options in any case, an empty option
        // between commas, an escaped quote, a negation beside a positive
        // pattern, `UTC` times.
        let ok = format!(
            "\"*@example.com,!eve@example.com\" CERT-AUTHORITY,,namespaces=\"git,\\\"x\\\"\",valid-after=\"20240101UTC\" {KEY}\n"
        );
        let s = AllowedSigners::parse(&ok).unwrap();
        let e = &s.entries()[0];
        assert!(e.cert_authority);
        assert_eq!(e.namespaces.as_deref(), Some("git,\"x\""));
        assert_eq!(e.valid_after, Some(1_704_067_200));
        assert!(e.matches_principal("alice@example.com"));
        assert!(!e.matches_principal("eve@example.com"));
    }

    #[test]
    fn validity_at_commit_time_and_now() {
        let text = format!("a valid-after=\"20240101Z\",valid-before=\"20250101Z\" {KEY}\n");
        let s = AllowedSigners::parse(&text).unwrap();
        assert_eq!(s.validity(), SshValidity::CommitTimeAndNow);
        let e = &s.entries()[0];
        let (after, before) = (1_704_067_200, 1_735_689_600);
        let inside = after + 1000;
        // A commit dated inside the window, verified after it closed.
        let late = before + 1000;
        assert_eq!(
            e.validity_refusal(inside, late, SshValidity::CommitTimeAndNow),
            Some((
                late,
                TimeRefusal::Expired {
                    valid_before: before
                }
            ))
        );
        assert_eq!(
            e.validity_refusal(inside, late, SshValidity::CommitTime),
            None
        );
        // Verified before the window opened, commit dated inside it.
        let early = after - 1000;
        assert_eq!(
            e.validity_refusal(inside, early, SshValidity::CommitTimeAndNow),
            Some((early, TimeRefusal::NotYetValid { valid_after: after }))
        );
        // Both inside: allowed by both rules; a commit outside: refused by both.
        assert_eq!(
            e.validity_refusal(inside, inside + 1, SshValidity::CommitTimeAndNow),
            None
        );
        assert_eq!(
            e.validity_refusal(late, inside, SshValidity::CommitTime),
            Some((
                late,
                TimeRefusal::Expired {
                    valid_before: before
                }
            ))
        );
        let git = s.clone().with_validity(SshValidity::CommitTime);
        assert_eq!(git.validity(), SshValidity::CommitTime);
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
