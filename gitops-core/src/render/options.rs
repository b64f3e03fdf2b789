//! [`RenderOptions`] and their validation.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::step::Rendering;
use crate::key::GroupKind;
use crate::scope::{KindRegistry, Scope};
use crate::validate;

/// The default for [`RenderOptions::max_file_bytes`]: 4 MiB.
///
/// Generous for hand-written and generated manifests alike: the largest file
/// of kube-prometheus (`grafana-dashboardDefinitions.yaml`) is about 1 MiB,
/// its largest CRD about 0.5 MiB, and the API server refuses objects over
/// 1.5 MiB anyway.
pub const DEFAULT_MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The default for [`RenderOptions::max_expanded_bytes`]: 64 MiB.
pub const DEFAULT_MAX_EXPANDED_BYTES: usize = 64 * 1024 * 1024;

/// The default for [`RenderOptions::max_expansion_ratio`]: 10.
pub const DEFAULT_MAX_EXPANSION_RATIO: usize = 10;

/// The most threads a render parses on by default (see
/// [`RenderOptions::parse_threads`]).
pub const MAX_PARSE_THREADS: usize = 8;

/// How many bytes of files not in the cache a render needs before it
/// parses them on several threads: 256 KiB, about 20 ms of parsing, where
/// starting a thread costs tens of microseconds.
pub const PARALLEL_PARSE_MIN_BYTES: usize = 256 * 1024;

/// How a [`Snapshot`](crate::Snapshot) is rendered.
///
/// ```
/// use gitops_core::RenderOptions;
/// use gitops_core::{GroupKind, Scope};
/// let options = RenderOptions::default()
///     .with_default_namespace("shop")
///     .include("apps/**")
///     .exclude("**/*-test.yaml")
///     .register_kind(GroupKind::new("example.com", "Widget"), Scope::Namespaced);
/// assert!(options.validate().is_ok());
/// assert!(RenderOptions::default().include("a/[").validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderOptions {
    /// The namespace given to namespaced objects that declare none
    /// (default `"default"`).
    pub default_namespace: String,
    /// Globs a path must match (at least one) to be rendered; empty means
    /// every path. `*` and `?` do not cross `/`; `**` does.
    pub include: Vec<String>,
    /// Globs whose matching paths are not rendered (same syntax).
    pub exclude: Vec<String>,
    /// Files larger than this are refused with
    /// [`RenderError::TooLarge`](super::RenderError::TooLarge)
    /// (default [`DEFAULT_MAX_FILE_BYTES`]).
    pub max_file_bytes: usize,
    /// Budget of a YAML file's size once its aliases (`*name`) are expanded
    /// (default [`DEFAULT_MAX_EXPANDED_BYTES`]). The size counts each node's
    /// text plus 16 bytes per node, about what the loaded value takes; it is
    /// computed while scanning, without expanding anything. Over the budget
    /// the file is refused with
    /// [`RenderError::AliasExpansion`](super::RenderError::AliasExpansion).
    pub max_expanded_bytes: usize,
    /// Budget of a YAML file's expanded size relative to its size without
    /// alias expansion (same measure; default
    /// [`DEFAULT_MAX_EXPANSION_RATIO`]). Applies only above 1 MiB of
    /// expanded size, so small files may use anchors freely.
    pub max_expansion_ratio: usize,
    /// Whether symbolic links in the snapshot are skipped (and listed in
    /// [`DesiredState::skipped_symlinks`](crate::DesiredState::skipped_symlinks))
    /// rather than refused with
    /// [`RenderError::Symlink`](super::RenderError::Symlink) (default
    /// `false`: refused). Links whose path the skip rules or globs exclude
    /// are ignored either way.
    pub skip_symlinks: bool,
    /// Extra kinds (for CRDs installed outside the rendered snapshot).
    /// Built-in kinds keep their built-in scope.
    pub kinds: KindRegistry,
    /// Which folders are rendered by a [`RenderStep`](super::RenderStep)
    /// (default [`Rendering::Auto`]: each folder a registered step handles).
    pub rendering: Rendering,
    /// Labels set on every rendered object, replacing a declared value
    /// (default none). The [`Reconciler`](crate::Reconciler) sets its owner
    /// label ([`OWNER_LABEL`](crate::OWNER_LABEL)) this way: the objects it
    /// plans and applies are then the ones rendered, shared, not labelled
    /// copies of them.
    pub labels: BTreeMap<String, String>,
    /// How many threads parse files at once (default `None`: as many as
    /// [`std::thread::available_parallelism`] says, at most
    /// [`MAX_PARSE_THREADS`]). A render parses on threads of its own only
    /// when it has at least [`PARALLEL_PARSE_MIN_BYTES`] of files not in
    /// its cache; otherwise, and with `Some(1)`, it parses on the calling
    /// thread. The result is the same whatever the number: the same
    /// desired state, the same errors in the same order.
    pub parse_threads: Option<NonZeroUsize>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            default_namespace: "default".to_owned(),
            include: Vec::new(),
            exclude: Vec::new(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_expanded_bytes: DEFAULT_MAX_EXPANDED_BYTES,
            max_expansion_ratio: DEFAULT_MAX_EXPANSION_RATIO,
            skip_symlinks: false,
            kinds: KindRegistry::empty(),
            rendering: Rendering::Auto,
            labels: BTreeMap::new(),
            parse_threads: None,
        }
    }
}

/// Why [`RenderOptions`] are not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// An include or exclude pattern is not a valid glob.
    #[error("invalid glob {pattern:?}: {message}")]
    InvalidGlob {
        /// The pattern given.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// A label of [`RenderOptions::labels`] has an invalid key or value.
    #[error("invalid label {key}={value:?}: {reason}")]
    InvalidLabel {
        /// The label's key.
        key: String,
        /// The label's value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The default namespace is not an RFC 1123 label.
    #[error("invalid default namespace {namespace:?}: {reason}")]
    InvalidDefaultNamespace {
        /// The namespace given.
        namespace: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl RenderOptions {
    /// Sets [`RenderOptions::default_namespace`].
    pub fn with_default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.default_namespace = namespace.into();
        self
    }

    /// Adds an include glob.
    pub fn include(mut self, glob: impl Into<String>) -> Self {
        self.include.push(glob.into());
        self
    }

    /// Adds an exclude glob.
    pub fn exclude(mut self, glob: impl Into<String>) -> Self {
        self.exclude.push(glob.into());
        self
    }

    /// Sets [`RenderOptions::max_file_bytes`].
    pub fn with_max_file_bytes(mut self, limit: usize) -> Self {
        self.max_file_bytes = limit;
        self
    }

    /// Sets [`RenderOptions::max_expanded_bytes`].
    pub fn with_max_expanded_bytes(mut self, limit: usize) -> Self {
        self.max_expanded_bytes = limit;
        self
    }

    /// Sets [`RenderOptions::max_expansion_ratio`].
    pub fn with_max_expansion_ratio(mut self, ratio: usize) -> Self {
        self.max_expansion_ratio = ratio;
        self
    }

    /// Sets [`RenderOptions::rendering`].
    pub fn with_rendering(mut self, rendering: Rendering) -> Self {
        self.rendering = rendering;
        self
    }

    /// Sets [`RenderOptions::skip_symlinks`].
    pub fn with_skip_symlinks(mut self, skip: bool) -> Self {
        self.skip_symlinks = skip;
        self
    }

    /// Sets [`RenderOptions::parse_threads`]; `0` means the default (as
    /// many as the machine has, at most [`MAX_PARSE_THREADS`]), `1` parses
    /// on the calling thread.
    pub fn with_parse_threads(mut self, threads: usize) -> Self {
        self.parse_threads = NonZeroUsize::new(threads);
        self
    }

    /// How many threads parse at once: [`RenderOptions::parse_threads`], or
    /// the machine's parallelism capped at [`MAX_PARSE_THREADS`].
    pub(crate) fn parse_thread_count(&self) -> usize {
        self.parse_threads.map_or_else(
            || {
                std::thread::available_parallelism()
                    .map_or(1, NonZeroUsize::get)
                    .min(MAX_PARSE_THREADS)
            },
            NonZeroUsize::get,
        )
    }

    pub(crate) fn scan_limits(&self) -> super::scan::Limits {
        super::scan::Limits {
            max_expanded: self.max_expanded_bytes as u64,
            ratio: self.max_expansion_ratio as u64,
        }
    }

    /// Registers a kind defined outside the rendered snapshot.
    pub fn register_kind(mut self, kind: GroupKind, scope: Scope) -> Self {
        self.kinds.register(kind, scope);
        self
    }

    /// Sets the label `key` to `value` on every rendered object (see
    /// [`RenderOptions::labels`]).
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Checks the globs, the default namespace and the labels.
    pub fn validate(&self) -> Result<(), OptionsError> {
        self.compile().map(|_| ())
    }

    pub(crate) fn compile(&self) -> Result<Globs, OptionsError> {
        validate::dns1123_label(&self.default_namespace).map_err(|reason| {
            OptionsError::InvalidDefaultNamespace {
                namespace: self.default_namespace.clone(),
                reason,
            }
        })?;
        for (key, value) in &self.labels {
            validate::qualified_name(key)
                .and_then(|()| validate::label_value(value))
                .map_err(|reason| OptionsError::InvalidLabel {
                    key: key.clone(),
                    value: value.clone(),
                    reason,
                })?;
        }
        let include = if self.include.is_empty() {
            None
        } else {
            Some(glob_set(&self.include)?)
        };
        Ok(Globs {
            include,
            exclude: glob_set(&self.exclude)?,
            exclude_patterns: self.exclude.clone(),
        })
    }
}

fn glob(pattern: &str) -> Result<Glob, OptionsError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| OptionsError::InvalidGlob {
            pattern: pattern.to_owned(),
            message: e.kind().to_string(),
        })
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, OptionsError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(glob(p)?);
    }
    b.build().map_err(|e| OptionsError::InvalidGlob {
        pattern: patterns.join(", "),
        message: e.to_string(),
    })
}

/// Compiled include/exclude globs.
#[derive(Clone, Debug)]
pub(crate) struct Globs {
    include: Option<GlobSet>,
    exclude: GlobSet,
    exclude_patterns: Vec<String>,
}

impl Globs {
    /// `None` if the path passes; otherwise why not.
    pub(crate) fn check(&self, path: &str) -> Option<super::SkipReason> {
        if let Some(include) = &self.include
            && !include.is_match(path)
        {
            return Some(super::SkipReason::NotIncluded);
        }
        if self.exclude.is_empty() {
            return None;
        }
        let hit = self.exclude.matches(path).into_iter().min()?;
        Some(super::SkipReason::Excluded {
            pattern: self.exclude_patterns.get(hit).cloned().unwrap_or_default(),
        })
    }
}
