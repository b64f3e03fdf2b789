//! [`KubeTarget`]: the core [`Target`] on a Kubernetes API server.

// `TargetError` is the core trait's error, returned by every trait method
// anyway; boxing it in our private helpers would only add conversions.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use gitops_core::{
    ApplyOptions, DEFAULT_FIELD_MANAGER, DeleteOptions, DeleteOutcome, GroupKind, Inventory,
    LiveState, OWNER_LABEL, Object, ObjectKey, ObserveRequest, OwnerId, Propagation, Scope, Target,
    TargetError,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy,
};
use serde_json::{Value, json};

use crate::discovery::{ApiCatalog, ResolvedKind};
use crate::error::{from_discovery, from_kube, is_not_served};
use crate::inventory::{
    DEFAULT_INVENTORY_NAMESPACE, INVENTORY_FIELD_MANAGER, INVENTORY_NAME_PREFIX, InventoryError,
    from_config_map, inventory_name, legacy_inventory_name, recorded_owner, to_config_map,
};

/// How long [`Target::apply`] of a CRD waits for it to be Established and
/// served, unless configured otherwise.
pub const DEFAULT_ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// From how many requested objects of one kind in one namespace
/// [`Target::observe`] lists by owner label instead of getting each.
const LIST_THRESHOLD: usize = 3;
/// Concurrent GETs during observe.
const CONCURRENCY: usize = 8;

/// When [`KubeTarget`] fills in `protocol: TCP` on ports that omit it, a
/// work-around for servers before Kubernetes 1.21, whose server-side apply
/// refuses such ports (see [`compat`](crate::compat)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PortProtocols {
    /// Only when the server is older than 1.21 (its version is read once).
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// A [`Target`] backed by a Kubernetes API server through kube-rs.
///
/// - Works on dynamic objects: any kind the server serves works, CRDs
///   included, without generated types. Kinds are resolved through a cached
///   [`ApiCatalog`], read again when an unknown kind appears.
/// - [`apply`](Target::apply) is server-side apply with the options' field
///   manager, `force` and server-side dry-run. Applying a
///   `CustomResourceDefinition` waits until it is Established and its kind is
///   served, so its custom resources can follow at once. A field-ownership
///   conflict becomes [`TargetError::Conflict`] naming the other managers and
///   their fields.
/// - [`observe`](Target::observe) reads only the requested objects: a GET
///   each, or one LIST per kind and namespace with the owner label selector
///   when an owner is given and several objects of that kind are asked for.
///   Never a full-cluster scan.
/// - The inventory lives in the cluster, one ConfigMap per owner (see
///   [`inventory`](crate::inventory)).
/// - [`delete`](Target::delete) uses the options' propagation policy. It
///   sends no preconditions: [`Target::delete`] receives only the key, not
///   the uid or resourceVersion observed, so an object deleted and recreated
///   by someone else between observe and prune is deleted too (the planner
///   prunes only objects carrying the owner's label, which limits this).
/// - A kind whose CRD was deleted after it was cached (the server answers a
///   bare `404 page not found`) is looked up again once; if it is gone its
///   objects are absent. A kind the catalog does not know while discovery
///   of some version of its group failed is [`TargetError::Unavailable`],
///   not absent, so that no inventory entry is lost to a broken API.
/// - The inventory ConfigMaps are off limits: applying or deleting a
///   ConfigMap named `gitops-inventory-*` in the inventory namespace is
///   [`TargetError::Invalid`].
///
/// Cloning is cheap and clones share the discovery cache.
#[derive(Clone)]
pub struct KubeTarget {
    client: Client,
    catalog: ApiCatalog,
    inventory_namespace: String,
    establish_timeout: Duration,
    field_manager: String,
    port_protocols: PortProtocols,
    /// The server's minor version, read once (for [`PortProtocols::Auto`]).
    server_minor: Arc<tokio::sync::OnceCell<Option<u32>>>,
    /// The apiVersion each object was last applied with by this process, so
    /// observe reads it back in the same version.
    applied_versions: Arc<Mutex<HashMap<ObjectKey, String>>>,
}

impl std::fmt::Debug for KubeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTarget")
            .field("inventory_namespace", &self.inventory_namespace)
            .field("establish_timeout", &self.establish_timeout)
            .field("field_manager", &self.field_manager)
            .finish_non_exhaustive()
    }
}

impl KubeTarget {
    /// A target on `client`'s cluster, with the default inventory namespace
    /// ([`DEFAULT_INVENTORY_NAMESPACE`]) and CRD timeout.
    pub fn new(client: Client) -> Self {
        Self {
            catalog: ApiCatalog::new(client.clone()),
            client,
            inventory_namespace: DEFAULT_INVENTORY_NAMESPACE.to_owned(),
            establish_timeout: DEFAULT_ESTABLISH_TIMEOUT,
            field_manager: DEFAULT_FIELD_MANAGER.to_owned(),
            port_protocols: PortProtocols::Auto,
            server_minor: Arc::default(),
            applied_versions: Arc::default(),
        }
    }

    /// Stores inventories in `namespace` (created on first write if absent).
    #[must_use]
    pub fn with_inventory_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.inventory_namespace = namespace.into();
        self
    }

    /// How long applying a CRD waits for it to be Established and served.
    #[must_use]
    pub fn with_establish_timeout(mut self, timeout: Duration) -> Self {
        self.establish_timeout = timeout;
        self
    }

    /// The field manager whose `managedFields` entry tells
    /// [`observe`](Target::observe) which apiVersion to read an object in
    /// (default [`DEFAULT_FIELD_MANAGER`]); use the one given in
    /// [`ApplyOptions`].
    #[must_use]
    pub fn with_field_manager(mut self, manager: impl Into<String>) -> Self {
        self.field_manager = manager.into();
        self
    }

    /// When to fill in `protocol: TCP` on ports that omit it before applying
    /// (default [`PortProtocols::Auto`]). See [`compat`](crate::compat).
    #[must_use]
    pub fn with_port_protocols(mut self, mode: PortProtocols) -> Self {
        self.port_protocols = mode;
        self
    }

    async fn fill_port_protocols(&self) -> bool {
        match self.port_protocols {
            PortProtocols::Always => true,
            PortProtocols::Never => false,
            PortProtocols::Auto => {
                let minor = self
                    .server_minor
                    .get_or_init(|| async {
                        let v = self.client.apiserver_version().await.ok()?;
                        (v.major == "1")
                            .then(|| v.minor.trim_end_matches('+').parse().ok())
                            .flatten()
                    })
                    .await;
                minor.is_some_and(|m| m < 21)
            }
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The discovery cache.
    pub fn catalog(&self) -> &ApiCatalog {
        &self.catalog
    }

    /// The namespace holding inventories.
    pub fn inventory_namespace(&self) -> &str {
        &self.inventory_namespace
    }

    /// An API handle for objects of `kind` in `namespace` (`None`: all
    /// namespaces, or a cluster-scoped kind).
    pub fn api(&self, kind: &ResolvedKind, namespace: Option<&str>) -> Api<DynamicObject> {
        match (kind.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.client.clone(), ns, &kind.resource)
            }
            _ => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    /// Checks the key's namespace against the kind's scope.
    fn scoped_api(
        &self,
        key: &ObjectKey,
        kind: &ResolvedKind,
    ) -> Result<Api<DynamicObject>, TargetError> {
        match (kind.scope, key.namespace.as_deref()) {
            (Scope::Namespaced, None) => Err(TargetError::Invalid {
                key: key.clone(),
                message: format!(
                    "{} is namespaced but the object has no metadata.namespace",
                    kind.resource.kind
                ),
            }),
            (Scope::Cluster, Some(ns)) => Err(TargetError::Invalid {
                key: key.clone(),
                message: format!(
                    "{} is cluster-scoped but the object has metadata.namespace {ns:?}",
                    kind.resource.kind
                ),
            }),
            (_, ns) => Ok(self.api(kind, ns)),
        }
    }

    async fn resolve_key(&self, key: &ObjectKey) -> Result<Option<Arc<ResolvedKind>>, TargetError> {
        let hint = self.applied_version(key);
        if let Some(version) = hint {
            let found = self
                .catalog
                .resolve(&key.group, &version, &key.kind)
                .await
                .map_err(|e| from_discovery(key, e))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        self.catalog
            .resolve_group_kind(&key.group_kind())
            .await
            .map_err(|e| from_discovery(key, e))
    }

    /// `Err` when `key` is one of the inventory ConfigMaps, which only
    /// [`Target::write_inventory`] may write.
    fn refuse_inventory(&self, key: &ObjectKey) -> Result<(), TargetError> {
        if is_inventory_config_map(key, &self.inventory_namespace) {
            return Err(TargetError::Invalid {
                key: key.clone(),
                message: format!(
                    "ConfigMaps named {INVENTORY_NAME_PREFIX}* in namespace {} hold the \
                     inventories of this target's owners; a manifest may not apply or delete \
                     one (that would adopt, rewrite or prune an owner's inventory)",
                    self.inventory_namespace
                ),
            });
        }
        Ok(())
    }

    /// When the catalog does not know `key`'s kind: `Ok` if that means the
    /// kind is not served, `Err(Unavailable)` if discovery of a version of
    /// its group failed, so that the kind may be served after all.
    async fn check_unknown_kind(&self, key: &ObjectKey) -> Result<(), TargetError> {
        let failed = self.catalog.failed_group_versions(&key.group).await;
        match unknown_kind_verdict(key, &failed) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Reads the catalog again after the server answered that it does not
    /// serve a cached resource.
    async fn refresh_catalog(&self, key: &ObjectKey) -> Result<(), TargetError> {
        self.catalog
            .refresh()
            .await
            .map_err(|e| from_discovery(key, e))
    }

    /// Reads the requested objects of one kind in one namespace.
    async fn observe_kind(
        &self,
        kind: &ResolvedKind,
        namespace: Option<&str>,
        keys: &[&ObjectKey],
        owner: Option<&OwnerId>,
    ) -> Result<Vec<(ObjectKey, Value)>, TargetError> {
        let Some(first) = keys.first().copied() else {
            return Ok(Vec::new());
        };
        let mut listed: HashMap<String, DynamicObject> = HashMap::new();
        if let Some(owner) = owner
            && keys.len() >= LIST_THRESHOLD
            && kind.supports("list")
        {
            let api = self.api(kind, namespace);
            let params = ListParams::default().labels(&format!("{OWNER_LABEL}={}", owner.as_str()));
            let list = api
                .list(&params)
                .await
                .map_err(|e| kind_error(first, kind, e))?;
            let wanted: BTreeSet<&str> = keys.iter().map(|k| k.name.as_str()).collect();
            for o in list.items {
                if let Some(name) = o.metadata.name.clone()
                    && wanted.contains(name.as_str())
                {
                    listed.insert(name, o);
                }
            }
        }
        let reads: Vec<_> = keys
            .iter()
            .map(|key| {
                let found = listed.remove(&key.name);
                let key = (*key).clone();
                async move {
                    let value = self.get_in_applied_version(&key, kind, found).await?;
                    Ok::<_, TargetError>((key, value))
                }
            })
            .collect();
        let results: Vec<(ObjectKey, Option<Value>)> = futures::stream::iter(reads)
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(results
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v)))
            .collect())
    }

    fn applied_version(&self, key: &ObjectKey) -> Option<String> {
        let versions = self.applied_versions.lock().ok()?;
        versions
            .get(key)
            .and_then(|av| av.rsplit('/').next().map(str::to_owned))
    }

    /// Reads one object; when our manager applied it in another version than
    /// the one read, reads it again in that version, so that what we compare
    /// with is in the version we declared.
    async fn get_in_applied_version(
        &self,
        key: &ObjectKey,
        kind: &ResolvedKind,
        found: Option<DynamicObject>,
    ) -> Result<Option<Value>, TargetError> {
        let object = match found {
            Some(o) => o,
            None => {
                let api = self.scoped_api(key, kind)?;
                match api
                    .get_opt(&key.name)
                    .await
                    .map_err(|e| kind_error(key, kind, e))?
                {
                    Some(o) => o,
                    None => return Ok(None),
                }
            }
        };
        let value = to_value(key, &object)?;
        let applied = managed_api_version(&value, &self.field_manager);
        if let Some(av) = applied
            && av != kind.resource.api_version
        {
            let version = av.rsplit('/').next().unwrap_or_default();
            if let Ok(Some(other)) = self.catalog.resolve(&key.group, version, &key.kind).await {
                let api = self.scoped_api(key, &other)?;
                if let Some(again) = api
                    .get_opt(&key.name)
                    .await
                    .map_err(|e| kind_error(key, &other, e))?
                {
                    return Ok(Some(to_value(key, &again)?));
                }
                return Ok(None);
            }
        }
        Ok(Some(value))
    }

    async fn wait_established(
        &self,
        api: &Api<DynamicObject>,
        key: &ObjectKey,
        crd: &Value,
    ) -> Result<(), TargetError> {
        let deadline = tokio::time::Instant::now() + self.establish_timeout;
        let timeout = |what: &str| TargetError::Unavailable {
            message: format!("{key}: {what} after {:?}", self.establish_timeout),
            source: None,
        };
        // 1. The Established condition.
        loop {
            let live = api.get(&key.name).await.map_err(|e| from_kube(key, e))?;
            let live = to_value(key, &live)?;
            let condition = |t: &str| {
                live.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|cs| cs.iter().find(|c| c["type"] == t))
                    .cloned()
            };
            if condition("Established").is_some_and(|c| c["status"] == "True") {
                break;
            }
            if let Some(c) = condition("NamesAccepted")
                && c["status"] == "False"
            {
                return Err(TargetError::Invalid {
                    key: key.clone(),
                    message: format!(
                        "CRD names not accepted: {}",
                        c["message"].as_str().unwrap_or_default()
                    ),
                });
            }
            if tokio::time::Instant::now() > deadline {
                return Err(timeout("CRD not Established"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // 2. Discovery serves its kind in every served version.
        let group = crd.pointer("/spec/group").and_then(Value::as_str);
        let kind = crd.pointer("/spec/names/kind").and_then(Value::as_str);
        let (Some(group), Some(kind)) = (group, kind) else {
            return Ok(());
        };
        let mut versions: Vec<&str> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
                    .filter_map(|v| v.get("name").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(v) = crd.pointer("/spec/version").and_then(Value::as_str) {
            versions.push(v); // apiextensions.k8s.io/v1beta1
        }
        for version in versions {
            loop {
                if let Ok(true) = self
                    .catalog
                    .refresh_group_version(group, version, kind)
                    .await
                {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(timeout("CRD kind not served"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    async fn apply_value(
        &self,
        key: &ObjectKey,
        api: &Api<DynamicObject>,
        body: &Value,
        params: &PatchParams,
    ) -> Result<DynamicObject, TargetError> {
        api.patch(&key.name, params, &Patch::Apply(body))
            .await
            .map_err(|e| {
                if is_not_served(&e) {
                    TargetError::UnknownKind {
                        key: key.clone(),
                        api_version: String::new(),
                    }
                } else {
                    from_kube(key, e)
                }
            })
    }
}

/// The apiVersion of `manager`'s `Apply` entry in `managedFields`.
fn managed_api_version(value: &Value, manager: &str) -> Option<String> {
    value
        .pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == "Apply")?
        .get("apiVersion")?
        .as_str()
        .map(str::to_owned)
}

fn to_value(key: &ObjectKey, object: &DynamicObject) -> Result<Value, TargetError> {
    serde_json::to_value(object).map_err(|e| TargetError::Other {
        message: format!("{key}: cannot encode the object the server returned: {e}"),
        source: Some(Box::new(e)),
    })
}

/// A failed request about `key` of a cached `kind`: a bare `404` means the
/// server does not serve the kind (any more), [`TargetError::UnknownKind`].
fn kind_error(key: &ObjectKey, kind: &ResolvedKind, error: kube::Error) -> TargetError {
    if is_not_served(&error) {
        TargetError::UnknownKind {
            key: key.clone(),
            api_version: kind.resource.api_version.clone(),
        }
    } else {
        from_kube(key, error)
    }
}

/// What a kind missing from the catalog means for `key`: nothing (`None`:
/// the kind is not served, its objects cannot exist) unless discovery of
/// some version of its group failed (`failed`), in which case the kind may
/// be served there and its objects exist: `Unavailable`, so that the caller
/// neither drops them from an inventory nor takes them for deleted.
fn unknown_kind_verdict(key: &ObjectKey, failed: &[String]) -> Option<TargetError> {
    (!failed.is_empty()).then(|| TargetError::Unavailable {
        message: format!(
            "{key}: cannot tell whether kind {} is served: API discovery of {} failed",
            key.group_kind(),
            failed.join(", ")
        ),
        source: None,
    })
}

/// Whether `key` names an inventory ConfigMap in `inventory_namespace`.
fn is_inventory_config_map(key: &ObjectKey, inventory_namespace: &str) -> bool {
    key.group.is_empty()
        && key.kind == "ConfigMap"
        && key.namespace.as_deref() == Some(inventory_namespace)
        && key.name.starts_with(INVENTORY_NAME_PREFIX)
}

fn unknown_kind(object: &Object) -> TargetError {
    TargetError::UnknownKind {
        key: object.key().clone(),
        api_version: object.api_version().to_owned(),
    }
}

fn is_crd(key: &ObjectKey) -> bool {
    key.is("apiextensions.k8s.io", "CustomResourceDefinition")
}

#[async_trait]
impl Target for KubeTarget {
    async fn observe(&self, request: &ObserveRequest) -> Result<LiveState, TargetError> {
        let mut groups: BTreeMap<(GroupKind, Option<String>), Vec<&ObjectKey>> = BTreeMap::new();
        for key in &request.keys {
            groups
                .entry((key.group_kind(), key.namespace.clone()))
                .or_default()
                .push(key);
        }
        let mut live = LiveState::default();
        for ((gk, namespace), keys) in groups {
            let Some(first) = keys.first().copied() else {
                continue;
            };
            let mut refreshed = false;
            loop {
                let Some(kind) = self.resolve_key(first).await? else {
                    self.check_unknown_kind(first).await?;
                    tracing::debug!(kind = %gk, "kind not served: its objects cannot exist");
                    break;
                };
                // Scope mismatches cannot exist on the server either.
                if (kind.scope == Scope::Namespaced) != namespace.is_some() {
                    break;
                }
                match self
                    .observe_kind(&kind, namespace.as_deref(), &keys, request.owner.as_ref())
                    .await
                {
                    Ok(found) => {
                        live.objects.extend(found);
                        break;
                    }
                    // The cached kind is no longer served (its CRD was
                    // deleted): look it up again, once.
                    Err(TargetError::UnknownKind { .. }) if !refreshed => {
                        refreshed = true;
                        tracing::debug!(kind = %gk, "cached kind not served any more: rediscovering");
                        self.refresh_catalog(first).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(live)
    }

    async fn apply(&self, object: &Object, options: &ApplyOptions) -> Result<Value, TargetError> {
        let key = object.key();
        self.refuse_inventory(key)?;
        let gv = object.group_version();
        let kind = self
            .catalog
            .resolve(&gv.group, &gv.version, object.kind())
            .await
            .map_err(|e| from_discovery(key, e))?
            .ok_or_else(|| unknown_kind(object))?;
        let api = self.scoped_api(key, &kind)?;
        let params = PatchParams {
            dry_run: options.dry_run,
            force: options.force,
            field_manager: Some(options.field_manager.clone()),
            field_validation: None,
        };
        let mut body = object.as_value().clone();
        if self.fill_port_protocols().await {
            crate::compat::default_port_protocols(&key.group, &key.kind, &mut body);
        }
        let stored = match self.apply_value(key, &api, &body, &params).await {
            Ok(stored) => stored,
            Err(TargetError::NotFound { .. } | TargetError::UnknownKind { .. }) => {
                // The kind was in the cache but the server no longer serves
                // it (its CRD was deleted): forget it.
                let _ = self.catalog.refresh().await;
                return Err(unknown_kind(object));
            }
            Err(e) => return Err(e),
        };
        let value = to_value(key, &stored)?;
        if !options.dry_run {
            if let Ok(mut versions) = self.applied_versions.lock() {
                versions.insert(key.clone(), object.api_version().to_owned());
            }
            if is_crd(key) {
                self.wait_established(&api, key, object.as_value()).await?;
            }
        }
        Ok(value)
    }

    async fn delete(
        &self,
        key: &ObjectKey,
        options: &DeleteOptions,
    ) -> Result<DeleteOutcome, TargetError> {
        self.refuse_inventory(key)?;
        let params = DeleteParams {
            dry_run: options.dry_run,
            propagation_policy: Some(match options.propagation {
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            ..DeleteParams::default()
        };
        let mut refreshed = false;
        loop {
            let Some(kind) = self.resolve_key(key).await? else {
                self.check_unknown_kind(key).await?;
                return Ok(DeleteOutcome::NotFound);
            };
            let api = self.scoped_api(key, &kind)?;
            match api.delete(&key.name, &params).await {
                Ok(_) => {
                    if !options.dry_run
                        && let Ok(mut versions) = self.applied_versions.lock()
                    {
                        versions.remove(key);
                    }
                    return Ok(DeleteOutcome::Deleted);
                }
                // The cached kind is no longer served: look it up again, once.
                Err(e) if is_not_served(&e) && !refreshed => {
                    refreshed = true;
                    self.refresh_catalog(key).await?;
                }
                Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(DeleteOutcome::NotFound),
                Err(e) => return Err(kind_error(key, &kind, e)),
            }
        }
    }

    async fn read_inventory(&self, owner: &OwnerId) -> Result<Option<Inventory>, TargetError> {
        let ns = &self.inventory_namespace;
        if let Some(stored) = self.stored_inventory(&inventory_name(owner)).await? {
            return parse_inventory(owner, ns, &stored).map(Some);
        }
        // Written by an earlier version under another name?
        if let Some(legacy) = legacy_inventory_name(owner)
            && let Some(stored) = self.stored_inventory(&legacy).await?
            && recorded_owner(&stored).as_deref() == Some(owner.as_str())
        {
            return parse_inventory(owner, ns, &stored).map(Some);
        }
        Ok(None)
    }

    async fn write_inventory(&self, inventory: &Inventory) -> Result<(), TargetError> {
        let ns = &self.inventory_namespace;
        let body = to_config_map(inventory, ns);
        let key = ObjectKey::new("", "ConfigMap", Some(ns), inventory_name(&inventory.owner));
        // Never overwrite another owner's inventory (two ids mapping to one
        // name), nor a ConfigMap that is not an inventory.
        if let Some(stored) = self.stored_inventory(&key.name).await? {
            let found = recorded_owner(&stored);
            if found.as_deref() != Some(inventory.owner.as_str()) {
                return Err(TargetError::Invalid {
                    key: key.clone(),
                    message: match found {
                        Some(other) => format!(
                            "refusing to write the inventory of owner {:?}: ConfigMap {ns}/{} \
                             holds the inventory of owner {other:?} (both ids map to that name)",
                            inventory.owner.as_str(),
                            key.name
                        ),
                        None => format!(
                            "refusing to write the inventory of owner {:?}: ConfigMap {ns}/{} \
                             exists and is not an inventory",
                            inventory.owner.as_str(),
                            key.name
                        ),
                    },
                });
            }
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let params = PatchParams::apply(INVENTORY_FIELD_MANAGER).force();
        let apply = || async {
            api.patch(&key.name, &params, &Patch::Apply(&body))
                .await
                .map_err(|e| from_kube(&key, e))
        };
        match apply().await {
            Ok(_) => {}
            Err(TargetError::NamespaceNotFound { .. }) => {
                let ns_key = ObjectKey::new("", "Namespace", None, ns.as_str());
                let namespaces: Api<k8s_openapi::api::core::v1::Namespace> =
                    Api::all(self.client.clone());
                let ns_body = json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
                });
                namespaces
                    .patch(ns, &params, &Patch::Apply(&ns_body))
                    .await
                    .map_err(|e| from_kube(&ns_key, e))?;
                apply().await?;
            }
            Err(e) => return Err(e),
        }
        // Written under its current name: drop the copy under an old one.
        if let Some(legacy) = legacy_inventory_name(&inventory.owner)
            && let Some(stored) = self.stored_inventory(&legacy).await?
            && recorded_owner(&stored).as_deref() == Some(inventory.owner.as_str())
        {
            let legacy_key = ObjectKey::new("", "ConfigMap", Some(ns), &legacy);
            match api.delete(&legacy, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(e) => return Err(from_kube(&legacy_key, e)),
            }
        }
        Ok(())
    }
}

impl KubeTarget {
    /// The ConfigMap `name` in the inventory namespace, as JSON, if any.
    async fn stored_inventory(&self, name: &str) -> Result<Option<Value>, TargetError> {
        let ns = &self.inventory_namespace;
        let key = ObjectKey::new("", "ConfigMap", Some(ns), name);
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let Some(cm) = api.get_opt(name).await.map_err(|e| from_kube(&key, e))? else {
            return Ok(None);
        };
        serde_json::to_value(&cm)
            .map(Some)
            .map_err(|e| TargetError::Other {
                message: format!("{key}: {e}"),
                source: Some(Box::new(e)),
            })
    }
}

/// Reads `owner`'s inventory from its stored ConfigMap.
fn parse_inventory(owner: &OwnerId, ns: &str, stored: &Value) -> Result<Inventory, TargetError> {
    from_config_map(owner, ns, stored).map_err(|e| match e {
        InventoryError::OtherOwner { ref name, .. } => TargetError::Invalid {
            key: ObjectKey::new("", "ConfigMap", Some(ns), name.as_str()),
            message: e.to_string(),
        },
        e => TargetError::Other {
            message: e.to_string(),
            source: Some(Box::new(e)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_kind_is_absent_unless_its_group_failed_discovery() {
        let key = ObjectKey::new("metrics.k8s.io", "PodMetrics", Some("ns"), "p");
        assert!(unknown_kind_verdict(&key, &[]).is_none());
        let failed = vec!["metrics.k8s.io/v1beta1".to_owned()];
        match unknown_kind_verdict(&key, &failed) {
            Some(e @ TargetError::Unavailable { .. }) => {
                assert!(e.is_transient());
                assert!(e.to_string().contains("metrics.k8s.io/v1beta1"), "{e}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn inventory_config_maps_are_recognised() {
        let ns = "gitops-system";
        let inv = ObjectKey::new("", "ConfigMap", Some(ns), "gitops-inventory-shop");
        assert!(is_inventory_config_map(&inv, ns));
        let elsewhere = ObjectKey::new("", "ConfigMap", Some("app"), "gitops-inventory-shop");
        assert!(!is_inventory_config_map(&elsewhere, ns));
        let other_name = ObjectKey::new("", "ConfigMap", Some(ns), "settings");
        assert!(!is_inventory_config_map(&other_name, ns));
        let secret = ObjectKey::new("", "Secret", Some(ns), "gitops-inventory-shop");
        assert!(!is_inventory_config_map(&secret, ns));
    }
}
