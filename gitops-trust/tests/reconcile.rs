//! End to end: the reconciler with a Git source, the signature verifier and
//! a policy that requires signatures. An unsigned or forged revision applies
//! nothing; a signed one is applied and its signer lands in the audit record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Fixture, have_ssh};
use gitops_core::{
    MemoryAudit, MemoryRuntime, OwnerId, Policy, Reconciler, ReconcilerConfig, SignatureVerdict,
    SyncStatus,
};
use gitops_git::GitSource;
use gitops_trust::{AllowedSigners, Mode, TrustConfig, Verifier};

const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
const CM: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndata:\n  v: \"1\"\n";

#[tokio::test]
async fn only_signed_revisions_reach_the_runtime() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("release", "ed25519");
    let allowed = format!("release@example.com {}\n", f.ssh_public(&key));
    std::fs::write(f.repo.join("ns.yaml"), NS).unwrap();
    f.git(&["add", "ns.yaml"]);
    let signed = f.commit_ssh(&key, "signed: namespace");

    let verifier = Verifier::open(
        &f.repo,
        TrustConfig::new(Mode::EveryCommit)
            .allowed_signers(AllowedSigners::parse(&allowed).unwrap()),
    )
    .unwrap();
    let runtime = MemoryRuntime::new();
    let audit = Arc::new(MemoryAudit::new());
    let config = ReconcilerConfig::new(OwnerId::new("shop").unwrap());
    let config = config.policy(Policy::new().require_signature(true));
    let reconciler = Reconciler::new(GitSource::open(&f.repo).unwrap(), runtime.clone(), config)
        .unwrap()
        .with_verifier(Arc::new(verifier))
        .with_audit(audit.clone());

    let report = reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced);
    match &report.revision.as_ref().unwrap().signature {
        SignatureVerdict::Trusted {
            signer,
            fingerprint,
            ..
        } => {
            assert_eq!(signer, "release@example.com");
            assert!(fingerprint.starts_with("SHA256:"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(runtime.len(), 1);

    // An unsigned commit, then a signed one on top: EveryCommit refuses the
    // range, and nothing is applied.
    std::fs::write(f.repo.join("cm.yaml"), CM).unwrap();
    f.git(&["add", "cm.yaml"]);
    let unsigned = f.commit("sneaky: unsigned config");
    f.commit_ssh(&key, "signed on top");
    let err = reconciler.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::PolicyViolated);
    let reason = match &err.report.revision.as_ref().unwrap().signature {
        SignatureVerdict::Untrusted { reason } => reason.clone(),
        other => panic!("{other:?}"),
    };
    assert!(reason.contains(&unsigned[..8]), "{reason}");
    assert_eq!(runtime.len(), 1, "nothing applied");
    let records = audit.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].revision.as_ref().unwrap().id, signed);
}
