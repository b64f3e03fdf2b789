//! [`DesiredState`]: what one revision declares, with provenance.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::key::ObjectKey;
use crate::object::Object;
use crate::revision::Revision;
use crate::scope::KindRegistry;

/// Where an object was declared.
///
/// For an object a [`RenderStep`](crate::RenderStep) built (a Kustomize
/// overlay), `path` is the file it was first declared in (or the file of
/// the generator that made it), [`renderer`](Self::renderer) names the step
/// and [`via`](Self::via) lists the files that changed it on the way, in
/// the order they applied: so a plan can say where a value came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Provenance {
    /// File path, relative to the snapshot root.
    pub path: String,
    /// Index of the YAML document in the file (0-based; 0 for JSON).
    pub document: usize,
    /// 1-based line where the document starts, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Index inside a `List` document, when the object came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    /// The render step that built the object (`"kustomize"`); `None` for a
    /// plain manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renderer: Option<String>,
    /// Files that changed the object after `path` declared it (overlays'
    /// kustomization files, patch files), in the order they applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
}

impl Provenance {
    /// Document `document` of the file at `path`.
    pub fn new(path: impl Into<String>, document: usize) -> Self {
        Self {
            path: path.into(),
            document,
            line: None,
            item: None,
            renderer: None,
            via: Vec::new(),
        }
    }

    /// With the 1-based line the document starts at.
    pub fn with_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }

    /// With the index inside a `List` document.
    pub fn with_item(mut self, item: Option<usize>) -> Self {
        self.item = item;
        self
    }

    /// With the files that changed the object ([`Provenance::via`]).
    pub fn with_via(mut self, via: Vec<String>) -> Self {
        self.via = via;
        self
    }

    /// With the render step that built the object.
    pub fn with_renderer(mut self, renderer: Option<String>) -> Self {
        self.renderer = renderer;
        self
    }

    /// Every file the object depends on: [`path`](Self::path), then
    /// [`via`](Self::via).
    pub fn files(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.path.as_str()).chain(self.via.iter().map(String::as_str))
    }
}

impl fmt::Display for Provenance {
    /// `apps/web.yaml#2 (line 14)`, `all.yaml#0 items[3]`,
    /// `base/web.yaml#0 via prod/kustomization.yaml, prod/patch.yaml`; the
    /// paths [escaped](crate::escape) (a file name may hold a newline or a
    /// terminal escape sequence).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}#{}",
            gitops_diff::escape::escaped(&self.path),
            self.document
        )?;
        if let Some(i) = self.item {
            write!(f, " items[{i}]")?;
        }
        if let Some(l) = self.line {
            write!(f, " (line {l})")?;
        }
        for (i, v) in self.via.iter().enumerate() {
            let sep = if i == 0 { " via " } else { ", " };
            write!(f, "{sep}{}", gitops_diff::escape::escaped(v))?;
        }
        Ok(())
    }
}

/// One desired object and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredObject {
    /// The validated manifest (namespace defaulted).
    pub object: Object,
    /// Where it was declared.
    pub provenance: Provenance,
}

/// The same object declared twice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key} is declared twice: at {first} and at {second}")]
pub struct DuplicateObject {
    /// The object.
    pub key: ObjectKey,
    /// Where it was declared first.
    pub first: Provenance,
    /// Where it was declared again.
    pub second: Provenance,
}

/// A desired object ordered (and compared) by its key: the object's own
/// key (shared, not copied), kept beside it so that walking the keys reads
/// no object.
#[derive(Clone, Debug)]
struct Keyed {
    key: ObjectKey,
    object: DesiredObject,
}

impl Keyed {
    fn new(object: DesiredObject) -> Self {
        Self {
            key: object.object.key().clone(),
            object,
        }
    }

    fn key(&self) -> &ObjectKey {
        &self.key
    }
}

impl Borrow<ObjectKey> for Keyed {
    fn borrow(&self) -> &ObjectKey {
        self.key()
    }
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Keyed {}

impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(other.key())
    }
}

/// The objects one revision declares, keyed (and so ordered) by [`ObjectKey`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "Parts")]
pub struct DesiredState {
    revision: Option<Revision>,
    #[serde(with = "objects_as_list")]
    objects: BTreeSet<Keyed>,
    #[serde(default)]
    kinds: KindRegistry,
    /// Symbolic links the renderer skipped: path → target.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    skipped_symlinks: BTreeMap<String, String>,
    /// The keys each file declares (provenance path → keys): what a render
    /// of changed files replaces, found without reading every object. Made
    /// from `objects`, so neither written nor compared.
    #[serde(skip)]
    by_path: BTreeMap<String, Vec<ObjectKey>>,
}

/// What [`DesiredState`] is read from: its fields but the index, made
/// again.
#[derive(Deserialize)]
struct Parts {
    revision: Option<Revision>,
    #[serde(with = "objects_as_list")]
    objects: BTreeSet<Keyed>,
    #[serde(default)]
    kinds: KindRegistry,
    #[serde(default)]
    skipped_symlinks: BTreeMap<String, String>,
}

impl From<Parts> for DesiredState {
    fn from(parts: Parts) -> Self {
        let by_path = index_all(
            parts
                .objects
                .iter()
                .map(|k| (k.object.provenance.path.as_str(), &k.key)),
        );
        Self {
            revision: parts.revision,
            objects: parts.objects,
            kinds: parts.kinds,
            skipped_symlinks: parts.skipped_symlinks,
            by_path,
        }
    }
}

/// The index of objects given as (path, key), each file's keys in the
/// order given: built in one sort (the objects of one file mostly come
/// together), not a search per object.
fn index_all<'a>(
    objects: impl Iterator<Item = (&'a str, &'a ObjectKey)>,
) -> BTreeMap<String, Vec<ObjectKey>> {
    let mut runs: Vec<(&str, Vec<ObjectKey>)> = Vec::new();
    for (path, key) in objects {
        match runs.last_mut() {
            Some((p, keys)) if *p == path => keys.push(key.clone()),
            _ => runs.push((path, vec![key.clone()])),
        }
    }
    // Stable: a file's runs stay in order when they are joined.
    runs.sort_by(|a, b| a.0.cmp(b.0));
    let mut joined: Vec<(String, Vec<ObjectKey>)> = Vec::with_capacity(runs.len());
    for (path, keys) in runs {
        match joined.last_mut() {
            Some((p, k)) if p == path => k.extend(keys),
            _ => joined.push((path.to_owned(), keys)),
        }
    }
    joined.into_iter().collect()
}

/// Lists a desired object's key under its file.
fn index(by_path: &mut BTreeMap<String, Vec<ObjectKey>>, path: &str, key: &ObjectKey) {
    match by_path.get_mut(path) {
        Some(keys) => keys.push(key.clone()),
        None => {
            by_path.insert(path.to_owned(), vec![key.clone()]);
        }
    }
}

/// Takes a desired object off its file's list.
fn unindex(by_path: &mut BTreeMap<String, Vec<ObjectKey>>, keyed: &Keyed) {
    let path = &keyed.object.provenance.path;
    if let Some(keys) = by_path.get_mut(path) {
        keys.retain(|k| k != &keyed.key);
        if keys.is_empty() {
            by_path.remove(path);
        }
    }
}

impl DesiredState {
    /// An empty desired state for a revision.
    pub fn new(revision: Option<Revision>) -> Self {
        Self {
            revision,
            objects: BTreeSet::new(),
            kinds: KindRegistry::builtin(),
            skipped_symlinks: BTreeMap::new(),
            by_path: BTreeMap::new(),
        }
    }

    /// Records a symbolic link the renderer skipped
    /// ([`RenderOptions::skip_symlinks`](crate::render::RenderOptions::skip_symlinks)).
    pub fn add_skipped_symlink(&mut self, path: impl Into<String>, target: impl Into<String>) {
        self.skipped_symlinks.insert(path.into(), target.into());
    }

    /// The symbolic links the renderer skipped, as (path, target) in path
    /// order: a plan or report shows them, since objects a manifest at such
    /// a path declared before are pruned.
    pub fn skipped_symlinks(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.skipped_symlinks
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
    }

    /// Adds an object; a second declaration of the same key is refused,
    /// naming both places. Of two declarations the one at the smaller
    /// provenance is kept, so the result does not depend on insertion order.
    #[allow(
        clippy::result_large_err,
        reason = "rare, and callers collect it into a render error"
    )]
    pub fn insert(&mut self, object: DesiredObject) -> Result<(), DuplicateObject> {
        let Some(Keyed { object: kept, .. }) = self.objects.get(object.object.key()) else {
            let keyed = Keyed::new(object);
            index(&mut self.by_path, &keyed.object.provenance.path, &keyed.key);
            self.objects.insert(keyed);
            return Ok(());
        };
        let key = kept.object.key().clone();
        let (first, second) = if object.provenance < kept.provenance {
            let second = kept.provenance.clone();
            let first = object.provenance.clone();
            let keyed = Keyed::new(object);
            let (path, key) = (keyed.object.provenance.path.clone(), keyed.key.clone());
            if let Some(replaced) = self.objects.replace(keyed) {
                unindex(&mut self.by_path, &replaced);
            }
            index(&mut self.by_path, &path, &key);
            (first, second)
        } else {
            (kept.provenance.clone(), object.provenance)
        };
        Err(DuplicateObject { key, first, second })
    }

    /// Adds `objects` as [`DesiredState::insert`] would one by one, in
    /// order, with the same result; returns what it refuses, each with the
    /// position in `objects` of the declaration refused, in that order.
    /// Into an empty state it sorts once instead of searching for each
    /// object.
    pub(crate) fn insert_all(
        &mut self,
        objects: Vec<DesiredObject>,
    ) -> Vec<(usize, DuplicateObject)> {
        let mut refused = Vec::new();
        if !self.objects.is_empty() {
            for (i, object) in objects.into_iter().enumerate() {
                if let Err(duplicate) = self.insert(object) {
                    refused.push((i, duplicate));
                }
            }
            return refused;
        }
        // Keys and positions only: the objects are moved once, into the set.
        let mut order: Vec<(ObjectKey, usize)> = objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.object.key().clone(), i))
            .collect();
        // Stable: the declarations of one key stay in the order given.
        order.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept = vec![false; objects.len()];
        for declarations in order.chunk_by(|a, b| a.0 == b.0) {
            // What `insert` does with each later declaration.
            let (key, mut first) = (&declarations[0].0, declarations[0].1);
            for &(_, i) in &declarations[1..] {
                let (held, new) = (&objects[first].provenance, &objects[i].provenance);
                let (earlier, later) = if new < held {
                    first = i;
                    (new, held)
                } else {
                    (held, new)
                };
                refused.push((
                    i,
                    DuplicateObject {
                        key: key.clone(),
                        first: earlier.clone(),
                        second: later.clone(),
                    },
                ));
            }
            kept[first] = true;
        }
        refused.sort_by_key(|(i, _)| *i);
        // A file lists its keys in the order they were placed (a replacing
        // declaration where it comes, as `insert` files it last).
        self.by_path = index_all(
            objects
                .iter()
                .zip(&kept)
                .filter(|(_, kept)| **kept)
                .map(|(o, _)| (o.provenance.path.as_str(), o.object.key())),
        );
        let mut objects: Vec<Option<DesiredObject>> = objects.into_iter().map(Some).collect();
        // In key order already: the set is built without searching.
        self.objects = order
            .into_iter()
            .filter(|(_, i)| kept[*i])
            .filter_map(|(key, i)| {
                let object = objects.get_mut(i)?.take()?;
                Some(Keyed { key, object })
            })
            .collect();
        refused
    }

    /// Removes an object.
    pub fn remove(&mut self, key: &ObjectKey) -> Option<DesiredObject> {
        let removed = self.objects.take(key)?;
        unindex(&mut self.by_path, &removed);
        Some(removed.object)
    }

    /// The revision these objects come from.
    pub fn revision(&self) -> Option<&Revision> {
        self.revision.as_ref()
    }

    /// Sets the revision.
    pub fn set_revision(&mut self, revision: Option<Revision>) {
        self.revision = revision;
    }

    /// The kinds known while rendering (built-ins plus CRDs of this state).
    pub fn kinds(&self) -> &KindRegistry {
        &self.kinds
    }

    /// Replaces the kind registry.
    pub fn set_kinds(&mut self, kinds: KindRegistry) {
        self.kinds = kinds;
    }

    /// One object.
    pub fn get(&self, key: &ObjectKey) -> Option<&DesiredObject> {
        self.objects.get(key).map(|k| &k.object)
    }

    /// Whether the state declares an object.
    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.objects.contains(key)
    }

    /// Objects in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&ObjectKey, &DesiredObject)> {
        self.objects.iter().map(|k| (&k.key, &k.object))
    }

    /// The objects of one group and kind, in key order, found without
    /// walking the others (keys order by group and kind first).
    pub fn of_kind<'a>(
        &'a self,
        group: &'a str,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a DesiredObject)> {
        // The first key of the kind: cluster-scoped, with the empty name.
        let first = ObjectKey::new(group, kind, None, "");
        self.objects
            .range::<ObjectKey, _>(&first..)
            .map(|k| (&k.key, &k.object))
            .take_while(move |(k, _)| k.is(group, kind))
    }

    /// The namespaces of the namespaced objects, each once. Objects in key
    /// order come in runs of one kind and namespace: each run is skipped
    /// with one search, without reading its objects.
    pub fn namespaces(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        let mut searches = 0;
        let mut next = self.objects.first();
        while let Some(Keyed { key, .. }) = next {
            if searches > self.objects.len() / 8 {
                // Runs this short are walked instead.
                let rest = self.objects.range::<ObjectKey, _>(key..);
                out.extend(rest.filter_map(|k| k.key.namespace.as_deref()));
                break;
            }
            searches += 1;
            // The first key after the run: of the same kind, in the next
            // namespace ("ns\0" is the least string after "ns"; "" the least
            // of all, after the cluster-scoped keys).
            let after = match key.namespace.as_deref() {
                Some(ns) => {
                    out.insert(ns);
                    format!("{ns}\0")
                }
                None => String::new(),
            };
            let after = ObjectKey::new(key.group.as_str(), key.kind.as_str(), Some(&after), "");
            next = self.objects.range::<ObjectKey, _>(&after..).next();
        }
        out
    }

    /// The keys of the objects declared in the file at `path` (their
    /// [provenance](Provenance::path)), found without reading the others.
    pub fn declared_in(&self, path: &str) -> impl Iterator<Item = &ObjectKey> {
        self.by_path.get(path).into_iter().flatten()
    }

    /// Keys in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &ObjectKey> {
        self.objects.iter().map(Keyed::key)
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether no object is declared.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

impl PartialEq for DesiredState {
    fn eq(&self, other: &Self) -> bool {
        // The set compares keys only: the objects are compared here.
        self.revision == other.revision
            && self.kinds == other.kinds
            && self.skipped_symlinks == other.skipped_symlinks
            && self.objects.len() == other.objects.len()
            && self
                .objects
                .iter()
                .zip(&other.objects)
                .all(|(a, b)| a.object == b.object)
    }
}

impl Eq for DesiredState {}

/// The objects are written as a list.
mod objects_as_list {
    use std::collections::BTreeSet;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::{DesiredObject, Keyed};

    pub fn serialize<S: Serializer>(set: &BTreeSet<Keyed>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(set.iter().map(|k| &k.object))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<Keyed>, D::Error> {
        let list: Vec<DesiredObject> = Vec::deserialize(d)?;
        Ok(list.into_iter().map(Keyed::new).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn cm(name: &str, value: &str, path: &str) -> DesiredObject {
        DesiredObject {
            object: Object::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "a"}, "data": {"k": value}}))
            .unwrap(),
            provenance: Provenance::new(path, 0),
        }
    }

    #[test]
    fn states_compare_objects_not_only_keys() {
        let mut a = DesiredState::new(None);
        let mut b = DesiredState::new(None);
        a.insert(cm("x", "1", "a.yaml")).unwrap();
        b.insert(cm("x", "2", "a.yaml")).unwrap();
        assert_ne!(a, b);
        let mut c = DesiredState::new(None);
        c.insert(cm("x", "1", "a.yaml")).unwrap();
        assert_eq!(a, c);
        assert_eq!(
            a.get(cm("x", "1", "").object.key()).unwrap().object,
            c.get(cm("x", "1", "").object.key()).unwrap().object
        );
    }

    #[test]
    fn of_two_declarations_the_first_place_is_kept_in_any_order() {
        let mut a = DesiredState::new(None);
        a.insert(cm("x", "late", "b.yaml")).unwrap();
        let err = a.insert(cm("x", "early", "a.yaml")).unwrap_err();
        assert_eq!(
            (err.first.path.as_str(), err.second.path.as_str()),
            ("a.yaml", "b.yaml")
        );
        let kept = a.iter().next().unwrap().1;
        assert_eq!(kept.provenance.path, "a.yaml");
        assert_eq!(kept.object.as_value()["data"]["k"], "early");
        let err = a.insert(cm("x", "later", "c.yaml")).unwrap_err();
        assert_eq!(
            (err.first.path.as_str(), err.second.path.as_str()),
            ("a.yaml", "c.yaml")
        );
        assert_eq!(a.len(), 1);
        let back: DesiredState = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(back, a);
        assert_eq!(a.remove(&err.key).unwrap().provenance.path, "a.yaml");
        assert!(a.is_empty());
    }

    fn object(group: &str, kind: &str, ns: Option<&str>, name: &str) -> DesiredObject {
        let api_version = if group.is_empty() {
            "v1".to_owned()
        } else {
            format!("{group}/v1")
        };
        let mut metadata = json!({"name": name});
        if let Some(ns) = ns {
            metadata["namespace"] = json!(ns);
        }
        DesiredObject {
            object: Object::new(
                json!({"apiVersion": api_version, "kind": kind, "metadata": metadata}),
            )
            .unwrap(),
            provenance: Provenance::new(format!("{kind}-{name}.yaml"), 0),
        }
    }

    fn state(objects: &[(&str, &str, Option<&str>, &str)]) -> DesiredState {
        let mut state = DesiredState::new(None);
        for (g, k, ns, n) in objects {
            state.insert(object(g, k, *ns, n)).unwrap();
        }
        state
    }

    #[test]
    fn of_kind_gives_the_objects_of_one_kind_only() {
        let s = state(&[
            ("", "ConfigMap", Some("a"), "x"),
            (
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                None,
                "b.example.com",
            ),
            (
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                None,
                "a.example.com",
            ),
            ("apps", "Deployment", Some("a"), "web"),
            ("", "Namespace", None, "a"),
        ]);
        let crds: Vec<String> = s
            .of_kind("apiextensions.k8s.io", "CustomResourceDefinition")
            .map(|(k, _)| k.name.clone())
            .collect();
        assert_eq!(crds, ["a.example.com", "b.example.com"]);
        assert_eq!(s.of_kind("", "ConfigMap").count(), 1);
        assert_eq!(s.of_kind("", "Secret").count(), 0);
        assert_eq!(s.of_kind("apps", "ConfigMap").count(), 0);
        // The keys given are the objects' own.
        let (k, d) = s.of_kind("", "Namespace").next().unwrap();
        assert!(ObjectKey::same(k, d.object.key()));
    }

    #[test]
    fn namespaces_skip_the_cluster_scoped_and_name_each_once() {
        let s = state(&[
            ("", "ConfigMap", Some("b"), "x"),
            ("", "ConfigMap", Some("b"), "y"),
            ("", "ConfigMap", Some("a"), "x"),
            ("", "Namespace", None, "a"),
            ("", "Namespace", None, "z"),
            ("rbac.authorization.k8s.io", "ClusterRole", None, "r"),
            ("rbac.authorization.k8s.io", "Role", Some("c"), "r"),
            // A namespace that starts with another one.
            ("", "Service", Some("a0"), "s"),
            ("", "Service", Some("a"), "s"),
        ]);
        assert_eq!(
            s.namespaces().into_iter().collect::<Vec<_>>(),
            ["a", "a0", "b", "c"]
        );
        assert!(DesiredState::new(None).namespaces().is_empty());
    }

    proptest::proptest! {
        /// Whatever the runs (long, short, one object each: then walked),
        /// the namespaces are those of a plain walk of every object.
        #[test]
        fn namespaces_are_those_of_every_object(
            objects in proptest::collection::vec(
                (0..3usize, proptest::option::of(0..6usize), 0..40usize),
                0..120,
            )
        ) {
            let kinds = [("", "ConfigMap"), ("apps", "Deployment"), ("", "Secret")];
            let mut s = DesiredState::new(None);
            for (kind, ns, name) in objects {
                let (g, k) = kinds[kind];
                let ns = ns.map(|n| format!("ns{n}"));
                // A duplicate is refused: then the state keeps the first.
                let _ = s.insert(object(g, k, ns.as_deref(), &format!("o{name}")));
            }
            let walked: BTreeSet<&str> =
                s.keys().filter_map(|k| k.namespace.as_deref()).collect();
            proptest::prop_assert_eq!(s.namespaces(), walked);
        }
    }

    proptest::proptest! {
        /// Through inserts (a second declaration of a key at a smaller
        /// place replaces the first), removals and a serde round trip, each
        /// file lists exactly the keys of the objects declared in it.
        #[test]
        fn each_file_lists_the_keys_it_declares(
            ops in proptest::collection::vec((proptest::bool::weighted(0.8), 0..12usize, 0..4usize, 0..3usize), 0..80)
        ) {
            let mut s = DesiredState::new(None);
            for (insert, name, file, doc) in ops {
                let key = object("", "ConfigMap", Some("a"), &format!("o{name}")).object.key().clone();
                if insert {
                    let mut o = object("", "ConfigMap", Some("a"), &format!("o{name}"));
                    o.provenance = Provenance::new(format!("f{file}.yaml"), doc);
                    let _ = s.insert(o);
                } else {
                    s.remove(&key);
                }
            }
            let back: DesiredState = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
            for state in [&s, &back] {
                for file in 0..4 {
                    let path = format!("f{file}.yaml");
                    let mut listed: Vec<&ObjectKey> = state.declared_in(&path).collect();
                    listed.sort();
                    let declared: Vec<&ObjectKey> = state
                        .iter()
                        .filter(|(_, d)| d.provenance.path == path)
                        .map(|(k, _)| k)
                        .collect();
                    proptest::prop_assert_eq!(listed, declared);
                }
            }
        }
    }

    proptest::proptest! {
        /// `insert_all` into an empty state (and into one that is not)
        /// gives what inserting one object at a time gives: the same
        /// objects, the same refusals in the same order, each file's keys
        /// in the same order.
        #[test]
        fn inserting_all_at_once_is_inserting_one_at_a_time(
            objects in proptest::collection::vec((0..8usize, 0..4usize, 0..3usize, 0..3usize), 0..60),
            seeded in proptest::bool::ANY,
        ) {
            let objects: Vec<DesiredObject> = objects
                .into_iter()
                .map(|(name, file, doc, value)| {
                    let mut o = cm(&format!("o{name}"), &value.to_string(), "");
                    o.provenance = Provenance::new(format!("f{file}.yaml"), doc);
                    o
                })
                .collect();
            let start = || {
                let mut s = DesiredState::new(None);
                if seeded {
                    s.insert(cm("o0", "seed", "f9.yaml")).unwrap();
                }
                s
            };
            let mut one = start();
            let mut refused_one = Vec::new();
            for (i, o) in objects.clone().into_iter().enumerate() {
                if let Err(e) = one.insert(o) {
                    refused_one.push((i, e));
                }
            }
            let mut all = start();
            let refused_all = all.insert_all(objects);
            proptest::prop_assert_eq!(&refused_all, &refused_one);
            proptest::prop_assert_eq!(&all, &one);
            for file in 0..10 {
                let path = format!("f{file}.yaml");
                let a: Vec<&ObjectKey> = all.declared_in(&path).collect();
                let b: Vec<&ObjectKey> = one.declared_in(&path).collect();
                proptest::prop_assert_eq!(a, b);
            }
        }
    }
}
