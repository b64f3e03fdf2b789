//! The build: load a kustomization, accumulate resources (recursing into
//! bases and components), run generators, then the transformers in
//! [`PIPELINE`] order; at the top, hash generated names, fix name
//! references, resolve vars, drop local config and sort.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::cache::{Cache, Memo, Output};
use crate::error::Error;
use crate::fieldspec::{FieldSpec, TransformerConfig};
use crate::kustomization::{
    Kustomization, bool_field, field, list, scalar_string, str_field, str_list, str_map,
};
use crate::loader::{Entry, Files, is_within, parse_documents, parse_indexed_documents};
use crate::origin::Origin;
use crate::resource::{Behavior, Resource};
use crate::selector::Selector;
use crate::transform::{
    generators, hash, images, labels, nameref, namespace, patch, prefix_suffix, replacements,
    replicas, valueadd, vars,
};

/// One transformer step of a kustomization, in kustomize's fixed order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `patchesStrategicMerge`.
    PatchesStrategicMerge,
    /// `patches`.
    Patches,
    /// `namespace`.
    Namespace,
    /// `namePrefix`.
    NamePrefix,
    /// `nameSuffix`.
    NameSuffix,
    /// `labels` and `commonLabels`.
    Labels,
    /// `commonAnnotations`.
    Annotations,
    /// `patchesJson6902`.
    PatchesJson6902,
    /// `replicas`.
    Replicas,
    /// `images`.
    Images,
    /// `replacements`.
    Replacements,
    /// `transformers` (built-in transformer configs).
    Transformers,
}

/// The order kustomize (v5) runs a kustomization's transformers in
/// (`api/internal/target/kusttarget_configplugin.go`).
pub const PIPELINE: &[Step] = &[
    Step::PatchesStrategicMerge,
    Step::Patches,
    Step::Namespace,
    Step::NamePrefix,
    Step::NameSuffix,
    Step::Labels,
    Step::Annotations,
    Step::PatchesJson6902,
    Step::Replicas,
    Step::Images,
    Step::Replacements,
    Step::Transformers,
];

/// Resources plus the rules gathered with them.
#[derive(Clone, Debug, Default)]
pub struct Acc {
    /// The resources, in order.
    pub res: Vec<Resource>,
    /// Field-spec tables (defaults plus `configurations:` of this and inner
    /// kustomizations), shared until a kustomization adds to them.
    pub config: Arc<TransformerConfig>,
    /// Legacy vars.
    pub vars: Vec<Value>,
}

impl Acc {
    /// An empty accumulator with kustomize's default tables.
    pub fn new() -> Self {
        Self {
            res: Vec::new(),
            config: TransformerConfig::builtin(),
            vars: Vec::new(),
        }
    }
}

/// Build state: the snapshot, the errors so far, the kustomizations being built.
pub struct Builder<'a> {
    files: Files<'a>,
    /// Errors found so far.
    pub errors: Vec<Error>,
    /// The directories of the kustomizations being built (for cycles).
    stack: Vec<String>,
    /// Every kustomization directory built so far (memoized ones included).
    entered: Vec<String>,
    /// Memoized results, when building through a [`crate::Kustomize`].
    cache: Option<&'a Mutex<Cache>>,
}

/// Kinds of lists whose `items` kustomize expands into resources.
fn is_list(v: &Value) -> bool {
    v.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && v.get("items").is_some_and(Value::is_array)
}

impl<'a> Builder<'a> {
    /// A builder over a snapshot (with `cache`, reads must be recorded).
    pub fn new(files: Files<'a>, cache: Option<&'a Mutex<Cache>>) -> Self {
        Self {
            files,
            errors: Vec::new(),
            stack: Vec::new(),
            entered: Vec::new(),
            cache,
        }
    }

    fn with_cache<R>(&self, f: impl FnOnce(&mut Cache) -> R) -> Option<R> {
        let cache = self.cache?;
        let mut guard = cache.lock().unwrap_or_else(PoisonError::into_inner);
        Some(f(&mut guard))
    }

    /// Builds a whole root: its objects with their origins.
    pub fn build(&mut self, root: &str) -> Vec<(Value, Origin)> {
        let files = self.files;
        if let Some(Some(hit)) = self.with_cache(|c| c.output(root, &files)) {
            files.replay(&hit.reads);
            return hit.out.clone();
        }
        let Some(k) = self.load(root) else {
            return Vec::new();
        };
        let acc = self.accumulate_fresh(&k, 0);
        let out = self.finish(&k, acc);
        if self.cache.is_some() && self.errors.is_empty() {
            let reads = files.reads_since(0);
            let out = out.clone();
            self.with_cache(|c| c.store_output(root, Output { out, reads }));
        }
        out
    }

    /// The accumulation of the kustomization `k` (not a component) from
    /// scratch, memoized by its directory; `reads_start` marks where the
    /// reads of its loading began.
    fn accumulate_fresh(&mut self, k: &Kustomization, reads_start: usize) -> Acc {
        let (errors, entered) = (self.errors.len(), self.entered.len());
        let acc = self.accumulate(k, Acc::new());
        if self.cache.is_some() && self.errors.len() == errors {
            let memo = Memo {
                acc: acc.clone(),
                reads: self.files.reads_since(reads_start),
                entered: self.entered.get(entered..).unwrap_or_default().to_vec(),
            };
            self.with_cache(|c| c.store_dir(&k.dir, memo));
        }
        acc
    }

    /// A memoized accumulation of `dir`, still valid here.
    fn memoized(&mut self, dir: &str) -> Option<Acc> {
        let files = self.files;
        let stack = &self.stack;
        let memo = self.with_cache(|c| c.dir(dir, &files, stack))??;
        files.replay(&memo.reads);
        self.entered.extend(memo.entered.iter().cloned());
        Some(memo.acc.clone())
    }

    fn err(&mut self, e: Error) {
        self.errors.push(e);
    }

    /// Loads the kustomization of `dir`.
    pub fn load(&mut self, dir: &str) -> Option<Kustomization> {
        let file = match self.files.kustomization_file(dir) {
            Ok(f) => f,
            Err(e) => {
                self.err(e);
                return None;
            }
        };
        let data = self.files.get(&file).unwrap_or_default();
        match Kustomization::parse(&file, dir, data) {
            Ok(k) => Some(k),
            Err(es) => {
                self.errors.extend(es);
                None
            }
        }
    }

    /// Records `file` as having changed the resources marked changed.
    fn attribute(acc: &mut Acc, file: &str) {
        for r in &mut acc.res {
            r.attribute(file);
        }
    }

    fn append(&mut self, acc: &mut Acc, r: Resource, file: &str) {
        let id = r.cur_id();
        if acc.res.iter().any(|x| x.has_id(&id)) {
            self.err(Error::Conflict {
                file: file.into(),
                id: id.to_string(),
            });
            return;
        }
        acc.res.push(r);
    }

    fn read_resources_file(&mut self, path: &str, data: &[u8]) -> Vec<Resource> {
        match parse_indexed_documents(path, data) {
            Ok(docs) => {
                let mut out = Vec::new();
                for (i, d) in docs {
                    if is_list(&d) {
                        for (j, it) in d
                            .get("items")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .enumerate()
                        {
                            out.push(Resource::new(it.clone(), Origin::new(path, i).with_item(j)));
                        }
                    } else if d.is_object() {
                        out.push(Resource::new(d, Origin::new(path, i)));
                    } else {
                        self.err(Error::Invalid {
                            file: path.into(),
                            field: "(document)".into(),
                            message: "a resource document is a map".into(),
                        });
                    }
                }
                out
            }
            Err(e) => {
                self.err(e);
                Vec::new()
            }
        }
    }

    /// Builds a kustomization directory reached through `field` of `k`:
    /// a component over `component`'s accumulation, else a kustomization
    /// from scratch (memoized).
    fn sub_dir(
        &mut self,
        k: &Kustomization,
        field: &str,
        entry: &str,
        dir: &str,
        component: Option<Acc>,
    ) -> Option<Acc> {
        if self.stack.iter().any(|s| is_within(s, dir)) {
            self.err(Error::Cycle {
                file: k.file.clone(),
                field: field.into(),
                entry: entry.into(),
                dir: crate::loader::display_dir(dir),
            });
            return None;
        }
        if component.is_none()
            && let Some(acc) = self.memoized(dir)
        {
            return Some(acc);
        }
        let reads_start = self.files.reads_len();
        let sub = self.load(dir)?;
        if component.is_some() != sub.is_component() {
            self.err(Error::Invalid {
                file: sub.file.clone(),
                field: "kind".into(),
                message: if component.is_some() {
                    format!(
                        "`{field}` entry `{entry}` of {} must be a `kind: Component`",
                        k.file
                    )
                } else {
                    format!(
                        "a Component cannot be listed in `{field}` (entry `{entry}` of {})",
                        k.file
                    )
                },
            });
            return None;
        }
        match component {
            Some(acc) => Some(self.accumulate(&sub, acc)),
            None => Some(self.accumulate_fresh(&sub, reads_start)),
        }
    }

    fn accumulate_entries(
        &mut self,
        k: &Kustomization,
        field: &str,
        entries: &[String],
        acc: &mut Acc,
    ) {
        for entry in entries {
            match self.files.resolve(&k.dir, &k.file, field, entry, false) {
                Ok(Entry::File(p)) => {
                    let data = self.files.get(&p).unwrap_or_default();
                    for r in self.read_resources_file(&p, data) {
                        self.append(acc, r, &k.file);
                    }
                }
                Ok(Entry::Dir(d)) => {
                    if let Some(sub) = self.sub_dir(k, field, entry, &d, None) {
                        if !Arc::ptr_eq(&acc.config, &sub.config) && acc.config != sub.config {
                            Arc::make_mut(&mut acc.config).merge(&sub.config);
                        }
                        acc.vars.extend(sub.vars);
                        for r in sub.res {
                            self.append(acc, r, &k.file);
                        }
                    }
                }
                Err(e) => self.err(e),
            }
        }
    }

    fn refuse_non_hermetic(&mut self, k: &Kustomization) {
        for f in ["helmCharts", "helmGlobals", "helmChartInflationGenerator"] {
            if field(&k.doc, f).is_some() {
                self.err(Error::NotHermetic {
                    file: k.file.clone(),
                    field: f.into(),
                    reason: "Helm charts are inflated by running `helm`, which a hermetic build does not do".into(),
                });
            }
        }
        let metadata = str_list(&k.doc, "buildMetadata");
        if !metadata.is_empty() {
            self.err(Error::Invalid {
                file: k.file.clone(),
                field: "buildMetadata".into(),
                message: format!(
                    "not supported: `{}` (this build writes no build annotations or labels; \
                     `build_with_origins` gives each object's origin)",
                    metadata.join("`, `")
                ),
            });
        }
        if !list(&k.doc, "validators").is_empty() {
            self.err(Error::NotHermetic {
                file: k.file.clone(),
                field: "validators".into(),
                reason: "validators are plugins (programs), which a hermetic build does not run"
                    .into(),
            });
        }
    }

    /// kustomize's `accumulateTarget`: resources, configurations, generators,
    /// components, transformers, vars.
    pub fn accumulate(&mut self, k: &Kustomization, mut acc: Acc) -> Acc {
        self.stack.push(k.dir.clone());
        self.entered.push(k.dir.clone());
        self.refuse_non_hermetic(k);
        if let Some(p) = field(&k.doc, "openapi").and_then(|o| str_field(o, "path")) {
            // The schema itself is not used (built-in list semantics are);
            // a missing file is still an error, as in kustomize.
            let _ = self.read(k, "openapi", &p);
        }
        let mut entries = str_list(&k.doc, "resources");
        entries.extend(str_list(&k.doc, "bases"));
        self.accumulate_entries(k, "resources", &entries, &mut acc);
        for c in str_list(&k.doc, "configurations") {
            if let Some((p, data)) = self.read(k, "configurations", &c) {
                match parse_documents(&p, data) {
                    Ok(docs) => docs
                        .iter()
                        .for_each(|d| Arc::make_mut(&mut acc.config).merge_value(d)),
                    Err(e) => self.err(e),
                }
            }
        }
        self.run_generators(k, &mut acc);
        for c in str_list(&k.doc, "components") {
            match self.files.resolve(&k.dir, &k.file, "components", &c, false) {
                Ok(Entry::Dir(d)) => {
                    let taken = std::mem::take(&mut acc);
                    match self.sub_dir(k, "components", &c, &d, Some(taken.clone())) {
                        Some(a) => acc = a,
                        None => acc = taken,
                    }
                }
                Ok(Entry::File(p)) => self.err(Error::Invalid {
                    file: k.file.clone(),
                    field: "components".into(),
                    message: format!("entry `{c}` is a file (`{p}`); components are directories"),
                }),
                Err(e) => self.err(e),
            }
        }
        for step in PIPELINE {
            self.run_step(*step, k, &mut acc);
        }
        acc.vars.extend(list(&k.doc, "vars").iter().cloned());
        self.stack.pop();
        acc
    }

    fn read(&mut self, k: &Kustomization, field: &str, entry: &str) -> Option<(String, &'a [u8])> {
        match self.files.read_entry(&k.dir, &k.file, field, entry) {
            Ok(x) => Some(x),
            Err(e) => {
                self.err(e);
                None
            }
        }
    }

    fn absorb(&mut self, k: &Kustomization, acc: &mut Acc, r: Resource, field: &str) {
        let behavior = r.behavior.unwrap_or(Behavior::Create);
        let id = r.cur_id();
        let pos = acc.res.iter().position(|x| x.matches_any_id(&id));
        match (behavior, pos) {
            (Behavior::Create, None) => acc.res.push(r),
            (Behavior::Create, Some(_)) => self.err(Error::Conflict {
                file: k.file.clone(),
                id: id.to_string(),
            }),
            (b, Some(i)) => {
                if let Some(existing) = acc.res.get_mut(i) {
                    let before = existing.obj.clone();
                    generators::combine(existing, r, b);
                    existing.changed = existing.obj != before;
                    existing.attribute(&k.file);
                }
            }
            (_, None) => self.err(Error::Transform {
                file: k.file.clone(),
                field: field.into(),
                message: format!("no existing resource {id} to merge into or replace"),
            }),
        }
    }

    fn run_generators(&mut self, k: &Kustomization, acc: &mut Acc) {
        let global = field(&k.doc, "generatorOptions").cloned();
        let ctx = generators::GenCtx {
            files: self.files,
            dir: &k.dir,
            file: &k.file,
        };
        let mut made = Vec::new();
        for (fname, kind) in [
            ("configMapGenerator", "ConfigMap"),
            ("secretGenerator", "Secret"),
        ] {
            for g in list(&k.doc, fname) {
                match generators::generate(&ctx, kind, g, global.as_ref(), fname) {
                    Ok(r) => made.push((r, fname)),
                    Err(es) => self.errors.extend(es),
                }
            }
        }
        for (config, origin) in self.plugin_configs(k, "generators") {
            let kind = str_field(&config, "kind").unwrap_or_default();
            let gkind = match kind.as_str() {
                "ConfigMapGenerator" => "ConfigMap",
                "SecretGenerator" => "Secret",
                _ => {
                    self.refuse_plugin(k, "generators", &config, &origin);
                    continue;
                }
            };
            let mut g = config.clone();
            if let Some(m) = g.as_object_mut()
                && let Some(meta) = config.get("metadata")
            {
                if let Some(n) = meta.get("name") {
                    m.insert("name".into(), n.clone());
                }
                if let Some(n) = meta.get("namespace") {
                    m.insert("namespace".into(), n.clone());
                }
            }
            let opts = field(&config, "options").cloned();
            match generators::generate(&ctx, gkind, &g, opts.as_ref(), "generators") {
                Ok(r) => made.push((r, "generators")),
                Err(es) => self.errors.extend(es),
            }
        }
        for (r, f) in made {
            self.absorb(k, acc, r, f);
        }
    }

    fn refuse_plugin(&mut self, k: &Kustomization, field: &str, config: &Value, origin: &str) {
        let kind = str_field(config, "kind").unwrap_or_default();
        let api = str_field(config, "apiVersion").unwrap_or_default();
        self.err(Error::NotHermetic {
            file: k.file.clone(),
            field: field.into(),
            reason: format!(
                "`{api}` `{kind}` (from {origin}) is a plugin or KRM function, which a hermetic build does not run"
            ),
        });
    }

    /// The documents of `transformers:` / `generators:` entries: inline YAML, files or kustomization directories.
    fn plugin_configs(&mut self, k: &Kustomization, fname: &str) -> Vec<(Value, String)> {
        let mut out = Vec::new();
        for entry in str_list(&k.doc, fname) {
            if entry.contains('\n') || entry.trim_start().starts_with('{') {
                match parse_documents(&k.file, entry.as_bytes()) {
                    Ok(docs) => out.extend(docs.into_iter().map(|d| (d, k.file.clone()))),
                    Err(e) => self.err(e),
                }
                continue;
            }
            match self.files.resolve(&k.dir, &k.file, fname, &entry, false) {
                Ok(Entry::File(p)) => {
                    let data = self.files.get(&p).unwrap_or_default();
                    match parse_documents(&p, data) {
                        Ok(docs) => out.extend(docs.into_iter().map(|d| (d, p.clone()))),
                        Err(e) => self.err(e),
                    }
                }
                Ok(Entry::Dir(d)) => {
                    if let Some(sub) = self.sub_dir(k, fname, &entry, &d, None) {
                        out.extend(sub.res.into_iter().map(|r| (r.obj, r.origin.path)));
                    }
                }
                Err(e) => self.err(e),
            }
        }
        out
    }

    fn transform_err(&mut self, k: &Kustomization, field: &str, message: String) {
        self.err(Error::Transform {
            file: k.file.clone(),
            field: field.into(),
            message,
        });
    }

    fn apply_patch(
        &mut self,
        k: &Kustomization,
        acc: &mut Acc,
        field: &str,
        (text, source): (&str, &str),
        target: Option<&Value>,
        json_only: bool,
    ) {
        let parsed = if json_only {
            patch::parse_json6902(&k.file, text)
        } else {
            patch::parse(&k.file, text)
        };
        let p = match parsed {
            Ok(p) => p,
            Err(m) => return self.transform_err(k, field, m),
        };
        let sel = match target.map(Selector::from_value).transpose() {
            Ok(s) => s,
            Err(m) => return self.transform_err(k, field, m),
        };
        let applied = patch::apply(&mut acc.res, &p, sel.as_ref());
        Self::attribute(acc, source);
        if let Err(m) = applied {
            self.transform_err(k, field, m);
        }
    }

    /// The text of a patch given inline or by `path`, and the file it is
    /// in (the kustomization file for an inline patch).
    fn patch_text(
        &mut self,
        k: &Kustomization,
        field: &str,
        entry: &Value,
    ) -> Option<(String, String)> {
        if let Some(p) = str_field(entry, "patch") {
            return Some((p, k.file.clone()));
        }
        if let Some(path) = str_field(entry, "path") {
            let (file, data) = self.read(k, field, &path)?;
            return Some((String::from_utf8_lossy(data).into_owned(), file));
        }
        self.transform_err(k, field, "a patch needs `path` or `patch`".into());
        None
    }

    fn run_step(&mut self, step: Step, k: &Kustomization, acc: &mut Acc) {
        let doc = &k.doc;
        match step {
            Step::PatchesStrategicMerge => {
                for e in str_list(doc, "patchesStrategicMerge") {
                    let (text, source) = if e.contains('\n') || e.contains(": ") {
                        (e.clone(), k.file.clone())
                    } else {
                        match self.read(k, "patchesStrategicMerge", &e) {
                            Some((f, d)) => (String::from_utf8_lossy(d).into_owned(), f),
                            None => continue,
                        }
                    };
                    let f = "patchesStrategicMerge";
                    self.apply_patch(k, acc, f, (&text, &source), None, false);
                }
            }
            Step::Patches => {
                for e in list(doc, "patches") {
                    if let Some((text, source)) = self.patch_text(k, "patches", e) {
                        let target = field(e, "target");
                        self.apply_patch(k, acc, "patches", (&text, &source), target, false);
                    }
                }
            }
            Step::Namespace => {
                if let Some(ns) = str_field(doc, "namespace").filter(|s| !s.is_empty()) {
                    namespace::apply(&mut acc.res, &ns, &acc.config.namespace, false);
                    Self::attribute(acc, &k.file);
                    self.check_conflicts(k, acc, "namespace");
                }
            }
            Step::NamePrefix => {
                if let Some(p) = str_field(doc, "namePrefix").filter(|s| !s.is_empty()) {
                    prefix_suffix::apply(&mut acc.res, &p, "", &acc.config.name_prefix);
                    Self::attribute(acc, &k.file);
                }
            }
            Step::NameSuffix => {
                if let Some(s) = str_field(doc, "nameSuffix").filter(|s| !s.is_empty()) {
                    prefix_suffix::apply(&mut acc.res, "", &s, &acc.config.name_suffix);
                    Self::attribute(acc, &k.file);
                }
            }
            Step::Labels => {
                for l in list(doc, "labels") {
                    let pairs = str_map(l, "pairs");
                    let mut specs: Vec<FieldSpec> = list(l, "fields")
                        .iter()
                        .filter_map(FieldSpec::from_value)
                        .collect();
                    if bool_field(l, "includeSelectors") {
                        specs.extend(acc.config.common_labels.iter().cloned());
                    } else {
                        specs.push(FieldSpec {
                            path: "metadata/labels".into(),
                            create: true,
                            ..Default::default()
                        });
                        if bool_field(l, "includeTemplates") {
                            specs.extend(acc.config.template_labels.iter().cloned());
                        }
                    }
                    labels::apply(&mut acc.res, &pairs, &specs);
                }
                let common = str_map(doc, "commonLabels");
                labels::apply(&mut acc.res, &common, &acc.config.common_labels);
                Self::attribute(acc, &k.file);
            }
            Step::Annotations => {
                let common = str_map(doc, "commonAnnotations");
                labels::apply(&mut acc.res, &common, &acc.config.common_annotations);
                Self::attribute(acc, &k.file);
            }
            Step::PatchesJson6902 => {
                for e in list(doc, "patchesJson6902") {
                    if let Some((text, source)) = self.patch_text(k, "patchesJson6902", e) {
                        let (f, target) = ("patchesJson6902", field(e, "target"));
                        self.apply_patch(k, acc, f, (&text, &source), target, true);
                    }
                }
            }
            Step::Replicas => {
                for r in list(doc, "replicas") {
                    let name = str_field(r, "name").unwrap_or_default();
                    let count = field(r, "count").and_then(|c| {
                        c.as_i64()
                            .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
                    });
                    match count {
                        Some(c) => {
                            replicas::apply(&mut acc.res, &name, c, &acc.config.replicas);
                            Self::attribute(acc, &k.file);
                        }
                        None => self.transform_err(
                            k,
                            "replicas",
                            format!("entry `{name}` needs an integer `count`"),
                        ),
                    }
                }
            }
            Step::Images => {
                for i in list(doc, "images") {
                    let it = image_tag(i);
                    images::apply(&mut acc.res, &it, &acc.config.images);
                }
                Self::attribute(acc, &k.file);
            }
            Step::Replacements => {
                for r in list(doc, "replacements") {
                    let (reps, source): (Vec<Value>, String) = match str_field(r, "path") {
                        Some(p) => match self.read(k, "replacements", &p) {
                            Some((file, data)) => match parse_documents(&file, data) {
                                Ok(docs) => (
                                    docs.into_iter()
                                        .flat_map(|d| match d {
                                            Value::Array(a) => a,
                                            other => vec![other],
                                        })
                                        .collect(),
                                    file,
                                ),
                                Err(e) => {
                                    self.err(e);
                                    continue;
                                }
                            },
                            None => continue,
                        },
                        None => (vec![r.clone()], k.file.clone()),
                    };
                    for rep in &reps {
                        let applied = replacements::apply(&mut acc.res, rep);
                        Self::attribute(acc, &source);
                        if let Err(m) = applied {
                            self.transform_err(k, "replacements", m);
                        }
                    }
                }
            }
            Step::Transformers => {
                for (config, origin) in self.plugin_configs(k, "transformers") {
                    self.run_builtin_transformer(k, acc, &config, &origin);
                }
            }
        }
    }

    fn check_conflicts(&mut self, k: &Kustomization, acc: &Acc, field: &str) {
        for (i, r) in acc.res.iter().enumerate() {
            let id = r.cur_id();
            if acc.res.iter().skip(i + 1).any(|x| x.cur_id().equals(&id)) {
                self.transform_err(
                    k,
                    field,
                    format!("the transformation produces an id conflict: {id}"),
                );
            }
        }
    }

    /// Runs one built-in transformer config read from `origin`; its changes
    /// are attributed to `origin` (patches: to the patch file).
    fn run_builtin_transformer(
        &mut self,
        k: &Kustomization,
        acc: &mut Acc,
        c: &Value,
        origin: &str,
    ) {
        self.run_builtin_transformer_config(k, acc, c, origin);
        Self::attribute(acc, origin);
    }

    fn run_builtin_transformer_config(
        &mut self,
        k: &Kustomization,
        acc: &mut Acc,
        c: &Value,
        origin: &str,
    ) {
        // An inline patch is in the transformer config's file.
        let in_config = |(text, source): (String, String)| {
            let source = if source == k.file {
                origin.to_owned()
            } else {
                source
            };
            (text, source)
        };
        let api = str_field(c, "apiVersion").unwrap_or_default();
        let kind = str_field(c, "kind").unwrap_or_default();
        if api != "builtin" {
            return self.refuse_plugin(k, "transformers", c, origin);
        }
        let specs: Vec<FieldSpec> = list(c, "fieldSpecs")
            .iter()
            .filter_map(FieldSpec::from_value)
            .collect();
        let fname = "transformers";
        match kind.as_str() {
            "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
                let p = str_field(c, "prefix").unwrap_or_default();
                let s = str_field(c, "suffix").unwrap_or_default();
                prefix_suffix::apply(&mut acc.res, &p, &s, &specs);
            }
            "NamespaceTransformer" => {
                let ns = c
                    .get("metadata")
                    .and_then(|m| str_field(m, "namespace"))
                    .unwrap_or_default();
                namespace::apply(&mut acc.res, &ns, &specs, bool_field(c, "unsetOnly"));
            }
            "LabelTransformer" => labels::apply(&mut acc.res, &str_map(c, "labels"), &specs),
            "AnnotationsTransformer" => {
                labels::apply(&mut acc.res, &str_map(c, "annotations"), &specs)
            }
            "PatchTransformer" => {
                if let Some((text, source)) = self.patch_text(k, fname, c).map(in_config) {
                    self.apply_patch(k, acc, fname, (&text, &source), field(c, "target"), false);
                }
            }
            "PatchJson6902Transformer" => {
                let text = match str_field(c, "jsonOp") {
                    Some(t) => Some((t, origin.to_owned())),
                    None => self.patch_text(k, fname, c).map(in_config),
                };
                if let Some((text, source)) = text {
                    self.apply_patch(k, acc, fname, (&text, &source), field(c, "target"), true);
                }
            }
            "PatchStrategicMergeTransformer" => {
                for p in str_list(c, "paths") {
                    if let Some((file, d)) = self.read(k, fname, &p) {
                        let text = String::from_utf8_lossy(d).into_owned();
                        self.apply_patch(k, acc, fname, (&text, &file), None, false);
                    }
                }
                if let Some(text) = str_field(c, "patches") {
                    self.apply_patch(k, acc, fname, (&text, origin), None, false);
                }
            }
            "ImageTagTransformer" => {
                let it = image_tag(field(c, "imageTag").unwrap_or(&Value::Null));
                images::apply(&mut acc.res, &it, &specs);
            }
            "ReplicaCountTransformer" => {
                let r = field(c, "replica").cloned().unwrap_or(Value::Null);
                let name = str_field(&r, "name").unwrap_or_default();
                let count = field(&r, "count").and_then(Value::as_i64).unwrap_or(0);
                replicas::apply(&mut acc.res, &name, count, &specs);
            }
            "ReplacementTransformer" => {
                for rep in list(c, "replacements") {
                    if let Err(m) = replacements::apply(&mut acc.res, rep) {
                        self.transform_err(k, fname, m);
                    }
                }
            }
            "HashTransformer" => hash::apply(&mut acc.res),
            "ValueAddTransformer" => {
                let value = str_field(c, "value")
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| k.dir.rsplit('/').next().unwrap_or("").to_owned());
                let mut targets = Vec::new();
                for t in list(c, "targets") {
                    let selector = match field(t, "selector").map(Selector::from_value).transpose()
                    {
                        Ok(s) => s,
                        Err(m) => return self.transform_err(k, fname, m),
                    };
                    targets.push(valueadd::Target {
                        selector,
                        field_path: str_field(t, "fieldPath").unwrap_or_default(),
                        file_path_position: field(t, "filePathPosition")
                            .and_then(Value::as_u64)
                            .and_then(|n| usize::try_from(n).ok())
                            .unwrap_or(0),
                    });
                }
                valueadd::apply(&mut acc.res, &value, &targets);
            }
            _ => self.refuse_plugin(k, fname, c, origin),
        }
    }

    /// The steps run once at the top of a build; their changes are
    /// attributed to the top kustomization file.
    pub fn finish(&mut self, top: &Kustomization, mut acc: Acc) -> Vec<(Value, Origin)> {
        hash::apply(&mut acc.res);
        for m in nameref::apply(&mut acc.res, &acc.config.name_reference) {
            self.transform_err(top, "(name references)", m);
        }
        if let Err(m) = vars::apply(&mut acc.res, &acc.vars, &acc.config.var_reference) {
            self.transform_err(top, "vars", m);
        }
        Self::attribute(&mut acc, &top.file);
        acc.res.retain(|r| {
            r.meta_map("annotations")
                .and_then(|a| a.get("config.kubernetes.io/local-config"))
                .and_then(scalar_string)
                .as_deref()
                != Some("true")
        });
        let order = field(&top.doc, "sortOptions").and_then(|s| str_field(s, "order"));
        if order.as_deref() != Some("fifo") {
            let legacy = field(&top.doc, "sortOptions").and_then(|s| field(s, "legacySortOptions"));
            let first = legacy
                .map(|l| str_list(l, "orderFirst"))
                .filter(|l| !l.is_empty());
            let last = legacy
                .map(|l| str_list(l, "orderLast"))
                .filter(|l| !l.is_empty());
            crate::sort::legacy(&mut acc.res, first.as_deref(), last.as_deref());
        }
        acc.res.into_iter().map(|r| (r.obj, r.origin)).collect()
    }
}

fn image_tag(i: &Value) -> images::ImageTag {
    images::ImageTag {
        name: str_field(i, "name").unwrap_or_default(),
        new_name: str_field(i, "newName").unwrap_or_default(),
        new_tag: field(i, "newTag")
            .and_then(scalar_string)
            .unwrap_or_default(),
        digest: str_field(i, "digest").unwrap_or_default(),
        tag_suffix: str_field(i, "tagSuffix").unwrap_or_default(),
    }
}
