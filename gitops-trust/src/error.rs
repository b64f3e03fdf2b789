//! Errors: what went wrong reading configuration or the repository. A
//! signature that does not pass is not an error but a
//! [`Verdict`](crate::Verdict).

use std::path::PathBuf;

/// A boxed error from a lower layer (gix).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A bad line of an allowed-signers file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {}", gitops_core::escape::escaped(.message))]
#[non_exhaustive]
pub struct ParseError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// Why verification could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// An allowed-signers file is malformed.
    #[error("allowed signers file {path}: {source}")]
    AllowedSigners {
        /// The file.
        path: PathBuf,
        /// The bad line.
        source: ParseError,
    },
    /// An OpenPGP keyring is malformed.
    #[error("OpenPGP keyring{}: {message}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Keyring {
        /// The file, if read from one.
        path: Option<PathBuf>,
        /// What is wrong with it.
        message: String,
    },
    /// The repository could not be opened.
    #[error("cannot open repository {path}: {source}")]
    OpenRepository {
        /// Where.
        path: PathBuf,
        /// The gix error.
        source: BoxError,
    },
    /// A revision (commit id or reference) could not be resolved.
    #[error("cannot resolve revision `{spec}`: {source}")]
    Resolve {
        /// The revision asked for.
        spec: String,
        /// The gix error.
        source: BoxError,
    },
    /// A revision does not name a commit.
    #[error("`{spec}` is not a commit")]
    NotACommit {
        /// The revision asked for.
        spec: String,
    },
    /// A commit object could not be read or decoded.
    #[error("cannot read commit {id}: {source}")]
    ReadCommit {
        /// The commit id.
        id: String,
        /// The gix error.
        source: BoxError,
    },
}
