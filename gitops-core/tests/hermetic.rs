//! Hermetic application through the reconciler on the in-memory runtime:
//! a revision the runtime refuses is refused whole, before any write, with
//! every refusal in one report; fields the runtime drops are reported once
//! and are not drift.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use gitops_core::{
    ApplyOptions, DeleteOptions, DeleteOutcome, Fault, FaultyTarget, Inventory, LiveRef, LiveState,
    MemoryRuntime, MemorySource, Object, ObjectKey, ObserveRequest, Operation, OwnerId, Reconciler,
    ReconcilerConfig, Refusal, StepOutcome, SyncStatus, Target, TargetError, TargetExt, Warning,
};
use serde_json::Value;

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
const WIDGET: &str = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: shop\nspec:\n  size: 3\n";

/// A ConfigMap; `refuse` puts the annotation [`refusing`] refuses on.
fn cm(name: &str, ns: &str, refuse: Option<&str>) -> String {
    let annotations = refuse.map_or_else(String::new, |why| {
        format!("  annotations: {{test.example/refuse: \"{why}\"}}\n")
    });
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n{annotations}data: {{k: v}}\n"
    )
}

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  selector: {app: web}
  ports:
  - {name: http, port: 80, protocol: TCP}
";

fn owner() -> OwnerId {
    OwnerId::new("shop").unwrap()
}

fn key(kind: &str, ns: Option<&str>, name: &str) -> ObjectKey {
    ObjectKey::new("", kind, ns, name)
}

/// A runtime with an admission step in front of `apply`, as an API server
/// has: what the runtime itself checks (the namespace, the kind) first, in a
/// dry run, then `admit`, which may refuse the object or change what is
/// stored. It applies to dry runs too.
#[derive(Debug)]
struct Admission<T> {
    inner: T,
    admit: fn(&Object) -> Result<Object, Box<TargetError>>,
}

#[async_trait]
impl<T: Target> Target for Admission<T> {
    async fn observe(&self, request: &ObserveRequest) -> Result<LiveState, TargetError> {
        self.inner.observe(request).await
    }
    async fn apply(&self, object: &Object, options: &ApplyOptions) -> Result<Value, TargetError> {
        self.inner
            .apply(object, &options.clone().dry_run(true))
            .await?;
        let admitted = (self.admit)(object).map_err(|e| *e)?;
        self.inner.apply(&admitted, options).await
    }
    async fn delete(
        &self,
        key: &ObjectKey,
        options: &DeleteOptions,
    ) -> Result<DeleteOutcome, TargetError> {
        self.inner.delete(key, options).await
    }
    async fn read_inventory(&self, owner: &OwnerId) -> Result<Option<Inventory>, TargetError> {
        self.inner.read_inventory(owner).await
    }
    async fn write_inventory(&self, inventory: &Inventory) -> Result<String, TargetError> {
        self.inner.write_inventory(inventory).await
    }
    async fn dependents(&self, key: &ObjectKey) -> Result<Vec<LiveRef>, TargetError> {
        self.inner.dependents(key).await
    }
}

/// Refuses every object with the annotation `test.example/refuse`, with its
/// value as the message: an admission check the planner cannot foresee.
fn refusing<T>(inner: T) -> Admission<T> {
    Admission {
        inner,
        admit: |object| match object.annotation("test.example/refuse") {
            Some(why) => Err(Box::new(TargetError::Invalid {
                key: object.key().clone(),
                message: why.to_owned(),
            })),
            None => Ok(object.clone()),
        },
    }
}

/// Drops `spec.ipFamilies` and `spec.ipFamilyPolicy` from Services before
/// storing them, as kube-apiserver 1.20 does with dual-stack off (its
/// strategy clears them before they are stored or recorded as owned).
fn drops_dual_stack<T>(inner: T) -> Admission<T> {
    Admission {
        inner,
        admit: |object| {
            let mut value = object.as_value().clone();
            if object.key().is("", "Service")
                && let Some(spec) = value.get_mut("spec").and_then(Value::as_object_mut)
            {
                spec.remove("ipFamilies");
                spec.remove("ipFamilyPolicy");
            }
            Ok(Object::new(value).unwrap())
        },
    }
}

/// Overrides `data.k` of the ConfigMaps whose name ends in `-mutated`, as a
/// mutating webhook may: what is stored is not what was declared.
fn overriding<T>(inner: T) -> Admission<T> {
    Admission {
        inner,
        admit: |object| {
            let mut value = object.as_value().clone();
            if object.key().is("", "ConfigMap") && object.name().ends_with("-mutated") {
                value["data"]["k"] = Value::from("webhook");
            }
            Ok(Object::new(value).unwrap())
        },
    }
}

fn reconciler<T: Target>(source: &MemorySource, target: T) -> Reconciler<MemorySource, T> {
    Reconciler::new(source.clone(), target, ReconcilerConfig::new(owner())).unwrap()
}

#[tokio::test]
async fn an_object_in_a_namespace_nobody_creates_is_refused_at_plan_time() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::with_system_namespaces();
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("a.yaml", cm("a", "shop", None)),
            ("live.yaml", cm("b", "default", None)),
            ("typo.yaml", cm("c", "shpo", None)),
        ],
        "ada",
        "a typo in a namespace",
    );
    let before = runtime.objects();
    let err = reconciler(&source, runtime.clone())
        .reconcile_once("main")
        .await
        .unwrap_err();
    let report = err.report;
    assert_eq!(report.status, SyncStatus::Blocked, "{report}");
    let refusals = &report.plan.as_ref().unwrap().refusals;
    assert_eq!(refusals.len(), 1, "only the typo: {refusals:?}");
    assert!(matches!(
        &refusals[0],
        Refusal::MissingNamespace { key: k, namespace, .. }
            if *k == key("ConfigMap", Some("shpo"), "c") && namespace == "shpo"
    ));
    assert_eq!(
        messages(&report),
        [
            "refused: typo.yaml#0 (line 1): ConfigMap/shpo/c: namespace \"shpo\" is neither declared in the revision nor present in the runtime"
        ]
    );
    assert_eq!(runtime.objects(), before, "nothing written");
}

#[tokio::test]
async fn every_refusal_is_reported_at_once_and_nothing_is_written() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::with_system_namespaces();
    source.commit(
        "main",
        [
            ("a.yaml", cm("a", "default", None)),
            ("b.yaml", cm("b", "default", Some("b is not allowed"))),
            ("c.yaml", cm("c", "default", None)),
            (
                "d.yaml",
                cm("d", "default", Some("d is not allowed either")),
            ),
        ],
        "ada",
        "two bad objects",
    );
    let before = runtime.objects();
    let r = reconciler(&source, refusing(runtime.clone()));
    let report = r.reconcile_once("main").await.unwrap_err().report;
    assert_eq!(report.status, SyncStatus::Refused, "{report}");
    let outcomes: Vec<(String, StepOutcome)> = report
        .steps
        .iter()
        .map(|s| (s.key.name.clone(), s.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("a".to_owned(), StepOutcome::NotRun),
            ("b".to_owned(), StepOutcome::Refused),
            ("c".to_owned(), StepOutcome::NotRun),
            ("d".to_owned(), StepOutcome::Refused),
        ]
    );
    assert_eq!(
        messages(&report),
        [
            "the runtime refused 2 of 4 steps in a server-side dry run; nothing was applied",
            "dry run refused create ConfigMap/default/b: ConfigMap/default/b is invalid: b is not allowed",
            "dry run refused create ConfigMap/default/d: ConfigMap/default/d is invalid: d is not allowed either",
        ]
    );
    assert_eq!(runtime.objects(), before, "nothing written");
    assert_eq!(runtime.read_inventory(&owner()).await.unwrap(), None);

    // Fixed in the next commit: everything goes through.
    source.commit(
        "main",
        [
            ("a.yaml", cm("a", "default", None)),
            ("b.yaml", cm("b", "default", None)),
            ("c.yaml", cm("c", "default", None)),
            ("d.yaml", cm("d", "default", None)),
        ],
        "ada",
        "fixed",
    );
    let report = r.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced, "{report}");
    assert_eq!(runtime.len(), before.len() + 4);
}

#[tokio::test]
async fn objects_needing_a_namespace_or_crd_of_the_plan_are_validated_after_it() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::new();
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("cm.yaml", cm("a", "shop", None)),
            ("crd.yaml", CRD.to_owned()),
            ("widget.yaml", WIDGET.to_owned()),
        ],
        "ada",
        "a namespace, a CRD and what needs them",
    );
    // A server-side dry run alone says what it could not validate.
    let mut config = ReconcilerConfig::new(owner());
    config.dry_run = gitops_core::DryRun::Server;
    let dry = Reconciler::new(source.clone(), runtime.clone(), config).unwrap();
    let report = dry.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Planned, "{report}");
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "ConfigMap/shop/a: not validated: it needs Namespace/shop, which this plan creates",
            "Widget.example.com/shop/w1: not validated: it needs Namespace/shop and CustomResourceDefinition.apiextensions.k8s.io/widgets.example.com, which this plan creates",
        ]
    );
    assert!(runtime.is_empty());

    let report = reconciler(&source, runtime.clone())
        .reconcile_once("main")
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Synced, "{report}");
    assert_eq!(runtime.len(), 4);
}

#[tokio::test]
async fn a_refusal_in_a_new_namespace_writes_only_the_namespace() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::new();
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("a.yaml", cm("a", "shop", None)),
            ("b.yaml", cm("b", "shop", Some("b is not allowed"))),
        ],
        "ada",
        "x",
    );
    let report = reconciler(&source, refusing(runtime.clone()))
        .reconcile_once("main")
        .await
        .unwrap_err()
        .report;
    assert_eq!(report.status, SyncStatus::Refused, "{report}");
    assert_eq!(
        messages(&report),
        [
            "the runtime refused 1 of 3 steps in a server-side dry run; only the 1 Namespaces and CRDs they needed were applied",
            "dry run refused create ConfigMap/shop/b: ConfigMap/shop/b is invalid: b is not allowed",
        ]
    );
    let stored: Vec<ObjectKey> = runtime.objects().into_keys().collect();
    assert_eq!(stored, [key("Namespace", None, "shop")]);
    let inventory = runtime.read_inventory(&owner()).await.unwrap().unwrap();
    assert_eq!(
        inventory.objects.keys().cloned().collect::<Vec<_>>(),
        [key("Namespace", None, "shop")],
        "what was written is inventoried"
    );
    assert_eq!(inventory.revision, None);
}

#[tokio::test]
async fn a_write_failing_after_its_dry_run_passed_is_resumed_by_the_next_sync() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::with_system_namespaces();
    source.commit(
        "main",
        [
            ("a.yaml", cm("a", "default", None)),
            ("b.yaml", cm("b", "default", None)),
            ("c.yaml", cm("c", "default", None)),
        ],
        "ada",
        "x",
    );
    let faulty = FaultyTarget::new(runtime.clone()).with_fault(Fault::FailNthCall {
        n: 2,
        operation: Some(Operation::Apply),
    });
    let r = reconciler(&source, faulty);
    let report = r.reconcile_once("main").await.unwrap_err().report;
    assert_eq!(report.status, SyncStatus::StepFailed, "{report}");
    let outcomes: Vec<StepOutcome> = report.steps.iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        [StepOutcome::Done, StepOutcome::Failed, StepOutcome::NotRun]
    );
    r.target().clear_faults();
    let report = r.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced, "{report}");
    assert_eq!(
        report.summary.create, 2,
        "b and c, where the first sync stopped"
    );
    assert!(
        r.target()
            .get(&key("ConfigMap", Some("default"), "c"))
            .await
            .unwrap()
            .is_some()
    );
}

fn dropped(report: &gitops_core::SyncReport) -> Vec<String> {
    report
        .warnings
        .iter()
        .filter(|w| matches!(w, Warning::DroppedByServer { .. }))
        .map(ToString::to_string)
        .collect()
}

#[tokio::test]
async fn fields_the_runtime_drops_are_reported_once_per_revision_and_are_not_drift() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::with_system_namespaces();
    source.commit(
        "main",
        [
            ("svc.yaml", SERVICE.to_owned()),
            ("a.yaml", cm("a", "default", None)),
        ],
        "ada",
        "1",
    );
    let r = reconciler(&source, drops_dual_stack(runtime.clone()));
    let expected = "Service/default/web: the runtime dropped declared fields spec.ipFamilies, spec.ipFamilyPolicy (not kept by this server; ignored until the manifest changes)";
    let first = r.reconcile_once("main").await.unwrap();
    assert_eq!(first.status, SyncStatus::Synced, "{first}");
    assert!(first.not_converged.is_empty());
    assert_eq!(dropped(&first), [expected]);

    // The same revision again: nothing to do, nothing to say.
    let again = r.reconcile_once("main").await.unwrap();
    assert_eq!(again.status, SyncStatus::UpToDate, "{again}");
    assert!(again.drift_corrected.is_empty());
    assert!(again.warnings.is_empty(), "{again}");

    // A new revision that leaves the Service alone: reported once more.
    source.commit(
        "main",
        [
            ("svc.yaml", SERVICE.to_owned()),
            ("a.yaml", cm("a", "default", None)),
            ("b.yaml", cm("b", "default", None)),
        ],
        "ada",
        "2",
    );
    let next = r.reconcile_once("main").await.unwrap();
    assert_eq!(next.status, SyncStatus::Synced, "{next}");
    assert_eq!(next.steps.len(), 1, "only b: {next}");
    assert_eq!(dropped(&next), [expected]);
    let quiet = r.reconcile_once("main").await.unwrap();
    assert_eq!(quiet.status, SyncStatus::UpToDate, "{quiet}");
    assert!(quiet.warnings.is_empty(), "{quiet}");

    // A restarted reconciler does not know: it applies the Service once,
    // which is not drift, learns again, and is quiet after.
    let restarted = reconciler(&source, drops_dual_stack(runtime.clone()));
    let once = restarted.reconcile_once("main").await.unwrap();
    assert_eq!(once.status, SyncStatus::Synced, "{once}");
    assert!(once.drift_corrected.is_empty(), "{once}");
    assert_eq!(dropped(&once), [expected]);
    let up = restarted.reconcile_once("main").await.unwrap();
    assert_eq!(up.status, SyncStatus::UpToDate, "{up}");

    // A changed manifest is compared whole again.
    source.commit(
        "main",
        [
            ("svc.yaml", SERVICE.replace("port: 80", "port: 8080")),
            ("a.yaml", cm("a", "default", None)),
            ("b.yaml", cm("b", "default", None)),
        ],
        "ada",
        "3",
    );
    let changed = restarted.reconcile_once("main").await.unwrap();
    assert_eq!(changed.status, SyncStatus::Synced, "{changed}");
    assert_eq!(dropped(&changed), [expected]);
    let live = restarted
        .target()
        .get(&key("Service", Some("default"), "web"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live["spec"]["ports"][0]["port"], 8080);
    let up = restarted.reconcile_once("main").await.unwrap();
    assert_eq!(up.status, SyncStatus::UpToDate, "{up}");
}

/// The messages of a report's errors.
fn messages(report: &gitops_core::SyncReport) -> Vec<&str> {
    report.errors.iter().map(|e| e.message.as_str()).collect()
}

/// The report of a sync, whether it succeeded or not.
async fn sync_report<T: Target>(r: &Reconciler<MemorySource, T>) -> gitops_core::SyncReport {
    match r.reconcile_once("main").await {
        Ok(report) => report,
        Err(e) => *e.report,
    }
}

/// Verification reads what the runtime stored of each applied object, a
/// chunk at a time: over more objects than a chunk, exactly those stored
/// differently from their manifest are reported, in plan order, and only
/// those are planned again by the next sync.
#[tokio::test]
async fn what_the_runtime_stores_differently_is_not_converged() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let mut files = vec![("ns.yaml".to_owned(), NS.to_owned())];
    let mut mutated = Vec::new();
    for i in 0..600 {
        let name = if i % 250 == 7 {
            mutated.push(key("ConfigMap", Some("shop"), &format!("c{i:03}-mutated")));
            format!("c{i:03}-mutated")
        } else {
            format!("c{i:03}")
        };
        files.push((format!("{name}.yaml"), cm(&name, "shop", None)));
    }
    source.commit("main", files, "ada", "1");
    let r = reconciler(&source, overriding(runtime.clone()));
    let report = sync_report(&r).await;
    assert_eq!(report.status, SyncStatus::NotConverged, "{report}");
    assert_eq!(report.not_converged, mutated);
    assert_eq!(report.summary.create, 601);
    let stored = runtime
        .get(&mutated[0])
        .await
        .unwrap()
        .expect("the mutated object is stored");
    assert_eq!(stored.pointer("/data/k"), Some(&Value::from("webhook")));
    // The others were recorded in sync: only the mutated ones are planned
    // again, and they still do not converge.
    let report = sync_report(&r).await;
    assert_eq!(report.status, SyncStatus::NotConverged, "{report}");
    assert_eq!(report.not_converged, mutated);
    let stepped: Vec<_> = report.steps.iter().map(|s| s.key.clone()).collect();
    assert_eq!(stepped, mutated);
}
