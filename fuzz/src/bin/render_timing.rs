//! Times the renderer on adversarial and large inputs (the cases of issue
//! 10, items 1–3). A measurement, not a test: it asserts nothing.
//!
//! ```text
//! cargo run --release -p gitops-fuzz --bin render_timing
//! ```
#![allow(missing_docs)]

use std::time::Instant;

use gitops_core::Snapshot;
use gitops_core::{RenderOptions, Renderer, render};

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ";

fn laughs(lists: usize, width: usize) -> String {
    let mut s = format!("{CM}bomb\nx:\n  a: &a [\"{}\"]\n", "lol".repeat(100));
    let mut prev = 'a';
    for c in ('b'..='z').take(lists) {
        s.push_str(&format!("  {c}: &{c} ["));
        s.push_str(&vec![format!("*{prev}"); width].join(","));
        s.push_str("]\n");
        prev = c;
    }
    s
}

fn main() {
    let four_mib = 4 * 1024 * 1024 - 1;
    let manifests: String = (0..)
        .map(|i| format!("---\n{CM}cm-{i}\ndata: {{k: 'value {i}', l: \"x\"}}\n"))
        .scan(0usize, |len, s| {
            *len += s.len();
            (*len < four_mib).then_some(s)
        })
        .collect();
    let cases: Vec<(&str, String)> = vec![
        ("undefined alias `<: *a`", "<: *a\n".to_owned()),
        (
            "flow nesting 40k levels (80 KB)",
            "[".repeat(40_000) + &"]".repeat(40_000),
        ),
        (
            "flow nesting 100k levels (200 KB)",
            "[".repeat(100_000) + &"]".repeat(100_000),
        ),
        ("flow nesting, 4 MiB of `[`", "[".repeat(four_mib)),
        (
            "block nesting, 1400 levels (1 MB)",
            (0..1400)
                .map(|i| format!("{}- \n", " ".repeat(i)))
                .collect::<String>(),
        ),
        (
            "billion laughs, ~1 MB (9 lists x 20k aliases)",
            laughs(9, 20_000),
        ),
        ("4 MiB of plain ConfigMaps", manifests),
    ];
    // GITOPS_TIMING_ONLY=word runs only the cases whose name contains it.
    let only = std::env::var("GITOPS_TIMING_ONLY").unwrap_or_default();
    for (name, text) in cases {
        if !name.contains(only.as_str()) {
            continue;
        }
        let snapshot = Snapshot::from_files([("f.yaml", text.as_bytes())]);
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| render(&snapshot, &RenderOptions::default()));
        let elapsed = started.elapsed();
        let Ok(result) = result else {
            println!("{name:<48} {:>8} bytes {elapsed:>10.1?}  PANIC", text.len());
            continue;
        };
        let outcome = match &result {
            Ok(d) => format!("{} objects", d.len()),
            Err(e) => {
                let first = e.to_string();
                let first = first.lines().next().unwrap_or("").to_owned();
                first.chars().take(110).collect()
            }
        };
        // Again with the parse cached: what the rest of the render costs.
        let mut renderer =
            Renderer::new(RenderOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let _ = renderer.render(&snapshot);
        let started = Instant::now();
        let _ = renderer.render(&snapshot);
        let cached = started.elapsed();
        println!(
            "{name:<48} {:>8} bytes {elapsed:>10.1?} (parse cached: {cached:>10.1?})  {outcome}",
            text.len(),
        );
    }
}
