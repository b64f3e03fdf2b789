//! [`MemoryRuntime`]: a faithful in-memory API server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use gitops_diff::{ApplyError, ApplyRequest, BuiltinLists, CrdLists, LayeredLists, ListSemantics};
use serde_json::{Value, json};

use crate::key::{GroupKind, ObjectKey};
use crate::object::Object;
use crate::scope::{KindRegistry, Scope, crd_kind};
use crate::target::{
    ApplyOptions, DeleteOptions, DeleteOutcome, Inventory, LiveRef, LiveState, OWNER_LABEL,
    ObserveRequest, OwnerId, OwnershipConflict, Target, TargetError,
};

/// One stored object with its `metadata.resourceVersion`, kept beside it
/// (set by the same write) so that [`Target::versions`] reads it without
/// looking into the object.
#[derive(Debug, Clone)]
struct Stored {
    value: Value,
    version: Box<str>,
}

impl Stored {
    fn new(value: Value) -> Self {
        let version = value
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .into();
        Self { value, version }
    }
}

#[derive(Debug)]
struct State {
    objects: BTreeMap<ObjectKey, Stored>,
    inventories: BTreeMap<OwnerId, Inventory>,
    kinds: KindRegistry,
    crds: BTreeMap<String, Value>,
    /// List semantics of the built-ins and the stored CRDs, rebuilt when a
    /// CRD changes (CRD schemas can be megabytes: not parsed per apply).
    lists: Arc<dyn ListSemantics>,
    resource_version: u64,
    uid: u64,
    clock: i64,
}

/// An in-memory Kubernetes API server, good enough to be the embedded
/// default [`Target`] and the reference the conformance suite is checked
/// against.
///
/// What it does as a real API server does:
/// - assigns `metadata.uid`, `resourceVersion` (bumped on every change),
///   `generation` (1 on create, bumped when anything outside `metadata` and
///   `status` changes) and `creationTimestamp`;
/// - server-side apply through [`gitops_diff::server_side_apply`]: records
///   `managedFields` per field manager in the `FieldsV1` format, reports a
///   conflict when another manager owns a field we set to another value
///   (unless forced), removes fields a manager stops declaring, as a
///   1.20 API server does (checked against one in gitops-kube's tests);
/// - updates (whole-object writes with operation `Update`, as `kubectl
///   edit` or a controller makes them) through [`MemoryRuntime::update`];
/// - refuses a namespaced object whose Namespace does not exist, a
///   cluster-scoped object with a namespace, and a custom resource whose CRD
///   is not there; a CRD becomes `Established` and serves its kind at once;
/// - deleting a Namespace deletes what is in it; deleting a CRD deletes its
///   custom resources ([`Target::dependents`] lists them beforehand);
/// - inventories are versioned and written compare-and-swap, as
///   [`Target::write_inventory`] requires.
///
/// Time is a logical clock (one second per write, from 2026-01-01), so runs
/// are reproducible.
///
/// ```
/// # futures::executor::block_on(async {
/// use gitops_core::{ApplyOptions, MemoryRuntime, Object, Target, TargetExt};
/// use serde_json::json;
/// let rt = MemoryRuntime::new();
/// let ns = Object::new(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})).unwrap();
/// rt.apply(&ns, &ApplyOptions::default()).await.unwrap();
/// let cm = Object::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
///     "metadata": {"name": "c", "namespace": "shop"}, "data": {"k": "v"}})).unwrap();
/// let live = rt.apply(&cm, &ApplyOptions::default()).await.unwrap();
/// assert_eq!(live["metadata"]["managedFields"][0]["manager"], "gitops-rs");
/// assert!(rt.get(cm.key()).await.unwrap().is_some());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct MemoryRuntime {
    state: Arc<Mutex<State>>,
}

impl Default for MemoryRuntime {
    fn default() -> Self {
        Self::new()
    }
}

const EPOCH: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn generation_relevant(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

impl MemoryRuntime {
    /// An empty runtime that serves the built-in kinds (not even the
    /// `default` namespace exists: see [`MemoryRuntime::with_system_namespaces`]).
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                objects: BTreeMap::new(),
                inventories: BTreeMap::new(),
                kinds: KindRegistry::builtin(),
                crds: BTreeMap::new(),
                lists: lists_of(&BTreeMap::new()),
                resource_version: 0,
                uid: 0,
                clock: EPOCH,
            })),
        }
    }

    /// A runtime holding what a new cluster has: the `default`,
    /// `kube-system`, `kube-public` and `kube-node-lease` namespaces
    /// (owned by the field manager `kube-apiserver`).
    pub fn with_system_namespaces() -> Self {
        let rt = Self::new();
        {
            let mut state = rt.lock();
            for ns in ["default", "kube-node-lease", "kube-public", "kube-system"] {
                let object = Object::new(
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                );
                if let Ok(object) = object {
                    let options = ApplyOptions::new("kube-apiserver").force(true);
                    // Valid built-in objects into an empty store: cannot fail.
                    let _ = state.apply(&object, &options);
                }
            }
        }
        rt
    }

    /// Stores what `merge` computes from the live object (the hook of
    /// [`MemoryRuntime::update`]).
    pub(super) fn write(
        &self,
        object: &Object,
        dry_run: bool,
        merge: impl FnOnce(Option<&Value>, &dyn ListSemantics, &str) -> Result<Value, ApplyError>,
    ) -> Result<Value, TargetError> {
        self.lock().write(object, dry_run, merge)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every write leaves the maps consistent before anything can panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// All stored objects, in key order (for tests and reports).
    pub fn objects(&self) -> BTreeMap<ObjectKey, Value> {
        self.lock()
            .objects
            .iter()
            .map(|(k, s)| (k.clone(), s.value.clone()))
            .collect()
    }

    /// The stored objects labelled as `owner`'s (the [`OWNER_LABEL`]), in
    /// key order: what a property test checks prune and adoption against.
    pub fn owned_by(&self, owner: &OwnerId) -> BTreeMap<ObjectKey, Value> {
        self.lock()
            .objects
            .iter()
            .filter(|(_, s)| {
                s.value
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(OWNER_LABEL))
                    .and_then(Value::as_str)
                    == Some(owner.as_str())
            })
            .map(|(k, s)| (k.clone(), s.value.clone()))
            .collect()
    }

    /// Number of stored objects.
    pub fn len(&self) -> usize {
        self.lock().objects.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().objects.is_empty()
    }

    /// The kinds served (built-ins plus established CRDs).
    pub fn kinds(&self) -> KindRegistry {
        self.lock().kinds.clone()
    }

    /// List semantics of the served kinds: the built-in table plus the
    /// schemas of the stored CRDs.
    pub fn list_semantics(&self) -> Arc<dyn ListSemantics> {
        Arc::clone(&self.lock().lists)
    }
}

fn lists_of(crds: &BTreeMap<String, Value>) -> Arc<dyn ListSemantics> {
    let mut crd_lists = CrdLists::new();
    for crd in crds.values() {
        // A CRD whose schema cannot be read still serves its kind; its
        // lists are then atomic, as the API server treats unknown schemas.
        let _ = crd_lists.add_crd(crd);
    }
    Arc::new(LayeredLists::new(vec![
        Arc::new(crd_lists),
        Arc::new(BuiltinLists),
    ]))
}

impl State {
    fn check_scope(&self, object: &Object) -> Result<(), TargetError> {
        let key = object.key();
        let gk = object.group_kind();
        let scope = match self.kinds.scope(&gk) {
            Some(s) => s,
            None => {
                return Err(TargetError::UnknownKind {
                    key: key.clone(),
                    api_version: object.api_version().to_owned(),
                });
            }
        };
        match (scope, &key.namespace) {
            (Scope::Cluster, Some(ns)) => Err(TargetError::Invalid {
                key: key.clone(),
                message: format!("{gk} is cluster-scoped but has namespace {ns:?}"),
            }),
            (Scope::Namespaced, None) => Err(TargetError::Invalid {
                key: key.clone(),
                message: format!("{gk} is namespaced but has no namespace"),
            }),
            (Scope::Namespaced, Some(ns)) => {
                let ns_key = ObjectKey::new("", "Namespace", None, ns.clone());
                match self.objects.get(&ns_key).map(|s| &s.value) {
                    None => Err(TargetError::NamespaceNotFound {
                        key: key.clone(),
                        namespace: ns.clone(),
                    }),
                    Some(live) if live.pointer("/metadata/deletionTimestamp").is_some() => {
                        Err(TargetError::Invalid {
                            key: key.clone(),
                            message: format!("namespace {ns} is being terminated"),
                        })
                    }
                    Some(_) => Ok(()),
                }
            }
            (Scope::Cluster, None) => Ok(()),
        }
    }

    fn apply(&mut self, object: &Object, options: &ApplyOptions) -> Result<Value, TargetError> {
        self.write(object, options.dry_run, |live, lists, time| {
            gitops_diff::server_side_apply(
                ApplyRequest::new(live, object.as_value(), &options.field_manager, lists)
                    .force(options.force)
                    .with_time(time),
            )
        })
    }

    /// Stores the object `merge` computes from the live one (an apply or an
    /// update), with the server's bookkeeping.
    fn write(
        &mut self,
        object: &Object,
        dry_run: bool,
        merge: impl FnOnce(Option<&Value>, &dyn ListSemantics, &str) -> Result<Value, ApplyError>,
    ) -> Result<Value, TargetError> {
        let key = object.key().clone();
        self.check_scope(object)?;
        let crd = if key.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            let (gk, scope, list_kind) = crd_kind(object).map_err(|e| TargetError::Invalid {
                key: key.clone(),
                message: e.to_string(),
            })?;
            Some((gk, scope, list_kind))
        } else {
            None
        };
        let time = crate::time::rfc3339(self.clock + 1);
        let lists = Arc::clone(&self.lists);
        let live = self.objects.get(&key).map(|s| &s.value);
        let mut merged = merge(live, lists.as_ref(), &time).map_err(|e| match e {
            ApplyError::Conflict { conflicts } => {
                let mut by_manager: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for c in conflicts {
                    by_manager
                        .entry(c.manager)
                        .or_default()
                        .push(c.path.to_string());
                }
                TargetError::Conflict {
                    key: key.clone(),
                    conflicts: by_manager
                        .into_iter()
                        .map(|(manager, fields)| OwnershipConflict { manager, fields })
                        .collect(),
                }
            }
            other => TargetError::Invalid {
                key: key.clone(),
                message: other.to_string(),
            },
        })?;
        // A CRD is established at once; a Namespace is active.
        if crd.is_some() {
            merged["status"] = json!({"conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}
            ]});
        }
        if key.is("", "Namespace") {
            merged["spec"] = json!({"finalizers": ["kubernetes"]});
            merged["status"] = json!({"phase": "Active"});
        }
        let changed = live.is_none_or(|l| comparable(l) != comparable(&merged));
        if !changed {
            // A no-op apply is not persisted (nothing, not even managedFields
            // times, changes), as with a real API server.
            return Ok(live.cloned().unwrap_or(merged));
        }
        let spec_changed =
            live.is_none_or(|l| generation_relevant(l) != generation_relevant(&merged));
        let (uid, created, generation) = match live {
            None => {
                // Dry runs do not consume uids, so ids do not depend on them.
                let uid = self.uid + 1;
                if !dry_run {
                    self.uid = uid;
                }
                (
                    Value::String(format!("00000000-0000-4000-8000-{uid:012x}")),
                    Value::String(time.clone()),
                    1,
                )
            }
            Some(l) => {
                let old_gen = l
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                (
                    l.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                    l.pointer("/metadata/creationTimestamp")
                        .cloned()
                        .unwrap_or(Value::Null),
                    old_gen + i64::from(spec_changed),
                )
            }
        };
        let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut) else {
            return Err(TargetError::Invalid {
                key,
                message: "metadata is not a mapping".into(),
            });
        };
        meta.insert("uid".into(), uid);
        meta.insert("creationTimestamp".into(), created);
        meta.insert("generation".into(), json!(generation));
        meta.insert(
            "resourceVersion".into(),
            Value::String((self.resource_version + 1).to_string()),
        );
        if let Err(e) = Object::new(merged.clone()) {
            return Err(TargetError::Invalid {
                key,
                message: format!("the merged object is not valid: {e}"),
            });
        }
        if !dry_run {
            self.resource_version += 1;
            self.clock += 1;
            if let Some((gk, scope, list_kind)) = crd {
                self.kinds.register(gk.clone(), scope);
                if let Some(lk) = list_kind {
                    self.kinds.register(GroupKind::new(gk.group, lk), scope);
                }
                self.crds.insert(key.name.clone(), merged.clone());
                self.lists = lists_of(&self.crds);
            }
            self.objects.insert(key, Stored::new(merged.clone()));
        }
        Ok(merged)
    }

    /// What deleting `key` deletes with it: the objects in a Namespace, the
    /// custom resources of a CRD (the same rules as [`State::delete`]).
    fn dependents(&self, key: &ObjectKey) -> Vec<LiveRef> {
        if !self.objects.contains_key(key) {
            return Vec::new();
        }
        let in_cascade: Box<dyn Fn(&ObjectKey) -> bool> = if key.is("", "Namespace") {
            Box::new(|k: &ObjectKey| k.namespace.as_deref() == Some(key.name.as_str()))
        } else if key.is("apiextensions.k8s.io", "CustomResourceDefinition")
            && let Some(crd) = self.crds.get(&key.name)
            && let Ok(obj) = Object::new(crd.clone())
            && let Ok((gk, _, _)) = crd_kind(&obj)
        {
            Box::new(move |k: &ObjectKey| k.group == gk.group && k.kind == gk.kind)
        } else {
            return Vec::new();
        };
        self.objects
            .iter()
            .filter(|(k, _)| in_cascade(k))
            .filter_map(|(_, s)| LiveRef::of(&s.value))
            .collect()
    }

    fn delete(&mut self, key: &ObjectKey, options: &DeleteOptions) -> DeleteOutcome {
        if !self.objects.contains_key(key) {
            return DeleteOutcome::NotFound;
        }
        if options.dry_run {
            return DeleteOutcome::Deleted;
        }
        self.objects.remove(key);
        self.resource_version += 1;
        self.clock += 1;
        if key.is("", "Namespace") {
            self.objects
                .retain(|k, _| k.namespace.as_deref() != Some(key.name.as_str()));
        }
        if key.is("apiextensions.k8s.io", "CustomResourceDefinition")
            && let Some(crd) = self.crds.remove(&key.name)
            && let Ok(obj) = Object::new(crd)
            && let Ok((gk, _, list_kind)) = crd_kind(&obj)
        {
            self.objects
                .retain(|k, _| k.group != gk.group || k.kind != gk.kind);
            self.kinds.remove(&gk);
            if let Some(lk) = list_kind {
                self.kinds.remove(&GroupKind::new(gk.group.clone(), lk));
            }
            self.lists = lists_of(&self.crds);
        }
        DeleteOutcome::Deleted
    }
}

fn comparable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(m)) = v.get_mut("metadata") {
        for f in ["resourceVersion", "uid", "generation", "creationTimestamp"] {
            m.remove(f);
        }
        if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
            for e in entries {
                if let Value::Object(e) = e {
                    e.remove("time");
                }
            }
        }
    }
    v
}

#[async_trait]
impl Target for MemoryRuntime {
    async fn observe(&self, request: &ObserveRequest) -> Result<LiveState, TargetError> {
        let state = self.lock();
        Ok(LiveState {
            inventory: None,
            dependents: BTreeMap::new(),
            in_sync: Default::default(),
            objects: crate::util::entries_of(request.keys.iter(), &state.objects)
                .into_iter()
                .map(|(k, s)| (k.clone(), s.value.clone()))
                .collect(),
        })
    }

    async fn versions(
        &self,
        request: &ObserveRequest,
    ) -> Result<Option<BTreeMap<ObjectKey, String>>, TargetError> {
        let state = self.lock();
        Ok(Some(
            crate::util::entries_of(request.keys.iter(), &state.objects)
                .into_iter()
                .map(|(k, s)| (k.clone(), s.version.to_string()))
                .collect(),
        ))
    }

    /// Compared in place with the version kept beside each object.
    async fn still_at(
        &self,
        recorded: &[(&ObjectKey, &str)],
        _owner: Option<&OwnerId>,
    ) -> Result<Option<Vec<bool>>, TargetError> {
        let state = self.lock();
        let same =
            |stored: Option<&Stored>, version: &str| stored.is_some_and(|s| &*s.version == version);
        if recorded.len().saturating_mul(8) < state.objects.len() {
            return Ok(Some(
                recorded
                    .iter()
                    .map(|(k, v)| same(state.objects.get(*k), v))
                    .collect(),
            ));
        }
        // Recorded keys come in key order (a caller's keys usually are the
        // stored ones, compared by address): one pass beside the stored
        // objects. A key the pass does not meet (absent, or out of order)
        // is looked up, so any order gives the same answer.
        let mut entries = state.objects.iter().peekable();
        Ok(Some(
            recorded
                .iter()
                .map(|(k, v)| {
                    while entries.next_if(|(e, _)| e < k).is_some() {}
                    let stored = entries
                        .next_if(|(e, _)| e == k)
                        .map(|(_, s)| s)
                        .or_else(|| state.objects.get(*k));
                    same(stored, v)
                })
                .collect(),
        ))
    }

    async fn apply(&self, object: &Object, options: &ApplyOptions) -> Result<Value, TargetError> {
        self.lock().apply(object, options)
    }

    async fn delete(
        &self,
        key: &ObjectKey,
        options: &DeleteOptions,
    ) -> Result<DeleteOutcome, TargetError> {
        Ok(self.lock().delete(key, options))
    }

    async fn dependents(&self, key: &ObjectKey) -> Result<Vec<LiveRef>, TargetError> {
        Ok(self.lock().dependents(key))
    }

    async fn read_inventory(&self, owner: &OwnerId) -> Result<Option<Inventory>, TargetError> {
        Ok(self.lock().inventories.get(owner).cloned())
    }

    async fn inventory_version(
        &self,
        owner: &OwnerId,
    ) -> Result<Option<Option<String>>, TargetError> {
        Ok(Some(
            self.lock()
                .inventories
                .get(owner)
                .and_then(|i| i.version.clone()),
        ))
    }

    async fn write_inventory(&self, inventory: &Inventory) -> Result<String, TargetError> {
        let mut state = self.lock();
        let stored = state
            .inventories
            .get(&inventory.owner)
            .and_then(|i| i.version.clone());
        if stored != inventory.version {
            return Err(TargetError::InventoryConflict {
                owner: inventory.owner.clone(),
                expected: inventory.version.clone(),
            });
        }
        // Inventories share the objects' version sequence, as ConfigMaps do.
        state.resource_version += 1;
        let version = state.resource_version.to_string();
        // The stored record is changed in place: the entries that stay are
        // neither copied nor freed.
        match state.inventories.get_mut(&inventory.owner) {
            Some(stored) => {
                // Every field (a new one breaks this).
                let Inventory {
                    owner: _,
                    revision,
                    objects,
                    version: _,
                } = inventory;
                // Shared with the writer's; else changed in place (copied
                // only while someone else holds the stored entries).
                if !Arc::ptr_eq(&stored.objects, objects) {
                    crate::target::assign_map(Arc::make_mut(&mut stored.objects), objects);
                }
                stored.revision.clone_from(revision);
                stored.version = Some(version.clone());
            }
            None => {
                let mut record = inventory.clone();
                record.version = Some(version.clone());
                state.inventories.insert(inventory.owner.clone(), record);
            }
        }
        Ok(version)
    }
}
