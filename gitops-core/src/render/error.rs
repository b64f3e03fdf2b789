//! [`RenderError`] and [`RenderErrors`].

use std::fmt;

use gitops_diff::escape::escaped;

use crate::desired::{DuplicateObject, Provenance};
use crate::key::{GroupKind, ObjectKey};
use crate::object::ObjectError;
use crate::scope::CrdError;

use super::options::OptionsError;
use super::step::{Rendering, StepError};

/// A 1-based line and column in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// The syntax a file is parsed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceFormat {
    /// YAML (`.yaml`, `.yml`), possibly several documents.
    Yaml,
    /// JSON (`.json`), one value.
    Json,
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Yaml => "YAML",
            Self::Json => "JSON",
        })
    }
}

/// Where a document-level error is, with one line number: the exact
/// position when the parser gave one, else the line the document starts
/// at (`apps/web.yaml#1 (line 9, column 9)`).
struct At<'a>(&'a Provenance, Option<Location>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(l) => {
                let line_less = Provenance {
                    line: None,
                    ..self.0.clone()
                };
                write!(f, "{line_less} (line {}, column {})", l.line, l.column)
            }
            None => self.0.fmt(f),
        }
    }
}

/// A parser message without the position it appends (` at line 9 column
/// 9`): the error's location says it once.
pub(crate) fn without_position(message: &str) -> String {
    if let Some(i) = message.rfind(" at line ") {
        let tail = &message[i + " at line ".len()..];
        let mut parts = tail.splitn(3, ' ');
        let (line, word, column) = (parts.next(), parts.next(), parts.next());
        let digits = |s: Option<&str>| {
            s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        };
        if digits(line) && word == Some("column") {
            let rest = column.unwrap_or("");
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if end > 0 {
                return format!("{}{}", &message[..i], &rest[end..]);
            }
        }
    }
    message.to_owned()
}

/// One problem found while rendering, with where it is.
///
/// Its `Display` [escapes](crate::escape) file paths, names and parser
/// messages: a file named with a newline or a terminal escape sequence
/// cannot forge a line of the error.
///
/// File-level problems name the path; document-level ones a [`Provenance`]
/// (path, document index, the line the document starts at, and the `List`
/// item) and, where the parser knows it, the exact [`Location`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The render options are invalid (nothing was rendered).
    #[error("invalid render options: {0}")]
    Options(#[from] OptionsError),
    /// A file is over [`RenderOptions::max_file_bytes`](super::RenderOptions::max_file_bytes).
    #[error(
        "{}: the file has {size} bytes, over the limit of {limit} bytes (RenderOptions::max_file_bytes)",
        escaped(.path)
    )]
    TooLarge {
        /// File path.
        path: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A file is not UTF-8 text.
    #[error("{}: not valid UTF-8 (first invalid byte at {location})", escaped(.path))]
    NotUtf8 {
        /// File path.
        path: String,
        /// Where the first invalid byte is (the column counts characters).
        location: Location,
    },
    /// Malformed YAML or JSON.
    #[error("{}: invalid {format}: {}", At(.at, *.location), escaped(.message))]
    Syntax {
        /// Where.
        at: Provenance,
        /// YAML or JSON.
        format: SourceFormat,
        /// The parser's position, when it gave one.
        location: Option<Location>,
        /// The parser's message (its position is in `location`).
        message: String,
    },
    /// A document nests deeper than 128 levels (found while scanning), or
    /// goes over the loader's own limits.
    #[error(
        "{}: the document is too complex to load ({}): too many alias expansions or too deep nesting",
        At(.at, *.location),
        escaped(.message)
    )]
    TooComplex {
        /// Where.
        at: Provenance,
        /// The parser's position, when it gave one.
        location: Option<Location>,
        /// The parser's message.
        message: String,
    },
    /// A mapping has the same key twice.
    #[error("{}: duplicate key {key:?}", At(.at, *.location))]
    DuplicateKey {
        /// Where (document).
        at: Provenance,
        /// Where the parser reported it, when known: the second key (JSON)
        /// or the start of the mapping that holds it (YAML).
        location: Option<Location>,
        /// The key.
        key: String,
    },
    /// A mapping key is not a string (numbers and booleans are accepted and
    /// turned into strings, as Kubernetes tools do; null, lists and
    /// mappings are not).
    #[error("{}: unsupported mapping key: {}", At(.at, *.location), escaped(.found))]
    UnsupportedKey {
        /// Where (document).
        at: Provenance,
        /// Where the key is, when known.
        location: Option<Location>,
        /// What the key is (`null`, `a list`, ...).
        found: String,
    },
    /// A value JSON cannot represent or Kubernetes tools would not accept: a
    /// custom YAML tag, a YAML merge key (`<<`), `.nan`/`.inf`, an integer
    /// out of the 64-bit range.
    #[error("{}: unsupported value: {}", At(.at, *.location), escaped(.what))]
    UnsupportedValue {
        /// Where (document).
        at: Provenance,
        /// Where the value is, when known.
        location: Option<Location>,
        /// What was found.
        what: String,
    },
    /// An alias (`*name`) with no anchor (`&name`) defined before it in
    /// its document: usually a typo in the name.
    #[error(
        "{}: the alias *{alias} refers to no anchor defined before it in the document",
        At(.at, Some(*.location))
    )]
    UndefinedAlias {
        /// Where (document).
        at: Provenance,
        /// Where the alias is.
        location: Location,
        /// The alias's name, without `*`.
        alias: String,
    },
    /// Aliases expand a file beyond its budget
    /// ([`RenderOptions::max_expanded_bytes`](super::RenderOptions::max_expanded_bytes) or
    /// [`RenderOptions::max_expansion_ratio`](super::RenderOptions::max_expansion_ratio)):
    /// an alias bomb, refused before anything is expanded.
    #[error("{}: aliases expand the file to {size} bytes, over the limit of {limit} bytes ({}); the alias there went over it", At(.at, Some(*.location)), if *.relative { "RenderOptions::max_expansion_ratio times the file's size without alias expansion" } else { "RenderOptions::max_expanded_bytes" })]
    AliasExpansion {
        /// Where (the document with the alias that went over).
        at: Provenance,
        /// Where that alias is.
        location: Location,
        /// The expanded size of the whole file (each node counts 16 bytes
        /// plus its text), computed without expanding anything.
        size: u64,
        /// The limit it went over.
        limit: u64,
        /// Whether the limit is the relative one (else the absolute one).
        relative: bool,
    },
    /// The parser failed in an unexpected way (an internal error of the
    /// parser, caught so no input can crash a render).
    #[error("{at}: the {format} parser failed on this file: {message}")]
    ParserFailure {
        /// Where (file).
        at: Provenance,
        /// YAML or JSON.
        format: SourceFormat,
        /// What the parser said.
        message: String,
    },
    /// A symbolic link where the renderer reads manifests (refused unless
    /// [`RenderOptions::skip_symlinks`](super::RenderOptions::skip_symlinks)):
    /// its target is not part of the commit, and skipping it silently would
    /// prune the objects a manifest at that path declared before.
    #[error(
        "{path}: a symbolic link (to {target:?}) where manifests are rendered; replace it with the file, or set RenderOptions::skip_symlinks to skip symbolic links"
    )]
    Symlink {
        /// The link's path.
        path: String,
        /// Its target as stored.
        target: String,
    },
    /// An associative list with the same key twice (or a set with the same
    /// value twice): the API server refuses such an object.
    #[error("{at}: {key}: {duplicate}")]
    DuplicateListKey {
        /// Where.
        at: Provenance,
        /// The object.
        key: ObjectKey,
        /// The list and the key.
        duplicate: gitops_diff::DuplicateListKey,
    },
    /// A document is not a valid Kubernetes object.
    #[error("{at}: {}", escaped(.source))]
    Invalid {
        /// Where.
        at: Provenance,
        /// What is wrong.
        #[source]
        source: ObjectError,
    },
    /// A `List` document whose `items` is not a list.
    #[error("{at}: `items` of {} must be a list", escaped(.kind))]
    InvalidList {
        /// Where.
        at: Provenance,
        /// The list's kind.
        kind: String,
    },
    /// A `CustomResourceDefinition` the registry cannot learn from.
    #[error("{at}: {}", escaped(.source))]
    Crd {
        /// Where.
        at: Provenance,
        /// What is wrong.
        #[source]
        source: CrdError,
    },
    /// A kind that is not built in, not defined by a CRD of the snapshot and
    /// not registered in the options: its scope is unknown, so it is
    /// reported rather than guessed.
    #[error(
        "{at}: unknown kind {} (apiVersion {}) of {name:?}: not a built-in kind, not defined by a CustomResourceDefinition in this snapshot, not registered in RenderOptions::kinds",
        escaped(.kind),
        escaped(.api_version)
    )]
    UnknownKind {
        /// Where.
        at: Provenance,
        /// The kind.
        kind: GroupKind,
        /// The `apiVersion` as written.
        api_version: String,
        /// The object's name.
        name: String,
    },
    /// A cluster-scoped object that sets `metadata.namespace`.
    #[error("{at}: {key} sets metadata.namespace {namespace:?}, but {} is cluster-scoped", escaped(.kind))]
    NamespaceOnClusterScoped {
        /// Where.
        at: Provenance,
        /// The object (without namespace).
        key: ObjectKey,
        /// Its kind.
        kind: GroupKind,
        /// The namespace it sets.
        namespace: String,
    },
    /// The same object declared twice; both places are named.
    #[error(transparent)]
    Duplicate(#[from] DuplicateObject),
    /// A [`RenderStep`](super::RenderStep) failed on a folder.
    #[error("{}: {}: {source}", folder(.dir), escaped(.renderer))]
    Step {
        /// The step's name.
        renderer: String,
        /// The folder it rendered (`""` for the snapshot root).
        dir: String,
        /// The step's error (all of them, for a step that collects them).
        #[source]
        source: StepError,
    },
    /// A folder that must be rendered by a step no registered step handles:
    /// a Kustomize folder with [`Rendering::Auto`] (read as plain manifests,
    /// its patches would deploy as objects), or the rendered folder with
    /// [`Rendering::Step`].
    #[error("{}", unhandled(.dir, .rendering, .file.as_deref()))]
    Unhandled {
        /// The folder.
        dir: String,
        /// The rendering asked for.
        rendering: Rendering,
        /// The Kustomize file that makes it a Kustomize folder, if that is why.
        file: Option<String>,
    },
}

fn folder(dir: &str) -> String {
    if dir.is_empty() {
        "the snapshot root".to_owned()
    } else {
        format!("{}/", escaped(dir))
    }
}

fn unhandled(dir: &str, rendering: &Rendering, file: Option<&str>) -> String {
    match (rendering, file) {
        (Rendering::Step(name), _) => format!(
            "{}: the render step {} is not registered or does not handle this folder",
            folder(dir),
            escaped(name)
        ),
        (_, Some(file)) => format!(
            "{}: a Kustomize folder, but no render step handles it: register gitops_kustomize::Kustomize (ReconcilerConfig::render_step, Renderer::with_step), or set RenderOptions::rendering to Rendering::Plain to read its files as plain manifests",
            escaped(file)
        ),
        (_, None) => format!("{}: no render step handles this folder", folder(dir)),
    }
}

impl RenderError {
    /// The path of the file at fault (the first declaration for a
    /// duplicate); `None` for invalid options.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Options(_) => None,
            Self::TooLarge { path, .. }
            | Self::NotUtf8 { path, .. }
            | Self::Symlink { path, .. } => Some(path),
            Self::Syntax { at, .. }
            | Self::TooComplex { at, .. }
            | Self::DuplicateKey { at, .. }
            | Self::UnsupportedKey { at, .. }
            | Self::UnsupportedValue { at, .. }
            | Self::UndefinedAlias { at, .. }
            | Self::AliasExpansion { at, .. }
            | Self::ParserFailure { at, .. }
            | Self::DuplicateListKey { at, .. }
            | Self::Invalid { at, .. }
            | Self::InvalidList { at, .. }
            | Self::Crd { at, .. }
            | Self::UnknownKind { at, .. }
            | Self::NamespaceOnClusterScoped { at, .. } => Some(&at.path),
            Self::Duplicate(d) => Some(&d.first.path),
            Self::Step { dir, .. } => Some(dir),
            Self::Unhandled { dir, file, .. } => Some(file.as_deref().unwrap_or(dir)),
        }
    }

    /// Fills in the path of an error cached without one.
    pub(crate) fn set_path(&mut self, new: &str) {
        match self {
            Self::Options(_) | Self::Duplicate(_) | Self::Step { .. } | Self::Unhandled { .. } => {}
            Self::TooLarge { path, .. }
            | Self::NotUtf8 { path, .. }
            | Self::Symlink { path, .. } => new.clone_into(path),
            Self::Syntax { at, .. }
            | Self::TooComplex { at, .. }
            | Self::DuplicateKey { at, .. }
            | Self::UnsupportedKey { at, .. }
            | Self::UnsupportedValue { at, .. }
            | Self::UndefinedAlias { at, .. }
            | Self::AliasExpansion { at, .. }
            | Self::ParserFailure { at, .. }
            | Self::DuplicateListKey { at, .. }
            | Self::Invalid { at, .. }
            | Self::InvalidList { at, .. }
            | Self::Crd { at, .. }
            | Self::UnknownKind { at, .. }
            | Self::NamespaceOnClusterScoped { at, .. } => new.clone_into(&mut at.path),
        }
    }
}

/// All the problems of one render, in a deterministic order (by file, then
/// document; then the checks that need the whole snapshot: CRDs, kinds and
/// scopes, duplicates).
///
/// Displays one error per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RenderErrors(pub Vec<RenderError>);

impl fmt::Display for RenderErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl RenderErrors {
    /// The errors.
    pub fn iter(&self) -> std::slice::Iter<'_, RenderError> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never the case for an `Err` of a render).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a RenderErrors {
    type Item = &'a RenderError;
    type IntoIter = std::slice::Iter<'a, RenderError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for RenderErrors {
    type Item = RenderError;
    type IntoIter = std::vec::IntoIter<RenderError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
