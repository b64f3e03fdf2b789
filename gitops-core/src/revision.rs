//! [`Revision`]: one immutable commit of the environment repository.

use serde::{Deserialize, Serialize};

/// A person and time, as Git records an author or committer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The first line of the message.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }

    /// The first 12 characters of the id.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}
