//! What verification found: per commit ([`Verdict`]) and per range
//! ([`RangeVerdict`]).

use gitops_core::escape::escaped;
use gitops_core::{SignatureMethod, SignatureVerdict};

use crate::Mode;

/// Who signed a commit with which key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Signer {
    /// Who: the principal(s) of the allowed-signers entry (the committer's
    /// e-mail when it matches a wildcard principal), or the OpenPGP user id.
    pub identity: String,
    /// The trusted key's fingerprint: `SHA256:...` for SSH, upper-case hex
    /// of the primary key for OpenPGP.
    pub fingerprint: String,
    /// For OpenPGP signatures made by a subkey: that subkey's fingerprint.
    pub subkey: Option<String>,
    /// How it was signed.
    pub method: SignatureMethod,
}

impl Signer {
    /// `identity` signed with the key of fingerprint `fingerprint` by
    /// `method` (a primary key: no subkey).
    ///
    /// ```
    /// use gitops_trust::{SignatureMethod, Signer, Verdict};
    ///
    /// // A verdict as a test of code that reads verdicts would build it.
    /// let signer = Signer::new("alice@example.com", "0123ABCD", SignatureMethod::OpenPgp)
    ///     .subkey("4567EF01");
    /// assert_eq!(signer.subkey.as_deref(), Some("4567EF01"));
    /// assert!(Verdict::Trusted(signer).is_trusted());
    /// ```
    pub fn new(
        identity: impl Into<String>,
        fingerprint: impl Into<String>,
        method: SignatureMethod,
    ) -> Self {
        Self {
            identity: identity.into(),
            fingerprint: fingerprint.into(),
            subkey: None,
            method,
        }
    }

    /// The OpenPGP subkey (its fingerprint) that made the signature.
    pub fn subkey(mut self, fingerprint: impl Into<String>) -> Self {
        self.subkey = Some(fingerprint.into());
        self
    }
}

/// Why a signed commit is not trusted. Its `Display`
/// [escapes](gitops_core::escape) what comes from the commit or the keys.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The signature is not in a format this crate reads (X.509, or an
    /// unknown armor).
    #[error("unsupported signature format: {}", escaped(.0))]
    UnsupportedFormat(String),
    /// The signature could not be decoded.
    #[error("malformed {method:?} signature: {}", escaped(.detail))]
    Malformed {
        /// The format.
        method: SignatureMethod,
        /// The decoder's complaint.
        detail: String,
    },
    /// No trusted keys are configured for this kind of signature.
    #[error("no trusted {0:?} keys are configured")]
    NoTrustedKeys(SignatureMethod),
    /// The key that made the signature is not trusted.
    #[error("signed by an untrusted {method:?} key {}{}", escaped(.key), escaped(.note))]
    UnknownKey {
        /// The format.
        method: SignatureMethod,
        /// The key's fingerprint or key id.
        key: String,
        /// Extra explanation (may be empty).
        note: String,
    },
    /// The signature does not match the commit (tampered, or corrupt).
    #[error("bad {method:?} signature by {}: {}", escaped(.key), escaped(.detail))]
    BadSignature {
        /// The format.
        method: SignatureMethod,
        /// The key it claims.
        key: String,
        /// The verifier's complaint.
        detail: String,
    },
    /// The SSH signature is not in the `git` namespace, or the key may not
    /// sign in it.
    #[error("SSH key {key} may not sign in namespace `{}`{}", escaped(.namespace), escaped(&allowed.as_ref().map(|a| format!(" (allowed: {a})")).unwrap_or_default()))]
    WrongNamespace {
        /// The key's fingerprint.
        key: String,
        /// The namespace of the signature.
        namespace: String,
        /// The allowed namespaces of the entry, if that is what refused.
        allowed: Option<String>,
    },
    /// The key was not yet valid at the time checked: the commit's time,
    /// or (SSH, [`SshValidity::CommitTimeAndNow`](crate::SshValidity)) now.
    #[error("key {key} is not yet valid at {time} (valid from {valid_from})")]
    NotYetValid {
        /// The key's fingerprint.
        key: String,
        /// The time checked (seconds since the epoch).
        time: i64,
        /// When the key becomes valid (seconds since the epoch).
        valid_from: i64,
    },
    /// The key had expired at the time checked: the signature's creation
    /// (or committer) time, or now (OpenPGP, as gpg judges it for git; SSH
    /// with [`SshValidity::CommitTimeAndNow`](crate::SshValidity), the
    /// default).
    #[error("key {key} had expired at {time} (valid until {valid_until})")]
    Expired {
        /// The key's fingerprint.
        key: String,
        /// The time checked (seconds since the epoch).
        time: i64,
        /// When the key stopped being valid (seconds since the epoch).
        valid_until: i64,
    },
    /// The key is revoked.
    #[error("key {key} is revoked{}", escaped(&reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()))]
    Revoked {
        /// The key's fingerprint.
        key: String,
        /// The revocation reason, if given.
        reason: Option<String>,
    },
    /// The key may not make signatures (a subkey without the signing flag
    /// or without a valid binding).
    #[error("key {key} may not sign: {}", escaped(.detail))]
    NotSigningKey {
        /// The key's fingerprint.
        key: String,
        /// Why not.
        detail: String,
    },
}

/// The verdict on one commit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Signed by a trusted key.
    Trusted(Signer),
    /// The commit carries no signature.
    Unsigned,
    /// Signed, but not acceptably.
    Untrusted(Refusal),
}

impl Verdict {
    /// Whether the verdict is [`Verdict::Trusted`].
    pub fn is_trusted(&self) -> bool {
        matches!(self, Self::Trusted(_))
    }
}

/// One commit and its verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitVerdict {
    /// The commit id (hex).
    pub commit: String,
    /// The first line of its message.
    pub summary: String,
    /// The committer time (seconds since the epoch) the key validity was
    /// checked against.
    pub time: i64,
    /// The verdict.
    pub verdict: Verdict,
}

impl CommitVerdict {
    /// The first 12 characters of the commit id.
    pub fn short_id(&self) -> &str {
        self.commit.get(..12).unwrap_or(&self.commit)
    }

    fn describe(&self) -> String {
        format!("commit {} ({:?})", self.short_id(), self.summary)
    }
}

/// The verdict on a range of commits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RangeVerdict {
    /// The mode the range was checked in.
    pub mode: Mode,
    /// The tip commit id.
    pub tip: String,
    /// The last applied commit id the range starts after, if any.
    pub last_applied: Option<String>,
    /// Only the tip was checked, although the mode asks for every commit,
    /// because there was no last applied revision to start from.
    pub tip_only: bool,
    /// A walk stopped at the shallow boundary of a shallow repository
    /// (commits whose parents were not fetched). When only the last applied
    /// commit's history was cut, every commit of the range was still
    /// checked; when the range itself reached the boundary, see
    /// [`RangeVerdict::unchecked_beyond`].
    pub cut_by_shallow: bool,
    /// Commits of the range at the shallow boundary whose parents (which may
    /// belong to the range) could not be checked. The range is not trusted
    /// when this is not empty: fetch more history (a deeper mirror).
    pub unchecked_beyond: Vec<String>,
    /// Every commit checked with its verdict, the tip first (newest first,
    /// parents after children). Empty when the mode is [`Mode::Off`].
    pub commits: Vec<CommitVerdict>,
}

impl RangeVerdict {
    /// Whether every commit checked is trusted (and at least one was).
    /// [`Mode::Off`] is never trusted: nothing was checked.
    pub fn is_trusted(&self) -> bool {
        !self.commits.is_empty()
            && self.unchecked_beyond.is_empty()
            && self.commits.iter().all(|c| c.verdict.is_trusted())
    }

    /// The verdict on the tip, if checked.
    pub fn tip_verdict(&self) -> Option<&CommitVerdict> {
        self.commits.iter().find(|c| c.commit == self.tip)
    }

    /// The first commit (tip first) that is not trusted.
    pub fn first_refused(&self) -> Option<&CommitVerdict> {
        self.commits.iter().find(|c| !c.verdict.is_trusted())
    }

    /// A one-line explanation of the verdict.
    pub fn explain(&self) -> String {
        let scope = match (self.mode, self.tip_only) {
            (Mode::Off, _) => return "signature verification is off".to_owned(),
            (Mode::Tip, _) => "the tip commit".to_owned(),
            (Mode::EveryCommit, true) => {
                "the tip commit only (no last applied revision to start the range from)".to_owned()
            }
            (Mode::EveryCommit, false) if self.cut_by_shallow => format!(
                "{} commit(s) since the last applied one (history cut by the shallow boundary)",
                self.commits.len()
            ),
            (Mode::EveryCommit, false) => format!(
                "{} commit(s) since the last applied one",
                self.commits.len()
            ),
        };
        match self.first_refused() {
            Some(c) => format!("not trusted: {}; checked {scope}", refusal_text(c)),
            None if !self.unchecked_beyond.is_empty() => {
                format!("not trusted: {}; checked {scope}", self.shallow_text())
            }
            None => format!("trusted: {scope} verified"),
        }
    }

    /// The verdict for `gitops-core`: the tip's signer when every commit is
    /// trusted; [`SignatureVerdict::Unsigned`] when the tip is unsigned;
    /// otherwise [`SignatureVerdict::Untrusted`] naming the offending commit.
    pub fn to_signature_verdict(&self) -> SignatureVerdict {
        if self.mode == Mode::Off {
            return SignatureVerdict::NotChecked;
        }
        if let Some(refused) = self.first_refused() {
            if refused.commit == self.tip && refused.verdict == Verdict::Unsigned {
                return SignatureVerdict::Unsigned;
            }
            return SignatureVerdict::Untrusted {
                reason: refusal_text(refused),
            };
        }
        if !self.unchecked_beyond.is_empty() {
            return SignatureVerdict::Untrusted {
                reason: self.shallow_text(),
            };
        }
        match self.tip_verdict().map(|c| &c.verdict) {
            Some(Verdict::Trusted(s)) => SignatureVerdict::Trusted {
                signer: s.identity.clone(),
                fingerprint: s.fingerprint.clone(),
                method: s.method,
            },
            _ => SignatureVerdict::Untrusted {
                reason: format!("commit {} was not verified", self.tip),
            },
        }
    }
}

impl RangeVerdict {
    fn shallow_text(&self) -> String {
        let ids: Vec<&str> = self
            .unchecked_beyond
            .iter()
            .map(|c| c.get(..12).unwrap_or(c))
            .collect();
        format!(
            "the range reaches the shallow boundary at commit(s) {} before the last applied \
             commit's history: their parents were not fetched and are unchecked",
            ids.join(", ")
        )
    }
}

fn refusal_text(c: &CommitVerdict) -> String {
    match &c.verdict {
        Verdict::Unsigned => format!("{} is unsigned", c.describe()),
        Verdict::Untrusted(r) => format!("{}: {r}", c.describe()),
        Verdict::Trusted(_) => format!("{} is trusted", c.describe()),
    }
}
