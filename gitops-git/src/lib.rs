//! A hermetic Git [`Source`](gitops_core::Source) for gitops-core, on gix.
//!
//! [`GitSource`] reads a commit's tree straight from the object database, by
//! content: no checkout, no work tree read or written, nothing outside the
//! commit consulted. Files are keyed by their blob id, tree listings and file
//! contents are cached by object id, so a new commit costs what it changed.
//! Files missing from the cache are read in pack order with a pack cache
//! (as git's delta-base cache), so a repository packed with deep delta chains
//! (`git gc --aggressive`, Git servers) costs one delta per file.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use gitops_core::SourceExt;
//! use gitops_git::GitSource;
//! use std::process::Command;
//!
//! // A tiny environment repository, built with the git CLI.
//! let dir = std::env::temp_dir().join(format!("gitops-git-demo-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! std::fs::create_dir_all(&dir)?;
//! let git = |args: &[&str]| {
//!     let out = Command::new("git")
//!         .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com"])
//!         .args(args)
//!         .current_dir(&dir)
//!         .env("GIT_CONFIG_GLOBAL", "/dev/null")
//!         .env("GIT_CONFIG_NOSYSTEM", "1")
//!         .output()
//!         .expect("git runs");
//!     assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
//! };
//! git(&["init", "-q", "-b", "main"]);
//! std::fs::create_dir_all(dir.join("envs/prod"))?;
//! std::fs::write(
//!     dir.join("envs/prod/app.yaml"),
//!     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
//! )?;
//! git(&["add", "."]);
//! git(&["commit", "-q", "-m", "prod: add app"]);
//!
//! let source = GitSource::open(&dir)?;
//! let revision = source.resolve_blocking("main")?;
//! assert_eq!(revision.summary(), "prod: add app");
//! assert_eq!(revision.reference.as_deref(), Some("refs/heads/main"));
//!
//! // The Source trait is async and works under any executor (here a
//! // minimal one; `#[tokio::main]` and `.await` in a real program).
//! let snapshot = block_on(source.snapshot_of("main", Some("envs/prod")))?;
//! let files: Vec<_> = snapshot.files().map(|(path, _)| path.to_owned()).collect();
//! assert_eq!(files, ["app.yaml"]);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! # /// Runs a future to completion on this thread (std only).
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     use std::sync::Arc;
//! #     use std::task::{Context, Poll, Wake};
//! #     struct Unpark(std::thread::Thread);
//! #     impl Wake for Unpark {
//! #         fn wake(self: Arc<Self>) { self.0.unpark() }
//! #     }
//! #     let waker = Arc::new(Unpark(std::thread::current())).into();
//! #     let mut cx = Context::from_waker(&waker);
//! #     let mut f = std::pin::pin!(f);
//! #     loop {
//! #         match f.as_mut().poll(&mut cx) {
//! #             Poll::Ready(v) => return v,
//! #             Poll::Pending => std::thread::park(),
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
//! # TLS
//! rustls uses the `ring` crypto provider, the one kube-rs (and so
//! `gitops-kube`) uses by default: a program linking any of our crates has
//! exactly one provider compiled in, and needs no set-up call. If the
//! program installs a process-wide provider itself
//! ([`rustls::crypto::CryptoProvider::install_default`](https://docs.rs/rustls)),
//! that one is used; otherwise the first HTTPS fetch installs `ring`, as
//! rustls itself does when one provider is compiled in.
//!
//! # Blocking
//! gix is blocking. The async [`Source`](gitops_core::Source) methods run
//! their work on a shared pool of blocking threads (the `blocking` crate:
//! no particular runtime needed), never on the executor's threads. The
//! `*_blocking` twins do the same work on the calling thread, for code that
//! is not async. [`fetch_mirror`] is blocking (network): call it from a
//! blocking task, e.g. `tokio::task::spawn_blocking`.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod error;
mod pack_order;
mod remote;
mod resolve;
mod source;

/// The gix crate this one is built on. The causes
/// ([`source()`](std::error::Error::source) chains) of this crate's errors
/// are `gix::Error`s: downcast with this re-export to get the same version.
pub use gix;

pub use cache::CacheStats;
pub use remote::{FetchOptions, FetchOutcome, FetchProgress, fetch_mirror};
pub use source::{GitSource, GitSourceOptions, SignedPayload, SymlinkPolicy};
