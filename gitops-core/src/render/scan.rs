//! The linear-time pre-scan of a YAML file's event stream.
//!
//! `serde_yaml` (libyaml) builds values, reports syntax errors and resolves
//! scalars as the renderer always did, but it has three defects no caller
//! can work around: it panics on an alias to an undefined anchor in some
//! positions (`<: *a`), its scanner is quadratic in the flow nesting depth
//! (its depth limit is checked only after the whole document is scanned),
//! and it bounds aliases by a count of expansions, not by the size they
//! expand to. So before `serde_yaml` sees a file, this scan reads the file's
//! event stream once with [`granit_parser`] (a maintained, fuzzed parser
//! without `unsafe` code whose scanner state is bounded by its nesting
//! limits) and refuses, with the position:
//!
//! - syntax errors (the text never reaches libyaml),
//! - nesting deeper than [`MAX_DEPTH`] (flow or block),
//! - aliases to anchors not defined before them in their document,
//! - aliases that expand the file beyond the budgets of the
//!   [`RenderOptions`](super::RenderOptions): the expanded size is computed
//!   arithmetically (an anchor's size is recorded once; an alias adds it),
//!   so the scan itself never expands anything.
//!
//! The scan's time and memory are linear in the file's size; `serde_yaml`
//! then only sees files whose nesting is bounded and whose full expansion is
//! within budget, so its time and memory are bounded too.

use std::collections::HashMap;

use granit_parser::{ErrorKind, Event, Parser};

use super::error::Location;

/// Deepest nesting of mappings and sequences accepted (the limit
/// `serde_yaml` itself applies, now enforced while scanning).
pub(crate) const MAX_DEPTH: usize = 128;

/// What one node costs in the expanded-size measure, on top of a scalar's
/// bytes: roughly what a loaded value takes beside its text.
pub(crate) const NODE_COST: u64 = 16;

/// Below this expanded size (in the same measure) the ratio budget does
/// not apply, so small files may use anchors freely.
pub(crate) const RATIO_FLOOR: u64 = 1024 * 1024;

/// The budgets of a scan.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Absolute budget of the expanded size.
    pub(crate) max_expanded: u64,
    /// Budget of the expanded size relative to the size as written.
    pub(crate) ratio: u64,
}

/// What the scan refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    Syntax(String),
    TooDeep,
    UndefinedAlias(String),
    Expansion {
        size: u64,
        limit: u64,
        relative: bool,
    },
}

/// A refusal, with the 0-based document and the position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) document: usize,
    pub(crate) location: Location,
    pub(crate) problem: Problem,
}

fn location(m: &granit_parser::Marker) -> Location {
    Location {
        line: m.line(),
        column: m.col() + 1,
    }
}

/// Scans a YAML text; `Ok` when `serde_yaml` may load it.
pub(crate) fn scan_yaml(text: &str, limits: Limits) -> Result<(), Refusal> {
    let options = granit_parser::options! {
        flow_nesting_limit: MAX_DEPTH + 1,
        block_nesting_limit: MAX_DEPTH + 2,
        emit_unresolved_aliases: true,
        emit_comments: false,
    };
    let mut parser = Parser::new_from_str_with_options(text, options);
    // Document index (of the current or next document).
    let mut document = 0usize;
    // Open collections: (anchor id, expanded total when it opened).
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut anchors: HashMap<usize, u64> = HashMap::new();
    let mut expanded: u64 = 0;
    let mut literal: u64 = 0;
    // (expanded total after the alias, where, document) for every alias.
    let mut aliases: Vec<(u64, Location, usize)> = Vec::new();
    while let Some(event) = parser.next_event() {
        let (event, span) = match event {
            Ok(e) => e,
            Err(e) => {
                let problem = if matches!(e.kind(), ErrorKind::RecursionLimitExceeded) {
                    Problem::TooDeep
                } else {
                    Problem::Syntax(e.info())
                };
                return Err(Refusal {
                    document,
                    location: location(e.marker()),
                    problem,
                });
            }
        };
        let at = location(&span.start);
        let refuse = |problem| Refusal {
            document,
            location: at,
            problem,
        };
        match event {
            Event::DocumentEnd => {
                document += 1;
                open.clear();
                anchors.clear();
            }
            Event::Scalar(value, _, anchor, _) => {
                let cost = NODE_COST.saturating_add(value.len() as u64);
                expanded = expanded.saturating_add(cost);
                literal = literal.saturating_add(cost);
                if anchor != 0 {
                    anchors.insert(anchor, cost);
                }
            }
            Event::SequenceStart(_, anchor, _) | Event::MappingStart(_, anchor, _) => {
                if open.len() >= MAX_DEPTH {
                    return Err(refuse(Problem::TooDeep));
                }
                open.push((anchor, expanded));
                expanded = expanded.saturating_add(NODE_COST);
                literal = literal.saturating_add(NODE_COST);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, start)) = open.pop()
                    && anchor != 0
                {
                    anchors.insert(anchor, expanded.saturating_sub(start));
                }
            }
            Event::Alias(id) => {
                let Some(&size) = anchors.get(&id) else {
                    return Err(refuse(Problem::UndefinedAlias(
                        span.slice(text)
                            .map(|s| s.trim_start_matches('*').to_owned())
                            .unwrap_or_default(),
                    )));
                };
                expanded = expanded.saturating_add(size);
                literal = literal.saturating_add(NODE_COST);
                if expanded > limits.max_expanded {
                    return Err(refuse(Problem::Expansion {
                        size: expanded,
                        limit: limits.max_expanded,
                        relative: false,
                    }));
                }
                aliases.push((expanded, at, document));
            }
            Event::UnresolvedAlias(name) => {
                return Err(refuse(Problem::UndefinedAlias(name.into_owned())));
            }
            _ => {}
        }
    }
    let relative = literal.saturating_mul(limits.ratio).max(RATIO_FLOOR);
    if expanded > relative {
        // The alias at which the expansion first went over.
        let (_, at, document) = aliases
            .iter()
            .find(|(total, _, _)| *total > relative)
            .or(aliases.last())
            .copied()
            .unwrap_or((0, Location { line: 1, column: 1 }, 0));
        return Err(Refusal {
            document,
            location: at,
            problem: Problem::Expansion {
                size: expanded,
                limit: relative,
                relative: true,
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_expanded: 64 * 1024 * 1024,
        ratio: 10,
    };

    fn problem(text: &str) -> Option<(usize, usize, usize, Problem)> {
        scan_yaml(text, LIMITS)
            .err()
            .map(|r| (r.document, r.location.line, r.location.column, r.problem))
    }

    #[test]
    fn plain_documents_pass() {
        assert_eq!(problem("a: 1\n---\nb: [1, {c: d}]\n...\n"), None);
        assert_eq!(problem("a: &x {b: 1}\nc: *x\n"), None);
        assert_eq!(problem(""), None);
    }

    #[test]
    fn undefined_aliases_are_refused_with_position() {
        assert_eq!(
            problem("<: *a\n"),
            Some((0, 1, 4, Problem::UndefinedAlias("a".into())))
        );
        assert_eq!(
            problem("a: &base 1\n---\ncopy: *base\n"),
            Some((1, 3, 7, Problem::UndefinedAlias("base".into())))
        );
    }

    #[test]
    fn depth_is_limited_while_scanning() {
        let flow = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let p = problem(&flow);
        assert!(matches!(p, Some((0, 1, _, Problem::TooDeep))), "{p:?}");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(problem(&ok), None);
        let block: String = (0..=MAX_DEPTH)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        assert!(matches!(problem(&block), Some((0, _, _, Problem::TooDeep))));
    }

    #[test]
    fn expansion_is_budgeted() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for c in 'b'..='f' {
            text.push_str(&format!("{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = c;
        }
        let Some((0, line, _, Problem::Expansion { relative: true, .. })) = problem(&text) else {
            panic!("{:?}", problem(&text));
        };
        assert!(line > 1);
        let tight = Limits {
            max_expanded: 1000,
            ratio: 10,
        };
        let r = scan_yaml(&text, tight).unwrap_err();
        assert!(matches!(
            r.problem,
            Problem::Expansion {
                relative: false,
                limit: 1000,
                ..
            }
        ));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let Some((1, 3, _, Problem::Syntax(_))) = problem("a: 1\n---\nb: [\n---\nc: 3\n") else {
            panic!()
        };
    }
}
