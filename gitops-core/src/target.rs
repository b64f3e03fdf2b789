//! The [`Target`] trait: the runtime desired state is applied to.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use gitops_diff::escape::escaped;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::key::ObjectKey;
use crate::object::Object;
use crate::source::BoxError;
use crate::validate;

/// The label every object applied for an owner carries; its value is the
/// [`OwnerId`]. Prune needs both this label and the owner's [`Inventory`].
pub const OWNER_LABEL: &str = "gitops-rs.io/owner";

/// The field manager used for server-side apply unless configured otherwise.
pub const DEFAULT_FIELD_MANAGER: &str = "gitops-rs";

/// The name of one source of desired state (an application, an environment):
/// a valid label value, so it can be the value of [`OWNER_LABEL`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OwnerId(String);

/// The error returned by [`OwnerId::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid owner id {id:?}: {reason} (it must be a valid, non-empty label value)")]
pub struct InvalidOwnerId {
    /// The id given.
    pub id: String,
    /// What is wrong.
    pub reason: String,
}

impl OwnerId {
    /// Validates an owner id (non-empty, label-value syntax, ≤ 63 characters).
    ///
    /// ```
    /// use gitops_core::OwnerId;
    /// assert!(OwnerId::new("shop-prod").is_ok());
    /// assert!(OwnerId::new("").is_err());
    /// assert!(OwnerId::new("no spaces").is_err());
    /// ```
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidOwnerId> {
        let id = id.into();
        let check = if id.is_empty() {
            Err("it is empty".to_owned())
        } else {
            validate::label_value(&id)
        };
        match check {
            Ok(()) => Ok(Self(id)),
            Err(reason) => Err(InvalidOwnerId { id, reason }),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OwnerId {
    type Error = InvalidOwnerId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<OwnerId> for String {
    fn from(o: OwnerId) -> Self {
        o.0
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an owner applied, recorded in the runtime after every sync, so that
/// prune decisions survive a restart of the process.
///
/// Writes are compare-and-swap on [`version`](Inventory::version): see
/// [`Target::write_inventory`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Inventory {
    /// Whose inventory this is.
    pub owner: OwnerId,
    /// The revision last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The objects applied, with the `apiVersion` they were applied with.
    /// (Serialised as a list of `{group, kind, namespace, name, apiVersion}`.)
    ///
    /// Shared: a plan that leaves the inventory as it is lists these very
    /// entries as its [`next_inventory`](crate::Plan::next_inventory), without
    /// a copy; `Arc::make_mut` changes them (copying them only while shared).
    #[serde(with = "key_map")]
    pub objects: Arc<BTreeMap<ObjectKey, String>>,
    /// The runtime's version of the stored inventory this one was read from
    /// (a Kubernetes `resourceVersion`), `None` for an inventory not read
    /// from the runtime. [`Target::write_inventory`] replaces the stored
    /// inventory only if it still has this version (`None`: only if none is
    /// stored), so that a concurrent writer fails instead of losing an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Serde helpers for maps keyed by [`ObjectKey`], which JSON cannot use as
/// map keys: they are written as a list of entries sorted by key.
pub mod key_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::key::ObjectKey;

    #[derive(Serialize, Deserialize)]
    struct Entry<'a> {
        #[serde(flatten)]
        key: std::borrow::Cow<'a, ObjectKey>,
        #[serde(rename = "apiVersion")]
        api_version: std::borrow::Cow<'a, str>,
    }

    /// Writes the map (held in `M`: a map, or a shared one) as a list of
    /// `{group, kind, namespace, name, apiVersion}`.
    pub fn serialize<S: Serializer, M: std::ops::Deref<Target = BTreeMap<ObjectKey, String>>>(
        map: &M,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter().map(|(k, v)| Entry {
            key: std::borrow::Cow::Borrowed(k),
            api_version: std::borrow::Cow::Borrowed(v),
        }))
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>, M: From<BTreeMap<ObjectKey, String>>>(
        d: D,
    ) -> Result<M, D::Error> {
        let entries: Vec<Entry<'static>> = Vec::deserialize(d)?;
        let map: BTreeMap<ObjectKey, String> = entries
            .into_iter()
            .map(|e| (e.key.into_owned(), e.api_version.into_owned()))
            .collect();
        Ok(M::from(map))
    }
}

impl Inventory {
    /// An empty inventory.
    pub fn new(owner: OwnerId) -> Self {
        Self {
            owner,
            revision: None,
            objects: Arc::default(),
            version: None,
        }
    }

    /// The objects, to change: copied first while they are shared
    /// (`Arc::make_mut`).
    pub fn objects_mut(&mut self) -> &mut BTreeMap<ObjectKey, String> {
        Arc::make_mut(&mut self.objects)
    }

    /// Whether the inventory lists an object.
    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.objects.contains_key(key)
    }

    /// Whether two inventories record the same thing (owner, revision and
    /// objects), whatever their [`version`](Inventory::version): writing one
    /// over the other would change nothing.
    pub fn same_content(&self, other: &Inventory) -> bool {
        self.owner == other.owner
            && self.revision == other.revision
            && self.objects == other.objects
    }
}

/// A live object as the cascade of a deletion would find it: its key and
/// the value of its [`OWNER_LABEL`], if any. See [`Target::dependents`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LiveRef {
    /// The object.
    pub key: ObjectKey,
    /// Its owner label's value (`None`: unlabelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl LiveRef {
    /// A reference to a live object with its owner label.
    pub fn new(key: ObjectKey, owner: Option<String>) -> Self {
        Self { key, owner }
    }

    /// Reads the key and owner label of a live object (`None` when it is not
    /// a valid object).
    pub fn of(live: &Value) -> Option<Self> {
        let object = crate::object::Object::new(live.clone()).ok()?;
        let owner = live
            .pointer("/metadata/labels")
            .and_then(|l| l.get(OWNER_LABEL))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some(Self::new(object.key().clone(), owner))
    }
}

impl fmt::Display for LiveRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.owner {
            Some(o) => write!(f, "{} (owner {o:?})", self.key),
            None => write!(f, "{} (no owner label)", self.key),
        }
    }
}

/// A field-ownership conflict: another field manager owns fields we apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnershipConflict {
    /// The other field manager.
    pub manager: String,
    /// The fields (readable paths) in conflict.
    pub fields: Vec<String>,
}

/// The error returned by [`Target`] operations, by meaning.
///
/// Its `Display` [escapes](crate::escape) the names and messages it quotes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The object does not exist.
    #[error("{key} not found")]
    NotFound {
        /// The object.
        key: ObjectKey,
    },
    /// Fields of the object are owned by other field managers.
    #[error("{key}: apply conflicts with {}", fmt_conflicts(.conflicts))]
    Conflict {
        /// The object.
        key: ObjectKey,
        /// Who owns what.
        conflicts: Vec<OwnershipConflict>,
    },
    /// A compare-and-swap write of an owner's inventory found another
    /// version stored than the one it was based on: someone else (another
    /// reconciler of the same owner) wrote it in between. Nothing was
    /// written; read the inventory again.
    #[error(
        "the inventory of owner {owner} was changed by another writer since {} was read; nothing was written",
        .expected.as_deref().map_or_else(|| "its absence".to_owned(), |v| format!("version {v}"))
    )]
    InventoryConflict {
        /// Whose inventory.
        owner: OwnerId,
        /// The version the write was based on (`None`: none was stored).
        expected: Option<String>,
    },
    /// The runtime refused the object as invalid.
    #[error("{key} is invalid: {}", escaped(.message))]
    Invalid {
        /// The object.
        key: ObjectKey,
        /// What the runtime said.
        message: String,
    },
    /// The runtime does not serve this kind at this API version (no CRD, an
    /// API removed in this version of Kubernetes, ...).
    #[error("{key}: the runtime does not serve kind {} in apiVersion {}", escaped(&.key.kind), escaped(.api_version))]
    UnknownKind {
        /// The object (its kind is the one not served).
        key: ObjectKey,
        /// The API version asked for.
        api_version: String,
    },
    /// A namespaced object whose namespace does not exist.
    #[error("{key}: namespace {} does not exist", escaped(.namespace))]
    NamespaceNotFound {
        /// The object.
        key: ObjectKey,
        /// The missing namespace.
        namespace: String,
    },
    /// The runtime refused the operation for lack of permission.
    #[error("forbidden: {}", escaped(.message))]
    Forbidden {
        /// What the runtime said.
        message: String,
    },
    /// The runtime cannot be reached right now; retrying may help.
    #[error("runtime unavailable: {}", escaped(.message))]
    Unavailable {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// Anything else.
    #[error("{}", escaped(.message))]
    Other {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

fn fmt_conflicts(c: &[OwnershipConflict]) -> String {
    c.iter()
        .map(|c| {
            format!(
                "manager {:?} owning {}",
                c.manager,
                escaped(&c.fields.join(", "))
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl TargetError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// How [`Target::apply`] applies.
///
/// ```
/// use gitops_core::ApplyOptions;
/// let kubectl = ApplyOptions::new("kubectl").force(true);
/// assert!(kubectl.force && !kubectl.dry_run);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApplyOptions {
    /// The server-side-apply field manager.
    pub field_manager: String,
    /// Take ownership of fields other managers own instead of failing with
    /// [`TargetError::Conflict`].
    pub force: bool,
    /// Validate and compute the result without persisting it.
    pub dry_run: bool,
}

impl ApplyOptions {
    /// Options for a field manager: not forced, not a dry run.
    pub fn new(field_manager: impl Into<String>) -> Self {
        Self {
            field_manager: field_manager.into(),
            force: false,
            dry_run: false,
        }
    }

    /// Take ownership of fields other managers own instead of failing.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Validate without persisting.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            field_manager: DEFAULT_FIELD_MANAGER.to_owned(),
            force: false,
            dry_run: false,
        }
    }
}

/// What happens to dependents of a deleted object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Propagation {
    /// Delete dependents in the background (the Kubernetes default).
    #[default]
    Background,
    /// Delete dependents before the object.
    Foreground,
    /// Leave dependents.
    Orphan,
}

/// How [`Target::delete`] deletes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeleteOptions {
    /// Dependents policy.
    pub propagation: Propagation,
    /// Validate without deleting.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Background propagation, not a dry run.
    pub fn new() -> Self {
        Self::default()
    }

    /// What happens to dependents.
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        self.propagation = propagation;
        self
    }

    /// Validate without deleting.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What [`Target::delete`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DeleteOutcome {
    /// The object was deleted (or its deletion started).
    Deleted,
    /// There was nothing to delete.
    NotFound,
}

/// What to observe: objects by key. `owner` is a hint a backend may use to
/// list by [`OWNER_LABEL`] instead of getting objects one by one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObserveRequest {
    /// The objects to read (missing ones are simply absent from the result).
    pub keys: BTreeSet<ObjectKey>,
    /// The owner whose objects these mostly are.
    pub owner: Option<OwnerId>,
}

impl ObserveRequest {
    /// A request for `keys`, mostly objects of `owner`.
    pub fn new(keys: BTreeSet<ObjectKey>, owner: Option<OwnerId>) -> Self {
        Self { keys, owner }
    }
}

/// Live objects as the runtime returned them (with `metadata.managedFields`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LiveState {
    /// The objects found, by key.
    #[serde(with = "live_map")]
    pub objects: BTreeMap<ObjectKey, Value>,
    /// The owner's inventory, when the caller read it (targets leave it
    /// `None` in [`Target::observe`]; the reconciler fills it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// What deleting an object would delete with it through the runtime's
    /// cascade ([`Target::dependents`]), for the objects the caller asked
    /// about (targets leave it empty in [`Target::observe`]; the reconciler
    /// fills it for the objects its plan deletes). The planner refuses to
    /// delete an object whose cascade reaches objects that are not ours;
    /// an object without an entry was not checked.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "dependents_map"
    )]
    pub dependents: BTreeMap<ObjectKey, Vec<LiveRef>>,
    /// Desired objects the caller knows to be live and in sync without
    /// reading them: a plan found the same manifest in sync with the live
    /// object, and the runtime reports the same version of it since
    /// ([`Target::versions`]). They are absent from
    /// [`objects`](Self::objects); the planner counts them unchanged
    /// without comparing them. Targets leave it empty; the reconciler
    /// fills it from what it recorded.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub in_sync: BTreeSet<ObjectKey>,
}

impl LiveState {
    /// One live object.
    pub fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key)
    }
}

/// Makes `map` equal to `to`: the entries both have stay as they are
/// (neither copied nor freed). Both in key order: one merge pass, one
/// comparison of keys per step; nothing is changed when they are equal.
pub(crate) fn assign_map<K: Ord + Clone, V: PartialEq + Clone>(
    map: &mut BTreeMap<K, V>,
    to: &BTreeMap<K, V>,
) {
    use std::cmp::Ordering;
    // Keys to drop (absent from `to`, or with another value) and entries to
    // add (absent from `map`, or with another value), found side by side.
    let mut drop: Vec<K> = Vec::new();
    let mut add: Vec<(K, V)> = Vec::new();
    {
        let mut have = map.iter().peekable();
        let mut want = to.iter().peekable();
        loop {
            match (have.peek(), want.peek()) {
                (Some((h, hv)), Some((w, wv))) => match h.cmp(w) {
                    Ordering::Less => {
                        drop.push((*h).clone());
                        have.next();
                    }
                    Ordering::Greater => {
                        add.push(((*w).clone(), (*wv).clone()));
                        want.next();
                    }
                    Ordering::Equal => {
                        if hv != wv {
                            add.push(((*w).clone(), (*wv).clone()));
                        }
                        have.next();
                        want.next();
                    }
                },
                (Some((h, _)), None) => {
                    drop.push((*h).clone());
                    have.next();
                }
                (None, Some((w, wv))) => {
                    add.push(((*w).clone(), (*wv).clone()));
                    want.next();
                }
                (None, None) => break,
            }
        }
    }
    for k in &drop {
        map.remove(k);
    }
    // A changed value replaces the old one in place.
    map.extend(add);
}

/// A runtime that objects are applied to: a Kubernetes cluster, or the
/// in-memory stand-in.
///
/// # Contract
/// - [`observe`](Target::observe) returns each requested object that exists,
///   as the runtime stores it, including `metadata.managedFields` in the
///   Kubernetes `FieldsV1` format; absent ones are left out, not errors.
/// - [`apply`](Target::apply) has server-side-apply semantics: the object is
///   created or updated; fields set by the manifest become owned by
///   `options.field_manager`; fields this manager owned and the manifest no
///   longer sets are removed; a field owned by another manager with a
///   different value is [`TargetError::Conflict`] unless `force`. A
///   namespaced object whose namespace does not exist is
///   [`TargetError::NamespaceNotFound`]; a kind the runtime does not serve is
///   [`TargetError::UnknownKind`]. With `dry_run` nothing is persisted but the
///   same errors are reported. The returned value is the stored object, as
///   `observe` would return it right after the apply (the reconciler
///   verifies a sync from it).
/// - [`versions`](Target::versions), when the backend supports it, returns
///   for each requested object that exists the `metadata.resourceVersion`
///   observe would return, and that version changes on every write.
///   [`still_at`](Target::still_at) answers as `versions` does.
/// - [`delete`](Target::delete) deletes one object; deleting a missing object
///   is [`DeleteOutcome::NotFound`], not an error.
/// - [`dependents`](Target::dependents) lists every object that deleting
///   `key` would delete with it through the runtime's cascade and that
///   someone declared: everything in a Namespace, every custom resource of
///   a CRD (in all namespaces). Objects the runtime itself generates and
///   deletes with their owner (Events, objects with `ownerReferences`) may
///   be left out. A missing object, or a kind that cascades nothing, has no
///   dependents. The reconciler refuses to prune an object whose dependents
///   are not all its own, so an answer must never leave out a declared
///   object: when a backend cannot tell, it fails.
/// - [`read_inventory`](Target::read_inventory) returns what
///   [`write_inventory`](Target::write_inventory) last recorded for an owner,
///   or `None`; inventories of different owners are independent. The
///   inventory read carries the stored [`version`](Inventory::version);
///   [`inventory_version`](Target::inventory_version), when supported, is
///   that version, which every write changes.
/// - [`write_inventory`](Target::write_inventory) is compare-and-swap: it
///   replaces the stored inventory only if its version is the one the
///   written inventory carries (`None`: only if none is stored), otherwise it
///   writes nothing and fails with [`TargetError::InventoryConflict`]. It
///   returns the new version.
#[async_trait]
pub trait Target: Send + Sync + fmt::Debug {
    /// Reads live objects.
    async fn observe(&self, request: &ObserveRequest) -> Result<LiveState, TargetError>;

    /// The version (Kubernetes' `metadata.resourceVersion`) of each
    /// requested object that exists, read without the objects; `Ok(None)`
    /// when the backend cannot tell it more cheaply than
    /// [`observe`](Target::observe) (the default), and the caller observes.
    ///
    /// A version is the `metadata.resourceVersion` that
    /// [`observe`](Target::observe) returns for the object, and must change
    /// on every write of the object, whoever makes it, as a
    /// `resourceVersion` does: a caller takes an object whose
    /// version is the one it saw when it last found the object in sync as
    /// still in sync, without reading or comparing it.
    async fn versions(
        &self,
        request: &ObserveRequest,
    ) -> Result<Option<BTreeMap<ObjectKey, String>>, TargetError> {
        let _ = request;
        Ok(None)
    }

    /// For each `(key, version)` of `recorded`, whether the object exists
    /// with exactly that version ([`versions`](Target::versions)): what a
    /// caller that recorded versions asks on a resync, without the
    /// versions being copied out. `Ok(None)` when the backend cannot tell
    /// it more cheaply than [`observe`](Target::observe). `owner` is the
    /// owner the objects are labelled as, as in [`ObserveRequest::owner`].
    ///
    /// The default asks [`versions`](Target::versions) for the keys.
    async fn still_at(
        &self,
        recorded: &[(&ObjectKey, &str)],
        owner: Option<&OwnerId>,
    ) -> Result<Option<Vec<bool>>, TargetError> {
        let request = ObserveRequest::new(
            recorded.iter().map(|(k, _)| (*k).clone()).collect(),
            owner.cloned(),
        );
        let Some(versions) = self.versions(&request).await? else {
            return Ok(None);
        };
        Ok(Some(
            recorded
                .iter()
                .map(|(k, v)| versions.get(*k).is_some_and(|x| x == v))
                .collect(),
        ))
    }

    /// Applies one object with server-side-apply semantics; returns the
    /// object as the runtime stored it (as it would store it, in a dry
    /// run). The [`Reconciler`](crate::Reconciler) verifies a sync from it;
    /// when it is not the stored object (another kind or name), the
    /// reconciler observes the object instead.
    async fn apply(&self, object: &Object, options: &ApplyOptions) -> Result<Value, TargetError>;

    /// Deletes one object.
    async fn delete(
        &self,
        key: &ObjectKey,
        options: &DeleteOptions,
    ) -> Result<DeleteOutcome, TargetError>;

    /// What deleting `key` would delete with it (see the contract).
    async fn dependents(&self, key: &ObjectKey) -> Result<Vec<LiveRef>, TargetError>;

    /// Reads an owner's inventory, with its stored version.
    async fn read_inventory(&self, owner: &OwnerId) -> Result<Option<Inventory>, TargetError>;

    /// The version of an owner's stored inventory (`Some(None)`: none is
    /// stored), when the backend tells it more cheaply than
    /// [`read_inventory`](Target::read_inventory); `None` (the default)
    /// otherwise. It is the version `read_inventory` would return, and every
    /// write changes it: a caller holding the inventory of that version
    /// need not read it again.
    async fn inventory_version(
        &self,
        owner: &OwnerId,
    ) -> Result<Option<Option<String>>, TargetError> {
        let _ = owner;
        Ok(None)
    }

    /// Records an owner's inventory, replacing the previous one if it still
    /// has the version `inventory.version` (compare-and-swap); returns the
    /// new version.
    async fn write_inventory(&self, inventory: &Inventory) -> Result<String, TargetError>;
}

/// Conveniences on every [`Target`].
#[async_trait]
pub trait TargetExt: Target {
    /// Reads one object, `None` when absent.
    async fn get(&self, key: &ObjectKey) -> Result<Option<Value>, TargetError> {
        let request = ObserveRequest {
            keys: BTreeSet::from([key.clone()]),
            owner: None,
        };
        Ok(self.observe(&request).await?.objects.remove(key))
    }
}

impl<T: Target + ?Sized> TargetExt for T {}

macro_rules! forward_target {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: Target + ?Sized> Target for $ty {
            async fn observe(&self, request: &ObserveRequest) -> Result<LiveState, TargetError> {
                (**self).observe(request).await
            }
            async fn versions(&self, request: &ObserveRequest) -> Result<Option<BTreeMap<ObjectKey, String>>, TargetError> {
                (**self).versions(request).await
            }
            async fn still_at(&self, recorded: &[(&ObjectKey, &str)], owner: Option<&OwnerId>) -> Result<Option<Vec<bool>>, TargetError> {
                (**self).still_at(recorded, owner).await
            }
            async fn apply(&self, object: &Object, options: &ApplyOptions) -> Result<Value, TargetError> {
                (**self).apply(object, options).await
            }
            async fn delete(&self, key: &ObjectKey, options: &DeleteOptions) -> Result<DeleteOutcome, TargetError> {
                (**self).delete(key, options).await
            }
            async fn dependents(&self, key: &ObjectKey) -> Result<Vec<LiveRef>, TargetError> {
                (**self).dependents(key).await
            }
            async fn read_inventory(&self, owner: &OwnerId) -> Result<Option<Inventory>, TargetError> {
                (**self).read_inventory(owner).await
            }
            async fn inventory_version(&self, owner: &OwnerId) -> Result<Option<Option<String>>, TargetError> {
                (**self).inventory_version(owner).await
            }
            async fn write_inventory(&self, inventory: &Inventory) -> Result<String, TargetError> {
                (**self).write_inventory(inventory).await
            }
        }
    )*};
}
forward_target!(&T, Box<T>, Arc<T>);

mod dependents_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::LiveRef;
    use crate::key::ObjectKey;

    #[derive(Serialize, Deserialize)]
    struct Entry {
        key: ObjectKey,
        dependents: Vec<LiveRef>,
    }

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<ObjectKey, Vec<LiveRef>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter().map(|(k, v)| Entry {
            key: k.clone(),
            dependents: v.clone(),
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ObjectKey, Vec<LiveRef>>, D::Error> {
        let entries: Vec<Entry> = Vec::deserialize(d)?;
        Ok(entries.into_iter().map(|e| (e.key, e.dependents)).collect())
    }
}

mod live_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    use crate::key::ObjectKey;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<ObjectKey, Value>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ObjectKey, Value>, D::Error> {
        let values: Vec<Value> = Vec::deserialize(d)?;
        values
            .into_iter()
            .map(|v| {
                crate::object::Object::new(v)
                    .map(|o| (o.key().clone(), o.into_value()))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}
