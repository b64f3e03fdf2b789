#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The renderer skips its YAML pre-scan for files that cannot hold an
//! alias (no `*` byte) and hold at most 128 flow collections; these tests
//! check, through `render`, that no input can use that to get past a check
//! of the scan: aliases anywhere still meet the scan, `&` and `*` in
//! quoted scalars, comments and block scalars stay text, and too deep
//! nesting is refused with the scan's own error, file, document and line.

use gitops_core::{RenderError, RenderErrors, RenderOptions, Snapshot, render};
use insta::assert_snapshot;

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: a\n  name: ";

fn render_one(path: &str, text: &str) -> Result<gitops_core::DesiredState, RenderErrors> {
    render(
        &Snapshot::from_files([(path, text.as_bytes())]),
        &RenderOptions::default(),
    )
}

#[test]
fn aliases_and_anchors_in_text_stay_text() {
    let text = format!(
        "{CM}a # an *alias and an &anchor in a comment\ndata:\n  \
         quoted: \"*x &y\"\n  single: '&a *b'\n  block: |\n    *x\n    &y [[\n"
    );
    let desired = render_one("text.yaml", &text).unwrap();
    let (_, d) = desired.iter().next().unwrap();
    let data = &d.object.as_value()["data"];
    assert_eq!(data["quoted"], "*x &y");
    assert_eq!(data["single"], "&a *b");
    assert_eq!(data["block"], "*x\n&y [[\n");
}

#[test]
fn an_undefined_alias_is_refused_wherever_it_is() {
    for (text, line) in [
        // In a flow sequence of the second document.
        (format!("{CM}a\n---\n{CM}b\ndata: {{k: [*nowhere]}}\n"), 12),
        // As a flow mapping's value, after a defined anchor.
        (format!("{CM}a\ndata: {{k: &there v, l: *nowhere}}\n"), 6),
        // As a merge key, the input that made serde_yaml panic.
        ("<: *nowhere\n".to_owned(), 1),
    ] {
        let e = render_one("alias.yaml", &text).unwrap_err();
        assert!(
            matches!(&e.0[0], RenderError::UndefinedAlias { alias, .. } if alias == "nowhere"),
            "{e}"
        );
        assert!(
            e.to_string().contains(&format!("(line {line}")),
            "{text:?}: {e}"
        );
    }
}

#[test]
fn nesting_without_brackets_or_aliases_is_refused_by_the_scan() {
    // Block nesting needs no `[`, `{` or `*`: serde_yaml refuses it, and the
    // file then goes through the scan, whose error is reported.
    let deep: String = (0..200)
        .map(|i| format!("{}- \n", "  ".repeat(i)))
        .collect();
    let text = format!("{CM}a\n---\n{deep}");
    let e = render_one("deep.yaml", &text).unwrap_err();
    assert_snapshot!(e, @"deep.yaml#1 (line 135, column 257): the document is too complex to load (nesting deeper than 128 levels): too many alias expansions or too deep nesting");
    let compact = format!("{CM}a\ndata:\n  k:\n  {}x\n", "- ".repeat(200));
    let e = render_one("compact.yaml", &compact).unwrap_err();
    assert!(matches!(e.0[0], RenderError::TooComplex { .. }), "{e}");
}

#[test]
fn a_syntax_error_is_the_scans() {
    let text = format!("{CM}a\n---\n{CM}b\ndata: {{k: v\n");
    let e = render_one("broken.yaml", &text).unwrap_err();
    assert!(matches!(e.0[0], RenderError::Syntax { .. }), "{e}");
    assert!(e.to_string().starts_with("broken.yaml#1 (line 12"), "{e}");
}
