//! Cost proportional to change (issue 14): an incremental render equals a
//! full one; a reconciler that skips objects recorded in sync still finds
//! drift, and a one-file commit plans and applies only what it changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use gitops_core::{
    MemoryRuntime, MemorySource, Object, ObjectKey, ObserveRequest, OwnerId, Reconciler,
    ReconcilerConfig, RenderOptions, Renderer, Snapshot, SyncStatus, Target, TargetExt,
};
use serde_json::json;

fn cm(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: \"{value}\"\n")
}

const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, listKind: WidgetList, singular: widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";

fn snapshot(files: &[(&str, String)]) -> Snapshot {
    Snapshot::from_files(files.iter().map(|(p, d)| (p.to_string(), d.clone())))
}

/// The paths whose content differs between two snapshots.
fn changed(a: &Snapshot, b: &Snapshot) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (p, blob) in a.files() {
        if b.get(p).map(|x| &x.id) != Some(&blob.id) {
            out.insert(p.to_owned());
        }
    }
    for (p, _) in b.files() {
        if a.get(p).is_none() {
            out.insert(p.to_owned());
        }
    }
    out
}

/// `render_changed` from `v1` to `v2` gives what a full render of `v2`
/// gives: the same state, or the same errors.
fn check(v1: &[(&str, String)], v2: &[(&str, String)]) {
    let options = RenderOptions::default().with_default_namespace("shop");
    let (s1, s2) = (snapshot(v1), snapshot(v2));
    let mut renderer = Renderer::new(options.clone()).unwrap();
    let previous = renderer.render(&s1).unwrap();
    let incremental = renderer.render_changed(previous, &s2, "", &changed(&s1, &s2));
    let full = gitops_core::render(&s2, &options);
    match (incremental, full) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("incremental {a:?} but full {b:?}"),
    }
}

#[test]
fn an_incremental_render_equals_a_full_render() {
    let base = vec![
        ("ns.yaml", NS.to_owned()),
        ("a.yaml", cm("a", "1")),
        ("b.yaml", format!("{}---\n{}", cm("b", "1"), cm("b2", "1"))),
        ("c.yaml", cm("c", "1")),
    ];
    let with = |edits: &[(&'static str, Option<String>)]| {
        let mut files = base.clone();
        for (path, content) in edits {
            files.retain(|(p, _)| p != path);
            if let Some(c) = content {
                files.push((path, c.clone()));
            }
        }
        files
    };
    // A changed value, a deleted file, an added file, a moved object.
    check(&base, &with(&[("a.yaml", Some(cm("a", "2")))]));
    check(&base, &with(&[("b.yaml", None)]));
    check(&base, &with(&[("d.yaml", Some(cm("d", "1")))]));
    check(
        &base,
        &with(&[("c.yaml", None), ("e.yaml", Some(cm("c", "1")))]),
    );
    // An object declared twice, a broken file, an unknown kind: the full
    // render's errors.
    check(&base, &with(&[("d.yaml", Some(cm("a", "9")))]));
    check(&base, &with(&[("a.yaml", Some("kind: [".to_owned()))]));
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n".to_owned();
    check(&base, &with(&[("w.yaml", Some(widget.clone()))]));
    // A CRD added (then its custom resource renders), or removed.
    check(
        &base,
        &with(&[
            ("crd.yaml", Some(CRD.to_owned())),
            ("w.yaml", Some(widget.clone())),
        ]),
    );
    let with_crd = with(&[("crd.yaml", Some(CRD.to_owned())), ("w.yaml", Some(widget))]);
    check(&with_crd, &base);
    // A file that becomes a Kustomization (refused without a step).
    check(
        &base,
        &with(&[(
            "kustomization.yaml",
            Some("resources: [a.yaml]\n".to_owned()),
        )]),
    );
}

fn owner() -> OwnerId {
    OwnerId::new("shop").unwrap()
}

fn files(values: &[&str]) -> Vec<(String, String)> {
    let mut out = vec![("ns.yaml".to_owned(), NS.to_owned())];
    for (i, v) in values.iter().enumerate() {
        out.push((format!("cm-{i}.yaml"), cm(&format!("c{i}"), v)));
    }
    out
}

fn commit(source: &MemorySource, files: &[(String, String)]) -> String {
    source.commit(
        "main",
        files.iter().map(|(p, d)| (p.clone(), d.as_bytes())),
        "ada",
        "change",
    )
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new("", "ConfigMap", Some("shop"), name)
}

#[tokio::test]
async fn drift_is_found_after_resyncs_that_read_nothing() {
    let source = MemorySource::new();
    commit(&source, &files(&["1", "1", "1"]));
    let runtime = MemoryRuntime::new();
    let config = ReconcilerConfig::new(owner())
        .render_options(RenderOptions::default().with_default_namespace("shop"));
    let reconciler = Reconciler::new(source.clone(), runtime.clone(), config).unwrap();
    let first = reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(first.status, SyncStatus::Synced);
    // Every object is now known in sync by its version: the planner
    // compares none of them, and the runtime is not read for them.
    let again = reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(again.status, SyncStatus::UpToDate);
    let versions = runtime
        .versions(&ObserveRequest::new(BTreeSet::from([key("c1")]), None))
        .await
        .unwrap()
        .unwrap();
    assert!(versions.contains_key(&key("c1")));
    // Someone edits an object by hand: its version changes, so it is read,
    // compared, and the drift corrected.
    let mut live = runtime.get(&key("c1")).await.unwrap().unwrap();
    live["data"]["k"] = json!("by hand");
    runtime
        .update(&Object::new(live).unwrap(), "kubectl-edit")
        .unwrap();
    let after = runtime
        .versions(&ObserveRequest::new(BTreeSet::from([key("c1")]), None))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        versions[&key("c1")],
        after[&key("c1")],
        "a write changes the version"
    );
    let corrected = reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(corrected.status, SyncStatus::Synced);
    assert_eq!(corrected.drift_corrected, vec![key("c1")]);
    let live = runtime.get(&key("c1")).await.unwrap().unwrap();
    assert_eq!(live["data"]["k"], "1");
    // A deleted object is found missing and created again.
    runtime
        .delete(&key("c2"), &Default::default())
        .await
        .unwrap();
    let recreated = reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(recreated.summary.create, 1);
    assert!(runtime.get(&key("c2")).await.unwrap().is_some());
    assert_eq!(
        reconciler.reconcile_once("main").await.unwrap().status,
        SyncStatus::UpToDate
    );
}

#[tokio::test]
async fn a_one_file_commit_plans_what_it_changed_and_matches_a_fresh_reconciler() {
    let source = MemorySource::new();
    commit(&source, &files(&["1", "1", "1", "1"]));
    let runtime = MemoryRuntime::new();
    let config = || {
        ReconcilerConfig::new(owner())
            .render_options(RenderOptions::default().with_default_namespace("shop"))
    };
    let warm = Reconciler::new(source.clone(), runtime.clone(), config()).unwrap();
    warm.reconcile_once("main").await.unwrap();
    warm.reconcile_once("main").await.unwrap();
    // One file changes, one is deleted, one is added.
    let mut next = files(&["1", "2", "1"]);
    next.push(("extra.yaml".to_owned(), cm("extra", "1")));
    commit(&source, &next);
    let fresh = Reconciler::new(source.clone(), runtime.clone(), config()).unwrap();
    let (desired_fresh, plan_fresh) = fresh.plan("main").await.unwrap();
    let (desired_warm, plan_warm) = warm.plan("main").await.unwrap();
    assert_eq!(desired_warm, desired_fresh);
    assert_eq!(
        serde_json::to_string(&plan_warm).unwrap(),
        serde_json::to_string(&plan_fresh).unwrap()
    );
    let report = warm.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced);
    let changed: Vec<String> = report.steps.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(
        changed,
        [
            "ConfigMap/shop/c1",
            "ConfigMap/shop/extra",
            "ConfigMap/shop/c3"
        ]
    );
    // And the runtime is what a fresh reconciler sees as in sync.
    let (_, plan) = fresh.plan("main").await.unwrap();
    assert!(plan.steps.is_empty(), "{plan}");
}

/// Counts the objects a target is asked to observe.
#[derive(Debug, Clone)]
struct Counting {
    inner: MemoryRuntime,
    observed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl Target for Counting {
    async fn observe(
        &self,
        request: &ObserveRequest,
    ) -> Result<gitops_core::LiveState, gitops_core::TargetError> {
        self.observed
            .fetch_add(request.keys.len(), std::sync::atomic::Ordering::SeqCst);
        self.inner.observe(request).await
    }
    async fn versions(
        &self,
        request: &ObserveRequest,
    ) -> Result<Option<std::collections::BTreeMap<ObjectKey, String>>, gitops_core::TargetError>
    {
        self.inner.versions(request).await
    }
    async fn apply(
        &self,
        object: &Object,
        options: &gitops_core::ApplyOptions,
    ) -> Result<serde_json::Value, gitops_core::TargetError> {
        self.inner.apply(object, options).await
    }
    async fn delete(
        &self,
        key: &ObjectKey,
        options: &gitops_core::DeleteOptions,
    ) -> Result<gitops_core::DeleteOutcome, gitops_core::TargetError> {
        self.inner.delete(key, options).await
    }
    async fn dependents(
        &self,
        key: &ObjectKey,
    ) -> Result<Vec<gitops_core::LiveRef>, gitops_core::TargetError> {
        self.inner.dependents(key).await
    }
    async fn read_inventory(
        &self,
        owner: &OwnerId,
    ) -> Result<Option<gitops_core::Inventory>, gitops_core::TargetError> {
        self.inner.read_inventory(owner).await
    }
    async fn write_inventory(
        &self,
        inventory: &gitops_core::Inventory,
    ) -> Result<String, gitops_core::TargetError> {
        self.inner.write_inventory(inventory).await
    }
}

#[tokio::test]
async fn a_resync_reads_only_what_changed() {
    let source = MemorySource::new();
    commit(&source, &files(&["1", "1", "1", "1"]));
    let target = Counting {
        inner: MemoryRuntime::new(),
        observed: Default::default(),
    };
    let count = || target.observed.swap(0, std::sync::atomic::Ordering::SeqCst);
    let config = ReconcilerConfig::new(owner())
        .render_options(RenderOptions::default().with_default_namespace("shop"));
    let reconciler = Reconciler::new(source.clone(), target.clone(), config).unwrap();
    reconciler.reconcile_once("main").await.unwrap();
    // The first sync reads everything, then verifies the 5 objects it
    // applied from what the runtime stored, without reading them again.
    assert_eq!(count(), 5);
    let report = reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::UpToDate);
    assert_eq!(count(), 0, "a no-op resync reads no object");
    commit(&source, &files(&["1", "2", "1", "1"]));
    let report = reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(report.summary.update, 1);
    assert_eq!(count(), 1, "the changed object only");
}
