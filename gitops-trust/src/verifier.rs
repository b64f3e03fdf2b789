//! [`Verifier`]: reads commits with gix and judges their signatures.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use gitops_core::{Revision, RevisionVerifier, SignatureVerdict};
use gix::ObjectId;

use crate::allowed_signers::AllowedSigners;
use crate::error::{BoxError, Error};
use crate::openpgp::{self, OpenPgpKeyring};
use crate::ssh;
use crate::verdict::{CommitVerdict, RangeVerdict, Refusal, Verdict};

/// Which commits must be signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// No verification ([`SignatureVerdict::NotChecked`]).
    #[default]
    Off,
    /// The revision's own commit must be signed by a trusted key.
    Tip,
    /// Every commit reachable from the new revision and not from the last
    /// applied one must be signed by a trusted key, merged side branches
    /// included. Without a last applied revision only the tip is checked,
    /// and the [`RangeVerdict`] says so. In a shallow repository the walks
    /// stop at the shallow boundary ([`RangeVerdict::cut_by_shallow`]); a
    /// range that reaches the boundary without meeting the last applied
    /// commit's history is not trusted ([`RangeVerdict::unchecked_beyond`]).
    EveryCommit,
}

/// What is trusted, and how much is checked.
///
/// Built with [`TrustConfig::new`] and chained setters:
///
/// ```
/// use gitops_trust::{AllowedSigners, Mode, TrustConfig};
///
/// # fn main() -> Result<(), gitops_trust::ParseError> {
/// let signers = AllowedSigners::parse(
///     "alice@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFNwgwun6nqSpIDKGEc9867E4+DRowi9QWIE3pHxiE2m\n",
/// )?;
/// let config = TrustConfig::new(Mode::EveryCommit).allowed_signers(signers);
/// assert_eq!(config.mode, Mode::EveryCommit);
/// assert!(config.openpgp.is_none());
/// # Ok(())
/// # }
/// ```
///
/// Without keys of a kind, every signature of that kind is refused
/// ([`Refusal::NoTrustedKeys`]).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TrustConfig {
    /// Which commits must be signed.
    pub mode: Mode,
    /// Trusted SSH keys (git's `gpg.ssh.allowedSignersFile`).
    pub allowed_signers: Option<AllowedSigners>,
    /// Trusted OpenPGP keys.
    pub openpgp: Option<OpenPgpKeyring>,
}

impl TrustConfig {
    /// A configuration checking the commits `mode` says, with no trusted key
    /// yet: add them with [`allowed_signers`](Self::allowed_signers) and
    /// [`openpgp`](Self::openpgp).
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            allowed_signers: None,
            openpgp: None,
        }
    }

    /// Which commits must be signed.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Trust these SSH keys (replacing any set before).
    pub fn allowed_signers(mut self, signers: AllowedSigners) -> Self {
        self.allowed_signers = Some(signers);
        self
    }

    /// Trust these OpenPGP keys (replacing any set before).
    pub fn openpgp(mut self, keyring: OpenPgpKeyring) -> Self {
        self.openpgp = Some(keyring);
        self
    }
}

/// Verifies commit signatures of one repository, in-process.
pub struct Verifier {
    path: PathBuf,
    config: TrustConfig,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish()
    }
}

fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> BoxError {
    Box::new(e)
}

/// The facts about one commit that verification needs.
struct CommitData {
    id: ObjectId,
    summary: String,
    time: i64,
    parents: Vec<ObjectId>,
    verdict: Verdict,
}

impl Verifier {
    /// A verifier of the repository at `repo_path` (a work tree or a git
    /// directory). The repository is opened now to fail early, and again
    /// for every verification, so that fetched commits are seen.
    pub fn open(repo_path: impl AsRef<Path>, config: TrustConfig) -> Result<Self, Error> {
        let path = repo_path.as_ref().to_path_buf();
        let verifier = Self { path, config };
        verifier.repo()?;
        Ok(verifier)
    }

    /// The configuration.
    pub fn config(&self) -> &TrustConfig {
        &self.config
    }

    fn repo(&self) -> Result<gix::Repository, Error> {
        gix::open_opts(&self.path, gix::open::Options::isolated()).map_err(|e| {
            Error::OpenRepository {
                path: self.path.clone(),
                source: boxed(e),
            }
        })
    }

    fn resolve(repo: &gix::Repository, spec: &str) -> Result<ObjectId, Error> {
        let id = repo.rev_parse_single(spec).map_err(|e| Error::Resolve {
            spec: spec.to_owned(),
            source: boxed(e),
        })?;
        let object = id.object().map_err(|e| Error::Resolve {
            spec: spec.to_owned(),
            source: boxed(e),
        })?;
        let commit = object.peel_to_commit().map_err(|_| Error::NotACommit {
            spec: spec.to_owned(),
        })?;
        Ok(commit.id)
    }

    fn read(&self, repo: &gix::Repository, id: ObjectId) -> Result<CommitData, Error> {
        let read_err = |e: BoxError| Error::ReadCommit {
            id: id.to_string(),
            source: e,
        };
        let commit = repo.find_commit(id).map_err(|e| read_err(boxed(e)))?;
        let time = commit.time().map_err(|e| read_err(boxed(e)))?.seconds;
        let committer_email = commit
            .committer()
            .map_err(|e| read_err(boxed(e)))?
            .email
            .to_string();
        let summary = commit
            .message_raw_sloppy()
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let parents = commit.parent_ids().map(|p| p.detach()).collect();
        let signature = gix::objs::CommitRefIter::signature(&commit.data, repo.object_hash())
            .map_err(|e| read_err(boxed(e)))?;
        let verdict = match signature {
            None => Verdict::Unsigned,
            Some((sig, signed)) => {
                let payload = signed.to_bstring();
                self.judge(sig.as_ref(), payload.as_ref(), time, &committer_email)
            }
        };
        Ok(CommitData {
            id,
            summary,
            time,
            parents,
            verdict,
        })
    }

    fn judge(&self, sig: &[u8], payload: &[u8], time: i64, committer_email: &str) -> Verdict {
        let start = sig.trim_ascii_start();
        if start.starts_with(b"-----BEGIN SSH SIGNATURE-----") {
            ssh::verify(
                sig,
                payload,
                time,
                committer_email,
                self.config.allowed_signers.as_ref(),
            )
        } else if start.starts_with(b"-----BEGIN PGP SIGNATURE-----") {
            match std::str::from_utf8(sig) {
                Ok(text) => openpgp::verify(text, payload, self.config.openpgp.as_ref()),
                Err(_) => Verdict::Untrusted(Refusal::Malformed {
                    method: gitops_core::SignatureMethod::OpenPgp,
                    detail: "the armored signature is not UTF-8".to_owned(),
                }),
            }
        } else if start.starts_with(b"-----BEGIN SIGNED MESSAGE-----") {
            Verdict::Untrusted(Refusal::UnsupportedFormat("X.509 (gpgsm)".to_owned()))
        } else {
            let first =
                String::from_utf8_lossy(start.split(|b| *b == b'\n').next().unwrap_or_default())
                    .into_owned();
            Verdict::Untrusted(Refusal::UnsupportedFormat(first))
        }
    }

    fn to_verdict(data: CommitData) -> CommitVerdict {
        CommitVerdict {
            commit: data.id.to_string(),
            summary: data.summary,
            time: data.time,
            verdict: data.verdict,
        }
    }

    /// The verdict on one commit (`spec`: a commit id or anything git's
    /// rev-parse understands, peeled to a commit), whatever the mode.
    pub fn verify_commit(&self, spec: &str) -> Result<CommitVerdict, Error> {
        let repo = self.repo()?;
        let id = Self::resolve(&repo, spec)?;
        Ok(Self::to_verdict(self.read(&repo, id)?))
    }

    /// The verdict on `tip` (and, in [`Mode::EveryCommit`], on every commit
    /// reachable from it and not from `last_applied`). The tip is always
    /// checked, even when it is `last_applied` itself.
    pub fn verify_range(
        &self,
        last_applied: Option<&str>,
        tip: &str,
    ) -> Result<RangeVerdict, Error> {
        let repo = self.repo()?;
        let tip_id = Self::resolve(&repo, tip)?;
        let mode = self.config.mode;
        let mut out = RangeVerdict {
            mode,
            tip: tip_id.to_string(),
            last_applied: None,
            tip_only: false,
            cut_by_shallow: false,
            unchecked_beyond: Vec::new(),
            commits: Vec::new(),
        };
        match mode {
            Mode::Off => return Ok(out),
            Mode::Tip => {
                out.commits
                    .push(Self::to_verdict(self.read(&repo, tip_id)?));
                return Ok(out);
            }
            Mode::EveryCommit => {}
        }
        let Some(last) = last_applied else {
            out.tip_only = true;
            out.commits
                .push(Self::to_verdict(self.read(&repo, tip_id)?));
            return Ok(out);
        };
        let last_id = Self::resolve(&repo, last)?;
        out.last_applied = Some(last_id.to_string());
        // In a shallow repository the commits listed in `.git/shallow` have
        // parents that are not there: both walks stop at them.
        let shallow: HashSet<ObjectId> = repo
            .shallow_commits()
            .map_err(|e| Error::OpenRepository {
                path: self.path.clone(),
                source: boxed(e),
            })?
            .map(|commits| commits.iter().copied().collect())
            .unwrap_or_default();
        let (hidden, cut) = Self::ancestors(&repo, last_id, &shallow)?;
        out.cut_by_shallow = cut;
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([tip_id]);
        seen.insert(tip_id);
        while let Some(id) = queue.pop_front() {
            let data = self.read(&repo, id)?;
            if shallow.contains(&id) {
                // Its parents are unknown. When the commit is itself covered
                // by the last applied one (the tip is the last applied
                // commit), so are they; otherwise commits of the range may
                // lie beyond the boundary, unchecked.
                if !hidden.contains(&id) {
                    out.cut_by_shallow = true;
                    out.unchecked_beyond.push(id.to_string());
                }
            } else {
                for parent in &data.parents {
                    if !hidden.contains(parent) && seen.insert(*parent) {
                        queue.push_back(*parent);
                    }
                }
            }
            out.commits.push(Self::to_verdict(data));
        }
        Ok(out)
    }

    /// Every commit reachable from `from`, itself included, stopping at the
    /// `shallow` boundary; and whether the walk was cut there.
    fn ancestors(
        repo: &gix::Repository,
        from: ObjectId,
        shallow: &HashSet<ObjectId>,
    ) -> Result<(HashSet<ObjectId>, bool), Error> {
        let mut seen = HashSet::from([from]);
        let mut queue = VecDeque::from([from]);
        let mut cut = false;
        while let Some(id) = queue.pop_front() {
            if shallow.contains(&id) {
                cut = true;
                continue;
            }
            let commit = repo.find_commit(id).map_err(|e| Error::ReadCommit {
                id: id.to_string(),
                source: boxed(e),
            })?;
            for parent in commit.parent_ids() {
                let parent = parent.detach();
                if seen.insert(parent) {
                    queue.push_back(parent);
                }
            }
        }
        Ok((seen, cut))
    }
}

#[async_trait]
impl RevisionVerifier for Verifier {
    async fn verify(&self, revision: &Revision, last_applied: Option<&str>) -> SignatureVerdict {
        if self.config.mode == Mode::Off {
            return SignatureVerdict::NotChecked;
        }
        match self.verify_range(last_applied, &revision.id) {
            Ok(range) => range.to_signature_verdict(),
            Err(e) => SignatureVerdict::Untrusted {
                reason: format!("signature verification failed: {e}"),
            },
        }
    }
}
