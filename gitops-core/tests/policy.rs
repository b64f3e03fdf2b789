//! One test per policy rule, and the law that a violating revision is
//! never applied.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gitops_core::policy::{KindPattern, Rule};
use gitops_core::{
    MemoryRuntime, MemorySource, OwnerId, Person, Policy, Reconciler, ReconcilerConfig, Revision,
    SignatureMethod, SignatureVerdict, Snapshot, SyncStatus,
};
use gitops_core::{RenderOptions, render};
use proptest::prelude::*;

const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";
const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n";
const SECRET: &str =
    "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: shop}\nstringData: {k: v}\n";
const ROLE: &str =
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n";
const POD_TAG: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  initContainers: [{name: init, image: busybox}]\n  containers: [{name: app, image: 'nginx:1.25'}]\n";
const JOB_DIGEST: &str = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: j, namespace: shop}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - name: app\n            image: registry.example.com/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";
const OTHER_NS: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kube-system}\n";

fn check(policy: &Policy, files: &[(&str, &str)]) -> Vec<(Rule, String)> {
    let desired = render(
        &Snapshot::from_files(files.iter().copied()),
        &RenderOptions::default(),
    )
    .unwrap();
    policy
        .check(&desired)
        .into_iter()
        .map(|v| (v.rule, v.to_string()))
        .collect()
}

#[test]
fn allowed_and_denied_kinds() {
    let p = {
        let mut p = Policy::new();
        p.allowed_kinds = Some(vec![
            KindPattern::new("", "*"),
            KindPattern::new("batch", "*"),
        ]);
        p.denied_kinds = vec![KindPattern::new("", "Secret")];
        p
    };
    let mut v = check(
        &p,
        &[
            ("ns.yaml", NS),
            ("s.yaml", SECRET),
            ("r.yaml", ROLE),
            ("j.yaml", JOB_DIGEST),
        ],
    );
    v.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(v[0].0, Rule::Kind);
    assert!(v[0].1.starts_with("r.yaml#0 (line 1): ClusterRole.rbac.authorization.k8s.io/r: kind ClusterRole.rbac.authorization.k8s.io is not in the allowed kinds"), "{}", v[0].1);
    assert!(v[1].1.contains("kind Secret is denied"));
}

#[test]
fn allowed_namespaces() {
    let p = {
        let mut p = Policy::new();
        p.allowed_namespaces = Some(vec!["shop".into()]);
        p
    };
    let v = check(&p, &[("ns.yaml", NS), ("c.yaml", CM), ("o.yaml", OTHER_NS)]);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0, Rule::Namespace);
    assert!(v[0].1.starts_with("o.yaml#0"));
}

#[test]
fn cluster_scoped_objects() {
    let p = {
        let mut p = Policy::new();
        p.allow_cluster_scoped = false;
        p
    };
    let v = check(&p, &[("ns.yaml", NS), ("c.yaml", CM), ("r.yaml", ROLE)]);
    let rules: Vec<Rule> = v.iter().map(|x| x.0).collect();
    assert_eq!(rules, [Rule::ClusterScoped, Rule::ClusterScoped]);
}

#[test]
fn maximum_object_count() {
    let p = {
        let mut p = Policy::new();
        p.max_objects = Some(1);
        p
    };
    let v = check(&p, &[("ns.yaml", NS), ("c.yaml", CM)]);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0, Rule::ObjectCount);
    assert!(
        v[0].1
            .contains("2 objects declared, more than the maximum of 1")
    );
}

#[test]
fn image_digests() {
    let p = {
        let mut p = Policy::new();
        p.require_image_digests = true;
        p
    };
    let v = check(
        &p,
        &[("ns.yaml", NS), ("p.yaml", POD_TAG), ("j.yaml", JOB_DIGEST)],
    );
    let mut msgs: Vec<&str> = v.iter().map(|x| x.1.as_str()).collect();
    msgs.sort();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].contains("spec.containers[name=app].image = \"nginx:1.25\" is not pinned"),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[1].contains("spec.initContainers[name=init].image = \"busybox\""),
        "{}",
        msgs[1]
    );
}

#[test]
fn plain_secrets() {
    let p = {
        let mut p = Policy::new();
        p.forbid_secrets = true;
        p
    };
    let v = check(&p, &[("ns.yaml", NS), ("s.yaml", SECRET)]);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0, Rule::Secret);
}

#[test]
fn signatures() {
    let p = {
        let mut p = Policy::new();
        p.require_signature = true;
        p
    };
    let snap = Snapshot::from_files([("ns.yaml", NS)]);
    let mut desired = render(&snap, &RenderOptions::default()).unwrap();
    assert_eq!(p.check(&desired)[0].rule, Rule::Signature, "no revision");
    let mut rev = Revision::new("abc")
        .with_author(Person::default())
        .with_signature(SignatureVerdict::Unsigned);
    desired.set_revision(Some(rev.clone()));
    assert_eq!(p.check(&desired).len(), 1);
    rev.signature = SignatureVerdict::Trusted {
        signer: "ada@example.com".into(),
        fingerprint: "SHA256:x".into(),
        method: SignatureMethod::Ssh,
    };
    desired.set_revision(Some(rev));
    assert!(p.check(&desired).is_empty());
}

fn any_policy() -> impl Strategy<Value = Policy> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0..4usize,
    )
        .prop_map(|(kinds, ns, cluster, digests, secrets, max)| {
            let mut p = Policy::new();
            p.denied_kinds = if kinds {
                vec![KindPattern::new("apps", "*")]
            } else {
                vec![]
            };
            p.allowed_namespaces = ns.then(|| vec!["shop".into()]);
            p.allow_cluster_scoped = !cluster;
            p.max_objects = (max > 0).then_some(max + 1);
            p.require_image_digests = digests;
            p.forbid_secrets = secrets;
            p
        })
}

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: shop}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: 'x:1'}]}\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
    /// Whatever the policy and the files, a revision that violates any rule
    /// applies nothing; one that violates none is applied.
    #[test]
    fn violating_revisions_are_never_applied(
        policy in any_policy(),
        pick in proptest::collection::vec(0..6usize, 1..6),
    ) {
        let all = [("ns.yaml", NS), ("c.yaml", CM), ("s.yaml", SECRET), ("r.yaml", ROLE), ("d.yaml", DEPLOY), ("o.yaml", OTHER_NS)];
        let mut files: Vec<(&str, &str)> = pick.iter().map(|i| all[*i]).collect();
        files.push(all[0]);
        files.sort();
        files.dedup();
        let desired = render(&Snapshot::from_files(files.iter().copied()), &RenderOptions::default()).unwrap();
        let violations = policy.check(&desired);
        futures::executor::block_on(async {
            let source = MemorySource::new();
            let runtime = MemoryRuntime::with_system_namespaces();
            let system = runtime.len();
            let mut config = ReconcilerConfig::new(OwnerId::new("p").unwrap());
            config.policy = policy.clone();
            let r = Reconciler::new(source.clone(), runtime.clone(), config).unwrap();
            source.commit("main", files.iter().copied(), "ada", "x");
            let out = r.reconcile_once("main").await;
            if violations.is_empty() {
                prop_assert!(out.is_ok(), "{:?}", out.err().map(|e| e.to_string()));
                prop_assert_eq!(runtime.len(), system + desired.len());
            } else {
                let err = out.unwrap_err();
                prop_assert_eq!(err.report.status, SyncStatus::PolicyViolated);
                prop_assert_eq!(err.report.policy_violations.len(), violations.len());
                prop_assert_eq!(runtime.len(), system, "nothing may be applied");
            }
            Ok(())
        })?;
    }
}
