//! A hermetic Git [`Source`](gitops_core::Source) for gitops-core, on gix.
//!
//! [`GitSource`] reads a commit's tree straight from the object database, by
//! content: no checkout, no work tree read or written, nothing outside the
//! commit consulted. Files are keyed by their blob id, tree listings and file
//! contents are cached by object id, so a new commit costs what it changed.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use gitops_core::SourceExt;
//! use gitops_git::GitSource;
//! use std::process::Command;
//!
//! // A tiny environment repository, built with the git CLI.
//! let dir = tempfile::tempdir()?;
//! let git = |args: &[&str]| {
//!     let out = Command::new("git")
//!         .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com"])
//!         .args(args)
//!         .current_dir(dir.path())
//!         .env("GIT_CONFIG_GLOBAL", "/dev/null")
//!         .env("GIT_CONFIG_NOSYSTEM", "1")
//!         .output()
//!         .expect("git runs");
//!     assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
//! };
//! git(&["init", "-q", "-b", "main"]);
//! std::fs::create_dir_all(dir.path().join("envs/prod"))?;
//! std::fs::write(
//!     dir.path().join("envs/prod/app.yaml"),
//!     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
//! )?;
//! git(&["add", "."]);
//! git(&["commit", "-q", "-m", "prod: add app"]);
//!
//! let source = GitSource::open(dir.path())?;
//! let revision = source.resolve_blocking("main")?;
//! assert_eq!(revision.summary(), "prod: add app");
//! assert_eq!(revision.reference.as_deref(), Some("refs/heads/main"));
//!
//! // The Source trait is async; this crate needs no runtime of its own.
//! let snapshot = futures_lite_block_on(source.snapshot_of("main", Some("envs/prod")))?;
//! let files: Vec<_> = snapshot.files().map(|(path, _)| path.to_owned()).collect();
//! assert_eq!(files, ["app.yaml"]);
//! # Ok(())
//! # }
//! # // A minimal executor for the example: the futures here never wait.
//! # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     use std::task::{Context, Poll, Waker};
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = Context::from_waker(Waker::noop());
//! #     loop {
//! #         if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
//! #             return v;
//! #         }
//! #     }
//! # }
//! ```
//!
//! # What is read, and how
//! - [`Source::resolve`](gitops_core::Source::resolve): `HEAD`, branches,
//!   tags (lightweight or annotated, peeled to their commit), full or
//!   abbreviated commit ids; an unknown reference is
//!   [`SourceError::NotFound`](gitops_core::SourceError::NotFound), a short
//!   name matching several references or an abbreviated id matching several
//!   commits is [`SourceError::Ambiguous`](gitops_core::SourceError::Ambiguous).
//! - [`Source::snapshot`](gitops_core::Source::snapshot): regular files,
//!   keyed by blob id. Symbolic links are never followed: reported as
//!   [`SpecialEntry::Symlink`](gitops_core::SpecialEntry::Symlink) or refused
//!   ([`SymlinkPolicy`]); submodules are reported; files over
//!   [`GitSourceOptions::max_file_size`] are refused unread. Every tree read
//!   (the folder's and those above it) is checked as `git fsck --strict`
//!   checks it: two entries of one name, a name that is empty, `.`, `..`,
//!   contains `/` or is `.git` to git, HFS+ or NTFS, a symbolic link named
//!   `.gitmodules`, entries out of order are
//!   [`SourceError::InvalidTree`](gitops_core::SourceError::InvalidTree),
//!   naming the tree and the entry: such a tree can deploy another file
//!   than `git show` and a checkout display.
//! - [`Source::changed_paths`](gitops_core::Source::changed_paths): a gix tree
//!   diff, which skips unchanged folders by id.
//! - [`GitSource::history`]: the commits that changed a folder, for audit.
//! - [`GitSource::signed_payload`]: the signature and signed bytes of a
//!   commit, for a verifier.
//! - [`GitSource::snapshot_incremental`]: a snapshot built from the previous
//!   one and a tree diff.
//! - [`fetch_mirror`]: clone or fetch one reference of a remote into a local
//!   bare mirror, optionally shallow.
//!
//! # Environments as branches or folders
//! One branch per environment: `resolve("prod")` then `snapshot(&rev, None)`.
//! One folder per environment: `resolve("main")` then
//! `snapshot(&rev, Some("envs/prod"))`. Both go through the same API.
//!
//! # Cargo features
//! - `http` (default): `http(s)://` remotes for [`fetch_mirror`], through
//!   gix's reqwest transport with rustls. reqwest runs its own internal
//!   runtime thread, so this feature brings tokio in transitively; without
//!   it the crate depends on no async runtime at all (local paths,
//!   `file://` and `git://` remotes still work).
//!
//! # Blocking
//! gix is blocking; the async [`Source`](gitops_core::Source) methods do
//! their (local disk) work inline and depend on no runtime. Use the
//! `*_blocking` twins inside your runtime's blocking pool when that matters.

mod cache;
mod error;
mod remote;
mod resolve;
mod source;

pub use cache::CacheStats;
pub use remote::{FetchOptions, FetchOutcome, FetchProgress, fetch_mirror};
pub use source::{GitSource, GitSourceOptions, SignedPayload, SymlinkPolicy};
