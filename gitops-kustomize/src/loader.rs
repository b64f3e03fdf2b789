//! Reading files of the snapshot: path resolution, load restrictions, YAML documents.

use std::cell::{OnceCell, RefCell};
use std::collections::HashSet;
use std::sync::Arc;

use gitops_core::{Blob, BlobId, Snapshot};
use serde_json::Value;

use crate::error::Error;

/// The kustomization file names kustomize recognises, in its order.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Joins `rel` to `dir` and normalises `.`/`..`; `None` when it leaves the snapshot.
pub fn join(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = if rel.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect()
    };
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

/// Whether `path` is `dir` or under it.
pub fn is_within(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Whether an entry names a remote resource (URL or git reference).
pub fn is_remote(entry: &str) -> bool {
    let e = entry.trim();
    e.contains("://")
        || e.starts_with("git@")
        || e.starts_with("github.com/")
        || e.starts_with("gitlab.com/")
        || e.starts_with("bitbucket.org/")
        || e.contains(".git//")
        || e.contains("?ref=")
}

/// One read of the snapshot a build made, with the answer it got: the
/// trace a memoized result is validated by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// A file lookup and the blob found (`None`: absent).
    File(String, Option<BlobId>),
    /// A directory test (some file is under it) and its answer.
    Dir(String, bool),
}

impl Read {
    /// The path read.
    pub fn path(&self) -> &str {
        match self {
            Read::File(p, _) | Read::Dir(p, _) => p,
        }
    }
}

/// Per-build state of the reads: the directories of the snapshot (computed
/// once, on first use) and, when recording, the reads made so far.
#[derive(Debug, Default)]
pub struct ReadState<'a> {
    dirs: OnceCell<HashSet<&'a str>>,
    log: Option<RefCell<Vec<Read>>>,
}

impl ReadState<'_> {
    /// A state that records every read (for memoizing).
    pub fn recording() -> Self {
        Self {
            dirs: OnceCell::new(),
            log: Some(RefCell::new(Vec::new())),
        }
    }
}

/// Read access to one snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Files<'a> {
    snap: &'a Snapshot,
    state: &'a ReadState<'a>,
}

/// What an entry of `resources` names.
pub enum Entry {
    /// A file.
    File(String),
    /// A directory.
    Dir(String),
}

impl<'a> Files<'a> {
    /// Wraps a snapshot.
    pub fn new(snap: &'a Snapshot, state: &'a ReadState<'a>) -> Self {
        Self { snap, state }
    }

    fn record(&self, read: impl FnOnce() -> Read) {
        if let Some(log) = &self.state.log {
            log.borrow_mut().push(read());
        }
    }

    /// How many reads were recorded so far.
    pub fn reads_len(&self) -> usize {
        self.state.log.as_ref().map_or(0, |l| l.borrow().len())
    }

    /// The reads recorded since `start`, one per path and kind.
    pub fn reads_since(&self, start: usize) -> Vec<Read> {
        let Some(log) = &self.state.log else {
            return Vec::new();
        };
        let log = log.borrow();
        let mut seen = HashSet::new();
        log.get(start..)
            .unwrap_or_default()
            .iter()
            .filter(|r| seen.insert((matches!(r, Read::Dir(..)), r.path().to_owned())))
            .cloned()
            .collect()
    }

    /// Records reads replayed from a memoized result.
    pub fn replay(&self, reads: &[Read]) {
        if let Some(log) = &self.state.log {
            log.borrow_mut().extend_from_slice(reads);
        }
    }

    /// Whether a recorded read still gives the same answer in this snapshot
    /// (does not record).
    pub fn still_holds(&self, read: &Read) -> bool {
        match read {
            Read::File(p, id) => self.snap.get(p).map(|b| &b.id) == id.as_ref(),
            Read::Dir(p, found) => self.dir_exists(p) == *found,
        }
    }

    /// The blob of a file, recorded.
    fn blob(&self, path: &str) -> Option<&'a Blob> {
        let b = self.snap.get(path);
        self.record(|| Read::File(path.to_owned(), b.map(|b| b.id.clone())));
        b
    }

    /// The bytes of a file.
    pub fn get(&self, path: &str) -> Option<&'a [u8]> {
        self.blob(path).map(|b| &*b.data)
    }

    fn dir_exists(&self, path: &str) -> bool {
        if path.is_empty() {
            return !self.snap.is_empty();
        }
        let dirs = self.state.dirs.get_or_init(|| {
            let mut dirs = HashSet::new();
            for (p, _) in self.snap.files() {
                for (i, _) in p.match_indices('/') {
                    dirs.insert(&p[..i]);
                }
            }
            dirs
        });
        dirs.contains(path)
    }

    /// Whether a directory exists (some file is under it).
    pub fn is_dir(&self, path: &str) -> bool {
        let found = self.dir_exists(path);
        self.record(|| Read::Dir(path.to_owned(), found));
        found
    }

    /// Finds the kustomization file of a directory.
    pub fn kustomization_file(&self, dir: &str) -> Result<String, Error> {
        let found: Vec<String> = KUSTOMIZATION_FILE_NAMES
            .iter()
            .filter_map(|n| join(dir, n))
            .filter(|p| self.blob(p).is_some())
            .collect();
        match found.len() {
            0 => Err(Error::MissingKustomization {
                dir: display_dir(dir),
            }),
            1 => Ok(found.into_iter().next().unwrap_or_default()),
            _ => Err(Error::MultipleKustomizations {
                dir: display_dir(dir),
            }),
        }
    }

    /// Resolves an entry relative to the kustomization in `dir`.
    ///
    /// `file` and `field` only name the entry in errors; `file_only` applies
    /// the load restrictor (files must be under `dir`).
    pub fn resolve(
        &self,
        dir: &str,
        file: &str,
        field: &str,
        entry: &str,
        file_only: bool,
    ) -> Result<Entry, Error> {
        if is_remote(entry) {
            return Err(Error::Remote {
                file: file.into(),
                field: field.into(),
                entry: entry.into(),
            });
        }
        let Some(path) = join(dir, entry) else {
            return Err(Error::EscapesSnapshot {
                file: file.into(),
                field: field.into(),
                entry: entry.into(),
            });
        };
        if self.blob(&path).is_some() {
            if !is_within(&path, dir) {
                return Err(Error::OutsideRoot {
                    file: file.into(),
                    field: field.into(),
                    entry: entry.into(),
                    path,
                    root: display_dir(dir),
                });
            }
            return Ok(Entry::File(path));
        }
        if !file_only && self.is_dir(&path) {
            return Ok(Entry::Dir(path));
        }
        Err(Error::NotFound {
            file: file.into(),
            field: field.into(),
            entry: entry.into(),
            path: display_dir(&path),
        })
    }

    /// Reads a file entry (load restrictor applied) as bytes.
    pub fn read_entry(
        &self,
        dir: &str,
        file: &str,
        field: &str,
        entry: &str,
    ) -> Result<(String, &'a [u8]), Error> {
        match self.resolve(dir, file, field, entry, true)? {
            Entry::File(p) => {
                let data = self.get(&p).unwrap_or_default();
                Ok((p, data))
            }
            Entry::Dir(p) => Err(Error::NotFound {
                file: file.into(),
                field: field.into(),
                entry: entry.into(),
                path: p,
            }),
        }
    }
}

/// A directory for messages (`.` for the snapshot root).
pub fn display_dir(dir: &str) -> String {
    if dir.is_empty() {
        ".".into()
    } else {
        dir.into()
    }
}

/// Parses the YAML documents of a file; empty documents are skipped.
pub fn parse_documents(file: &str, data: &[u8]) -> Result<Vec<Value>, Error> {
    Ok(parse_indexed_documents(file, data)?
        .into_iter()
        .map(|(_, v)| v)
        .collect())
}

/// Parses the YAML documents of a file with their index in it (0-based,
/// empty documents counted); empty documents are skipped.
pub fn parse_indexed_documents(file: &str, data: &[u8]) -> Result<Vec<(usize, Value)>, Error> {
    // Valid UTF-8 (the usual case) is checked by the fast validator;
    // invalid bytes are replaced as before.
    let text = match std::str::from_utf8(data) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(data),
    };
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let Json(v) = serde::Deserialize::deserialize(doc).map_err(|e| Error::Yaml {
            file: file.into(),
            source: Arc::new(e),
        })?;
        if !v.is_null() {
            out.push((i, v));
        }
    }
    Ok(out)
}

/// A YAML document read straight into a JSON value (no `serde_yaml::Value`
/// in between), as kustomize reads it: non-string keys become strings, a
/// merge key (`<<`) adds the entries of the mapping it names that are not
/// set, tags are dropped, a key given twice is an error.
struct Json(Value);

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json(Value::from(n)))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json(Value::from(n)))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Json, E> {
        Ok(Json(
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json(Value::String(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json(Value::String(s)))
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json(Value::Null))
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        serde::Deserialize::deserialize(d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Json(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json(Value::Array(out)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out = serde_json::Map::new();
        // Keys set by a merge only (an explicit key may override them once).
        let mut merged_keys: Vec<String> = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            let Json(v) = map.next_value()?;
            if key == "<<" {
                if let Value::Object(merged) = v {
                    for (mk, mv) in merged {
                        if !out.contains_key(&mk) {
                            merged_keys.push(mk.clone());
                            out.insert(mk, mv);
                        }
                    }
                }
                continue;
            }
            if let Some(i) = merged_keys.iter().position(|k| *k == key) {
                merged_keys.swap_remove(i);
                out.insert(key, v);
                continue;
            }
            // One hash of the key: a duplicate is found where it would go.
            match out.entry(key) {
                serde_json::map::Entry::Vacant(e) => {
                    e.insert(v);
                }
                serde_json::map::Entry::Occupied(e) => {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate entry with key \"{}\"",
                        e.key()
                    )));
                }
            }
        }
        Ok(Json(Value::Object(out)))
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Json, A::Error> {
        // A tagged value (`!tag value`): the tag is dropped.
        use serde::de::VariantAccess;
        let (_, variant): (serde::de::IgnoredAny, _) = data.variant()?;
        variant.newtype_variant::<Json>()
    }
}

/// A mapping key as a string (non-string scalar keys as their YAML text).
struct Key(String);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let y: serde_yaml::Value = serde::Deserialize::deserialize(d)?;
        let key = match y {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Bool(b) => b.to_string(),
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Null => "null".into(),
            other => serde_yaml::to_string(&other)
                .unwrap_or_default()
                .trim()
                .to_owned(),
        };
        Ok(Key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_normalises_and_refuses_escape() {
        assert_eq!(join("a/b", "../c/./d.yaml").as_deref(), Some("a/c/d.yaml"));
        assert_eq!(join("", "x").as_deref(), Some("x"));
        assert_eq!(join("a", "../../x"), None);
    }

    #[test]
    fn within() {
        assert!(is_within("a/b/c", "a/b"));
        assert!(!is_within("a/bc", "a/b"));
        assert!(is_within("x", ""));
    }

    #[test]
    fn yaml_reads_as_kustomize_reads_it() {
        let docs = parse_indexed_documents(
            "f.yaml",
            b"---\n---\nbase: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n1: one\ntrue: t\nt: !custom 5\nf: 1.5\nn: ~\n",
        );
        let docs = docs.map_err(|e| e.to_string());
        assert!(docs.is_ok(), "{docs:?}");
        let docs = docs.unwrap_or_default();
        assert_eq!(docs.len(), 1);
        assert_eq!(
            docs[0],
            (
                1,
                serde_json::json!({"base": {"x": 1, "y": 2}, "m": {"x": 1, "y": 3},
                    "1": "one", "true": "t", "t": 5, "f": 1.5, "n": null})
            )
        );
        let dup = parse_indexed_documents("f.yaml", b"a: 1\na: 2\n");
        assert!(dup.is_err_and(|e| e.to_string().contains("duplicate entry with key")));
    }

    #[test]
    fn remote_entries() {
        assert!(is_remote("https://github.com/x/y"));
        assert!(is_remote(
            "github.com/kubernetes-sigs/kustomize/examples/multibases?ref=v1.0.6"
        ));
        assert!(!is_remote("../base"));
    }
}
