//! What a reconcile costs the API server, counted request by request with
//! the harness's recording client ([`TestCluster::recording_client`]).
//!
//! The set reconciled has the shape of Argo CD's `install.yaml`: 59 objects
//! of 12 kinds (CRDs, RBAC, ConfigMaps, Secrets, Services, Deployments, a
//! StatefulSet, NetworkPolicies) in one namespace that it does not declare.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gitops_core::{
    ApplyOptions, DeleteOptions, DeleteOutcome, Inventory, LiveRef, LiveState, MemorySource,
    OWNER_LABEL, Object, ObjectKey, ObserveRequest, OwnerId, Reconciler, ReconcilerConfig,
    RenderOptions, SyncStatus, Target, TargetError,
};
use gitops_kube::KubeTarget;
use gitops_kube::testing::{RecordedRequest, RequestLog, TestCluster, shared_or_skip, unique_name};
use serde_json::{Value, json};

/// A [`Target`] that notes which recorded requests each `observe` sent.
#[derive(Debug)]
struct Observed<T> {
    inner: T,
    log: RequestLog,
    observes: Arc<Mutex<Vec<Range<usize>>>>,
}

#[async_trait]
impl<T: Target> Target for Observed<T> {
    async fn observe(&self, request: &ObserveRequest) -> Result<LiveState, TargetError> {
        let start = self.log.len();
        let live = self.inner.observe(request).await;
        let end = self.log.len();
        self.observes.lock().unwrap().push(start..end);
        live
    }

    async fn versions(
        &self,
        request: &ObserveRequest,
    ) -> Result<Option<std::collections::BTreeMap<ObjectKey, String>>, TargetError> {
        self.inner.versions(request).await
    }

    async fn apply(&self, object: &Object, options: &ApplyOptions) -> Result<Value, TargetError> {
        self.inner.apply(object, options).await
    }

    async fn delete(
        &self,
        key: &ObjectKey,
        options: &DeleteOptions,
    ) -> Result<DeleteOutcome, TargetError> {
        self.inner.delete(key, options).await
    }

    async fn dependents(&self, key: &ObjectKey) -> Result<Vec<LiveRef>, TargetError> {
        self.inner.dependents(key).await
    }

    async fn read_inventory(&self, owner: &OwnerId) -> Result<Option<Inventory>, TargetError> {
        self.inner.read_inventory(owner).await
    }

    async fn write_inventory(&self, inventory: &Inventory) -> Result<String, TargetError> {
        self.inner.write_inventory(inventory).await
    }

    async fn inventory_version(
        &self,
        owner: &OwnerId,
    ) -> Result<Option<Option<String>>, TargetError> {
        self.inner.inventory_version(owner).await
    }
}

/// What a request reads or writes: `(group/version/resource, namespace)`,
/// without the object's name; `None` for discovery (`/api`, `/apis/g/v`,
/// `/version`).
fn resource_of(request: &RecordedRequest) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let (gv, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    match rest {
        [] => None,
        ["namespaces", ns, resource, ..] => {
            Some((format!("{gv}/{resource}"), Some(ns.to_string())))
        }
        [resource, ..] => Some((format!("{gv}/{resource}"), None)),
    }
}

fn is_label_list(request: &RecordedRequest) -> bool {
    request
        .query
        .as_deref()
        .is_some_and(|q| q.contains("labelSelector="))
}

fn crd(group: &str, kind: &str, plural: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.{group}\nspec:\n  group: {group}\n  names: {{kind: {kind}, listKind: {kind}List, plural: {plural}, singular: {singular}}}\n  scope: Namespaced\n  versions:\n  - name: v1alpha1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n",
        singular = kind.to_lowercase()
    )
}

fn deployment(kind: &str, name: &str, port: u16) -> String {
    let service_name = if kind == "StatefulSet" {
        format!("  serviceName: {name}\n")
    } else {
        String::new()
    };
    format!(
        "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\n  labels: {{app.kubernetes.io/name: {name}}}\nspec:\n{service_name}  replicas: 1\n  selector:\n    matchLabels: {{app.kubernetes.io/name: {name}}}\n  template:\n    metadata:\n      labels: {{app.kubernetes.io/name: {name}}}\n    spec:\n      serviceAccountName: {name}\n      containers:\n      - name: main\n        image: quay.io/argoproj/argocd:v2.13.0\n        args: [/usr/local/bin/{name}]\n        ports:\n        - {{containerPort: {port}, protocol: TCP}}\n        resources:\n          requests: {{cpu: 100m, memory: 64Mi}}\n"
    )
}

fn service(name: &str, selects: &str, port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  labels: {{app.kubernetes.io/name: {name}}}\nspec:\n  selector: {{app.kubernetes.io/name: {selects}}}\n  ports:\n  - {{name: http, port: {port}, targetPort: {port}, protocol: TCP}}\n"
    )
}

/// 59 objects of 12 kinds, shaped like Argo CD's `install.yaml`; namespaced
/// ones without a namespace (rendered into the test's), cluster-scoped ones
/// named after `unique` so that tests sharing a server do not collide.
fn argo_like(unique: &str) -> Vec<(String, String)> {
    let group = format!("{unique}.argoproj.test");
    let mut files = vec![(
        "crds.yaml".to_owned(),
        [
            crd(&group, "Application", "applications"),
            crd(&group, "AppProject", "appprojects"),
            crd(&group, "ApplicationSet", "applicationsets"),
        ]
        .join("---\n"),
    )];
    let components = [
        "application-controller",
        "applicationset-controller",
        "dex-server",
        "notifications-controller",
        "redis",
        "repo-server",
        "server",
    ];
    let mut rbac = Vec::new();
    for c in components {
        rbac.push(format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: argocd-{c}}}\n"
        ));
        if c != "repo-server" {
            rbac.push(format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: argocd-{c}}}\nrules:\n- apiGroups: ['']\n  resources: [secrets, configmaps]\n  verbs: [get, list, watch]\n"
            ));
            rbac.push(format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: argocd-{c}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: argocd-{c}}}\nsubjects:\n- {{kind: ServiceAccount, name: argocd-{c}}}\n"
            ));
        }
    }
    for c in [
        "application-controller",
        "applicationset-controller",
        "server",
    ] {
        rbac.push(format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {unique}-{c}}}\nrules:\n- apiGroups: ['*']\n  resources: ['*']\n  verbs: [get, list, watch]\n"
        ));
        rbac.push(format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {unique}-{c}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {unique}-{c}}}\nsubjects:\n- {{kind: ServiceAccount, name: argocd-{c}, namespace: placeholder}}\n"
        ));
    }
    files.push(("rbac.yaml".to_owned(), rbac.join("---\n")));
    let mut config = Vec::new();
    for cm in [
        "argocd-cm",
        "argocd-cmd-params-cm",
        "argocd-gpg-keys-cm",
        "argocd-notifications-cm",
        "argocd-rbac-cm",
        "argocd-ssh-known-hosts-cm",
        "argocd-tls-certs-cm",
    ] {
        config.push(format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {cm}\n  labels: {{app.kubernetes.io/part-of: argocd}}\ndata: {{setting: \"{cm}\"}}\n"
        ));
    }
    for secret in ["argocd-notifications-secret", "argocd-secret"] {
        config.push(format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {secret}}}\ntype: Opaque\ndata: {{key: dmFsdWU=}}\n"
        ));
    }
    files.push(("config.yaml".to_owned(), config.join("---\n")));
    let mut workloads = Vec::new();
    for (name, selects, port) in [
        (
            "argocd-applicationset-controller",
            "argocd-applicationset-controller",
            7000,
        ),
        ("argocd-dex-server", "argocd-dex-server", 5556),
        ("argocd-metrics", "argocd-application-controller", 8082),
        (
            "argocd-notifications-controller-metrics",
            "argocd-notifications-controller",
            9001,
        ),
        ("argocd-redis", "argocd-redis", 6379),
        ("argocd-repo-server", "argocd-repo-server", 8081),
        ("argocd-server", "argocd-server", 8080),
        ("argocd-server-metrics", "argocd-server", 8083),
    ] {
        workloads.push(service(name, selects, port));
    }
    for (name, port) in [
        ("argocd-applicationset-controller", 7000),
        ("argocd-dex-server", 5556),
        ("argocd-notifications-controller", 9001),
        ("argocd-redis", 6379),
        ("argocd-repo-server", 8081),
        ("argocd-server", 8080),
    ] {
        workloads.push(deployment("Deployment", name, port));
    }
    workloads.push(deployment(
        "StatefulSet",
        "argocd-application-controller",
        8082,
    ));
    for c in components {
        workloads.push(format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: argocd-{c}-network-policy}}\nspec:\n  podSelector:\n    matchLabels: {{app.kubernetes.io/name: argocd-{c}}}\n  policyTypes: [Ingress]\n  ingress:\n  - ports:\n    - {{port: 8080, protocol: TCP}}\n"
        ));
    }
    files.push(("workloads.yaml".to_owned(), workloads.join("---\n")));
    files
}

/// What `requests` read more than once: `(resource, namespace, times)`.
fn read_twice(requests: &[RecordedRequest]) -> Vec<(String, Option<String>, usize)> {
    let mut reads: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for r in requests.iter().filter(|r| !r.is_write()) {
        if let Some(resource) = resource_of(r) {
            *reads.entry(resource).or_default() += 1;
        }
    }
    reads
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((r, ns), n)| (r, ns, n))
        .collect()
}

struct Setup {
    reconciler: Reconciler<MemorySource, Observed<KubeTarget>>,
    log: RequestLog,
    observes: Arc<Mutex<Vec<Range<usize>>>>,
    ns: String,
    inventory_ns: String,
}

async fn setup(cluster: &TestCluster, prefix: &str) -> Setup {
    let ns = cluster.create_namespace(prefix).await.unwrap();
    let inventory_ns = unique_name("inv");
    let owner = OwnerId::new(unique_name("argocd")).unwrap();
    let mut config = ReconcilerConfig::new(owner);
    config.render = RenderOptions::default().with_default_namespace(&ns);
    let source = MemorySource::new();
    let files = argo_like(&ns)
        .into_iter()
        .map(|(path, text)| (path, text.replace("placeholder", &ns)));
    source.commit("prod", files, "ada", "an install of Argo CD's shape");
    let (client, log) = cluster.recording_client().unwrap();
    let observes = Arc::new(Mutex::new(Vec::new()));
    let target = Observed {
        inner: KubeTarget::new(client).with_inventory_namespace(&inventory_ns),
        log: log.clone(),
        observes: observes.clone(),
    };
    let reconciler = Reconciler::new(source, target, config).unwrap();
    Setup {
        reconciler,
        log,
        observes,
        ns,
        inventory_ns,
    }
}

/// A no-op resync: no write at all, and each `(kind, namespace)` read once:
/// a metadata LIST by owner label gives the resourceVersions
/// ([`Target::versions`]) of the objects the last sync found in sync, which
/// are then neither read nor compared; a hand edit changes a version, so
/// drift is still corrected.
///
/// Counted: every HTTP request the reconciler's client sends during the
/// second `reconcile_once` of the same revision. Discovery (`/api`,
/// `/apis/...`) and the server version are read once per process (the
/// catalog is shared by the target's clones) during the first one, so none
/// is expected here.
#[tokio::test]
async fn a_no_op_resync_writes_nothing_and_lists_each_kind_once() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let Setup {
        reconciler,
        log,
        observes,
        ns,
        inventory_ns,
    } = setup(cluster, "requests").await;
    let first = reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(first.status, SyncStatus::Synced, "{first}");
    assert_eq!(first.steps.len(), 59, "{first}");
    let kinds: BTreeSet<_> = first.steps.iter().map(|s| s.key.group_kind()).collect();
    assert_eq!(kinds.len(), 12, "{kinds:?}");
    let cold = log.take();
    observes.lock().unwrap().clear();
    // The sync is verified from what the server returned for each apply:
    // nothing is read after the last write (the inventory's).
    let last_write = cold.iter().rposition(RecordedRequest::is_write).unwrap();
    let after: Vec<String> = cold[last_write + 1..]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(after, Vec::<String>::new(), "read after the last write");

    let again = reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(again.status, SyncStatus::UpToDate, "{again}");
    let requests = log.take();
    let observed: Vec<Range<usize>> = observes.lock().unwrap().drain(..).collect();
    let listing: Vec<String> = requests.iter().map(ToString::to_string).collect();
    eprintln!(
        "first sync: {} requests; no-op resync: {} requests, {} observations:\n{}",
        cold.len(),
        requests.len(),
        observed.len(),
        listing.join("\n")
    );

    let writes: Vec<&RecordedRequest> = requests.iter().filter(|r| r.is_write()).collect();
    assert!(
        writes.is_empty(),
        "a no-op resync writes nothing: {writes:?}"
    );
    assert!(
        requests.iter().all(|r| resource_of(r).is_some()),
        "discovery is cached: {listing:#?}"
    );
    assert!(
        read_twice(&requests).is_empty(),
        "one read per kind and namespace in the whole resync: {:?}",
        read_twice(&requests)
    );
    // The first sync's verification, from what the server returned for each
    // apply, found every object in sync and noted its resourceVersion: the resync reads the versions with one LIST by
    // owner label per declared kind and namespace (12 here) and reads no
    // object it knows in sync; it observes only the undeclared Namespace.
    let lists = requests.iter().filter(|r| is_label_list(r)).count();
    assert_eq!(lists, 12, "{listing:#?}");
    assert_eq!(observed.len(), 1, "{observed:?}");
    let during: Vec<String> = observed
        .iter()
        .flat_map(|r| requests[r.clone()].iter().map(ToString::to_string))
        .collect();
    assert_eq!(during, [format!("GET /api/v1/namespaces/{ns}")]);
    let others: Vec<String> = requests
        .iter()
        .filter(|r| !is_label_list(r))
        .map(ToString::to_string)
        .filter(|r| !during.contains(r))
        .collect();
    assert_eq!(
        others,
        vec![format!(
            "GET /api/v1/namespaces/{inventory_ns}/configmaps/{}",
            gitops_kube::inventory::inventory_name(reconciler.config().owner())
        )],
        "besides the versions and the Namespace: the inventory only"
    );
    // Of which only metadata is read: the versions, and the inventory's
    // version (the entries kept from the last sync are still that version's).
    let whole: Vec<String> = requests
        .iter()
        .filter(|r| !r.metadata_only)
        .map(ToString::to_string)
        .collect();
    assert_eq!(whole, during, "only the undeclared Namespace is read whole");

    // A hand edit changes a resourceVersion: that object is read again and
    // the drift corrected.
    let edited = gitops_core::Object::new(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": ns},
        "data": {"setting": "edited by hand"}
    }))
    .unwrap();
    reconciler
        .target()
        .apply(&edited, &ApplyOptions::new("kubectl-edit").force(true))
        .await
        .unwrap();
    let fixed = reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(fixed.status, SyncStatus::Synced, "{fixed}");
    assert_eq!(fixed.drift_corrected.len(), 1, "{fixed}");
}

/// Objects the set declares that exist without our owner label (made by
/// someone else before the first sync) are still found, by a GET each after
/// the LIST by label: adoption and conflict detection see them.
#[tokio::test]
async fn objects_without_our_label_are_still_observed() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let ns = cluster.create_namespace("requests-adopt").await.unwrap();
    let (client, log) = cluster.recording_client().unwrap();
    let target = KubeTarget::new(client);
    let owner = OwnerId::new(unique_name("app")).unwrap();
    let key = |n: &str| ObjectKey::new("", "ConfigMap", Some(&ns), n);
    let by_hand = ApplyOptions::new("kubectl");
    for (name, labelled) in [("ours", true), ("theirs", false), ("ours-too", true)] {
        let mut value = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns},
            "data": {"v": "1"}
        });
        if labelled {
            value["metadata"]["labels"] = json!({ OWNER_LABEL: owner.as_str() });
        }
        target
            .apply(&Object::new(value).unwrap(), &by_hand)
            .await
            .unwrap();
    }
    log.take();
    let keys: BTreeSet<ObjectKey> = ["ours", "theirs", "ours-too", "absent"]
        .iter()
        .map(|n| key(n))
        .collect();
    let live = target
        .observe(&ObserveRequest::new(keys, Some(owner.clone())))
        .await
        .unwrap();
    let found: BTreeSet<&str> = live.objects.keys().map(|k| k.name.as_str()).collect();
    assert_eq!(found, BTreeSet::from(["ours", "ours-too", "theirs"]));
    let requests = log.take();
    let base = format!("/api/v1/namespaces/{ns}/configmaps");
    let lists: Vec<&RecordedRequest> = requests.iter().filter(|r| is_label_list(r)).collect();
    assert_eq!(lists.len(), 1, "{requests:#?}");
    assert_eq!(lists[0].path, base);
    let mut gets: Vec<String> = requests
        .iter()
        .filter(|r| !is_label_list(r))
        .map(ToString::to_string)
        .collect();
    gets.sort();
    assert_eq!(
        gets,
        [format!("GET {base}/absent"), format!("GET {base}/theirs")],
        "a GET for each object the LIST did not return"
    );

    // One object of its kind and namespace: one GET, labelled or not.
    log.take();
    let live = target
        .observe(&ObserveRequest::new(
            BTreeSet::from([key("theirs")]),
            Some(owner),
        ))
        .await
        .unwrap();
    assert!(live.objects.contains_key(&key("theirs")));
    let requests: Vec<String> = log.take().iter().map(ToString::to_string).collect();
    assert_eq!(requests, [format!("GET {base}/theirs")]);
}
