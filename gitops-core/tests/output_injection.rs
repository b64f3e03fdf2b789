//! Output injection (issue 10, item 8): user-controlled text (file paths,
//! object names, keys, values, messages) with newlines, carriage returns,
//! terminal escape sequences or bidirectional overrides cannot forge lines
//! of a plan, a report or an error; the JSON output keeps the exact text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gitops_core::escape::needs_escape;
use gitops_core::{
    Action, Conflict, MemoryRuntime, MemorySource, ObjectKey, OwnerId, Plan, Provenance,
    Reconciler, ReconcilerConfig, Refusal, Skipped, Step,
};
use gitops_diff::{Change, FieldPath, ObjectDiff, Op, PathElement};
use proptest::prelude::*;
use serde_json::{Value, json};

const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";

/// A file whose name forges a plan line, an ESC sequence that clears the
/// screen, a right-to-left override, an 8-bit CSI and NEL: all shown
/// escaped, each on the line it belongs to.
#[tokio::test]
async fn forged_names_are_escaped_in_the_plan() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::new();
    let config = ReconcilerConfig::new(OwnerId::new("shop").unwrap());
    let r = Reconciler::new(source.clone(), runtime.clone(), config).unwrap();
    let cm = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    note: {}\ndata:\n  a: b\n",
            value
        )
    };
    let forged = "web\n  - delete Secret/shop/db-password (wave 0)\r\u{1b}[2J.yaml";
    source.commit(
        "prod",
        [("ns.yaml", NS.to_owned()), (forged, cm("plain"))],
        "ada",
        "v1",
    );
    r.reconcile_once("prod").await.unwrap();
    source.commit(
        "prod",
        [
            ("ns.yaml", NS.to_owned()),
            (forged, cm(r#""txt.\u202Eexe\x9B31m\Nnext""#)),
        ],
        "ada",
        "v2",
    );
    let (_, plan) = r.plan("prod").await.unwrap();
    let text = plan.to_string();
    insta::assert_snapshot!("forged_names", text);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        !text.chars().any(|c| c != '\n' && needs_escape(c)),
        "{text}"
    );

    // JSON keeps the exact text (JSON escapes what it must).
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["steps"][0]["provenance"]["path"], forged);
}

fn nasty() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => any::<char>(),
        2 => Just('\n'),
        1 => Just('\r'),
        1 => Just('\t'),
        1 => Just('\u{1b}'),
        1 => Just('\u{7}'),
        1 => Just('\u{85}'),
        1 => Just('\u{9b}'),
        1 => Just('\u{202e}'),
        1 => Just('\u{2066}'),
        1 => Just('\u{2028}'),
        3 => proptest::char::range('a', 'z'),
    ];
    proptest::collection::vec(c, 0..10).prop_map(String::from_iter)
}

fn key() -> impl Strategy<Value = ObjectKey> {
    (nasty(), nasty(), proptest::option::of(nasty()), nasty())
        .prop_map(|(g, k, ns, n)| ObjectKey::new(g, k, ns.as_deref(), n))
}

fn provenance() -> impl Strategy<Value = Provenance> {
    (nasty(), 0usize..3, proptest::option::of(1usize..40))
        .prop_map(|(path, document, line)| Provenance::new(path, document).with_line(line))
}

fn value() -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop_oneof![
        nasty().prop_map(Value::String),
        (nasty(), nasty()).prop_map(|(k, v)| json!({ k: v })),
        any::<i64>().prop_map(Value::from),
    ])
}

fn change() -> impl Strategy<Value = Change> {
    (nasty(), nasty(), nasty(), value(), value()).prop_map(|(field, k, v, before, after)| {
        let mut keys = serde_json::Map::new();
        keys.insert(k, Value::String(v));
        Change::new(
            FieldPath(vec![PathElement::Field(field), PathElement::Key(keys)]),
            "",
            Op::Replace,
            before,
            after,
        )
    })
}

fn step() -> impl Strategy<Value = Step> {
    (
        key(),
        0u8..3,
        proptest::collection::vec(change(), 0..3),
        proptest::option::of(provenance()),
        proptest::option::of(nasty()),
    )
        .prop_map(|(key, action, changes, provenance, note)| {
            let action = match action {
                0 => Action::Create,
                1 => {
                    let mut diff = ObjectDiff::default();
                    diff.changes = changes;
                    Action::Update { diff: Some(diff) }
                }
                _ => Action::Delete,
            };
            let mut step = Step::new(key, action, 0, "v1");
            step.provenance = provenance;
            step.note = note;
            step
        })
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        proptest::option::of(nasty()),
        proptest::collection::vec(step(), 0..5),
        proptest::collection::vec((key(), nasty()), 0..3),
        proptest::collection::vec((key(), provenance(), nasty()), 0..3),
        proptest::collection::vec((key(), nasty(), nasty(), provenance(), nasty()), 0..3),
    )
        .prop_map(|(revision, steps, skipped, conflicts, refusals)| {
            let mut plan = Plan::new(OwnerId::new("shop").unwrap());
            plan.revision = revision;
            plan.steps = steps;
            plan.skipped = skipped
                .into_iter()
                .map(|(key, reason)| Skipped::new(key, reason))
                .collect();
            plan.conflicts = conflicts
                .into_iter()
                .map(|(key, provenance, owner)| Conflict::OwnedByOther {
                    key,
                    owner,
                    provenance,
                })
                .collect();
            plan.refusals = refusals
                .into_iter()
                .map(|(key, annotation, value, provenance, message)| {
                    if message.len() % 2 == 0 {
                        Refusal::InvalidAnnotation {
                            key,
                            annotation,
                            value,
                            provenance,
                        }
                    } else {
                        Refusal::InvalidOption { message }
                    }
                })
                .collect();
            plan
        })
}

/// The number of lines the plan's structure calls for.
fn expected_lines(plan: &Plan) -> usize {
    let mut n = 1 + plan.refusals.len() + plan.conflicts.len() + plan.skipped.len();
    for s in &plan.steps {
        n += 1 + usize::from(s.note.is_some());
        if let Action::Update { diff: Some(d) } = &s.action {
            n += d.changes.len();
        }
    }
    n
}

proptest! {
    /// Whatever the names, the text of a plan holds no control character
    /// but the newlines it puts itself: one per line of its structure.
    #[test]
    fn plan_text_has_no_control_characters_but_its_own_newlines(plan in plan()) {
        let text = plan.to_string();
        let bad: Vec<char> = text.chars().filter(|&c| c != '\n' && needs_escape(c)).collect();
        prop_assert!(bad.is_empty(), "{bad:?} in {text}");
        prop_assert_eq!(text.matches('\n').count(), expected_lines(&plan), "{}", text);
        prop_assert!(text.ends_with('\n'));
        for (i, line) in text.lines().enumerate() {
            prop_assert!(
                (i == 0 && line.starts_with("plan for ")) || (i > 0 && line.starts_with("  ")),
                "line {} {:?}", i, line
            );
        }
    }
}

/// The report (and the error that carries it) of a revision that does not
/// render, from a file whose name forges lines: one line per error.
#[tokio::test]
async fn forged_names_are_escaped_in_reports_and_errors() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::new();
    let config = ReconcilerConfig::new(OwnerId::new("shop").unwrap());
    let r = Reconciler::new(source, runtime, config).unwrap();
    r.source().commit(
        "prod",
        [(
            "a\n  error: forged\u{1b}]0;title\u{7}\u{2066}.yaml",
            "kind: [unclosed\n".to_owned(),
        )],
        "ada",
        "broken",
    );
    let err = r.reconcile_once("prod").await.unwrap_err();
    let text = err.to_string();
    insta::assert_snapshot!(
        "forged_report",
        text.replace(&err.report.started_at, "<time>")
            .replace(&format!("{} ms", err.report.duration_ms), "<n> ms")
            .replace(&err.report.revision.as_ref().unwrap().id[..12], "<commit>")
    );
    assert!(
        !text.chars().any(|c| c != '\n' && needs_escape(c)),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1 + err.report.errors.len(), "{text}");
    assert_eq!(err.report.errors.len(), 1);
    // The audit record stores error messages as displayed (escaped): a
    // log viewer shows them safely too; the structured fields of the plan
    // keep the exact text (see above).
    let json: Value = serde_json::from_str(&err.report.to_json_line().unwrap()).unwrap();
    assert_eq!(
        json["errors"][0]["message"],
        err.report.errors[0].message.as_str()
    );
    assert!(
        err.report.errors[0]
            .message
            .starts_with(r"a\n  error: forged\e]0;title\u{7}\u{2066}.yaml#0"),
        "{}",
        err.report.errors[0]
    );
}
