//! What a failed sync says: its phase, its typed cause, whether a retry may
//! help, and the structured errors of its report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error as _;

use gitops_core::{
    Cause, Fault, FaultyTarget, GroupKind, MemoryRuntime, MemorySource, Operation, OwnerId, Phase,
    Reconciler, ReconcilerConfig, SourceError, StepOutcome, SyncReport, SyncStatus, TargetError,
    audit,
};

const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
const CM: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndata:\n  k: v\n";

fn config() -> ReconcilerConfig {
    ReconcilerConfig::new(OwnerId::new("shop").unwrap())
}

fn source() -> MemorySource {
    let source = MemorySource::new();
    source.commit("main", [("ns.yaml", NS), ("cm.yaml", CM)], "ada", "initial");
    source
}

/// The messages of an error and of its causes, outermost first.
fn chain(err: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        out.push(e.to_string());
        next = e.source();
    }
    out
}

#[tokio::test]
async fn a_mistyped_branch_fails_to_resolve_and_is_not_transient() {
    let r = Reconciler::new(source(), MemoryRuntime::new(), config()).unwrap();
    let err = r.reconcile_once("mian").await.unwrap_err();
    assert_eq!(err.phase(), Phase::Resolve);
    assert!(
        matches!(err.cause(), Some(Cause::Source(SourceError::NotFound { reference })) if reference == "mian"),
        "{:?}",
        err.cause()
    );
    assert!(!err.is_transient());
    assert_eq!(err.report.status, SyncStatus::SourceFailed);
    // The cause is the error's source.
    let source = err.source().expect("a source");
    assert!(source.to_string().contains("mian"), "{source}");
    assert!(chain(&err).len() >= 2, "{:?}", chain(&err));
    let [e] = &err.report.errors[..] else {
        panic!("one error: {:?}", err.report.errors)
    };
    assert_eq!(e.phase, Phase::Resolve);
    assert_eq!(e.key, None);
    assert!(!e.transient);
    assert!(e.message.contains("mian"), "{}", e.message);
}

#[tokio::test]
async fn an_unavailable_runtime_fails_to_observe_and_is_transient() {
    let target = FaultyTarget::new(MemoryRuntime::new()).with_fault(Fault::FailNthCall {
        n: 1,
        operation: Some(Operation::Observe),
    });
    let r = Reconciler::new(source(), target, config()).unwrap();
    let err = r.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.phase(), Phase::Observe);
    assert!(err.is_transient());
    assert!(
        matches!(
            err.cause(),
            Some(Cause::Target(TargetError::Unavailable { .. }))
        ),
        "{:?}",
        err.cause()
    );
    assert!(
        chain(&err)
            .iter()
            .skip(1)
            .any(|m| m.contains("injected fault")),
        "{:?}",
        chain(&err)
    );
    assert_eq!(err.report.errors.len(), 1, "{}", err.report);
    assert_eq!(err.report.errors[0].phase, Phase::Observe);
    assert!(err.report.errors[0].transient);
}

#[tokio::test]
async fn a_failed_step_names_its_object() {
    let target = FaultyTarget::new(MemoryRuntime::new()).with_fault(Fault::FailKind {
        kind: GroupKind::new("", "ConfigMap"),
    });
    let r = Reconciler::new(source(), target, config()).unwrap();
    let err = r.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.phase(), Phase::Apply);
    assert!(err.is_transient());
    let failed = err
        .report
        .steps
        .iter()
        .find(|s| s.outcome == StepOutcome::Failed)
        .expect("a failed step");
    let e = &err.report.errors[0];
    assert_eq!(e.phase, Phase::Apply);
    assert_eq!(e.key.as_ref(), Some(&failed.key));
    assert!(e.transient);
}

#[tokio::test]
async fn a_render_error_is_the_cause_and_not_transient() {
    let source = MemorySource::new();
    source.commit("main", [("bad.yaml", "kind: [")], "ada", "broken");
    let r = Reconciler::new(source, MemoryRuntime::new(), config()).unwrap();
    let err = r.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.phase(), Phase::Render);
    assert!(matches!(err.cause(), Some(Cause::Render(_))));
    assert!(!err.is_transient());
    assert!(err.report.errors.iter().all(|e| e.phase == Phase::Render));
    assert!(err.report.errors[0].message.starts_with("bad.yaml"));
}

#[tokio::test]
async fn structured_errors_round_trip_through_the_audit_log() {
    let r = Reconciler::new(source(), MemoryRuntime::new(), config()).unwrap();
    let err = r.reconcile_once("mian").await.unwrap_err();
    let line = err.report.to_json_line().unwrap();
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(json["errors"][0]["phase"], "resolve");
    assert_eq!(json["errors"][0]["transient"], false);
    let back: SyncReport = serde_json::from_str(&line).unwrap();
    assert_eq!(back.errors, err.report.errors);
}

#[test]
fn an_audit_line_with_plain_error_messages_still_reads() {
    let old = r#"{"owner":"shop","started_at":"2026-01-01T00:00:00Z","duration_ms":3,"status":"source_failed","errors":["resolving \"mian\": reference \"mian\" not found"]}"#;
    let new = r#"{"owner":"shop","started_at":"2026-01-02T00:00:00Z","duration_ms":3,"status":"step_failed","errors":[{"phase":"apply","key":{"group":"","kind":"ConfigMap","namespace":"shop","name":"c"},"message":"create failed","transient":true},{"phase":"a_phase_of_the_future","message":"later"}]}"#;
    let path = std::env::temp_dir().join(format!(
        "gitops-core-old-audit-{}.jsonl",
        std::process::id()
    ));
    std::fs::write(&path, format!("{old}\n{new}\n")).unwrap();
    let log = audit::read_log(&path);
    std::fs::remove_file(&path).unwrap();
    let log = log.unwrap();
    assert!(log.unreadable.is_empty(), "{:?}", log.unreadable);
    let [first, second] = &log.records[..] else {
        panic!("two records: {:?}", log.records)
    };
    let [e] = &first.errors[..] else {
        panic!("{:?}", first.errors)
    };
    assert_eq!(e.phase, Phase::Unknown);
    assert_eq!(e.key, None);
    assert!(!e.transient);
    assert_eq!(e.message, r#"resolving "mian": reference "mian" not found"#);
    assert_eq!(second.errors[0].phase, Phase::Apply);
    assert_eq!(
        second.errors[0].key.as_ref().map(ToString::to_string),
        Some("ConfigMap/shop/c".to_owned())
    );
    assert!(second.errors[0].transient);
    assert_eq!(second.errors[1].phase, Phase::Unknown);
    assert!(first.to_string().contains("  error: resolving"), "{first}");
}
