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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Whose inventory this is.
    pub owner: OwnerId,
    /// The revision last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The objects applied, with the `apiVersion` they were applied with.
    /// (Serialised as a list of `{group, kind, namespace, name, apiVersion}`.)
    #[serde(with = "key_map")]
    pub objects: BTreeMap<ObjectKey, String>,
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

    /// Writes the map as a list of `{group, kind, namespace, name, apiVersion}`.
    pub fn serialize<S: Serializer>(
        map: &BTreeMap<ObjectKey, String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter().map(|(k, v)| Entry {
            key: std::borrow::Cow::Borrowed(k),
            api_version: std::borrow::Cow::Borrowed(v),
        }))
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ObjectKey, String>, D::Error> {
        let entries: Vec<Entry<'static>> = Vec::deserialize(d)?;
        Ok(entries
            .into_iter()
            .map(|e| (e.key.into_owned(), e.api_version.into_owned()))
            .collect())
    }
}

impl Inventory {
    /// An empty inventory.
    pub fn new(owner: OwnerId) -> Self {
        Self {
            owner,
            revision: None,
            objects: BTreeMap::new(),
        }
    }

    /// Whether the inventory lists an object.
    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.objects.contains_key(key)
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyOptions {
    /// The server-side-apply field manager.
    pub field_manager: String,
    /// Take ownership of fields other managers own instead of failing with
    /// [`TargetError::Conflict`].
    pub force: bool,
    /// Validate and compute the result without persisting it.
    pub dry_run: bool,
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
pub struct DeleteOptions {
    /// Dependents policy.
    pub propagation: Propagation,
    /// Validate without deleting.
    pub dry_run: bool,
}

/// What [`Target::delete`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteOutcome {
    /// The object was deleted (or its deletion started).
    Deleted,
    /// There was nothing to delete.
    NotFound,
}

/// What to observe: objects by key. `owner` is a hint a backend may use to
/// list by [`OWNER_LABEL`] instead of getting objects one by one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObserveRequest {
    /// The objects to read (missing ones are simply absent from the result).
    pub keys: BTreeSet<ObjectKey>,
    /// The owner whose objects these mostly are.
    pub owner: Option<OwnerId>,
}

/// Live objects as the runtime returned them (with `metadata.managedFields`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveState {
    /// The objects found, by key.
    #[serde(with = "live_map")]
    pub objects: BTreeMap<ObjectKey, Value>,
    /// The owner's inventory, when the caller read it (targets leave it
    /// `None` in [`Target::observe`]; the reconciler fills it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
}

impl LiveState {
    /// One live object.
    pub fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key)
    }
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
///   same errors are reported. The returned value is the stored object.
/// - [`delete`](Target::delete) deletes one object; deleting a missing object
///   is [`DeleteOutcome::NotFound`], not an error.
/// - [`read_inventory`](Target::read_inventory) returns what
///   [`write_inventory`](Target::write_inventory) last recorded for an owner,
///   or `None`; inventories of different owners are independent.
#[async_trait]
pub trait Target: Send + Sync + fmt::Debug {
    /// Reads live objects.
    async fn observe(&self, request: &ObserveRequest) -> Result<LiveState, TargetError>;

    /// Applies one object with server-side-apply semantics.
    async fn apply(&self, object: &Object, options: &ApplyOptions) -> Result<Value, TargetError>;

    /// Deletes one object.
    async fn delete(
        &self,
        key: &ObjectKey,
        options: &DeleteOptions,
    ) -> Result<DeleteOutcome, TargetError>;

    /// Reads an owner's inventory.
    async fn read_inventory(&self, owner: &OwnerId) -> Result<Option<Inventory>, TargetError>;

    /// Records an owner's inventory, replacing the previous one.
    async fn write_inventory(&self, inventory: &Inventory) -> Result<(), TargetError>;
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
            async fn apply(&self, object: &Object, options: &ApplyOptions) -> Result<Value, TargetError> {
                (**self).apply(object, options).await
            }
            async fn delete(&self, key: &ObjectKey, options: &DeleteOptions) -> Result<DeleteOutcome, TargetError> {
                (**self).delete(key, options).await
            }
            async fn read_inventory(&self, owner: &OwnerId) -> Result<Option<Inventory>, TargetError> {
                (**self).read_inventory(owner).await
            }
            async fn write_inventory(&self, inventory: &Inventory) -> Result<(), TargetError> {
                (**self).write_inventory(inventory).await
            }
        }
    )*};
}
forward_target!(&T, Box<T>, Arc<T>);

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
