//! In-process verification of signed Git commits, SSH and OpenPGP, for
//! gitops-rs: only commits signed by trusted keys are applied.
//!
//! ```no_run
//! use gitops_trust::{AllowedSigners, Mode, TrustConfig, Verifier};
//!
//! # fn main() -> Result<(), gitops_trust::Error> {
//! // git's `gpg.ssh.allowedSignersFile` format.
//! let signers = AllowedSigners::from_file("/etc/gitops/allowed_signers")?;
//! let config = TrustConfig::new(Mode::EveryCommit).allowed_signers(signers);
//! // and/or .openpgp(OpenPgpKeyring::from_file("keys.asc")?)
//! let verifier = Verifier::open("/srv/env-repo", config)?;
//!
//! // One commit, whatever the mode.
//! let tip = verifier.verify_commit("refs/heads/prod")?;
//! println!("{}: {:?}", tip.short_id(), tip.verdict);
//!
//! // Every commit since the last applied one (a signed merge does not hide
//! // an unsigned commit of the merged branch).
//! let last_applied = "9f2c1e0a5b7d3c4e8f6a1b2c3d4e5f60718293a4"; // from the inventory
//! let range = verifier.verify_range(Some(last_applied), "refs/heads/prod")?;
//! println!("{}", range.explain());
//! if !range.is_trusted() {
//!     std::process::exit(1);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The reconciler calls it through [`gitops_core::RevisionVerifier`]
//! (`Reconciler::with_verifier(Arc::new(verifier))`), and
//! `Policy::require_signature` refuses any revision whose verdict is not
//! [`gitops_core::SignatureVerdict::Trusted`].
//!
//! # How a commit is checked, as git does
//! - The raw commit object is read with gix; the `gpgsig` header (the
//!   `gpgsig-sha256` one in SHA-256 repositories) is split off, and the rest
//!   is the signed payload (`gix::objs::CommitRefIter::signature`).
//! - The armor decides the method: `-----BEGIN SSH SIGNATURE-----` or
//!   `-----BEGIN PGP SIGNATURE-----`; X.509 signatures are refused as
//!   unsupported.
//! - **SSH**: the SSHSIG must be in the `git` namespace, made by a key of
//!   the [`AllowedSigners`] file, whose entry allows the `git` namespace and
//!   is valid (`valid-after`, `valid-before`) at the *committer time* (as
//!   git passes it to `ssh-keygen -Y verify`) **and now**: the committer
//!   time is chosen by the signer, so under git's rule a key past its
//!   `valid-before` still verifies commits backdated into its window. Git's
//!   rule is available as [`SshValidity::CommitTime`]
//!   ([`AllowedSigners::with_validity`]). The file is parsed as strictly as
//!   `ssh-keygen` parses it ([`allowed_signers`]). `cert-authority` entries
//!   are parsed but not supported (they never match).
//! - **OpenPGP**: the signature must verify with a primary key or a signing
//!   subkey of the [`OpenPgpKeyring`]; the subkey's newest valid binding by
//!   the primary must allow signing and carry a back-signature (an older
//!   binding that allowed signing no longer counts). Revoked keys and
//!   subkeys are refused. As git does (it only accepts gpg's status `G`,
//!   which needs a key valid at verification time), the key and subkey
//!   must be unexpired both at the signature's creation time and *now*: a
//!   signature made while the key was valid is refused once the key has
//!   expired, so that an expired (possibly leaked) key cannot sign with a
//!   backdated creation time.
//!
//! # Crates
//! - [`ssh-key`](https://docs.rs/ssh-key) (RustCrypto, 0.6): OpenSSH public
//!   keys and SSHSIG verification (ed25519, ECDSA P-256/384/521, RSA), so
//!   no hand-written SSHSIG.
//! - [`pgp`](https://docs.rs/pgp) (rpgp, 0.21): pure Rust, maintained,
//!   builds with cargo alone. `sequoia-openpgp` was not chosen: its default
//!   crypto backend is nettle, a C library that CI and every developer
//!   machine would need installed (its pure-Rust backend is not its
//!   recommended one).
//! - `gix` (the workspace's, with `revision`): reading commits and
//!   resolving references, without a `git` binary.
//!
//! No `gpg`, `ssh-keygen` or `git` program runs at verification time.
//!
//! # Limits
//! - A commit carrying both `gpgsig` and `gpgsig-sha256` headers in a SHA-1
//!   repository keeps the other header in the payload (git strips it too);
//!   such commits are refused, never wrongly accepted.
//! - `valid-after`/`valid-before` are read as UTC (see
//!   [`allowed_signers`]).
//! - OpenPGP: every key in the keyring is trusted (no web of trust); any
//!   valid key revocation refuses the key, whatever its reason; a
//!   signature's own expiration time is not checked.
//! - [`Mode::EveryCommit`] walks the whole history of the last applied
//!   commit to know what it already covered: cost linear in history.
//! - Shallow repositories (a `fetch_mirror` with a depth, `git clone
//!   --depth`): the walks stop at the commits of `.git/shallow`, whose
//!   parents were not fetched ([`RangeVerdict::cut_by_shallow`]). The range
//!   is still checked in full when the mirror is at least as deep as the
//!   range; when the range itself reaches the boundary before the last
//!   applied commit's history, the commits beyond it cannot be checked and
//!   the range is not trusted ([`RangeVerdict::unchecked_beyond`]).
//! - The verifier must be opened on the repository the revisions come from
//!   (the Source's clone); a commit it cannot find is refused
//!   ([`SignatureVerdict::Untrusted`]), never passed.
//! - The committer time used for `valid-after`/`valid-before` is written by
//!   the signer, as in git: these options bound a key's use, they do not
//!   prove when a commit was made. With the default
//!   [`SshValidity::CommitTimeAndNow`], a key whose window has closed
//!   verifies nothing (commits it signed while valid included: re-sign or
//!   extend the window); one whose window has not opened yet verifies
//!   nothing either, however the commit is dated.

pub mod allowed_signers;
mod error;
mod openpgp;
mod ssh;
mod verdict;
mod verifier;

pub use allowed_signers::{AllowedSigner, AllowedSigners, SshValidity, TimeRefusal};
pub use error::{BoxError, Error, ParseError};
pub use gitops_core::{SignatureMethod, SignatureVerdict};
pub use openpgp::OpenPgpKeyring;
pub use ssh::GIT_NAMESPACE;
pub use verdict::{CommitVerdict, RangeVerdict, Refusal, Signer, Verdict};
pub use verifier::{Mode, TrustConfig, Verifier};

/// The [`ssh-key`](https://docs.rs/ssh-key) crate, whose types are in this
/// API ([`AllowedSigner::key`], [`AllowedSigners::entries_for_key`]).
pub use ssh_key;

/// The README's example, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
