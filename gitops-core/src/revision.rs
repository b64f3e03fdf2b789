//! [`Revision`]: one immutable commit of the environment repository.

use serde::{Deserialize, Serialize};

/// A person and time, as Git records an author or committer.
///
/// ```
/// use gitops_core::Person;
/// let ada = Person::new("Ada Lovelace", "ada@example.com", 1_700_000_000).with_offset(3600);
/// assert_eq!(ada.time_rfc3339(), "2023-11-14T22:13:20Z");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Person {
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// Time-zone offset from UTC in seconds, as recorded.
    #[serde(default)]
    pub offset_seconds: i32,
}

impl Person {
    /// `name <email>` at `time` (seconds since the Unix epoch, UTC offset 0).
    pub fn new(name: impl Into<String>, email: impl Into<String>, time: i64) -> Self {
        Self {
            name: name.into(),
            email: email.into(),
            time,
            offset_seconds: 0,
        }
    }

    /// With the time-zone offset recorded with the time.
    pub fn with_offset(mut self, offset_seconds: i32) -> Self {
        self.offset_seconds = offset_seconds;
        self
    }

    /// With another time.
    pub fn with_time(mut self, time: i64) -> Self {
        self.time = time;
        self
    }

    /// [`Person::time`] as RFC 3339 in UTC (`2026-01-01T00:00:00Z`).
    pub fn time_rfc3339(&self) -> String {
        crate::time::rfc3339(self.time)
    }
}

/// How a signature was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SignatureMethod {
    /// An SSH signature (`gpg.format=ssh`, SSHSIG).
    Ssh,
    /// An OpenPGP signature.
    OpenPgp,
    /// An X.509 (S/MIME) signature.
    X509,
}

/// What signature verification found for a revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SignatureVerdict {
    /// Verification was not asked for.
    #[default]
    NotChecked,
    /// The commit carries no signature.
    Unsigned,
    /// Signed by a trusted key.
    Trusted {
        /// Who signed (principal or user id).
        signer: String,
        /// Key fingerprint.
        fingerprint: String,
        /// How it was signed.
        method: SignatureMethod,
    },
    /// Signed, but the signature is not acceptable.
    Untrusted {
        /// Why not.
        reason: String,
    },
}

impl SignatureVerdict {
    /// Whether the verdict is [`SignatureVerdict::Trusted`].
    pub fn is_trusted(&self) -> bool {
        matches!(self, Self::Trusted { .. })
    }
}

/// One commit of the environment repository: everything a deployment is
/// determined by, and what the audit trail records about it.
///
/// Sources build it; a test or another [`Source`](crate::Source) uses the
/// constructor and setters:
///
/// ```
/// use gitops_core::{Person, Revision};
/// let ada = Person::new("Ada", "ada@example.com", 1_700_000_000);
/// let rev = Revision::new("0123456789abcdef0123")
///     .with_author(ada.clone())
///     .with_committer(ada)
///     .with_message("prod: one-click checkout\n\nWhy: conversion.");
/// assert_eq!((rev.short_id(), rev.summary()), ("0123456789ab", "prod: one-click checkout"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Revision {
    /// Commit id (hex).
    pub id: String,
    /// Root tree id (hex).
    pub tree: String,
    /// The reference it was resolved from (`refs/heads/prod`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Author.
    pub author: Person,
    /// Committer.
    pub committer: Person,
    /// Full commit message.
    pub message: String,
    /// Parent commit ids.
    #[serde(default)]
    pub parents: Vec<String>,
    /// The signature verdict, filled by a verifier.
    #[serde(default)]
    pub signature: SignatureVerdict,
}

impl Revision {
    /// The commit `id`; everything else empty until set.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// With the root tree id.
    pub fn with_tree(mut self, tree: impl Into<String>) -> Self {
        self.tree = tree.into();
        self
    }

    /// With the reference it was resolved from.
    pub fn with_reference(mut self, reference: Option<String>) -> Self {
        self.reference = reference;
        self
    }

    /// With the author.
    pub fn with_author(mut self, author: Person) -> Self {
        self.author = author;
        self
    }

    /// With the committer.
    pub fn with_committer(mut self, committer: Person) -> Self {
        self.committer = committer;
        self
    }

    /// With the full commit message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// With the parent commit ids.
    pub fn with_parents(mut self, parents: Vec<String>) -> Self {
        self.parents = parents;
        self
    }

    /// With a signature verdict.
    pub fn with_signature(mut self, signature: SignatureVerdict) -> Self {
        self.signature = signature;
        self
    }

    /// The first line of the message.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }

    /// The first 12 characters of the id.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}
