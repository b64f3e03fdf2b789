//! Safety regressions: each test is a way the engine could hurt a user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use gitops_core::policy::{KindPattern, Rule};
use gitops_core::{
    ApplyOptions, Fault, FaultyTarget, HealthWait, MemoryRuntime, MemorySource, Object, ObjectKey,
    Operation, OwnerId, Policy, Reconciler, ReconcilerConfig, SyncStatus, Target, TargetExt,
};
use gitops_diff::IgnoreRule;
use serde_json::json;

const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";

fn cm(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: shop}}\ndata: {{k: v}}\n"
    )
}

fn reconciler(
    source: &MemorySource,
    runtime: &MemoryRuntime,
    f: impl FnOnce(&mut ReconcilerConfig),
) -> Reconciler<MemorySource, MemoryRuntime> {
    let mut c = ReconcilerConfig::new(OwnerId::new("shop").unwrap());
    f(&mut c);
    Reconciler::new(source.clone(), runtime.clone(), c).unwrap()
}

fn key(kind: &str, ns: Option<&str>, name: &str) -> ObjectKey {
    ObjectKey::new("", kind, ns, name)
}

#[tokio::test]
async fn a_namespace_whose_objects_are_still_declared_is_not_pruned() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let r = reconciler(&source, &runtime, |_| {});
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("a.yaml", cm("a")),
            ("b.yaml", cm("b")),
        ],
        "ada",
        "1",
    );
    r.reconcile_once("main").await.unwrap();
    source.commit(
        "main",
        [("a.yaml", cm("a")), ("b.yaml", cm("b"))],
        "ada",
        "drop the namespace file only",
    );
    let report = r.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::UpToDate);
    let plan = report.plan.unwrap();
    assert!(
        plan.skipped[0]
            .reason
            .contains("2 declared objects live in it"),
        "{plan}"
    );
    assert_eq!(runtime.len(), 3, "nothing deleted");
}

#[tokio::test]
async fn existing_unlabelled_objects_need_consent_to_be_adopted() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::with_system_namespaces());
    let r = reconciler(&source, &runtime, |_| {});
    source.commit(
        "main",
        [(
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n",
        )],
        "ada",
        "1",
    );
    let err = r.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::Blocked);
    assert!(
        err.report.errors[0].message.contains("has no owner label"),
        "{:?}",
        err.report.errors
    );
    let live = runtime
        .get(&key("Namespace", None, "default"))
        .await
        .unwrap()
        .unwrap();
    assert!(live.pointer("/metadata/labels").is_none(), "untouched");
    let r = reconciler(&source, &runtime, |c| c.plan.allow_adoption = true);
    assert_eq!(
        r.reconcile_once("main").await.unwrap().status,
        SyncStatus::Synced
    );
}

/// A runtime that stores what it is asked to, but answers an apply with
/// something else than the object stored (here nothing at all): the
/// reconciler must then read what was stored to verify it.
#[derive(Debug)]
struct Unanswering<T>(T);

#[async_trait::async_trait]
impl<T: Target> Target for Unanswering<T> {
    async fn observe(
        &self,
        request: &gitops_core::ObserveRequest,
    ) -> Result<gitops_core::LiveState, gitops_core::TargetError> {
        self.0.observe(request).await
    }
    async fn apply(
        &self,
        object: &Object,
        options: &ApplyOptions,
    ) -> Result<serde_json::Value, gitops_core::TargetError> {
        self.0.apply(object, options).await.map(|_| json!(null))
    }
    async fn delete(
        &self,
        key: &ObjectKey,
        options: &gitops_core::DeleteOptions,
    ) -> Result<gitops_core::DeleteOutcome, gitops_core::TargetError> {
        self.0.delete(key, options).await
    }
    async fn dependents(
        &self,
        key: &ObjectKey,
    ) -> Result<Vec<gitops_core::LiveRef>, gitops_core::TargetError> {
        self.0.dependents(key).await
    }
    async fn read_inventory(
        &self,
        owner: &OwnerId,
    ) -> Result<Option<gitops_core::Inventory>, gitops_core::TargetError> {
        self.0.read_inventory(owner).await
    }
    async fn write_inventory(
        &self,
        inventory: &gitops_core::Inventory,
    ) -> Result<String, gitops_core::TargetError> {
        self.0.write_inventory(inventory).await
    }
}

#[tokio::test]
async fn an_unverified_sync_is_not_a_success() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::new();
    // The first observe plans; the second would verify what apply did not
    // return.
    let faulty = Arc::new(FaultyTarget::new(Unanswering(runtime.clone())).with_fault(
        Fault::FailNthCall {
            n: 2,
            operation: Some(Operation::Observe),
        },
    ));
    let r = Reconciler::new(
        source.clone(),
        faulty,
        ReconcilerConfig::new(OwnerId::new("shop").unwrap()),
    )
    .unwrap();
    source.commit("main", [("ns.yaml", NS)], "ada", "1");
    let err = r.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::ObserveFailed);
}

#[tokio::test]
async fn what_apply_does_not_return_is_verified_by_reading_it() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    source.commit(
        "main",
        [("ns.yaml", NS.to_owned()), ("a.yaml", cm("a"))],
        "ada",
        "1",
    );
    let r = Reconciler::new(
        source.clone(),
        Unanswering(runtime.clone()),
        ReconcilerConfig::new(OwnerId::new("shop").unwrap()),
    )
    .unwrap();
    let report = r.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced, "{report}");
    assert!(report.not_converged.is_empty());
    // Verified, so recorded in sync: a resync finds nothing to do.
    let report = r.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::UpToDate, "{report}");
}

#[tokio::test]
async fn a_server_side_dry_run_persists_nothing() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("a.yaml", cm("a")),
            ("b.yaml", cm("b")),
            ("c.yaml", cm("c")),
        ],
        "ada",
        "1",
    );
    reconciler(&source, &runtime, |_| {})
        .reconcile_once("main")
        .await
        .unwrap();
    let before = runtime.objects();
    let inventory = runtime
        .read_inventory(&OwnerId::new("shop").unwrap())
        .await
        .unwrap();
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("a.yaml", cm("a")),
            ("b.yaml", cm("b")),
            ("d.yaml", cm("d")),
        ],
        "ada",
        "2",
    );
    let dry = reconciler(&source, &runtime, |c| {
        c.dry_run = gitops_core::DryRun::Server
    });
    let report = dry.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Planned);
    assert_eq!(report.summary.create, 1);
    assert_eq!(report.summary.delete, 1);
    assert_eq!(runtime.objects(), before, "nothing created or deleted");
    assert_eq!(
        runtime
            .read_inventory(&OwnerId::new("shop").unwrap())
            .await
            .unwrap(),
        inventory
    );
}

#[tokio::test]
async fn waiting_forever_for_health_does_not_overflow() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let r = reconciler(&source, &runtime, |c| {
        c.wait_for_health = Some(HealthWait::new(Duration::MAX, Duration::MAX))
    });
    source.commit(
        "main",
        [("ns.yaml", NS.to_owned()), ("a.yaml", cm("a"))],
        "ada",
        "1",
    );
    assert_eq!(
        r.reconcile_once("main").await.unwrap().status,
        SyncStatus::Synced
    );
}

#[tokio::test]
async fn ignore_rules_never_remove_the_owner_label() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let r = reconciler(&source, &runtime, |c| {
        c.plan
            .diff
            .ignore
            .push(IgnoreRule::new().pointer("/metadata/labels"))
    });
    source.commit(
        "main",
        [("ns.yaml", NS.to_owned()), ("a.yaml", cm("a"))],
        "ada",
        "1",
    );
    assert_eq!(
        r.reconcile_once("main").await.unwrap().status,
        SyncStatus::Synced
    );
    assert_eq!(
        r.reconcile_once("main").await.unwrap().status,
        SyncStatus::UpToDate
    );
    let live = runtime
        .get(&key("ConfigMap", Some("shop"), "a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live["metadata"]["labels"]["gitops-rs.io/owner"], "shop");
}

#[tokio::test]
async fn renaming_the_only_object_is_not_a_mass_prune_but_bad_options_are_refused() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let ns_runtime = runtime.clone();
    ns_runtime
        .apply(
            &Object::new(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            )
            .unwrap(),
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
    let r = reconciler(&source, &runtime, |_| {});
    source.commit("main", [("a.yaml", cm("a"))], "ada", "1");
    r.reconcile_once("main").await.unwrap();
    source.commit("main", [("a.yaml", cm("renamed"))], "ada", "rename");
    let report = r.reconcile_once("main").await.unwrap();
    assert_eq!((report.summary.create, report.summary.delete), (1, 1));
    let bad = reconciler(&source, &runtime, |c| c.plan.max_prune_share = f64::NAN);
    let err = bad.reconcile_once("main").await.unwrap_err();
    assert!(
        err.report.errors[0].message.contains("max_prune_share"),
        "{:?}",
        err.report.errors
    );
}

#[tokio::test]
async fn policy_bounds_namespaces_by_name_and_prunes_too() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let limited =
        |c: &mut ReconcilerConfig| c.policy = Policy::new().allowed_namespaces(vec!["shop".into()]);
    source.commit(
        "main",
        [(
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n",
        )],
        "ada",
        "1",
    );
    let err = reconciler(&source, &runtime, limited)
        .reconcile_once("main")
        .await
        .unwrap_err();
    assert_eq!(err.report.policy_violations[0].rule, Rule::Namespace);

    // A kind denied later may not be pruned by a revision that drops it.
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: shop}\n".to_owned();
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("a.yaml", cm("a")),
            ("s.yaml", secret),
        ],
        "ada",
        "2",
    );
    reconciler(&source, &runtime, |_| {})
        .reconcile_once("main")
        .await
        .unwrap();
    source.commit(
        "main",
        [("ns.yaml", NS.to_owned()), ("a.yaml", cm("a"))],
        "ada",
        "3",
    );
    let deny = reconciler(&source, &runtime, |c| {
        c.policy = Policy::new().denied_kinds(vec![KindPattern::new("", "Secret")]);
    });
    let err = deny.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::PolicyViolated);
    assert_eq!(err.report.policy_violations.len(), 1);
    assert!(
        err.report.policy_violations[0]
            .message
            .starts_with("prune: kind Secret is denied")
    );
    assert!(
        runtime
            .get(&key("Secret", Some("shop"), "s"))
            .await
            .unwrap()
            .is_some(),
        "not pruned"
    );
}

// ---- Ownership and prune (issue 10, items 9, 10 and 14) ----

fn labelled_cm(ns: &str, name: &str, owner: Option<&str>) -> Object {
    let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns}, "data": {"k": "v"}});
    if let Some(o) = owner {
        v["metadata"]["labels"] = json!({ gitops_core::OWNER_LABEL: o });
    }
    Object::new(v).unwrap()
}

fn by_hand() -> ApplyOptions {
    ApplyOptions::new("kubectl")
}

const KEEP_NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: keep}\n";

#[tokio::test]
async fn pruning_a_namespace_never_destroys_objects_that_are_not_ours() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let r = reconciler(&source, &runtime, |c| c.plan.allow_mass_prune = true);
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("a.yaml", cm("a")),
            ("keep.yaml", KEEP_NS.to_owned()),
        ],
        "ada",
        "1",
    );
    r.reconcile_once("main").await.unwrap();
    // Another team and someone by hand put objects in our namespace.
    let theirs = labelled_cm("shop", "theirs", Some("team-b"));
    let nobody = labelled_cm("shop", "by-hand", None);
    // Ours by label, but not in our inventory: not provably ours either.
    let stray = labelled_cm("shop", "stray", Some("shop"));
    for o in [&theirs, &nobody, &stray] {
        runtime.apply(o, &by_hand()).await.unwrap();
    }
    source.commit(
        "main",
        [("keep.yaml", KEEP_NS.to_owned())],
        "ada",
        "drop the shop namespace",
    );
    let err = r.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::Blocked, "{}", err.report);
    let plan = err.report.plan.as_ref().unwrap();
    let [
        gitops_core::Refusal::ForeignCascade {
            key: refused,
            foreign,
        },
    ] = plan.refusals.as_slice()
    else {
        panic!("expected one ForeignCascade refusal: {plan}");
    };
    assert_eq!(refused, &key("Namespace", None, "shop"));
    let listed: Vec<String> = foreign.iter().map(ToString::to_string).collect();
    assert_eq!(
        listed,
        [
            "ConfigMap/shop/by-hand (no owner label)",
            "ConfigMap/shop/stray (owner \"shop\")",
            "ConfigMap/shop/theirs (owner \"team-b\")",
        ]
    );
    assert!(
        plan.to_string()
            .contains("ConfigMap/shop/theirs (owner \"team-b\")"),
        "the printed plan names the foreign objects: {plan}"
    );
    for o in [&theirs, &nobody, &stray] {
        assert!(
            runtime.get(o.key()).await.unwrap().is_some(),
            "{} kept",
            o.key()
        );
    }
    assert!(
        runtime
            .get(&key("ConfigMap", Some("shop"), "a"))
            .await
            .unwrap()
            .is_some()
    );

    // Once the namespace holds only our objects, it is pruned with them.
    for o in [&theirs, &nobody, &stray] {
        runtime.delete(o.key(), &Default::default()).await.unwrap();
    }
    let report = r.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced, "{report}");
    assert!(
        runtime
            .get(&key("Namespace", None, "shop"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_namespace_is_checked_again_right_before_it_is_deleted() {
    // Another team's object appears in the namespace after the plan was
    // made (which found the namespace clean) and before the delete.
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("keep.yaml", KEEP_NS.to_owned()),
        ],
        "ada",
        "1",
    );
    let mut config = ReconcilerConfig::new(OwnerId::new("shop").unwrap());
    config.plan.allow_mass_prune = true;
    let late = labelled_cm("shop", "late", Some("team-b"));
    let target = Interleaved {
        inner: runtime.clone(),
        other: std::sync::Mutex::new(None),
        after_dependents: std::sync::Mutex::new(Some(late.clone())),
    };
    let r = Reconciler::new(source.clone(), target, config).unwrap();
    r.reconcile_once("main").await.unwrap();
    source.commit("main", [("keep.yaml", KEEP_NS.to_owned())], "ada", "2");
    let err = r.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::StepFailed, "{}", err.report);
    assert!(
        err.report.errors[0]
            .message
            .contains("ConfigMap/shop/late (owner \"team-b\")"),
        "{:?}",
        err.report.errors
    );
    assert!(runtime.get(late.key()).await.unwrap().is_some());
    assert!(
        runtime
            .get(&key("Namespace", None, "shop"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_namespace_holding_an_object_protected_from_prune_is_not_pruned() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let r = reconciler(&source, &runtime, |c| c.plan.allow_mass_prune = true);
    let protected = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: precious\n  namespace: shop\n  \
                     annotations: {gitops-rs.io/prune: disabled}\ndata: {k: v}\n";
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("p.yaml", protected.to_owned()),
            ("keep.yaml", KEEP_NS.to_owned()),
        ],
        "ada",
        "1",
    );
    r.reconcile_once("main").await.unwrap();
    source.commit("main", [("keep.yaml", KEEP_NS.to_owned())], "ada", "2");
    let err = r.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::Blocked, "{}", err.report);
    assert!(
        err.report.errors[0]
            .message
            .contains("ConfigMap/shop/precious"),
        "{:?}",
        err.report.errors
    );
    assert!(
        runtime
            .get(&key("ConfigMap", Some("shop"), "precious"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn pruning_a_crd_never_destroys_other_owners_custom_resources() {
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
               metadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n  \
               names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}\n  \
               versions:\n  - {name: v1, served: true, storage: true}\n";
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let r = reconciler(&source, &runtime, |c| c.plan.allow_mass_prune = true);
    source.commit(
        "main",
        [("crd.yaml", crd.to_owned()), ("ns.yaml", NS.to_owned())],
        "ada",
        "1",
    );
    r.reconcile_once("main").await.unwrap();
    let widget = Object::new(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "shop",
                     "labels": {gitops_core::OWNER_LABEL: "team-b"}}}))
    .unwrap();
    runtime.apply(&widget, &by_hand()).await.unwrap();
    source.commit("main", [("ns.yaml", NS.to_owned())], "ada", "drop the CRD");
    let err = r.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::Blocked, "{}", err.report);
    assert!(
        err.report.errors.iter().any(|e| e
            .message
            .contains("Widget.example.com/shop/w (owner \"team-b\")")),
        "{:?}",
        err.report.errors
    );
    assert!(runtime.get(widget.key()).await.unwrap().is_some());
    let crd_key = ObjectKey::new(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        None,
        "widgets.example.com",
    );
    assert!(runtime.get(&crd_key).await.unwrap().is_some());
}

#[tokio::test]
async fn a_namespace_prune_says_what_goes_with_it_and_the_guard_counts_it() {
    // Four of our objects live in `shop`; pruning the namespace deletes all
    // five of six inventoried: a mass prune. (The planner's unit test
    // `the_mass_prune_guard_counts_cascaded_objects` covers cascaded objects
    // that are not delete steps of their own.)
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let r = reconciler(&source, &runtime, |_| {});
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("a.yaml", cm("a")),
            ("b.yaml", cm("b")),
            ("c.yaml", cm("c")),
            ("d.yaml", cm("d")),
            ("keep.yaml", KEEP_NS.to_owned()),
        ],
        "ada",
        "1",
    );
    r.reconcile_once("main").await.unwrap();
    source.commit("main", [("keep.yaml", KEEP_NS.to_owned())], "ada", "2");
    let err = r.reconcile_once("main").await.unwrap_err();
    let plan = err.report.plan.unwrap();
    assert!(
        plan.refusals.iter().any(|r| matches!(
            r,
            gitops_core::Refusal::MassPrune {
                deletions: 5,
                inventory: 6,
                ..
            }
        )),
        "{plan}"
    );
    assert_eq!(runtime.len(), 6);
    let ns_step = plan
        .steps
        .iter()
        .find(|s| s.key == key("Namespace", None, "shop"))
        .unwrap();
    assert_eq!(ns_step.cascade.len(), 4, "the plan says what goes with it");
    assert!(
        plan.to_string()
            .contains("deletes with it: ConfigMap/shop/a"),
        "{plan}"
    );
}

#[tokio::test]
async fn an_object_created_before_a_failed_inventory_write_is_still_pruned() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let faulty = Arc::new(FaultyTarget::new(runtime.clone()));
    let r = Reconciler::new(
        source.clone(),
        faulty.clone(),
        ReconcilerConfig::new(OwnerId::new("shop").unwrap()),
    )
    .unwrap();
    source.commit(
        "main",
        [("ns.yaml", NS.to_owned()), ("a.yaml", cm("a"))],
        "ada",
        "1",
    );
    r.reconcile_once("main").await.unwrap();
    // `b` is created, then the final inventory write fails.
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("a.yaml", cm("a")),
            ("b.yaml", cm("b")),
        ],
        "ada",
        "2",
    );
    let writes = faulty.calls(Operation::WriteInventory);
    faulty.add_fault(Fault::FailNthCall {
        n: writes + 2,
        operation: Some(Operation::WriteInventory),
    });
    let err = r.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::StepFailed);
    let b = key("ConfigMap", Some("shop"), "b");
    assert!(runtime.get(&b).await.unwrap().is_some(), "b was created");
    let inventory = runtime
        .read_inventory(&OwnerId::new("shop").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(inventory.contains(&b), "recorded before it was created");
    faulty.clear_faults();
    // `b` leaves the repository: it is pruned, not left behind as up to date.
    source.commit(
        "main",
        [("ns.yaml", NS.to_owned()), ("a.yaml", cm("a"))],
        "ada",
        "3",
    );
    let report = r.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced, "{report}");
    assert!(runtime.get(&b).await.unwrap().is_none(), "b pruned");
}

#[tokio::test]
async fn a_failed_intent_write_applies_nothing() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let faulty = Arc::new(
        FaultyTarget::new(runtime.clone()).with_fault(Fault::FailNthCall {
            n: 1,
            operation: Some(Operation::WriteInventory),
        }),
    );
    let r = Reconciler::new(
        source.clone(),
        faulty,
        ReconcilerConfig::new(OwnerId::new("shop").unwrap()),
    )
    .unwrap();
    source.commit(
        "main",
        [("ns.yaml", NS.to_owned()), ("a.yaml", cm("a"))],
        "ada",
        "1",
    );
    let err = r.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::StepFailed);
    assert!(
        err.report.errors[0].message.contains("before applying"),
        "{:?}",
        err.report.errors
    );
    assert!(runtime.is_empty(), "nothing applied without its record");
}

/// A target on which others act in the middle of a sync: a second
/// reconciler of the same owner syncs branch `other` right after the first
/// apply; someone applies `after_dependents` right after the first
/// [`Target::dependents`] answer.
#[derive(Debug)]
struct Interleaved {
    inner: MemoryRuntime,
    other: std::sync::Mutex<Option<Reconciler<MemorySource, MemoryRuntime>>>,
    after_dependents: std::sync::Mutex<Option<Object>>,
}

#[async_trait::async_trait]
impl Target for Interleaved {
    async fn observe(
        &self,
        request: &gitops_core::ObserveRequest,
    ) -> Result<gitops_core::LiveState, gitops_core::TargetError> {
        self.inner.observe(request).await
    }
    async fn apply(
        &self,
        object: &Object,
        options: &ApplyOptions,
    ) -> Result<serde_json::Value, gitops_core::TargetError> {
        let out = self.inner.apply(object, options).await;
        if options.dry_run {
            // The pre-flight dry run: the interleaving is between real writes.
            return out;
        }
        let other = self.other.lock().unwrap().take();
        if let Some(other) = other {
            let report = other.reconcile_once("other").await.unwrap();
            assert_eq!(report.status, SyncStatus::Synced, "{report}");
        }
        out
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
        let out = self.inner.dependents(key).await;
        let late = self.after_dependents.lock().unwrap().take();
        if let Some(late) = late {
            self.inner.apply(&late, &by_hand()).await.unwrap();
        }
        out
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
async fn two_reconcilers_of_one_owner_never_lose_a_created_object() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    source.commit(
        "main",
        [("ns.yaml", NS.to_owned()), ("a.yaml", cm("a"))],
        "ada",
        "1",
    );
    source.commit(
        "other",
        [("ns.yaml", NS.to_owned()), ("b.yaml", cm("b"))],
        "bob",
        "1",
    );
    let target = Interleaved {
        inner: runtime.clone(),
        other: std::sync::Mutex::new(Some(reconciler(&source, &runtime, |_| {}))),
        after_dependents: std::sync::Mutex::new(None),
    };
    let first = Reconciler::new(
        source.clone(),
        target,
        ReconcilerConfig::new(OwnerId::new("shop").unwrap()),
    )
    .unwrap();
    // The second reconciler ran between the first one's namespace and `a`:
    // it saw `a` inventoried but not live, and recorded its own state.
    let err = first.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::StepFailed);
    assert!(
        err.report
            .errors
            .iter()
            .any(|e| e.message.contains("changed by another writer")),
        "{:?}",
        err.report.errors
    );
    let a = key("ConfigMap", Some("shop"), "a");
    let b = key("ConfigMap", Some("shop"), "b");
    assert!(runtime.get(&a).await.unwrap().is_some());
    let inventory = runtime
        .read_inventory(&OwnerId::new("shop").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        inventory.contains(&a),
        "a was merged into the other writer's inventory"
    );
    assert!(inventory.contains(&b), "and the other writer's b kept");
    // The next sync of main prunes b; once a leaves main, it is pruned too.
    let report = first.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced, "{report}");
    assert!(runtime.get(&b).await.unwrap().is_none());
    source.commit(
        "main",
        [("ns.yaml", NS.to_owned()), ("c.yaml", cm("c"))],
        "ada",
        "2",
    );
    first.reconcile_once("main").await.unwrap();
    assert!(
        runtime.get(&a).await.unwrap().is_none(),
        "a never escaped prune"
    );
}

#[tokio::test]
async fn a_no_op_resync_writes_nothing() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let faulty = Arc::new(FaultyTarget::new(runtime.clone()));
    let r = Reconciler::new(
        source.clone(),
        faulty.clone(),
        ReconcilerConfig::new(OwnerId::new("shop").unwrap()),
    )
    .unwrap();
    source.commit(
        "main",
        [("ns.yaml", NS.to_owned()), ("a.yaml", cm("a"))],
        "ada",
        "1",
    );
    r.reconcile_once("main").await.unwrap();
    assert_eq!(
        faulty.calls(Operation::WriteInventory),
        2,
        "the intent before the creates, the record after"
    );
    let before = runtime
        .read_inventory(&OwnerId::new("shop").unwrap())
        .await
        .unwrap();
    for _ in 0..3 {
        let report = r.reconcile_once("main").await.unwrap();
        assert_eq!(report.status, SyncStatus::UpToDate);
    }
    assert_eq!(
        faulty.calls(Operation::WriteInventory),
        2,
        "no write on a no-op"
    );
    assert_eq!(faulty.calls(Operation::Apply), 2, "no apply either");
    let after = runtime
        .read_inventory(&OwnerId::new("shop").unwrap())
        .await
        .unwrap();
    assert_eq!(after, before, "same version: nothing was written");
    // An update of an inventoried object: one write (the new revision).
    source.commit(
        "main",
        [
            ("ns.yaml", NS.to_owned()),
            ("a.yaml", cm("a").replace("k: v", "k: w")),
        ],
        "ada",
        "2",
    );
    r.reconcile_once("main").await.unwrap();
    assert_eq!(faulty.calls(Operation::WriteInventory), 3);
}
