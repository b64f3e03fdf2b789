//! Parsing one file's bytes into validated objects (cacheable: the result
//! depends on the bytes and the format only).

use std::cell::Cell;
use std::fmt;

use gitops_diff::{BuiltinLists, DuplicateListKey, duplicate_list_keys};
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::desired::Provenance;
use crate::object::Object;

use super::error::{Location, RenderError, SourceFormat};
use super::scan::{self, Limits, Problem, Refusal};

/// One object (or the error in its place) of a parsed file. The provenance's
/// path is empty until the renderer fills it in.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) at: Provenance,
    /// The object's duplicate list keys by the built-in list table, found
    /// while its value is still in cache: what the renderer reports unless
    /// a CRD of the render describes the kind.
    pub(crate) builtin_duplicates: Vec<DuplicateListKey>,
    /// Boxed: most entries are objects, and parses are kept in the cache.
    pub(crate) result: Result<Object, Box<RenderError>>,
}

impl Entry {
    /// The entry of `result`, an object checked for duplicate list keys
    /// by the built-in list table, or an error.
    fn new(at: Provenance, result: Result<Object, Box<RenderError>>) -> Self {
        let builtin_duplicates = match &result {
            Ok(object) => {
                duplicate_list_keys(&object.group_kind(), object.as_value(), &BuiltinLists)
            }
            Err(_) => Vec::new(),
        };
        Self {
            at,
            builtin_duplicates,
            result,
        }
    }
}

/// A parsed file.
#[derive(Debug, Clone, Default)]
pub(crate) struct ParsedFile {
    /// Documents read (empty ones included).
    pub(crate) documents: usize,
    /// Objects and errors, in file order.
    pub(crate) entries: Vec<Entry>,
}

/// A problem the value visitor found, kept beside the serde error so it can
/// be reported as a typed error.
#[derive(Debug)]
enum Issue {
    DuplicateKey(String),
    Key(&'static str),
    Value(String),
}

/// Entries of the mappings and items of the sequences being read, one
/// stack for the whole nesting: a collection's elements are pushed above
/// those of its parents and moved out, in one allocation of their exact
/// size, when it ends. Building a `Vec` or an `IndexMap` element by element
/// instead reallocates it (and rehashes the map) as it grows, and checking a
/// key with the map's hash before inserting it hashes every key twice.
///
/// The stacks live in `Cell`s (taken and put back around each use, never
/// borrowed across a call into the deserializer), so nothing here can
/// panic. After an error the stacks may hold the failed collections'
/// elements: each use ([`Stage::with`]) starts and ends by emptying them.
#[derive(Default)]
struct Stage {
    entries: Cell<Vec<(String, Value)>>,
    items: Cell<Vec<Value>>,
}

/// Mappings with more keys than this are moved from the [`Stage`] into a
/// map, which then checks the remaining keys by hash; smaller ones are
/// checked by comparing with the keys before them.
const STAGED_KEYS: usize = 16;

/// Staged elements a [`Stage`] keeps room for between files; a larger
/// stage is dropped after use rather than kept by its thread.
const KEPT_STAGE: usize = 1024;

thread_local! {
    /// One stage a thread, reused from file to file: its stacks are sized
    /// by the first files and not regrown for every file.
    static STAGE: Stage = Stage::default();
}

impl Stage {
    /// Runs `f` with this thread's stage, emptied first (a failed read may
    /// have left elements on it).
    fn with<T>(f: impl FnOnce(&Stage) -> T) -> T {
        STAGE.with(|stage| {
            stage.clear();
            let out = f(stage);
            stage.clear();
            out
        })
    }

    /// Drops what the stacks hold; gives back their room if it is large.
    fn clear(&self) {
        let mut entries = self.entries.take();
        entries.clear();
        if entries.capacity() <= KEPT_STAGE {
            self.entries.set(entries);
        }
        let mut items = self.items.take();
        items.clear();
        if items.capacity() <= KEPT_STAGE {
            self.items.set(items);
        }
    }

    fn items_len(&self) -> usize {
        let items = self.items.take();
        let len = items.len();
        self.items.set(items);
        len
    }

    fn push_item(&self, value: Value) {
        let mut items = self.items.take();
        items.push(value);
        self.items.set(items);
    }

    /// The items pushed since `start`, moved out.
    fn take_items(&self, start: usize) -> Vec<Value> {
        let mut items = self.items.take();
        let out = items.drain(start.min(items.len())..).collect();
        self.items.set(items);
        out
    }

    fn entries_len(&self) -> usize {
        let entries = self.entries.take();
        let len = entries.len();
        self.entries.set(entries);
        len
    }

    /// Whether a key pushed since `start` is `key`.
    fn has_key(&self, start: usize, key: &str) -> bool {
        let entries = self.entries.take();
        let found = entries
            .get(start..)
            .is_some_and(|e| e.iter().any(|(k, _)| k == key));
        self.entries.set(entries);
        found
    }

    /// Pushes an entry; the number of entries pushed since `start`.
    fn push_entry(&self, start: usize, key: String, value: Value) -> usize {
        let mut entries = self.entries.take();
        entries.push((key, value));
        let len = entries.len().saturating_sub(start);
        self.entries.set(entries);
        len
    }

    /// The entries pushed since `start`, moved into a map of their size.
    fn take_map(&self, start: usize) -> Map<String, Value> {
        let mut entries = self.entries.take();
        let staged = entries.drain(start.min(entries.len())..);
        let mut out = Map::with_capacity(staged.len());
        for (k, v) in staged {
            out.insert(k, v);
        }
        self.entries.set(entries);
        out
    }
}

#[derive(Clone, Copy)]
struct ValueSeed<'a> {
    issue: &'a Cell<Option<Issue>>,
    stage: &'a Stage,
    yaml: bool,
    /// Keys are read as strings, not resolved ([`StringKey`]); only for
    /// text without tags or aliases.
    string_keys: bool,
}

impl ValueSeed<'_> {
    fn fail<E: de::Error>(&self, issue: Issue) -> E {
        let msg = format!("{issue:?}");
        self.issue.set(Some(issue));
        E::custom(msg)
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        if let Ok(i) = i64::try_from(v) {
            return Ok(Value::Number(i.into()));
        }
        if let Ok(u) = u64::try_from(v) {
            return Ok(Value::Number(u.into()));
        }
        Err(self.fail(Issue::Value(format!(
            "the integer {v} is out of the 64-bit range"
        ))))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        match u64::try_from(v) {
            Ok(u) => Ok(Value::Number(u.into())),
            Err(_) => Err(self.fail(Issue::Value(format!(
                "the integer {v} is out of the 64-bit range"
            )))),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match Number::from_f64(v) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(self.fail(Issue::Value(format!(
                "the number {v} is not finite (JSON has no .nan or .inf)"
            )))),
        }
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Value, E> {
        Err(self.fail(Issue::Value("binary data".to_owned())))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let start = self.stage.items_len();
        while let Some(v) = seq.next_element_seed(self)? {
            self.stage.push_item(v);
        }
        Ok(Value::Array(self.stage.take_items(start)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // Staged on the stack while small, then (past `STAGED_KEYS`) in a
        // map; either way a key is refused before its value is read.
        let start = self.stage.entries_len();
        let mut big: Option<Map<String, Value>> = None;
        while let Some(key) = map.next_key_seed(KeySeed { value: self })? {
            if self.yaml && key == "<<" {
                return Err(self.fail(Issue::Value(
                    "a YAML merge key `<<` (not supported: write the fields out)".to_owned(),
                )));
            }
            match &mut big {
                None => {
                    if self.stage.has_key(start, &key) {
                        return Err(self.fail(Issue::DuplicateKey(key)));
                    }
                    let value = map.next_value_seed(self)?;
                    if self.stage.push_entry(start, key, value) > STAGED_KEYS {
                        big = Some(self.stage.take_map(start));
                    }
                }
                Some(out) => match out.entry(key) {
                    serde_json::map::Entry::Occupied(o) => {
                        return Err(self.fail(Issue::DuplicateKey(o.key().clone())));
                    }
                    serde_json::map::Entry::Vacant(v) => {
                        v.insert(map.next_value_seed(self)?);
                    }
                },
            }
        }
        Ok(Value::Object(
            big.unwrap_or_else(|| self.stage.take_map(start)),
        ))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, _rest): (String, _) = data.variant()?;
        Err(self.fail(Issue::Value(format!(
            "the YAML tag !{tag} (custom tags are not supported)"
        ))))
    }
}

#[derive(Clone, Copy)]
struct KeySeed<'a> {
    value: ValueSeed<'a>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        if self.value.string_keys {
            d.deserialize_str(StringKey)
        } else {
            d.deserialize_any(self)
        }
    }
}

/// Whether YAML could resolve the plain scalar `v` to something other than
/// the string `v` (null, a boolean, an integer or a float, by the rules of
/// `serde_yaml`): a superset of those, decided by the first byte or an
/// exact spelling. Integers start with a digit or a sign; finite floats
/// with a digit, a sign or `.` (`.5`, `.inf`; Rust's `inf` and `nan`
/// parse, but `serde_yaml` keeps only finite floats).
fn may_resolve(v: &str) -> bool {
    matches!(
        v,
        "" | "~"
            | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
    ) || v
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.'))
}

/// A key read as the string it is written as (`deserialize_str`), without
/// `serde_yaml`'s resolution of plain scalars, which [`KeySeed`] pays for
/// every key (a tenth of a render). The two agree on every key of a text
/// without tags (no `!`): a quoted or block key is its string either way,
/// and a plain one is, unless [`may_resolve`]. Such a key, or anything
/// else than a scalar, fails the document here; the caller then reads the
/// whole file again with [`KeySeed`], so the result (errors included) is
/// always the resolving read's.
struct StringKey;

impl Visitor<'_> for StringKey {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if may_resolve(v) {
            return Err(E::custom("a key YAML may resolve: read again"));
        }
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        if may_resolve(&v) {
            return Err(E::custom("a key YAML may resolve: read again"));
        }
        Ok(v)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i128<E>(self, v: i128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u128<E>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Err(self.value.fail(Issue::Key("null")))
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Err(self.value.fail(Issue::Key("null")))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        self.deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        self.deserialize(d)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<String, E> {
        Err(self.value.fail(Issue::Key("binary data")))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(self.value.fail(Issue::Key("a list")))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(self.value.fail(Issue::Key("a mapping")))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(self.value.fail(Issue::Key("a tagged value")))
    }
}

/// Turns a failed document into a typed error.
fn doc_error(
    issue: Option<Issue>,
    at: Provenance,
    format: SourceFormat,
    location: Option<Location>,
    message: String,
) -> RenderError {
    match issue {
        Some(Issue::DuplicateKey(key)) => RenderError::DuplicateKey { at, location, key },
        Some(Issue::Key(found)) => RenderError::UnsupportedKey {
            at,
            location,
            found: found.to_owned(),
        },
        Some(Issue::Value(what)) => RenderError::UnsupportedValue { at, location, what },
        None if message.contains("repetition limit exceeded")
            || message.contains("recursion limit exceeded") =>
        {
            RenderError::TooComplex {
                at,
                location,
                message: if location.is_some() {
                    super::error::without_position(&message)
                } else {
                    message
                },
            }
        }
        None => RenderError::Syntax {
            at,
            format,
            location,
            message: if location.is_some() {
                super::error::without_position(&message)
            } else {
                message
            },
        },
    }
}

/// Whether `line` is the document marker `marker` (`---` or `...`) followed
/// by nothing or whitespace.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// The 1-based line each YAML document of `text` starts at: the line of its
/// `---` marker, or for a document without one, its first line that is not
/// blank, a comment or a directive.
///
/// YAML forbids a line starting with `---` or `...` (at column 0, followed by
/// whitespace or the end of the line) inside any scalar, block scalars
/// included, so scanning lines finds the same documents the parser does;
/// where the counts could still disagree (a file of comments only, which the
/// parser reads as one empty document) the renderer reports no line rather
/// than a wrong one.
///
/// Lines are what [`str::lines`] gives. A text without `...` lines (nearly
/// every manifest) is not read line by line: once its first document has
/// started, only a `---` line can start another, and those are found with a
/// substring search ([`by_line`] is the plain walk, used otherwise).
pub(crate) fn document_lines(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    if bytes.starts_with(b"...") || memchr::memmem::find(bytes, b"\n...").is_some() {
        return by_line(text);
    }
    let mut starts = Vec::new();
    // The lines before the first document: blank, comments, directives.
    let mut at = 0;
    let mut line = 1;
    loop {
        let Some(rest) = text.get(at..).filter(|r| !r.is_empty()) else {
            return starts;
        };
        let end = memchr::memchr(b'\n', rest.as_bytes());
        let l = line_text(rest, end);
        if is_marker(l, "---") || starts_content(l) {
            starts.push(line);
            break;
        }
        let Some(end) = end else {
            return starts;
        };
        at += end + 1;
        line += 1;
    }
    // In a document: the next one starts at a `---` line.
    let mut counted = at;
    for found in memchr::memmem::find_iter(&bytes[at..], b"\n---") {
        let start = at + found + 1;
        let Some(rest) = text.get(start..) else {
            continue;
        };
        if is_marker(
            line_text(rest, memchr::memchr(b'\n', rest.as_bytes())),
            "---",
        ) {
            line += count_bytes(&bytes[counted..start], |b| b == b'\n');
            counted = start;
            starts.push(line);
        }
    }
    starts
}

/// The line at the start of `rest` whose `\n` (if any) is at `end`, as
/// [`str::lines`] gives it (without a `\r` before the `\n`).
fn line_text(rest: &str, end: Option<usize>) -> &str {
    match end {
        Some(end) => {
            let l = rest.get(..end).unwrap_or(rest);
            l.strip_suffix('\r').unwrap_or(l)
        }
        None => rest,
    }
}

/// How many bytes of `bytes` are `wanted` (counted in 64-byte chunks, whose
/// `u8` counters cannot overflow and which the compiler vectorises, rather
/// than branching on every byte).
fn count_bytes(bytes: &[u8], wanted: impl Fn(u8) -> bool) -> usize {
    bytes
        .chunks(64)
        .map(|c| usize::from(c.iter().fold(0u8, |n, &b| n + u8::from(wanted(b)))))
        .sum()
}

/// Whether `line`, outside a document, starts one: it is not blank, a
/// comment or a directive.
fn starts_content(line: &str) -> bool {
    let t = line.trim_start();
    !(t.is_empty() || t.starts_with('#') || line.starts_with('%'))
}

/// [`document_lines`], line by line.
fn by_line(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut in_doc = false;
    for (i, line) in text.lines().enumerate() {
        if is_marker(line, "---") {
            starts.push(i + 1);
            in_doc = true;
        } else if is_marker(line, "...") {
            in_doc = false;
        } else if !in_doc && starts_content(line) {
            starts.push(i + 1);
            in_doc = true;
        }
    }
    starts
}

fn location_of_offset(text: &str, offset: usize) -> Location {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Location { line, column }
}

fn provenance(document: usize, line: Option<usize>, item: Option<usize>) -> Provenance {
    Provenance::new(String::new(), document)
        .with_line(line)
        .with_item(item)
}

/// Validates one document's value into objects (flattening `List`s).
fn push_objects(value: Value, document: usize, line: Option<usize>, out: &mut Vec<Entry>) {
    if value.is_null() {
        return; // an empty document
    }
    let list_kind = value
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| k.ends_with("List"))
        .filter(|_| value.get("items").is_some())
        .map(str::to_owned);
    let Some(kind) = list_kind else {
        out.push(Entry::new(
            provenance(document, line, None),
            Object::new(value).map_err(|source| {
                Box::new(RenderError::Invalid {
                    at: provenance(document, line, None),
                    source,
                })
            }),
        ));
        return;
    };
    let items = match value {
        Value::Object(mut m) => m.remove("items"),
        _ => None,
    };
    match items {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let at = provenance(document, line, Some(i));
                out.push(Entry::new(
                    at.clone(),
                    Object::new(item)
                        .map_err(|source| Box::new(RenderError::Invalid { at, source })),
                ));
            }
        }
        Some(_) => out.push(Entry::new(
            provenance(document, line, None),
            Err(Box::new(RenderError::InvalidList {
                at: provenance(document, line, None),
                kind,
            })),
        )),
    }
}

fn yaml_location(e: &serde_yaml::Error) -> Option<Location> {
    e.location().map(|l| Location {
        line: l.line(),
        column: l.column(),
    })
}

/// Parses a file's bytes. Never panics; every problem becomes an entry.
///
/// YAML is scanned first ([`scan::scan_yaml`]): what the scan refuses never
/// reaches `serde_yaml`. As a last line of defence a panic inside a parser
/// (none is known) is caught and reported as
/// [`RenderError::ParserFailure`] for the file, in place of its entries.
pub(crate) fn parse_file(data: &[u8], format: SourceFormat, limits: Limits) -> ParsedFile {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        parse_file_inner(data, format, limits)
    }));
    caught.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        ParsedFile {
            documents: 0,
            entries: vec![Entry::new(
                provenance(0, None, None),
                Err(Box::new(RenderError::ParserFailure {
                    at: provenance(0, None, None),
                    format,
                    message,
                })),
            )],
        }
    })
}

fn parse_file_inner(data: &[u8], format: SourceFormat, limits: Limits) -> ParsedFile {
    let mut parsed = ParsedFile::default();
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) => {
            let valid = data.get(..e.valid_up_to()).unwrap_or_default();
            let prefix = std::str::from_utf8(valid).unwrap_or_default();
            parsed.entries.push(Entry::new(
                provenance(0, None, None),
                Err(Box::new(RenderError::NotUtf8 {
                    path: String::new(),
                    location: location_of_offset(prefix, prefix.len()),
                })),
            ));
            return parsed;
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        SourceFormat::Json => parse_json(text, &mut parsed),
        SourceFormat::Yaml => parse_yaml(text, limits, &mut parsed),
    }
    // Kept in the renderer's cache: without spare room.
    parsed.entries.shrink_to_fit();
    parsed
}

/// The render error for what the pre-scan refused.
fn refusal_error(refusal: Refusal, line: Option<usize>) -> RenderError {
    let at = provenance(refusal.document, line, None);
    let location = refusal.location;
    match refusal.problem {
        Problem::Syntax(message) => RenderError::Syntax {
            at,
            format: SourceFormat::Yaml,
            location: Some(location),
            message,
        },
        Problem::TooDeep => RenderError::TooComplex {
            at,
            location: Some(location),
            message: format!("nesting deeper than {} levels", scan::MAX_DEPTH),
        },
        Problem::UndefinedAlias(alias) => RenderError::UndefinedAlias {
            at,
            location,
            alias,
        },
        Problem::Expansion {
            size,
            limit,
            relative,
        } => RenderError::AliasExpansion {
            at,
            location,
            size,
            limit,
            relative,
        },
    }
}

fn parse_json(text: &str, parsed: &mut ParsedFile) {
    if text.trim().is_empty() {
        return;
    }
    parsed.documents = 1;
    let first = text.len() - text.trim_start().len();
    let line = Some(location_of_offset(text, first).line);
    let issue = Cell::new(None);
    let result = Stage::with(|stage| {
        let seed = ValueSeed {
            issue: &issue,
            stage,
            yaml: false,
            string_keys: false,
        };
        let mut de = serde_json::Deserializer::from_str(text);
        seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v))
    });
    match result {
        Ok(value) => push_objects(value, 0, line, &mut parsed.entries),
        Err(e) => {
            let location = (e.line() > 0).then(|| Location {
                line: e.line(),
                column: e.column(),
            });
            parsed.entries.push(Entry::new(
                provenance(0, line, None),
                Err(Box::new(doc_error(
                    issue.take(),
                    provenance(0, line, None),
                    SourceFormat::Json,
                    location,
                    e.to_string(),
                ))),
            ));
        }
    }
}

/// Whether the pre-scan can be skipped: `text` has no alias (no `*` where
/// a node may start, so no undefined alias and no expansion) and at most
/// [`scan::MAX_DEPTH`] places where a flow collection may open, so its flow
/// nesting is at most that deep and libyaml's scanner, quadratic only in
/// the flow nesting depth, stays linear (see [`node_starts`]). Deeper block
/// nesting is refused by `serde_yaml` itself (its recursion limit is the
/// scan's depth limit, 128 levels); any document `serde_yaml` fails on
/// sends the whole file through the scan, so errors are exactly those of
/// the scanned path.
fn scan_unneeded(text: &str) -> bool {
    // Two vectorised passes (a count, a `memchr`); the finer count only
    // where they find `*` or many brackets (CRDs, whose descriptions hold
    // hundreds).
    let bytes = text.as_bytes();
    let brackets = count_bytes(bytes, |b| b == b'[' || b == b'{');
    if brackets <= scan::MAX_DEPTH && !bytes.contains(&b'*') {
        return true;
    }
    let starts = node_starts(bytes);
    starts.aliases == 0 && starts.flow_openers <= scan::MAX_DEPTH
}

/// The `[`, `{` and `*` bytes of a text at a place where a node may start.
#[derive(Debug, Default)]
struct NodeStarts {
    /// `[` and `{`: an upper bound of the flow nesting depth.
    flow_openers: usize,
    /// `*`: every alias is one.
    aliases: usize,
}

/// Counts the bytes that open a flow collection or an alias where a node
/// may start: first on a line, after an indicator (`-`, `:`, `?`, `,`, `[`,
/// `{`) or after a property (a token starting with `&` or `!`), with
/// blanks between or not, and for `*`, before a character of an alias
/// name. YAML starts nodes nowhere else: elsewhere these bytes are text
/// (inside a plain scalar), or, for `[` and `{` inside a flow collection,
/// a syntax error libyaml finds within its simple-key lookahead. Quoted text, comments and block scalars are not told apart,
/// so the counts only err high. Any byte beyond ASCII (libyaml also breaks
/// lines at U+0085, U+2028 and U+2029) counts as a line break.
fn node_starts(bytes: &[u8]) -> NodeStarts {
    let mut starts = NodeStarts::default();
    // Only the candidates are looked at (found by a vectorised search),
    // each by reading back to the token before it.
    for i in memchr::memchr3_iter(b'[', b'{', b'*', bytes) {
        let Some(&c) = bytes.get(i) else { continue };
        let name_follows = || {
            bytes
                .get(i + 1)
                .is_some_and(|&n| n.is_ascii_alphanumeric() || n == b'_' || n == b'-')
        };
        if (c == b'*' && !name_follows()) || !at_node(bytes, i) {
            continue;
        }
        if c == b'*' {
            starts.aliases += 1;
        } else {
            starts.flow_openers += 1;
        }
    }
    starts
}

/// Whether a node may start at `bytes[i]` ([`node_starts`]).
fn at_node(bytes: &[u8], i: usize) -> bool {
    let is_break = |b: u8| b == b'\n' || b == b'\r' || b >= 0x80;
    let is_blank = |b: u8| b == b' ' || b == b'\t';
    let is_indicator = |b: u8| matches!(b, b'-' | b':' | b'?' | b',' | b'[' | b'{');
    let before = bytes.get(..i).unwrap_or_default();
    // The last byte before `i` on its line that is not blank.
    let Some(j) = before.iter().rposition(|&b| !is_blank(b)) else {
        return true;
    };
    let last = before[j];
    if is_break(last) || is_indicator(last) {
        return true;
    }
    if j + 1 == i {
        return false; // inside a token
    }
    // A property before: the token ending at `j` starts with `&` or `!`
    // (a token ends at blanks and after indicators).
    let token = &before[..=j];
    let start = token
        .iter()
        .rposition(|&b| is_blank(b) || is_break(b) || is_indicator(b))
        .map_or(0, |k| k + 1);
    matches!(token.get(start), Some(b'&' | b'!'))
}

fn parse_yaml(text: &str, limits: Limits, parsed: &mut ParsedFile) {
    parse_yaml_with(text, limits, parsed, true);
}

/// [`parse_yaml`]; `shortcut`: whether the scan may be skipped when
/// [`scan_unneeded`] (tests compare both ways).
fn parse_yaml_with(text: &str, limits: Limits, parsed: &mut ParsedFile, shortcut: bool) {
    let lines = document_lines(text);
    if shortcut && scan_unneeded(text) {
        let mut unscanned = ParsedFile::default();
        // Without `!` the text has no tags (and, unscanned, no aliases):
        // keys may be read as strings (see `StringKey`).
        // A file that fails that way is read again with resolved keys
        // (unscanned still), then, if it fails again, scanned.
        let string_keys = !text.as_bytes().contains(&b'!');
        if load_yaml(text, &lines, usize::MAX, string_keys, &mut unscanned) {
            *parsed = unscanned;
            return;
        }
        if string_keys {
            let mut unscanned = ParsedFile::default();
            if load_yaml(text, &lines, usize::MAX, false, &mut unscanned) {
                *parsed = unscanned;
                return;
            }
        }
    }
    // Documents before a refused one are still loaded (their scan passed);
    // the refused one ends the file, as a syntax error does.
    let refused = scan::scan_yaml(text, limits).err();
    let loadable = refused.as_ref().map_or(usize::MAX, |r| r.document);
    load_yaml(text, &lines, loadable, false, parsed);
    if let Some(refusal) = refused {
        let index = refusal.document;
        let line = lines.get(index).copied();
        parsed.documents = parsed.documents.max(index + 1);
        parsed.entries.push(Entry::new(
            provenance(index, line, None),
            Err(Box::new(refusal_error(refusal, line))),
        ));
    }
}

/// Loads the first `loadable` documents of `text` with `serde_yaml`;
/// whether every document loaded (objects may still be invalid).
/// `string_keys`: keys are read with [`StringKey`] (only for a text
/// without `!` and `*`; a `false` return then asks for a read without).
fn load_yaml(
    text: &str,
    lines: &[usize],
    loadable: usize,
    string_keys: bool,
    parsed: &mut ParsedFile,
) -> bool {
    let mut loaded = true;
    let mut last_error: Option<String> = None;
    Stage::with(|stage| {
        for (index, doc) in serde_yaml::Deserializer::from_str(text)
            .enumerate()
            .take(loadable)
        {
            let line = lines.get(index).copied();
            let issue = Cell::new(None);
            let seed = ValueSeed {
                issue: &issue,
                stage,
                yaml: true,
                string_keys,
            };
            match seed.deserialize(doc) {
                Ok(value) => {
                    parsed.documents += 1;
                    last_error = None;
                    push_objects(value, index, line, &mut parsed.entries);
                }
                Err(e) => {
                    loaded = false;
                    let issue = issue.take();
                    let message = e.to_string();
                    // A syntax error stops the YAML parser for good: the iterator
                    // then repeats the same error forever.
                    if issue.is_none() && last_error.as_deref() == Some(message.as_str()) {
                        break;
                    }
                    parsed.documents += 1;
                    if issue.is_none() {
                        last_error = Some(message.clone());
                    }
                    parsed.entries.push(Entry::new(
                        provenance(index, line, None),
                        Err(Box::new(doc_error(
                            issue,
                            provenance(index, line, None),
                            SourceFormat::Yaml,
                            yaml_location(&e),
                            message,
                        ))),
                    ));
                }
            }
        }
    });
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lines_follow_markers() {
        assert_eq!(document_lines("a: 1\n---\nb: 2\n"), [1, 2]);
        assert_eq!(document_lines("# c\n---\na: 1\n--- # x\n\n"), [2, 4]);
        assert_eq!(
            document_lines("%YAML 1.2\n---\na: |\n  --- not a marker\n"),
            [2]
        );
        assert_eq!(document_lines("a: 1\n...\n---\nb: 1\n"), [1, 3]);
        assert!(document_lines("# only a comment\n").is_empty());
        assert_eq!(document_lines("---a\n"), [1]);
    }

    proptest::proptest! {
        /// The marker search finds what the line-by-line walk finds.
        #[test]
        fn document_lines_are_those_of_the_walk(
            lines in proptest::collection::vec(proptest::sample::select(vec![
                "---", "--- # c", "---\t", "---x", "----", " ---", "...", "... ", "....",
                "a: 1", "  b: 2", "# c", "%YAML 1.2", "", "  ", "\r", "---\r", "- x", "-- -",
            ]), 0..12),
            sep in proptest::sample::select(vec!["\n", "\r\n"]),
            end in proptest::sample::select(vec!["", "\n", "\r", "\r\n"]),
        ) {
            let text = format!("{}{end}", lines.join(sep));
            proptest::prop_assert_eq!(document_lines(&text), by_line(&text), "{:?}", text);
        }
    }

    fn both_ways(text: &str) -> (String, String) {
        let limits = crate::render::RenderOptions::default().scan_limits();
        let mut fast = ParsedFile::default();
        parse_yaml_with(text, limits, &mut fast, true);
        let mut scanned = ParsedFile::default();
        parse_yaml_with(text, limits, &mut scanned, false);
        (format!("{fast:?}"), format!("{scanned:?}"))
    }

    /// The scan is skipped only where it cannot refuse anything `serde_yaml`
    /// accepts, and a document `serde_yaml` fails on sends the file through
    /// the scan: either way the parse is the scanned one, errors included.
    #[test]
    fn skipping_the_scan_changes_nothing() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
        let deep_block: String = (0..=scan::MAX_DEPTH)
            .map(|i| format!("{}- \n", "  ".repeat(i)))
            .collect();
        let deep_compact = format!("{cm}data:\n  k:\n  {}x\n", "- ".repeat(200));
        let flow = |n: usize| format!("{cm}data: {{k: {}{}}}\n", "[".repeat(n), "]".repeat(n));
        let forty = (0..40)
            .map(|i| format!("k{i}: v"))
            .collect::<Vec<_>>()
            .join(", ");
        let cases = [
            format!("{cm}data: {{a: '1'}}\n---\n{cm}"),
            // `&` and `*` in quoted scalars, comments and block scalars.
            format!("{cm}data: {{a: \"*x\", b: '&y'}} # *z\n"),
            format!("{cm}data:\n  a: |\n    *x &y [[[\n"),
            format!("{cm}data: {{a: &x b}}\n"),
            // `*` as text: in words, after a quote, on a continuation line.
            format!("{cm}data: {{a: b *c*, d: '**e**'}}\n"),
            format!("{cm}data:\n  a: some\n    *text\n"),
            format!("{cm}data:\n  a: |\n    * one\n    ** two\n  b: c\n"),
            format!("{cm}data:\n  a: * one\n"),
            format!("{cm}data:\n- * one\n"),
            format!("{cm}data:\n  a: |\n    *x &y [[[\n"),
            // Aliases: defined, undefined, in a flow collection, in a merge key.
            format!("{cm}data: {{a: &x b, c: *x}}\n"),
            format!("{cm}data: [*x]\n"),
            format!("{cm}data: {{a: *x}}\n"),
            "<: *a\n".to_owned(),
            format!("{cm}---\n{cm}data: {{c: *x}}\n"),
            // Nesting: at and over the limits, flow and block.
            flow(scan::MAX_DEPTH - 2),
            flow(scan::MAX_DEPTH + 1),
            deep_block,
            deep_compact,
            // Syntax errors, before and after valid documents.
            format!("{cm}data: [\n---\n{cm}"),
            format!("{cm}---\n{cm}data: {{a: b\n"),
            format!("{cm}\tdata: x\n"),
            "a: b: c\n".to_owned(),
            // What `serde_yaml` refuses itself.
            format!("{cm}data: {{a: 1, a: 2}}\n"),
            format!("{cm}data: !!binary aGk=\n"),
            format!("{cm}data: {{? [a]: b}}\n"),
            String::new(),
            "# only a comment\n".to_owned(),
            // Keys YAML resolves (or may): plain, quoted, tagged, block.
            format!("{cm}data: {{1: a, '2': b, 0x10: c, 1.0: d, \"1.5\": e, 01: f}}\n"),
            format!("{cm}data: {{true: a, 'True': b, .inf: c, -1: d, +1: e, 1e3: f}}\n"),
            format!("{cm}data: {{inf: a, nan: b, .nan: c, NULL1: d, truex: e}}\n"),
            format!("{cm}data: {{~: a}}\n"),
            format!("{cm}data: {{null: a}}\n"),
            format!("{cm}data: {{'null': a, '~': b, '': c}}\n"),
            format!("{cm}data:\n  : a\n"),
            format!("{cm}data: {{!!str 1: a, !!int '2': b}}\n"),
            format!("{cm}data: {{!custom k: a}}\n"),
            format!("{cm}data:\n  ? |\n    block key\n  : v\n  ? >-\n    1\n  : w\n"),
            format!("{cm}data: {{&k key: a, other: b}}\n"),
            format!("{cm}data: {{a: 1, a: 2}}\n---\n{cm}data: {{1: x, 1.0: y}}\n"),
            format!("{cm}data: {{<<: {{a: b}}}}\n"),
            // Past `STAGED_KEYS`, with a duplicate there and not.
            format!("{cm}data: {{{forty}}}\n"),
            format!("{cm}data: {{{forty}, k33: again}}\n"),
            format!("{cm}data: {{{forty}, k3: again}}\n"),
        ];
        for text in &cases {
            let (fast, scanned) = both_ways(text);
            assert_eq!(fast, scanned, "{text:?}");
        }
    }

    /// [`node_starts`] as first written: one walk over every byte.
    fn node_starts_walking(bytes: &[u8]) -> NodeStarts {
        let mut starts = NodeStarts::default();
        // The last byte that is not blank on this line (`\n`: none yet), and
        // the first byte of the last run of such bytes (runs end at blanks and
        // after indicators).
        let (mut last, mut run_start, mut in_run) = (b'\n', b'\n', false);
        for (i, &c) in bytes.iter().enumerate() {
            match c {
                b'\n' | b'\r' | 0x80.. => (last, run_start, in_run) = (b'\n', b'\n', false),
                b' ' | b'\t' => in_run = false,
                _ => {
                    let at_node = matches!(last, b'\n' | b'-' | b':' | b'?' | b',' | b'[' | b'{')
                        || (!in_run && matches!(run_start, b'&' | b'!'));
                    match c {
                        b'[' | b'{' if at_node => starts.flow_openers += 1,
                        // libyaml reads an alias name of `[0-9A-Za-z_-]`: a
                        // `*` before anything else (a list bullet `* `, `**`)
                        // is text, or an error that sends the file to the scan.
                        b'*' if at_node
                            && bytes.get(i + 1).is_some_and(|&n| {
                                n.is_ascii_alphanumeric() || n == b'_' || n == b'-'
                            }) =>
                        {
                            starts.aliases += 1
                        }
                        _ => {}
                    }
                    if !in_run {
                        run_start = c;
                    }
                    // An indicator ends a run: what follows may be a property.
                    in_run = !matches!(c, b'-' | b':' | b'?' | b',' | b'[' | b'{');
                    last = c;
                }
            }
        }
        starts
    }

    proptest::proptest! {
        /// Reading back from each candidate counts what the walk counts.
        #[test]
        fn node_starts_are_those_of_the_walk(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "[", "{", "*", "*a", "]", "}", ",", ":", "?", "-", "&x", "!t", "a", "bc", " ", "\t",
                "\n", "\r", "é", "'", "#", "_", "*-",
            ]), 0..40),
        ) {
            let text: String = parts.concat();
            let (fast, walked) = (node_starts(text.as_bytes()), node_starts_walking(text.as_bytes()));
            proptest::prop_assert_eq!(
                (fast.flow_openers, fast.aliases),
                (walked.flow_openers, walked.aliases),
                "{:?}", text
            );
        }
    }

    /// Every way YAML opens a flow collection is counted: nesting past the
    /// limit, written any of these ways, is always scanned.
    #[test]
    fn flow_openers_count_every_real_opener() {
        let deep = scan::MAX_DEPTH + 1;
        let cases = [
            format!("k: {}", "[".repeat(deep)),
            format!("k: {}", "[a, ".repeat(deep)),
            format!("k: {}", "{a: ".repeat(deep)),
            format!("k: {}", "{a:".repeat(deep)),
            format!("- {}", "[ ".repeat(deep)),
            "[\n".repeat(deep),
            "  [\r".repeat(deep),
            "[\u{2028}".repeat(deep),
            format!("k: {}", "&a [".repeat(deep)),
            format!("k: {}", "!!seq [".repeat(deep)),
            format!("k: {}", "&a !!map {".repeat(deep)),
            format!("k: {}", "? [".repeat(deep)),
            format!("k: {}", "{? [".repeat(deep)),
            format!("--- {}", "[\t".repeat(deep)),
            format!("k: {}", "[\"a\":[".repeat(deep)),
        ];
        for text in &cases {
            assert!(
                node_starts(text.as_bytes()).flow_openers > scan::MAX_DEPTH,
                "{text:?}"
            );
            assert!(!scan_unneeded(text), "{text:?}");
        }
        // Brackets in prose are not openers: such a file skips the scan.
        let prose = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata:\n  a: {}\n  b: \"{}\"\n",
            "see [1] or {x} ".repeat(200),
            "q[a]{b} ".repeat(200)
        );
        assert!(scan_unneeded(&prose));
        let (fast, scanned) = both_ways(&prose);
        assert_eq!(fast, scanned);
    }

    /// Every YAML file of the shared corpus parses the same either way.
    #[test]
    fn skipping_the_scan_changes_nothing_on_the_corpus() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                    out.push(p);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
        let mut files = Vec::new();
        walk(&root, &mut files);
        if files.is_empty() {
            eprintln!("SKIPPED: corpus not found at {}", root.display());
            return;
        }
        let mut skipped = 0;
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            skipped += usize::from(scan_unneeded(&text));
            let (fast, scanned) = both_ways(&text);
            assert_eq!(fast, scanned, "{}", f.display());
        }
        eprintln!("{skipped} of {} corpus files skip the scan", files.len());
    }

    /// Keys are read as strings where that is exact, and the file is read
    /// again (with the same result as the resolving read) where it may not
    /// be.
    #[test]
    fn string_keys_are_used_only_where_exact() {
        let load = |text: &str, string_keys| {
            let lines = document_lines(text);
            let mut parsed = ParsedFile::default();
            let ok = load_yaml(text, &lines, usize::MAX, string_keys, &mut parsed);
            (ok, format!("{parsed:?}"))
        };
        let typical = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {'x': y}}\n\
                       data: {\"k\": v, n1: '1', t: 'true'}\n";
        let (ok, fast) = load(typical, true);
        assert!(ok, "{fast}");
        assert_eq!(fast, load(typical, false).1);
        // Quoted ones too: `deserialize_str` does not tell the style.
        let again = [
            "1", "-1", "+1", ".5", ".inf", "0x1", "01", "~", "null", "True", "FALSE",
        ];
        for key in again.into_iter().chain(["'1'", "\"null\""]) {
            let text = format!("a: {{{key}: b}}\n");
            assert!(!load(&text, true).0, "{key}");
        }
        for key in [
            "n1", "inf", "nan", "Truth", "nullable", "x1.0", "'x'", "\"~x\"",
        ] {
            let text = format!("a: {{{key}: b}}\n");
            let (ok, fast) = load(&text, true);
            assert!(ok, "{key}");
            assert_eq!(fast, load(&text, false).1, "{key}");
        }
        assert!(may_resolve(""));
        assert!(!may_resolve("name"));
    }

    fn arb_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z0-9 .~-]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 96, 40, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                // Up to 40 keys: past `STAGED_KEYS`, duplicates merged.
                prop::collection::vec(("[a-z0-9.~-]{0,4}", inner), 0..40)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// Reads one value with the seed, as `load_yaml` and `parse_json` do.
    fn read<'de, D: Deserializer<'de>>(d: D, yaml: bool, string_keys: bool) -> Option<Value> {
        let issue = Cell::new(None);
        let stage = Stage::default();
        let seed = ValueSeed {
            issue: &issue,
            stage: &stage,
            yaml,
            string_keys,
        };
        seed.deserialize(d).ok()
    }

    proptest::proptest! {
        /// The staged builder gives `serde_json`'s value (keys in order),
        /// from JSON and from YAML, with keys resolved or read as strings
        /// (where that read succeeds).
        #[test]
        fn values_are_built_as_serde_json_builds_them(v in arb_value()) {
            let json = v.to_string();
            let mut de = serde_json::Deserializer::from_str(&json);
            let read_json = read(&mut de, false, false);
            proptest::prop_assert_eq!(read_json.map(|r| r.to_string()), Some(json.clone()));
            let yaml = serde_yaml::to_string(&v).unwrap_or_default();
            for string_keys in [false, true] {
                let doc = serde_yaml::Deserializer::from_str(&yaml).next();
                match doc.and_then(|d| read(d, true, string_keys)) {
                    Some(r) => proptest::prop_assert_eq!(r.to_string(), json.clone()),
                    None => proptest::prop_assert!(string_keys, "{yaml}"),
                }
            }
        }
    }

    #[test]
    fn the_scan_is_skipped_only_without_aliases_and_deep_flow() {
        assert!(scan_unneeded("a: {b: [c, &d e]}\n"));
        // `*` counts where an alias may be: not inside a word or after a
        // quote or `#`.
        for alias in [
            "a: *x\n",
            "- *x\n",
            "*x : v\n",
            "? *x\n",
            "a: [b,*x]\n",
            "a: {b: *x}\n",
            "a:\n  *x\n",
        ] {
            assert!(!scan_unneeded(alias), "{alias:?}");
        }
        assert!(scan_unneeded("a: '*'\n"));
        assert!(scan_unneeded("# *\n"));
        assert!(scan_unneeded("a: b *c* and **d**\n"));
        assert!(scan_unneeded("a: |\n  * one\n  ** two\n"));
        assert!(!scan_unneeded("a:\n  *_x\n"));
        // After a comma it may be an alias in a flow collection: counted.
        assert!(!scan_unneeded("a: b, *c\n"));
        assert!(scan_unneeded(&"[".repeat(scan::MAX_DEPTH)));
        assert!(!scan_unneeded(&"[".repeat(scan::MAX_DEPTH + 1)));
        // Brackets count where a collection may open, closed or not; not
        // inside a word or after a quote.
        assert!(!scan_unneeded(&"- []\n".repeat(scan::MAX_DEPTH + 1)));
        assert!(scan_unneeded(&"'[]'\n".repeat(scan::MAX_DEPTH + 1)));
        assert!(scan_unneeded(&"a[] \n".repeat(scan::MAX_DEPTH + 1)));
    }

    #[test]
    fn parse_error_does_not_loop() {
        let limits = crate::render::RenderOptions::default().scan_limits();
        let p = parse_file(b"a: 1\n---\nb: [\n---\nc: 3\n", SourceFormat::Yaml, limits);
        assert_eq!(p.entries.len(), 2);
        assert!(matches!(
            p.entries[1].result.as_ref().map_err(|e| &**e),
            Err(RenderError::Syntax { .. })
        ));
    }
}
