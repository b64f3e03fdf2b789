//! Rendering plain manifests: [`Snapshot`] → [`DesiredState`].
//!
//! Every file of the snapshot that is a manifest by the rules of
//! [`SkipReason`] (`.yaml`, `.yml`, `.json`; not hidden, not Kustomize or
//! Helm files; matching the include/exclude globs of the
//! [`RenderOptions`]) is parsed:
//!
//! - YAML files may hold several documents (`---`); empty documents are
//!   skipped. A JSON file holds one value.
//! - A document whose `kind` ends in `List` and that has `items`
//!   (`List`, `ConfigMapList`, ...) is flattened into its items.
//! - Each object is validated ([`Object::new`]); duplicate mapping keys,
//!   non-scalar keys, custom tags, merge keys and non-finite numbers are
//!   refused.
//! - Before `serde_yaml` loads a YAML file, a linear-time scan of its event
//!   stream (with `granit-parser`) refuses syntax errors, nesting deeper
//!   than 128 levels, aliases to undefined anchors, and aliases that expand
//!   the file beyond [`RenderOptions::max_expanded_bytes`] or
//!   [`RenderOptions::max_expansion_ratio`]; so any file up to
//!   [`RenderOptions::max_file_bytes`] renders or fails in time and memory
//!   linear in its size, and no parser panic reaches the caller (one would
//!   be reported as [`RenderError::ParserFailure`]).
//! - Associative lists with a key twice and sets with a value twice (two
//!   `env` entries `A`, two ports `80/TCP`) are refused
//!   ([`RenderError::DuplicateListKey`], by
//!   [`gitops_diff::duplicate_list_keys`] with the built-in list table and
//!   the snapshot's CRDs): the API server refuses them, and such an object
//!   would never converge.
//! - Symbolic links are refused ([`RenderError::Symlink`]) unless
//!   [`RenderOptions::skip_symlinks`]; skipped ones are listed in
//!   [`DesiredState::skipped_symlinks`] and the plan, never dropped
//!   silently.
//!
//! Then, with every CRD of the snapshot known ([`KindRegistry::add_crd`]),
//! each object's kind must be known (built-in, defined by a CRD, or
//! registered in the options); namespaced objects without a namespace get
//! [`RenderOptions::default_namespace`]; cluster-scoped objects must not set
//! one; and no object may be declared twice.
//!
//! Rendering collects every error of the snapshot ([`RenderErrors`]) and
//! returns no partial state. It is deterministic: files are read in path
//! order and the result is keyed by [`ObjectKey`](crate::ObjectKey), so the
//! same snapshot always gives the same desired state.
//!
//! ```
//! use gitops_core::{render, RenderOptions};
//! use gitops_core::Snapshot;
//!
//! let snapshot = Snapshot::from_files([
//!     ("web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n\
//!                   apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"),
//!     ("README.md", "not a manifest"),
//! ]);
//! let desired = render(&snapshot, &RenderOptions::default().with_default_namespace("shop")).unwrap();
//! let keys: Vec<String> = desired.keys().map(|k| k.to_string()).collect();
//! assert_eq!(keys, ["Service/shop/web", "Deployment.apps/shop/web"]);
//!
//! let broken = Snapshot::from_files([("a.yaml", "kind: ConfigMap\nmetadata: {name: a}\n")]);
//! let errors = render(&broken, &RenderOptions::default()).unwrap_err();
//! assert_eq!(errors.to_string(), "a.yaml#0 (line 1): missing required field `apiVersion`");
//! ```
//!
//! # Provenance
//!
//! Every object carries a [`Provenance`]: the file, the index of the
//! document in the file (0-based, empty documents included), the index in
//! the `items` of a `List`, and the 1-based line the document starts at: the
//! line of its `---` marker, or its first line that is not blank, a comment
//! or a directive when it has no marker. The lines are found by scanning the
//! text for `---`/`...` at column 0, in step with the parser's documents;
//! YAML forbids such lines inside any scalar (block scalars included), so
//! the scan finds the documents the parser finds. Where the two could still
//! disagree (a file of comments only) no line is given rather than a wrong
//! one. Parse errors also carry the parser's own line and column
//! ([`Location`]).
//!
//! # Caching
//!
//! A [`Renderer`] keeps the parsed and validated documents of each file,
//! keyed by its [`BlobId`] (and format), so rendering the next
//! revision parses only the files whose content changed. Namespace
//! defaulting and scope checks depend on the whole snapshot and are redone
//! on every render; skip rules and globs depend on the path only and are
//! cheap, so they are not cached. The cache holds exactly the blobs of the
//! last rendered snapshot: entries the last snapshot did not use are dropped,
//! so its size is bounded by one snapshot.

mod error;
mod options;
mod parse;
mod scan;
mod skip;
mod step;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub use error::{Location, RenderError, RenderErrors, SourceFormat};
pub use options::{
    DEFAULT_MAX_EXPANDED_BYTES, DEFAULT_MAX_EXPANSION_RATIO, DEFAULT_MAX_FILE_BYTES,
    MAX_PARSE_THREADS, OptionsError, PARALLEL_PARSE_MIN_BYTES, RenderOptions,
};
pub use skip::{SkipReason, skip_reason, skip_reason_in};
pub use step::{RenderStep, Rendering, StepError, StepObject};

use crate::desired::{DesiredObject, DesiredState, Provenance};
use crate::object::Object;
use crate::scope::{KindRegistry, Scope};
use crate::snapshot::{BlobId, Snapshot, SpecialEntry};

use gitops_diff::{CrdLists, DuplicateListKey, LayeredLists, duplicate_list_keys};

use options::Globs;
use parse::ParsedFile;

/// Renders a snapshot with the given options (no cache; see [`Renderer`]).
pub fn render(snapshot: &Snapshot, options: &RenderOptions) -> Result<DesiredState, RenderErrors> {
    let mut renderer = Renderer::new(options.clone()).map_err(|e| RenderErrors(vec![e.into()]))?;
    renderer.keep = false;
    renderer.render(snapshot)
}

/// What the last [`Renderer::render`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderStats {
    /// Files in the snapshot.
    pub files: usize,
    /// Files skipped by a [`SkipReason`].
    pub skipped: usize,
    /// Files parsed (not found in the cache).
    pub parsed: usize,
    /// Files whose parse was reused from the cache.
    pub reused: usize,
    /// Bytes of the files rendered (not skipped).
    pub bytes: usize,
    /// YAML/JSON documents read, empty ones included.
    pub documents: usize,
    /// Objects in the desired state (0 when the render failed).
    pub objects: usize,
    /// Folders rendered by a [`RenderStep`].
    pub step_folders: usize,
    /// Objects the steps returned.
    pub step_objects: usize,
}

/// Where a parsed object comes from: its file's blob and format, and its
/// entry in the parse.
type Origin = (BlobId, SourceFormat, usize);

/// What a file's parse is cached by: its blob, and the format its path
/// gives it.
type FileKey = (BlobId, SourceFormat);

fn format_of(path: &str) -> SourceFormat {
    if skip::is_json(path) {
        SourceFormat::Json
    } else {
        SourceFormat::Yaml
    }
}

fn file_key(path: &str, blob: &crate::snapshot::Blob) -> FileKey {
    (blob.id.clone(), format_of(path))
}

/// Sets [`RenderOptions::labels`] on an object just built (not shared yet,
/// so in place).
fn stamp(options: &RenderOptions, object: &mut Object) -> Result<(), crate::object::ObjectError> {
    for (key, value) in &options.labels {
        object.set_label(key, value)?;
    }
    Ok(())
}

/// A file parsed, with [`RenderOptions::labels`] set on its objects.
fn parse_stamped(options: &RenderOptions, data: &[u8], format: SourceFormat) -> ParsedFile {
    let mut parsed = parse::parse_file(data, format, options.scan_limits());
    for entry in &mut parsed.entries {
        if let Ok(object) = &mut entry.result
            && let Err(source) = stamp(options, object)
        {
            entry.result = Err(Box::new(RenderError::Invalid {
                at: entry.at.clone(),
                source,
            }));
        }
    }
    parsed
}

/// `f` of every item, in order, computed on up to `threads` scoped threads
/// that take the next item as they finish one (the calling thread is one
/// of them). Whatever a thread could not do (it could not be started, or
/// it panicked) is done on the calling thread afterwards, so the result is
/// always complete and in order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, work).ok())
            .collect();
        for (i, r) in work() {
            slots[i] = Some(r);
        }
        for helper in helpers {
            for (i, r) in helper.join().unwrap_or_default() {
                slots[i] = Some(r);
            }
        }
    });
    slots
        .into_iter()
        .zip(items)
        .map(|(slot, item)| slot.unwrap_or_else(|| f(item)))
        .collect()
}

/// A renderer with a cache of parsed files for incremental re-rendering.
///
/// ```
/// use gitops_core::{Renderer, RenderOptions};
/// use gitops_core::Snapshot;
///
/// let mut renderer = Renderer::new(RenderOptions::default()).unwrap();
/// let cm = |n: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}}}\n");
/// let v1 = Snapshot::from_files([("a.yaml", cm("a")), ("b.yaml", cm("b"))]);
/// renderer.render(&v1).unwrap();
/// assert_eq!((renderer.stats().parsed, renderer.stats().reused), (2, 0));
/// let v2 = Snapshot::from_files([("a.yaml", cm("a")), ("b.yaml", cm("b2"))]);
/// let desired = renderer.render(&v2).unwrap();
/// assert_eq!((renderer.stats().parsed, renderer.stats().reused), (1, 1));
/// assert_eq!(desired.len(), 2);
/// assert_eq!(renderer.cache_len(), 2);
/// ```
#[derive(Debug)]
pub struct Renderer {
    options: RenderOptions,
    globs: Globs,
    steps: Vec<Arc<dyn RenderStep>>,
    cache: HashMap<(BlobId, SourceFormat), Arc<ParsedFile>>,
    /// Objects of cached files with the default namespace already set (the
    /// copy-on-write of `set_namespace` is then paid once per blob, not per
    /// render); bounded like `cache`, to the last snapshot.
    defaulted: HashMap<Origin, Object>,
    /// Whether parses are kept in `cache` for the next render (not by
    /// [`render`], which renders once: keeping them would only delay
    /// freeing them).
    keep: bool,
    stats: RenderStats,
}

impl Renderer {
    /// A renderer; fails if the options do not validate.
    pub fn new(options: RenderOptions) -> Result<Self, OptionsError> {
        let globs = options.compile()?;
        Ok(Self {
            options,
            globs,
            steps: Vec::new(),
            cache: HashMap::new(),
            defaulted: HashMap::new(),
            keep: true,
            stats: RenderStats::default(),
        })
    }

    /// With a [`RenderStep`] for the folders it handles (see
    /// [`Rendering`]); steps are asked in the order they were added.
    pub fn with_step(mut self, step: Arc<dyn RenderStep>) -> Self {
        self.add_step(step);
        self
    }

    /// Adds a [`RenderStep`] (see [`Renderer::with_step`]).
    pub fn add_step(&mut self, step: Arc<dyn RenderStep>) {
        self.steps.push(step);
    }

    /// The registered steps, in the order they are asked.
    pub fn steps(&self) -> impl ExactSizeIterator<Item = &dyn RenderStep> {
        self.steps.iter().map(|s| &**s)
    }

    /// The folders of `dir` (`""`: the whole snapshot) a step renders, with
    /// the step's name, by [`RenderOptions::rendering`]; errors for folders
    /// that should be rendered by a step and are not
    /// ([`RenderError::Unhandled`]).
    ///
    /// A caller that snapshots only a folder of a repository uses this to
    /// learn whether it needs the whole repository: a Kustomize overlay
    /// reads bases outside its folder.
    pub fn step_folders(
        &self,
        snapshot: &Snapshot,
        dir: &str,
    ) -> Result<Vec<(String, String)>, RenderErrors> {
        let mut errors = Vec::new();
        let roots = self.step_roots(snapshot, dir.trim_matches('/'), &mut errors);
        if errors.is_empty() {
            Ok(roots
                .into_iter()
                .map(|(d, i)| (d, self.steps[i].name().to_owned()))
                .collect())
        } else {
            Err(RenderErrors(errors))
        }
    }

    /// The options.
    pub fn options(&self) -> &RenderOptions {
        &self.options
    }

    /// Number of files whose parse is cached.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Drops the cache.
    pub fn clear_cache(&mut self) {
        self.cache.clear();
        self.defaulted.clear();
    }

    /// What the last render did.
    pub fn stats(&self) -> RenderStats {
        self.stats
    }

    /// Why a file of `snapshot` is not rendered: the rules of [`skip_reason_in`]
    /// then the include/exclude globs; `None` if it is rendered.
    pub fn skip_reason(&self, snapshot: &Snapshot, path: &str) -> Option<SkipReason> {
        skip_reason_in(snapshot, path).or_else(|| self.globs.check(path))
    }

    /// Renders a snapshot, reusing the parse of every file whose blob was in
    /// the previous snapshot. All errors are collected; on any error no
    /// desired state is returned.
    pub fn render(&mut self, snapshot: &Snapshot) -> Result<DesiredState, RenderErrors> {
        self.render_dir(snapshot, "")
    }

    /// Renders the folder `dir` of a snapshot (`""`: all of it), like
    /// [`Renderer::render`]. Provenance paths stay relative to the snapshot
    /// root, and steps may read files outside `dir` (a Kustomize overlay's
    /// bases): so a caller snapshots the whole repository and renders the
    /// overlay's folder.
    pub fn render_dir(
        &mut self,
        snapshot: &Snapshot,
        dir: &str,
    ) -> Result<DesiredState, RenderErrors> {
        let dir = dir.trim_matches('/');
        let mut stats = RenderStats::default();
        let mut errors = Vec::new();
        let roots = self.step_roots(snapshot, dir, &mut errors);
        // About an object a file: sized once, not regrown (a large regrowth
        // makes the allocator consolidate its small free chunks).
        let mut objects: Vec<(Provenance, Object)> = Vec::with_capacity(snapshot.len());
        // Where each parsed object comes from (blob, format, entry), with
        // its duplicate list keys by the built-in table; `None` for the
        // objects of render steps.
        let mut origins: Vec<Option<(Origin, Vec<DuplicateListKey>)>> =
            Vec::with_capacity(snapshot.len());
        let mut files = Vec::with_capacity(snapshot.len());
        for (path, blob) in snapshot.files() {
            if !is_under(path, dir) {
                continue;
            }
            stats.files += 1;
            if roots.iter().any(|(root, _)| is_under(path, root))
                || self.skip_reason(snapshot, path).is_some()
            {
                stats.skipped += 1;
                continue;
            }
            files.push((path, blob));
        }
        let fresh = self.parse_new(&files, &mut stats);
        let mut cache = HashMap::with_capacity(if self.keep { files.len() } else { 0 });
        for (path, blob) in files {
            let size = blob.data.len();
            if size > self.options.max_file_bytes {
                errors.push(RenderError::TooLarge {
                    path: path.to_owned(),
                    size,
                    limit: self.options.max_file_bytes,
                });
                continue;
            }
            stats.bytes += size;
            let key = file_key(path, blob);
            let Some(parsed) = fresh.get(&key).or_else(|| self.cache.get(&key)) else {
                continue; // parse_new parsed every file not in the cache
            };
            stats.documents += parsed.documents;
            for (index, entry) in parsed.entries.iter().enumerate() {
                match &entry.result {
                    Ok(object) => {
                        let mut at = entry.at.clone();
                        path.clone_into(&mut at.path);
                        objects.push((at, object.clone()));
                        origins.push(Some((
                            (key.0.clone(), key.1, index),
                            entry.builtin_duplicates.clone(),
                        )));
                    }
                    Err(e) => {
                        let mut e = RenderError::clone(e);
                        e.set_path(path);
                        errors.push(e);
                    }
                }
            }
            if self.keep {
                cache.insert(key, Arc::clone(parsed));
            }
        }
        self.cache = cache;
        for (root, i) in &roots {
            let step = &self.steps[*i];
            stats.step_folders += 1;
            match step.render(snapshot, root) {
                Ok(built) => {
                    stats.step_objects += built.len();
                    for StepObject { value, provenance } in built {
                        let at = provenance.with_renderer(Some(step.name().to_owned()));
                        match Object::new(value)
                            .and_then(|mut o| stamp(&self.options, &mut o).map(|()| o))
                        {
                            Ok(object) => {
                                objects.push((at, object));
                                origins.push(None);
                            }
                            Err(source) => errors.push(RenderError::Invalid { at, source }),
                        }
                    }
                }
                Err(source) => errors.push(RenderError::Step {
                    renderer: step.name().to_owned(),
                    dir: root.clone(),
                    source: StepError::new(source),
                }),
            }
        }

        let mut desired = DesiredState::new(snapshot.revision().cloned());
        self.symlinks(snapshot, dir, &roots, &mut desired, &mut errors);
        let kinds = self.kinds(&objects, &mut errors);
        let crds = Arc::new(crd_lists(&objects));
        let lists = LayeredLists::new(vec![crds.clone()]);
        let mut defaulted = HashMap::new();
        // What is placed, and the errors found on the way, each with how
        // many objects were placed before it: the errors are reported in
        // the order a placement one object at a time finds them.
        let mut placed = Vec::with_capacity(objects.len());
        let mut found_errors: Vec<(usize, RenderError)> = Vec::new();
        for ((at, mut object), origin) in objects.into_iter().zip(origins) {
            let (origin, checked) = origin.unzip();
            let kind = object.group_kind();
            match kinds.scope(&kind) {
                None => {
                    found_errors.push((
                        placed.len(),
                        RenderError::UnknownKind {
                            api_version: object.api_version().to_owned(),
                            name: object.name().to_owned(),
                            kind,
                            at,
                        },
                    ));
                    continue;
                }
                Some(Scope::Cluster) => {
                    if let Some(ns) = object.namespace() {
                        let namespace = ns.to_owned();
                        let mut key = object.key().clone();
                        key.namespace = None;
                        found_errors.push((
                            placed.len(),
                            RenderError::NamespaceOnClusterScoped {
                                at,
                                key,
                                kind,
                                namespace,
                            },
                        ));
                        continue;
                    }
                }
                Some(Scope::Namespaced) => {
                    if object.namespace().is_none() {
                        if let Some(done) = origin.as_ref().and_then(|o| self.defaulted.get(o)) {
                            object = done.clone();
                        } else if let Err(source) =
                            object.set_namespace(Some(&self.options.default_namespace))
                        {
                            found_errors.push((placed.len(), RenderError::Invalid { at, source }));
                            continue;
                        }
                        if let Some(origin) = origin {
                            defaulted.insert(origin, object.clone());
                        }
                    }
                }
            }
            // Namespace defaulting changes no list: the check made at
            // parse time stands unless a CRD here describes the kind.
            let found = match checked {
                Some(found) if !crds.describes(&kind) => found,
                _ => duplicate_list_keys(&kind, object.as_value(), &lists),
            };
            if !found.is_empty() {
                let key = object.key().clone();
                let before = placed.len();
                found_errors.extend(found.into_iter().map(|duplicate| {
                    let e = RenderError::DuplicateListKey {
                        at: at.clone(),
                        key: key.clone(),
                        duplicate,
                    };
                    (before, e)
                }));
                continue;
            }
            placed.push(DesiredObject {
                object,
                provenance: at,
            });
        }
        let mut duplicates = desired.insert_all(placed).into_iter().peekable();
        for (before, e) in found_errors {
            while let Some((_, duplicate)) = duplicates.next_if(|(i, _)| *i < before) {
                errors.push(duplicate.into());
            }
            errors.push(e);
        }
        errors.extend(duplicates.map(|(_, duplicate)| duplicate.into()));
        desired.set_kinds(kinds);
        self.defaulted = defaulted;
        if !errors.is_empty() {
            self.stats = stats;
            return Err(RenderErrors(errors));
        }
        stats.objects = desired.len();
        self.stats = stats;
        Ok(desired)
    }

    /// Renders `snapshot` as [`Renderer::render_dir`] does, from `previous`,
    /// the desired state this renderer rendered from an earlier snapshot of
    /// the same folder, and `changed`, the paths (relative to the snapshot
    /// root, as [`Source::changed_paths`](crate::Source::changed_paths)
    /// lists them) whose content differs between the two snapshots. Only
    /// the changed files are read and checked, and only their objects are
    /// replaced: the cost is that of the change, and the result is the one
    /// a full render gives.
    ///
    /// It renders in full (and so reports exactly the errors a full render
    /// reports) when a change can affect other files or when anything is
    /// wrong: render steps are registered or asked for, the snapshot holds
    /// symbolic links or other special entries, a changed path is a
    /// Kustomize or Helm file, a changed file declares or declared a
    /// CustomResourceDefinition (kinds, scopes and list semantics of every
    /// object depend on them), or a changed file does not render.
    ///
    /// ```
    /// use std::collections::BTreeSet;
    /// use gitops_core::{Renderer, RenderOptions, Snapshot};
    ///
    /// let mut renderer = Renderer::new(RenderOptions::default()).unwrap();
    /// let cm = |n: &str, v: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}}}\ndata: {{k: {v}}}\n");
    /// let v1 = Snapshot::from_files([("a.yaml", cm("a", "1")), ("b.yaml", cm("b", "1"))]);
    /// let previous = renderer.render(&v1).unwrap();
    /// let v2 = Snapshot::from_files([("a.yaml", cm("a", "1")), ("b.yaml", cm("b", "2"))]);
    /// let changed = BTreeSet::from(["b.yaml".to_owned()]);
    /// let desired = renderer.render_changed(previous, &v2, "", &changed).unwrap();
    /// assert_eq!(desired, renderer.render(&v2).unwrap());
    /// ```
    pub fn render_changed(
        &mut self,
        previous: DesiredState,
        snapshot: &Snapshot,
        dir: &str,
        changed: &BTreeSet<String>,
    ) -> Result<DesiredState, RenderErrors> {
        let dir = dir.trim_matches('/');
        match self.try_render_changed(previous, snapshot, dir, changed) {
            Some(desired) => Ok(desired),
            None => self.render_dir(snapshot, dir),
        }
    }

    /// [`Renderer::render_changed`] when the change stays within its files;
    /// `None` when a full render is needed.
    fn try_render_changed(
        &mut self,
        mut desired: DesiredState,
        snapshot: &Snapshot,
        dir: &str,
        changed: &BTreeSet<String>,
    ) -> Option<DesiredState> {
        let is_crd =
            |k: &crate::key::ObjectKey| k.is("apiextensions.k8s.io", "CustomResourceDefinition");
        let contained = self.steps.is_empty()
            && !matches!(self.options.rendering, Rendering::Step(_))
            && snapshot.special_entries().next().is_none()
            && desired.skipped_symlinks().len() == 0
            && changed.iter().all(|p| {
                !matches!(
                    skip_reason(p),
                    Some(SkipReason::Kustomization | SkipReason::HelmChartFile)
                )
            });
        if !contained {
            return None;
        }
        let gone: Vec<crate::key::ObjectKey> = changed
            .iter()
            .flat_map(|p| desired.declared_in(p))
            .cloned()
            .collect();
        if gone.iter().any(is_crd) {
            return None;
        }
        let mut stats = RenderStats {
            files: snapshot.files().filter(|(p, _)| is_under(p, dir)).count(),
            ..RenderStats::default()
        };
        let mut objects: Vec<(Provenance, Object)> = Vec::new();
        for path in changed {
            let Some(blob) = snapshot.get(path) else {
                continue; // deleted
            };
            if !is_under(path, dir) || self.skip_reason(snapshot, path).is_some() {
                continue;
            }
            if blob.data.len() > self.options.max_file_bytes {
                return None;
            }
            let parsed = self.parse_cached(path, blob, &mut stats);
            stats.bytes += blob.data.len();
            stats.documents += parsed.documents;
            for entry in &parsed.entries {
                let object = entry.result.as_ref().ok()?;
                let mut at = entry.at.clone();
                path.clone_into(&mut at.path);
                objects.push((at, object.clone()));
            }
        }
        if objects.iter().any(|(_, o)| is_crd(o.key())) {
            return None;
        }
        // Custom resources' lists follow the CRDs of the whole state.
        let builtin = KindRegistry::builtin();
        let lists = if objects
            .iter()
            .all(|(_, o)| builtin.is_builtin(&o.group_kind()))
        {
            list_semantics(&[])
        } else {
            let crds: Vec<(Provenance, Object)> = desired
                .iter()
                .filter(|(k, _)| is_crd(k))
                .map(|(_, d)| (d.provenance.clone(), d.object.clone()))
                .collect();
            list_semantics(&crds)
        };
        for k in &gone {
            desired.remove(k);
        }
        for (at, mut object) in objects {
            let kind = object.group_kind();
            match desired.kinds().scope(&kind)? {
                Scope::Cluster => {
                    if object.namespace().is_some() {
                        return None;
                    }
                }
                Scope::Namespaced => {
                    if object.namespace().is_none() {
                        object
                            .set_namespace(Some(&self.options.default_namespace))
                            .ok()?;
                    }
                }
            }
            if !duplicate_list_keys(&kind, object.as_value(), &lists).is_empty() {
                return None;
            }
            desired
                .insert(DesiredObject {
                    object,
                    provenance: at,
                })
                .ok()?;
        }
        desired.set_revision(snapshot.revision().cloned());
        stats.objects = desired.len();
        self.stats = stats;
        Some(desired)
    }

    /// The parse of a file: from the cache of the last render, else parsed
    /// now; counted in `stats`.
    fn parse_cached(
        &self,
        path: &str,
        blob: &crate::snapshot::Blob,
        stats: &mut RenderStats,
    ) -> Arc<ParsedFile> {
        if let Some(p) = self.cache.get(&file_key(path, blob)) {
            stats.reused += 1;
            return Arc::clone(p);
        }
        stats.parsed += 1;
        Arc::new(parse_stamped(&self.options, &blob.data, format_of(path)))
    }

    /// Parses the files of `files` that are not in the cache of the last
    /// render (each blob once), on up to
    /// [`RenderOptions::parse_threads`] threads; files over
    /// [`RenderOptions::max_file_bytes`] are left out. Counted in `stats`:
    /// a file is either parsed or reused.
    fn parse_new(
        &self,
        files: &[(&str, &crate::snapshot::Blob)],
        stats: &mut RenderStats,
    ) -> HashMap<FileKey, Arc<ParsedFile>> {
        let mut jobs: Vec<(FileKey, &[u8])> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut reused = 0;
        for (path, blob) in files {
            if blob.data.len() > self.options.max_file_bytes {
                continue;
            }
            let key = file_key(path, blob);
            if self.cache.contains_key(&key) || !seen.insert(key.clone()) {
                reused += 1;
            } else {
                jobs.push((key, &blob.data));
            }
        }
        stats.parsed += jobs.len();
        stats.reused += reused;
        let bytes: usize = jobs.iter().map(|(_, data)| data.len()).sum();
        let threads = if bytes < PARALLEL_PARSE_MIN_BYTES {
            1
        } else {
            self.options.parse_thread_count().min(jobs.len())
        };
        let options = &self.options;
        let parse = |(key, data): &(FileKey, &[u8])| parse_stamped(options, data, key.1);
        let parsed = parallel_map(&jobs, threads, parse);
        jobs.into_iter()
            .zip(parsed)
            .map(|((key, _), parsed)| (key, Arc::new(parsed)))
            .collect()
    }

    /// Refuses the snapshot's symbolic links, or with
    /// [`RenderOptions::skip_symlinks`] records them as skipped. A link is
    /// exempt when the skip rules or globs exclude its path for a reason
    /// other than its extension (a link named `apps` may point at a folder
    /// of manifests).
    ///
    /// Links outside `dir` or inside a step's folder are the step's concern.
    fn symlinks(
        &self,
        snapshot: &Snapshot,
        dir: &str,
        roots: &[(String, usize)],
        desired: &mut DesiredState,
        errors: &mut Vec<RenderError>,
    ) {
        for (path, entry) in snapshot.special_entries() {
            let SpecialEntry::Symlink { target } = entry else {
                continue;
            };
            if !is_under(path, dir) || roots.iter().any(|(root, _)| is_under(path, root)) {
                continue;
            }
            let exempt = match self.skip_reason(snapshot, path) {
                None | Some(SkipReason::NotManifest) => false,
                Some(_) => true,
            };
            if exempt {
                continue;
            }
            if self.options.skip_symlinks {
                desired.add_skipped_symlink(path, target);
            } else {
                errors.push(RenderError::Symlink {
                    path: path.to_owned(),
                    target: target.clone(),
                });
            }
        }
    }

    /// The top-most folders of `dir` a step renders, with the step's index,
    /// by [`RenderOptions::rendering`]; pushes [`RenderError::Unhandled`]
    /// for a folder that needs a step and has none.
    fn step_roots(
        &self,
        snapshot: &Snapshot,
        dir: &str,
        errors: &mut Vec<RenderError>,
    ) -> Vec<(String, usize)> {
        match &self.options.rendering {
            Rendering::Plain => Vec::new(),
            Rendering::Step(name) => {
                match self
                    .steps
                    .iter()
                    .position(|s| s.name() == name && s.handles(snapshot, dir))
                {
                    Some(i) => vec![(dir.to_owned(), i)],
                    None => {
                        errors.push(RenderError::Unhandled {
                            dir: dir.to_owned(),
                            rendering: self.options.rendering.clone(),
                            file: None,
                        });
                        Vec::new()
                    }
                }
            }
            Rendering::Auto => {
                let mut folders: BTreeSet<&str> = BTreeSet::new();
                for (path, _) in snapshot.files() {
                    if is_under(path, dir) {
                        let mut parent = parent_dir(path);
                        // Every folder from the file's up to `dir`.
                        while folders.insert(parent) && parent.len() > dir.len() {
                            parent = parent_dir(parent);
                        }
                    }
                }
                let mut roots: Vec<(String, usize)> = Vec::new();
                for folder in folders {
                    if !is_under(folder, dir)
                        || folder.split('/').any(|c| c.starts_with('.'))
                        || roots.iter().any(|(root, _)| is_under(folder, root))
                    {
                        continue;
                    }
                    if let Some(i) = self.steps.iter().position(|s| s.handles(snapshot, folder)) {
                        roots.push((folder.to_owned(), i));
                    } else if let Some(file) = skip::kustomization_file(snapshot, folder) {
                        errors.push(RenderError::Unhandled {
                            dir: folder.to_owned(),
                            rendering: Rendering::Auto,
                            file: Some(file),
                        });
                    }
                }
                roots
            }
        }
    }

    /// Built-in kinds, kinds registered in the options, and the kinds the
    /// CRDs among `objects` define.
    fn kinds(
        &self,
        objects: &[(Provenance, Object)],
        errors: &mut Vec<RenderError>,
    ) -> KindRegistry {
        let mut kinds = KindRegistry::builtin();
        for (kind, info) in self.options.kinds.iter() {
            if kinds.get(kind).is_none() {
                kinds.register(kind.clone(), info.scope);
            }
        }
        for (at, object) in objects {
            if object
                .key()
                .is("apiextensions.k8s.io", "CustomResourceDefinition")
                && let Err(source) = kinds.add_crd(object)
            {
                errors.push(RenderError::Crd {
                    at: at.clone(),
                    source,
                });
            }
        }
        kinds
    }
}

/// Whether `path` is `dir` or inside it (`""` holds everything).
fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The folder holding `path` (`""` at the root).
fn parent_dir(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// List semantics for the duplicate-key check: the snapshot's CRDs' schemas
/// over the built-in table. An unreadable schema leaves that CRD's lists
/// unchecked (its other problems are reported by the kind registry).
fn list_semantics(objects: &[(Provenance, Object)]) -> LayeredLists {
    LayeredLists::new(vec![Arc::new(crd_lists(objects))])
}

/// The list semantics the CRDs among `objects` declare.
fn crd_lists(objects: &[(Provenance, Object)]) -> CrdLists {
    let mut crds = CrdLists::new();
    for (_, object) in objects {
        if object
            .key()
            .is("apiextensions.k8s.io", "CustomResourceDefinition")
        {
            let _ = crds.add_crd(object.as_value());
        }
    }
    crds
}

#[cfg(test)]
mod tests {
    use super::parallel_map;

    #[test]
    fn parallel_map_keeps_the_order_whatever_the_threads() {
        let items: Vec<u32> = (0..1000).collect();
        let want: Vec<u64> = items.iter().map(|i| u64::from(*i) * 3).collect();
        for threads in [0, 1, 2, 3, 16] {
            assert_eq!(parallel_map(&items, threads, |i| u64::from(*i) * 3), want);
        }
        assert!(parallel_map(&[] as &[u32], 4, |i| *i).is_empty());
    }

    #[test]
    fn what_a_failed_helper_took_is_done_by_the_caller() {
        let caller = std::thread::current().id();
        let items: Vec<u32> = (0..200).collect();
        // Every helper panics on its first item (the panic message is
        // expected in the test output); the caller does the rest.
        let got = parallel_map(&items, 4, |i| {
            assert!(std::thread::current().id() == caller, "a helper fails");
            *i + 1
        });
        assert_eq!(got, (1..=200).collect::<Vec<u32>>());
    }
}
