//! No false drift on realistic manifests: apply every object of the Online
//! Boutique and kube-prometheus manifests (CRDs first, in plan order), read
//! them back, plan again with the core planner: zero steps.
//!
//! Objects whose apiVersion the server does not serve (on Kubernetes 1.20:
//! `policy/v1` PodDisruptionBudgets) must fail with a clear
//! `UnknownKind` naming the object; the test checks exactly that for them
//! and leaves them out of the second plan.
//!
//! The corpus is `shared/corpus` beside the repository; without it the
//! tests print `SKIPPED: ...` and pass.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gitops_core::{
    Action, ApplyOptions, DesiredState, ObjectKey, ObserveRequest, OwnerId, PlanOptions, Snapshot,
    Target, TargetError, plan,
};
use gitops_core::{RenderOptions, render};
use gitops_diff::FieldSet;
use gitops_kube::KubeTarget;
use gitops_kube::testing::{TestCluster, shared_or_skip, unique_name};

/// The corpus applies cluster-scoped objects with fixed names (ClusterRoles,
/// CRDs, ...): only on a server the harness started, unless explicitly
/// allowed for a throw-away cluster.
fn may_apply_corpus(cluster: &TestCluster) -> bool {
    let allowed = cluster.is_local()
        || std::env::var_os("GITOPS_TEST_CORPUS_ON_CLUSTER").is_some_and(|v| v == "1");
    if !allowed {
        eprintln!(
            "SKIPPED: the corpus test writes cluster-scoped objects; set \
             GITOPS_TEST_CORPUS_ON_CLUSTER=1 to run it on a throw-away cluster"
        );
    }
    allowed
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
    if dir.is_dir() {
        Some(dir.to_path_buf())
    } else {
        eprintln!(
            "SKIPPED: no corpus at {} (shared/corpus beside the repository)",
            dir.display()
        );
        None
    }
}

fn yaml_files(root: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let path = root.join(rel);
    if path.is_file() {
        out.push((rel.to_owned(), std::fs::read(&path).unwrap()));
        return;
    }
    let mut entries: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for e in entries {
        let name = e.file_name().unwrap().to_string_lossy().into_owned();
        let child = format!("{rel}/{name}");
        if e.is_dir() {
            yaml_files(root, &child, out);
        } else if name.ends_with(".yaml") && name != "kustomization.yaml" {
            out.push((child, std::fs::read(&e).unwrap()));
        }
    }
}

/// What one corpus run found.
struct Outcome {
    applied: usize,
    /// Objects whose apiVersion the server does not serve.
    unknown: Vec<ObjectKey>,
    /// Objects this server version refuses, and why (see `server_limitation`).
    limited: Vec<(ObjectKey, &'static str)>,
    /// Second-plan changes: (object, change) — false drift.
    drift: Vec<(ObjectKey, String)>,
    /// Secrets declaring `stringData` whose recorded field set was checked
    /// against `FieldSet::declared_by`.
    string_data_secrets: usize,
}

/// Why this server version refuses an object that newer ones accept, if
/// that is the reason (`minor`: the server's minor version).
fn server_limitation(minor: u32, key: &ObjectKey, error: &TargetError) -> Option<&'static str> {
    let TargetError::Invalid { message, .. } = error else {
        return None;
    };
    if minor < 30 && message.contains("field not declared in schema") {
        // grpc probes (1.24), x-kubernetes-validations (1.25), ...
        return Some("uses API fields this server version does not know");
    }
    if minor < 21
        && key.kind == "CustomResourceDefinition"
        && message.contains("default: Invalid value: \"null\"")
    {
        return Some("1.20 server-side apply turns `default: \"\"` in CRD schemas into null");
    }
    None
}

/// Kubernetes 1.20's kube-aggregator has no field manager: server-side
/// apply of an APIService panics in the server ("FieldManager must be
/// installed to run apply") and drops the connection.
fn not_sent(minor: u32, key: &ObjectKey) -> Option<&'static str> {
    (minor < 21 && key.is("apiregistration.k8s.io", "APIService"))
        .then_some("1.20 cannot server-side apply APIServices (server panic)")
}

async fn cluster_minor(cluster: &TestCluster) -> u32 {
    let v = cluster.client().apiserver_version().await.unwrap();
    v.minor.trim_end_matches('+').parse().unwrap_or(u32::MAX)
}

async fn apply_and_replan(cluster: &TestCluster, paths: &[&str], default_ns: &str) -> Outcome {
    let root = match corpus_dir() {
        Some(r) => r,
        None => unreachable!("checked by the caller"),
    };
    let minor = cluster_minor(cluster).await;
    let mut files = Vec::new();
    for p in paths {
        yaml_files(&root, p, &mut files);
    }
    let snapshot = Snapshot::from_files(files);
    let options = RenderOptions::default().with_default_namespace(default_ns);
    let mut desired: DesiredState =
        render(&snapshot, &options).unwrap_or_else(|e| panic!("rendering the corpus: {e}"));
    assert!(desired.len() > 10, "the corpus renders objects");
    let mut limited = Vec::new();
    let skip: Vec<ObjectKey> = desired
        .keys()
        .filter(|k| not_sent(minor, k).is_some())
        .cloned()
        .collect();
    for key in skip {
        desired.remove(&key);
        limited.push((key.clone(), not_sent(minor, &key).unwrap_or_default()));
    }

    let target = KubeTarget::new(cluster.client()).with_inventory_namespace(unique_name("inv"));
    let owner = OwnerId::new(unique_name("corpus")).unwrap();
    let plan_options = PlanOptions::new(owner.clone());
    let request = |desired: &DesiredState| {
        ObserveRequest::new(
            gitops_core::observe_keys(desired, None),
            Some(owner.clone()),
        )
    };

    let live = target.observe(&request(&desired)).await.unwrap();
    let first = plan(&desired, &live, &plan_options);
    assert!(
        !first.is_blocked(),
        "first plan blocked: {:?} {:?}",
        first.conflicts,
        first.refusals
    );
    let apply = ApplyOptions::new(plan_options.field_manager.clone());
    let mut unknown = Vec::new();
    let mut applied = 0;
    for step in &first.steps {
        let Some(object) = &step.object else {
            panic!("a first plan on an empty cluster only creates: {step:?}")
        };
        let at = step
            .provenance
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        match target.apply(object, &apply).await {
            Ok(_) => applied += 1,
            Err(e @ TargetError::UnknownKind { .. }) => {
                let TargetError::UnknownKind { key, api_version } = &e else {
                    unreachable!()
                };
                assert_eq!(key, object.key());
                assert_eq!(key.kind, object.kind());
                assert_eq!(api_version, object.api_version());
                let text = e.to_string();
                assert!(
                    text.contains(&key.to_string()) && text.contains(api_version.as_str()),
                    "the error names the object and its apiVersion: {text}"
                );
                // Exactly the objects the server does not serve.
                let gv = object.group_version();
                let served = target
                    .catalog()
                    .resolve(&gv.group, &gv.version, object.kind())
                    .await;
                assert!(matches!(served, Ok(None)), "{key} is served, yet: {e}");
                unknown.push(key.clone());
            }
            Err(e) => match server_limitation(minor, object.key(), &e) {
                Some(why) => limited.push((object.key().clone(), why)),
                None => panic!("applying {} ({at}): {e}", object.key()),
            },
        }
    }
    for key in unknown.iter().chain(limited.iter().map(|(k, _)| k)) {
        desired.remove(key);
    }

    let live = target.observe(&request(&desired)).await.unwrap();
    assert_eq!(
        // (`live` holds their Namespaces too.)
        live.objects.keys().filter(|k| desired.contains(k)).count(),
        desired.len(),
        "every applied object is observed"
    );
    let second = plan(&desired, &live, &plan_options);
    assert!(
        !second.is_blocked(),
        "second plan blocked: {:?} {:?}",
        second.conflicts,
        second.refusals
    );
    let mut drift = Vec::new();
    for step in &second.steps {
        match &step.action {
            Action::Update { diff: Some(d) } => {
                for c in &d.changes {
                    let text = format!("{} {:?}: {:?} -> {:?}", c.path, c.op, c.before, c.after);
                    drift.push((step.key.clone(), text));
                }
            }
            other => drift.push((step.key.clone(), format!("{other:?}"))),
        }
    }

    // The server stores a Secret's stringData folded into data, and records
    // the applied stringData fields as ours: exactly what
    // `FieldSet::declared_by` computes for the object we sent.
    let mut string_data_secrets = 0;
    for step in &first.steps {
        let Some(sent) = &step.object else { continue };
        let sent = sent.as_value();
        if !(step.key.is("", "Secret") && sent.get("stringData").is_some()) {
            continue;
        }
        let key = &step.key;
        let Some(l) = live.get(key) else {
            panic!("{key} is observed")
        };
        assert!(
            l.get("stringData").is_none(),
            "{key}: the server never stores stringData"
        );
        let owned = gitops_diff::owned_by(l, &plan_options.field_manager)
            .unwrap_or_else(|e| panic!("{key}: managedFields: {e}"))
            .unwrap_or_else(|| panic!("{key}: no managedFields entry of ours"));
        let declared = FieldSet::declared_by(
            sent,
            &gitops_diff::BuiltinLists,
            &gitops_diff::GroupKind::of(sent),
        );
        assert_eq!(
            owned.to_fields_v1(),
            declared.to_fields_v1(),
            "{key}: the recorded field set is what the applied object declares"
        );
        string_data_secrets += 1;
    }
    Outcome {
        applied,
        unknown,
        limited,
        drift,
        string_data_secrets,
    }
}

fn report(name: &str, outcome: &Outcome) {
    eprintln!(
        "{name}: applied {}, unknown kinds {}, refused by this server version {}, \
         false drift {}, Secrets with stringData checked {}",
        outcome.applied,
        outcome.unknown.len(),
        outcome.limited.len(),
        outcome.drift.len(),
        outcome.string_data_secrets
    );
    for key in &outcome.unknown {
        eprintln!("  unknown kind: {key}");
    }
    for (key, why) in &outcome.limited {
        eprintln!("  server limitation: {key}: {why}");
    }
    for (key, text) in &outcome.drift {
        eprintln!("  FALSE DRIFT: {key}: {text}");
    }
}

#[tokio::test]
async fn online_boutique_has_no_false_drift() {
    if corpus_dir().is_none() {
        return;
    }
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    if !may_apply_corpus(cluster) {
        return;
    }
    let ns = cluster.create_namespace("boutique").await.unwrap();
    let outcome = apply_and_replan(
        cluster,
        &["online-boutique/release-kubernetes-manifests.yaml"],
        &ns,
    )
    .await;
    report("online-boutique", &outcome);
    assert!(outcome.unknown.is_empty(), "every boutique kind is served");
    assert!(outcome.applied >= 20, "most of the boutique is applied");
    assert!(outcome.drift.is_empty(), "false drift, see above");
}

#[tokio::test]
async fn kube_prometheus_has_no_false_drift() {
    if corpus_dir().is_none() {
        return;
    }
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    if !may_apply_corpus(cluster) {
        return;
    }
    let ns = cluster.create_namespace("prom").await.unwrap();
    let outcome = apply_and_replan(cluster, &["kube-prometheus/manifests"], &ns).await;
    report("kube-prometheus", &outcome);
    let limited_groups: BTreeSet<String> = outcome
        .limited
        .iter()
        .filter(|(k, _)| k.kind == "CustomResourceDefinition")
        .filter_map(|(k, _)| k.name.split_once('.').map(|(_, g)| g.to_owned()))
        .collect();
    for key in &outcome.unknown {
        assert!(
            key.kind == "PodDisruptionBudget" || limited_groups.contains(&key.group),
            "unexpected unknown kind {key}: only policy/v1 PodDisruptionBudgets (before 1.21) \
             and kinds of CRDs this server refused"
        );
    }
    assert!(outcome.applied >= 50, "most of kube-prometheus is applied");
    assert!(
        outcome.string_data_secrets >= 1,
        "kube-prometheus declares Secrets with stringData"
    );
    assert!(outcome.drift.is_empty(), "false drift, see above");
}
