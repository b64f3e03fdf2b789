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
        err.report.errors[0].contains("has no owner label"),
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

#[tokio::test]
async fn an_unverified_sync_is_not_a_success() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::new();
    let faulty = Arc::new(
        FaultyTarget::new(runtime.clone()).with_fault(Fault::FailNthCall {
            n: 2,
            operation: Some(Operation::Observe),
        }),
    );
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
    let dry = reconciler(&source, &runtime, |c| c.apply.dry_run = true);
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
        c.wait_for_health = Some(HealthWait {
            timeout: Duration::MAX,
            interval: Duration::MAX,
        })
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
        c.plan.diff.ignore.push(IgnoreRule {
            json_pointers: vec!["/metadata/labels".into()],
            ..IgnoreRule::default()
        })
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
        err.report.errors[0].contains("max_prune_share"),
        "{:?}",
        err.report.errors
    );
}

#[tokio::test]
async fn policy_bounds_namespaces_by_name_and_prunes_too() {
    let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
    let limited = |c: &mut ReconcilerConfig| {
        c.policy = Policy {
            allowed_namespaces: Some(vec!["shop".into()]),
            ..Policy::default()
        }
    };
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
        c.policy = Policy {
            denied_kinds: vec![KindPattern::new("", "Secret")],
            ..Policy::default()
        };
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
