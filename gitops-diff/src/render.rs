//! Text rendering: YAML unified diffs.

use serde_json::{Map, Value};
use similar::TextDiff;

use crate::escape::escape;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// A copy of `v` with every map's keys sorted (stable, readable output).
pub fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(x) = m.get(k) {
                    out.insert(k.clone(), sorted_keys(x));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

/// Renders a value as YAML with sorted keys.
pub fn to_yaml(v: &Value) -> String {
    let v = sorted_keys(v);
    match serde_yaml::to_string(&v) {
        Ok(s) => s,
        Err(_) => serde_json::to_string_pretty(&v).unwrap_or_default() + "\n",
    }
}

/// A unified diff (3 lines of context) of two values rendered as YAML with
/// sorted keys. Empty when they render the same. With `colour`, ANSI
/// colours are added (the caller decides; no terminal detection here).
///
/// The labels and every line are [escaped](crate::escape): a label or a
/// value carrying a newline, a carriage return, a terminal escape sequence
/// or a bidirectional override cannot forge a line of the diff or reach the
/// terminal; the only line breaks are the diff's own.
pub fn unified_diff(
    before: &Value,
    after: &Value,
    before_label: &str,
    after_label: &str,
    colour: bool,
) -> String {
    let a = to_yaml(before);
    let b = to_yaml(after);
    if a == b {
        return String::new();
    }
    let diff = TextDiff::from_lines(a.as_str(), b.as_str());
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&escape(before_label), &escape(after_label))
        .to_string();
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let body = escape(body);
        let body = body.as_ref();
        if !colour {
            out.push_str(body);
            out.push_str(nl);
            continue;
        }
        let style = if body.starts_with("---") || body.starts_with("+++") {
            Some(BOLD)
        } else if body.starts_with("@@") {
            Some(CYAN)
        } else if body.starts_with('-') {
            Some(RED)
        } else if body.starts_with('+') {
            Some(GREEN)
        } else {
            None
        };
        match style {
            Some(s) => {
                out.push_str(s);
                out.push_str(body);
                out.push_str(RESET);
                out.push_str(nl);
            }
            None => {
                out.push_str(body);
                out.push_str(nl);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_and_coloured() {
        let a = json!({"b": 1, "a": {"x": "y"}});
        let b = json!({"a": {"x": "z"}, "b": 1});
        let plain = unified_diff(&a, &b, "live", "desired", false);
        assert_eq!(
            plain,
            "--- live\n+++ desired\n@@ -1,3 +1,3 @@\n a:\n-  x: y\n+  x: z\n b: 1\n"
        );
        let col = unified_diff(&a, &b, "live", "desired", true);
        assert!(col.contains("\x1b[31m-  x: y\x1b[0m\n"));
        assert!(!plain.contains('\x1b'));
        assert_eq!(unified_diff(&a, &a, "l", "d", true), "");
    }

    #[test]
    fn labels_and_lines_are_escaped() {
        let a = json!({"k": "v", "note": "x"});
        let b = json!({"k": "v", "note": "x\u{202e}y\u{9b}2J\u{85}z"});
        let label = "live\n+++ forged\r\u{1b}[2J";
        for colour in [false, true] {
            let text = unified_diff(&a, &b, label, "desired", colour);
            assert!(text.contains("--- live\\n+++ forged\\r\\e[2J"), "{text}");
            // YAML escapes C1 controls itself; the override is ours.
            assert!(text.contains(r#""x\u{202e}y\x9B2J\Nz""#), "{text}");
            assert_eq!(text.lines().count(), 6, "{text}");
            let controls = text
                .chars()
                .filter(|&c| c != '\n' && crate::escape::needs_escape(c))
                .count();
            // Only the colours' own escape sequences (two per styled line).
            assert_eq!(controls, if colour { 2 * 5 } else { 0 }, "{text}");
        }
    }
}
