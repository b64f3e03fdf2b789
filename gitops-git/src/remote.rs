//! Cloning and fetching a remote into a local bare mirror.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use gitops_core::SourceError;

use crate::error::Error;

/// Options of [`fetch_mirror`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct FetchOptions {
    /// Fetch only this many commits of history (a shallow mirror);
    /// `None` fetches the whole history.
    pub depth: Option<NonZeroU32>,
}

impl FetchOptions {
    /// The defaults: the whole history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fetches only `depth` commits of history.
    pub fn shallow(mut self, depth: NonZeroU32) -> Self {
        self.depth = Some(depth);
        self
    }
}

/// A step of [`fetch_mirror`], reported to its progress callback (and as a
/// `tracing` event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchProgress {
    /// The mirror was created (first fetch) or opened.
    Mirror {
        /// Whether it was created now.
        created: bool,
    },
    /// Connecting to the remote.
    Connecting {
        /// The remote's URL.
        url: String,
    },
    /// Connected; receiving the reference.
    Receiving {
        /// The refspec fetched.
        refspec: String,
    },
    /// Done.
    Done {
        /// The commit the reference now points at in the mirror.
        commit: String,
        /// Objects received (0 when the mirror was up to date).
        objects: u64,
    },
}

/// What [`fetch_mirror`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchOutcome {
    /// The full name of the reference fetched (`refs/heads/main`), the same
    /// in the mirror as in the remote.
    pub reference: String,
    /// The commit it points at.
    pub commit: String,
    /// Objects received (0 when the mirror was already up to date).
    pub objects: u64,
    /// Whether the mirror was created by this call.
    pub created: bool,
}

/// Clones (first time) or fetches (later) one reference of the remote at
/// `url` into the bare mirror at `mirror`, under the same name: a branch
/// name (`main`, fetched as `refs/heads/main`) or a full reference name
/// (`refs/tags/v1`). Tags are not followed. Open the mirror with
/// [`GitSource::open`](crate::GitSource::open) to read it.
///
/// `url` is a local path, a `file://` URL, `git://` or (with the `http`
/// feature) `http(s)://`. The reference is force-updated, so a rewritten
/// remote history is mirrored as is.
///
/// This blocks on the network: call it from a blocking task.
///
/// # Errors
/// [`SourceError::NotFound`] when the remote has no such reference,
/// [`SourceError::Unavailable`] when the remote or the mirror cannot be
/// used.
pub fn fetch_mirror(
    url: &str,
    mirror: impl AsRef<Path>,
    reference: &str,
    options: &FetchOptions,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<FetchOutcome, SourceError> {
    #[cfg(feature = "http")]
    ensure_crypto_provider();
    Ok(fetch(url, mirror.as_ref(), reference, options, progress)?)
}

/// Gives rustls a process-wide crypto provider before gix's reqwest
/// transport builds its HTTPS client (reqwest, built without a provider of
/// its own, requires one): the one the program installed, else `ring`, the
/// only provider our crates compile in. This is what rustls does by itself
/// for kube's client when a single provider is compiled in; reqwest does not.
#[cfg(feature = "http")]
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: the
        // provider installed first is kept, and it is the same one.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn fetch(
    url: &str,
    mirror: &Path,
    reference: &str,
    options: &FetchOptions,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<FetchOutcome, Error> {
    let mut report = |event: FetchProgress| {
        tracing::debug!(?event, "fetch_mirror");
        progress(event);
    };
    let mirror_error = |source| Error::Mirror {
        path: mirror.display().to_string(),
        source,
    };
    let full = if reference.starts_with("refs/") {
        reference.to_owned()
    } else {
        format!("refs/heads/{reference}")
    };
    let fetch_error = |source| Error::Fetch {
        url: url.to_owned(),
        reference: full.clone(),
        source,
    };

    // Isolated, as `GitSource`: no system or user git configuration (such as
    // `url.*.insteadOf` or proxies) and no `GIT_*` environment may redirect or
    // alter the fetch; only the mirror's own configuration is read.
    let created = !mirror.join("HEAD").is_file();
    let repo = if created {
        std::fs::create_dir_all(mirror).map_err(|e| mirror_error(gix::Error::from_error(e)))?;
        gix::ThreadSafeRepository::init_opts(
            mirror,
            gix::create::Kind::Bare,
            gix::create::Options::default(),
            gix::open::Options::isolated(),
        )
        .map(gix::Repository::from)
        .map_err(mirror_error)?
    } else {
        gix::open_opts(mirror, gix::open::Options::isolated()).map_err(mirror_error)?
    };
    report(FetchProgress::Mirror { created });

    let refspec = format!("+{full}:{full}");
    report(FetchProgress::Connecting {
        url: url.to_owned(),
    });
    let remote = repo
        .remote_at(url)
        .map_err(fetch_error)?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs([refspec.as_str()], gix::remote::Direction::Fetch)
        .map_err(fetch_error)?;
    let connection = remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(fetch_error)?;
    let prepare = connection
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(fetch_error)?;
    if prepare.ref_map().mappings.is_empty() {
        return Err(Error::NotFound {
            reference: format!("{full} at {url}"),
        });
    }
    let prepare = match options.depth {
        Some(depth) => prepare.with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(depth)),
        None => prepare,
    };
    report(FetchProgress::Receiving {
        refspec: refspec.clone(),
    });
    let interrupt = AtomicBool::new(false);
    let outcome = prepare
        .receive(gix::progress::Discard, &interrupt)
        .map_err(fetch_error)?;
    let objects = match &outcome.status {
        gix::remote::fetch::Status::Change {
            write_pack_bundle, ..
        } => u64::from(write_pack_bundle.index.num_objects),
        _ => 0,
    };
    let commit = repo
        .find_reference(full.as_str())
        .and_then(|mut r| r.peel_to_commit().map(|c| c.id.to_string()))
        .map_err(|_| Error::NotFound {
            reference: format!("{full} at {url}"),
        })?;
    report(FetchProgress::Done {
        commit: commit.clone(),
        objects,
    });
    Ok(FetchOutcome {
        reference: full,
        commit,
        objects,
        created,
    })
}
