//! Hermetic application on a real API server (issue 10, items 11–13): a
//! revision the server refuses is refused whole before any write, with all
//! refusals in one report; fields the server drops are reported once and
//! are not drift; a request the server fails on names the object.

use gitops_core::RenderOptions;
use gitops_core::{
    ApplyOptions, MemorySource, Object, ObjectKey, OwnerId, Reconciler, ReconcilerConfig,
    StepOutcome, SyncReport, SyncStatus, Target, TargetError, TargetExt, Warning,
};
use gitops_kube::KubeTarget;
use gitops_kube::testing::{TestCluster, shared_or_skip, unique_name};
use serde_json::json;

struct Env {
    source: MemorySource,
    reconciler: Reconciler<MemorySource, KubeTarget>,
    ns: String,
}

async fn env(cluster: &TestCluster, prefix: &str) -> Env {
    let ns = cluster.create_namespace(prefix).await.unwrap();
    let owner = OwnerId::new(unique_name(prefix)).unwrap();
    let mut config = ReconcilerConfig::new(owner);
    config.render = RenderOptions::default().with_default_namespace(&ns);
    let source = MemorySource::new();
    let target = KubeTarget::new(cluster.client()).with_inventory_namespace(unique_name("inv"));
    let reconciler = Reconciler::new(source.clone(), target, config).unwrap();
    Env {
        source,
        reconciler,
        ns,
    }
}

fn config_map(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {ns}}}\ndata: {{k: v}}\n"
    )
}

/// A CRD of a unique group; `extra` goes into the version (fields newer
/// servers know, e.g. `selectableFields`) or the schema.
fn crd(group: &str, kind: &str, version_extra: &str, schema_extra: &str) -> String {
    let plural = format!("{}s", kind.to_lowercase());
    format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{kind: {kind}, plural: {plural}, listKind: {kind}List, singular: {singular}}}
  versions:
  - name: v1
    served: true
    storage: true
{version_extra}    schema:
      openAPIV3Schema:
        type: object
{schema_extra}        properties:
          spec:
            type: object
            properties:
              size: {{type: integer}}
",
        singular = kind.to_lowercase()
    )
}

async fn crd_exists(cluster: &TestCluster, name: &str) -> bool {
    let target = KubeTarget::new(cluster.client());
    let key = ObjectKey::new(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        None,
        name,
    );
    target.get(&key).await.unwrap().is_some()
}

#[tokio::test]
async fn an_object_in_a_namespace_nobody_creates_is_refused_before_any_write() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let e = env(cluster, "missing-ns").await;
    let ghost = unique_name("ghost");
    e.source.commit(
        "main",
        [
            ("a.yaml", config_map("a", &e.ns)),
            ("typo.yaml", config_map("b", &ghost)),
        ],
        "ada",
        "a namespace nobody creates",
    );
    let report = e
        .reconciler
        .reconcile_once("main")
        .await
        .unwrap_err()
        .report;
    assert_eq!(report.status, SyncStatus::Blocked, "{report}");
    assert_eq!(report.errors.len(), 1, "{report}");
    assert!(
        report.errors[0].message.contains(&format!(
            "ConfigMap/{ghost}/b: namespace {ghost:?} is neither declared"
        )),
        "{report}"
    );
    let a = ObjectKey::new("", "ConfigMap", Some(&e.ns), "a");
    assert!(
        e.reconciler.target().get(&a).await.unwrap().is_none(),
        "nothing written"
    );
}

#[tokio::test]
async fn crds_the_server_refuses_are_all_reported_in_one_sync_with_nothing_written() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let e = env(cluster, "refused-crds").await;
    let group = format!("{}.example.com", unique_name("crds"));
    // As cert-manager's CRDs: fields a 1.20 server does not know.
    let validations = "        x-kubernetes-validations:\n        - {rule: \"self.spec.size >= 0\", message: negative}\n";
    let selectable = "    selectableFields:\n    - {jsonPath: .spec.size}\n";
    let minor = server_minor(cluster).await;
    e.source.commit(
        "main",
        [
            ("a-cm.yaml", config_map("first", &e.ns)),
            ("crd-ok.yaml", crd(&group, "Plain", "", "")),
            ("crd-rules.yaml", crd(&group, "Ruled", "", validations)),
            ("crd-select.yaml", crd(&group, "Selected", selectable, "")),
            (
                "crd-both.yaml",
                crd(&group, "Both", selectable, validations),
            ),
        ],
        "ada",
        "CRDs with newer fields",
    );
    if minor >= 30 {
        eprintln!("SKIPPED: a server of 1.{minor} accepts these CRDs");
        return;
    }
    let report = e
        .reconciler
        .reconcile_once("main")
        .await
        .unwrap_err()
        .report;
    assert_eq!(report.status, SyncStatus::Refused, "{report}");
    let refused: Vec<String> = report
        .steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::Refused)
        .map(|s| s.key.name.clone())
        .collect();
    assert_eq!(
        refused,
        [
            format!("boths.{group}"),
            format!("ruleds.{group}"),
            format!("selecteds.{group}"),
        ],
        "{report}"
    );
    assert_eq!(
        report.errors[0].message,
        "the runtime refused 3 of 5 steps in a server-side dry run; nothing was applied"
    );
    assert_eq!(report.errors.len(), 4, "{report}");
    for s in report
        .steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::Refused)
    {
        let error = s.error.as_deref().unwrap_or_default();
        assert!(
            error.contains(&s.key.to_string()),
            "names the object: {error}"
        );
        assert!(
            error.contains("x-kubernetes-validations") || error.contains("selectableFields"),
            "says which field: {error}"
        );
    }
    assert!(
        !crd_exists(cluster, &format!("plains.{group}")).await,
        "nothing written"
    );
    let first = ObjectKey::new("", "ConfigMap", Some(&e.ns), "first");
    assert!(e.reconciler.target().get(&first).await.unwrap().is_none());
    assert_eq!(
        e.reconciler
            .target()
            .read_inventory(e.reconciler.config().owner())
            .await
            .unwrap(),
        None
    );
}

async fn server_minor(cluster: &TestCluster) -> u32 {
    let v = cluster.client().apiserver_version().await.unwrap();
    v.minor.trim_end_matches('+').parse().unwrap_or(u32::MAX)
}

#[tokio::test]
async fn objects_needing_a_namespace_and_crd_of_the_revision_are_validated_after_them() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let e = env(cluster, "deferred").await;
    let group = format!("{}.example.com", unique_name("deferred"));
    let fresh = unique_name("fresh");
    let widget = format!(
        "apiVersion: {group}/v1\nkind: Gadget\nmetadata: {{name: g, namespace: {fresh}}}\nspec: {{size: 3}}\n"
    );
    let bad_widget = format!(
        "apiVersion: {group}/v1\nkind: Gadget\nmetadata: {{name: bad, namespace: {fresh}}}\nspec: {{size: three}}\n"
    );
    let namespace = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {fresh}}}\n");
    let files = |bad: bool| {
        let mut f = vec![
            ("ns.yaml", namespace.clone()),
            ("cm.yaml", config_map("c", &fresh)),
            ("crd.yaml", crd(&group, "Gadget", "", "")),
            ("gadget.yaml", widget.clone()),
        ];
        if bad {
            f.push(("bad.yaml", bad_widget.clone()));
        }
        f
    };
    // A custom resource the server refuses (its schema says integer): only
    // the Namespace and CRD it needed before it could be validated are
    // written.
    e.source
        .commit("main", files(true), "ada", "one bad gadget");
    let report = e
        .reconciler
        .reconcile_once("main")
        .await
        .unwrap_err()
        .report;
    assert_eq!(report.status, SyncStatus::Refused, "{report}");
    let outcomes: Vec<(String, StepOutcome)> = report
        .steps
        .iter()
        .map(|s| (s.key.kind.clone(), s.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("Namespace".to_owned(), StepOutcome::Done),
            ("ConfigMap".to_owned(), StepOutcome::NotRun),
            ("CustomResourceDefinition".to_owned(), StepOutcome::Done),
            ("Gadget".to_owned(), StepOutcome::Refused),
            ("Gadget".to_owned(), StepOutcome::NotRun),
        ],
        "{report}"
    );
    let cm = ObjectKey::new("", "ConfigMap", Some(&fresh), "c");
    assert!(e.reconciler.target().get(&cm).await.unwrap().is_none());

    // Fixed: all of it goes through, then nothing is left to do.
    e.source.commit("main", files(false), "ada", "fixed");
    let report = e.reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced, "{report}");
    assert!(e.reconciler.target().get(&cm).await.unwrap().is_some());
    let again = e.reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(again.status, SyncStatus::UpToDate, "{again}");
}

fn dropped(report: &SyncReport) -> Vec<(ObjectKey, Vec<String>)> {
    report
        .warnings
        .iter()
        .filter_map(|w| match w {
            Warning::DroppedByServer { key, fields } => Some((key.clone(), fields.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn service_fields_the_server_drops_are_reported_once_and_are_not_drift() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    if server_minor(cluster).await >= 21 {
        eprintln!("SKIPPED: servers from 1.21 on keep spec.ipFamilies");
        return;
    }
    let e = env(cluster, "dropped").await;
    // As ingress-nginx's controller Service.
    let service = format!(
        "apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {}}}
spec:
  type: ClusterIP
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  selector: {{app: web}}
  ports:
  - {{name: http, port: 80, protocol: TCP, targetPort: http}}
",
        e.ns
    );
    e.source
        .commit("main", [("svc.yaml", service.clone())], "ada", "1");
    let key = ObjectKey::new("", "Service", Some(&e.ns), "web");
    let expected = vec![(
        key.clone(),
        vec![
            "spec.ipFamilies".to_owned(),
            "spec.ipFamilyPolicy".to_owned(),
        ],
    )];
    let first = e.reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(first.status, SyncStatus::Synced, "{first}");
    assert_eq!(dropped(&first), expected, "{first}");
    let live = e.reconciler.target().get(&key).await.unwrap().unwrap();
    assert!(
        live["spec"].get("ipFamilies").is_none(),
        "the server dropped it"
    );
    for _ in 0..2 {
        let again = e.reconciler.reconcile_once("main").await.unwrap();
        assert_eq!(again.status, SyncStatus::UpToDate, "{again}");
        assert!(again.drift_corrected.is_empty(), "{again}");
        assert!(again.warnings.is_empty(), "once per revision: {again}");
    }
    // A new revision: said once more, still nothing to apply.
    e.source.commit(
        "main",
        [
            ("svc.yaml", service),
            ("cm.yaml", config_map("other", &e.ns)),
        ],
        "ada",
        "2",
    );
    let next = e.reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(next.status, SyncStatus::Synced, "{next}");
    assert_eq!(next.steps.len(), 1, "only the ConfigMap: {next}");
    assert_eq!(dropped(&next), expected);
}

/// Kubernetes 1.20's kube-aggregator cannot server-side apply an APIService
/// (the handler panics: "FieldManager must be installed to run apply") and
/// the server drops the connection. The error names the object and says
/// what happened, and is transient.
#[tokio::test]
async fn a_request_the_server_fails_on_names_the_object() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    if !cluster.is_local() || server_minor(cluster).await >= 21 {
        eprintln!("SKIPPED: needs the local 1.20 server");
        return;
    }
    let name = format!("v1.{}.example.com", unique_name("agg"));
    let api_service = Object::new(json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": name},
        "spec": {
            "group": name.trim_start_matches("v1."),
            "version": "v1",
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
            "insecureSkipTLSVerify": true,
            "service": {"name": "api", "namespace": "default", "port": 443}
        }
    }))
    .unwrap();
    let target = KubeTarget::new(cluster.client());
    for dry_run in [true, false] {
        let options = ApplyOptions::default().dry_run(dry_run);
        let error = target.apply(&api_service, &options).await.unwrap_err();
        assert!(
            matches!(error, TargetError::Unavailable { .. }) && error.is_transient(),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains(&format!("APIService.apiregistration.k8s.io/{name}: the API server failed or closed the connection while handling this request")),
            "{text}"
        );
    }
}

/// The same APIService through the reconciler: the dry run before any
/// write fails on it, the report names it and says what happened, and
/// nothing of the revision is written.
#[tokio::test]
async fn a_sync_with_an_object_the_server_fails_on_writes_nothing() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    if !cluster.is_local() || server_minor(cluster).await >= 21 {
        eprintln!("SKIPPED: needs the local 1.20 server");
        return;
    }
    let e = env(cluster, "apiservice").await;
    let name = format!("v1.{}.example.com", unique_name("agg"));
    let api_service = format!(
        "apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {{name: {name}}}
spec:
  group: {group}
  version: v1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service: {{name: api, namespace: {ns}, port: 443}}
",
        group = name.trim_start_matches("v1."),
        ns = e.ns
    );
    e.source.commit(
        "main",
        [
            ("cm.yaml", config_map("c", &e.ns)),
            ("apiservice.yaml", api_service),
        ],
        "ada",
        "an aggregated API",
    );
    let report = e
        .reconciler
        .reconcile_once("main")
        .await
        .unwrap_err()
        .report;
    assert_eq!(report.status, SyncStatus::Refused, "{report}");
    let failed = report
        .steps
        .iter()
        .find(|s| s.key.kind == "APIService")
        .unwrap();
    assert_eq!(failed.outcome, StepOutcome::Refused);
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "APIService.apiregistration.k8s.io/{name}: the API server failed or closed the connection"
        )),
        "{error}"
    );
    let c = ObjectKey::new("", "ConfigMap", Some(&e.ns), "c");
    assert!(
        e.reconciler.target().get(&c).await.unwrap().is_none(),
        "nothing written"
    );
}
