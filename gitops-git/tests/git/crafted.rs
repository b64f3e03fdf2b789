//! Crafted trees (issue 10, item 5): trees that `git fsck` reports as
//! errors (two entries of one name, names with `/`, `.`, `..`, `.git`,
//! empty names, entries out of order) are refused as invalid, naming the
//! tree and the entry, by snapshots and by the reconciler, which then
//! applies nothing.

use gitops_core::{
    MemoryRuntime, OwnerId, Reconciler, ReconcilerConfig, Source, SourceError, SyncStatus,
    TreeDefect,
};
use gitops_git::GitSource;

use crate::fixture::Repo;

const CM_A: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  v: shown\n";
const CM_B: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  v: deployed\n";

/// Writes a blob; returns its id.
fn blob(repo: &Repo, content: &str) -> String {
    repo.git_stdin(&["hash-object", "-w", "--stdin"], content.as_bytes())
}

/// Writes a tree object with exactly these `(mode, name, id)` entries, in
/// this order, unchecked (as an attacker's git would); returns its id.
fn raw_tree(repo: &Repo, entries: &[(&str, &[u8], &str)]) -> String {
    let mut bytes = Vec::new();
    for (mode, name, id) in entries {
        bytes.extend_from_slice(mode.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(name);
        bytes.push(0);
        for i in (0..id.len()).step_by(2) {
            bytes.push(u8::from_str_radix(&id[i..i + 2], 16).unwrap());
        }
    }
    repo.git_stdin(
        &["hash-object", "-t", "tree", "--literally", "-w", "--stdin"],
        &bytes,
    )
}

/// Commits `tree` on `main`; returns the commit id.
fn commit_tree(repo: &Repo, tree: &str, message: &str) -> String {
    let mut args = vec!["commit-tree", tree, "-m", message];
    let parent = repo.git(&["rev-parse", "--verify", "-q", "main"]);
    let parent = parent.trim().to_owned();
    if !parent.is_empty() {
        args.extend(["-p", &parent]);
    }
    let id = repo.git(&args);
    repo.git(&["update-ref", "refs/heads/main", &id]);
    id
}

/// A repository with a first good commit (so that `main` exists).
fn repo_with_history() -> Repo {
    let mut repo = Repo::new();
    repo.write("app.yaml", CM_A);
    repo.commit("good");
    repo
}

fn invalid(err: SourceError) -> (String, String, String, TreeDefect) {
    match err {
        SourceError::InvalidTree {
            tree,
            path,
            entry,
            defect,
        } => (tree, path, entry, defect),
        other => panic!("expected InvalidTree, got {other:?}"),
    }
}

#[tokio::test]
async fn trees_git_fsck_calls_errors_are_refused() {
    let repo = repo_with_history();
    let a = blob(&repo, CM_A);
    let b = blob(&repo, CM_B);
    type Case<'a> = (Vec<(&'a str, &'a [u8], &'a str)>, &'a [u8], TreeDefect);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![("100644", b"app.yaml", &a), ("100644", b"app.yaml", &b)],
            b"app.yaml",
            TreeDefect::DuplicateEntries,
        ),
        (
            vec![("100644", b"app.yaml", &a), ("100644", b"b/app.yaml", &b)],
            b"b/app.yaml",
            TreeDefect::FullPathname,
        ),
        (vec![("100644", b".", &b)], b".", TreeDefect::HasDot),
        (vec![("100644", b"..", &b)], b"..", TreeDefect::HasDotdot),
        (vec![("100644", b"", &b)], b"", TreeDefect::EmptyName),
        (
            vec![("100644", b".git", &b)],
            b".git",
            TreeDefect::HasDotgit,
        ),
        (
            vec![("100644", b".GiT", &b)],
            b".GiT",
            TreeDefect::HasDotgit,
        ),
        // What HFS+ and NTFS read as `.git`.
        (
            vec![("100644", ".g\u{200c}it".as_bytes(), &b)],
            ".g\u{200c}it".as_bytes(),
            TreeDefect::HasDotgit,
        ),
        (
            vec![("100644", b"git~1", &b)],
            b"git~1",
            TreeDefect::HasDotgit,
        ),
        (
            vec![("100644", b".git.", &b)],
            b".git.",
            TreeDefect::HasDotgit,
        ),
        (
            vec![("120000", b".gitmodules", &b)],
            b".gitmodules",
            TreeDefect::GitmodulesSymlink,
        ),
        (
            vec![("100644", b"b.yaml", &b), ("100644", b"a.yaml", &a)],
            b"a.yaml",
            TreeDefect::TreeNotSorted,
        ),
    ];
    let source = GitSource::open(repo.path()).unwrap();
    let mut crafted: Vec<(String, TreeDefect)> = Vec::new();
    for (entries, entry, defect) in cases {
        let tree = raw_tree(&repo, &entries);
        let id = commit_tree(&repo, &tree, "crafted");
        let revision = source.resolve(&id).await.unwrap();
        let err = source.snapshot(&revision, None).await.unwrap_err();
        let shown = err.to_string();
        let (t, path, e, d) = invalid(err);
        assert_eq!(t, tree, "{shown}");
        assert_eq!(path, "");
        assert_eq!(e.as_bytes(), entry, "{shown}");
        assert_eq!(d, defect, "{shown}");
        assert!(
            shown.contains(&tree) && shown.contains(d.fsck_id()),
            "{shown}"
        );
        crafted.push((tree, d));
    }
    // git fsck --strict reports each of them as an error, with the same
    // message id (a tree with an empty name does not even parse for git).
    let fsck = std::process::Command::new("git")
        .args(["fsck", "--strict", "--no-dangling"])
        .current_dir(repo.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&fsck.stderr);
    for (tree, defect) in crafted {
        assert!(
            report
                .lines()
                .filter(|l| l.starts_with("error in tree") && l.contains(&tree))
                .any(|l| l.contains(defect.fsck_id())
                    || (defect == TreeDefect::EmptyName && l.contains("badTree"))),
            "git fsck does not report {defect:?} for {tree}:\n{report}"
        );
    }
}

#[tokio::test]
async fn a_crafted_tree_deep_inside_or_above_the_folder_is_named() {
    let repo = repo_with_history();
    let a = blob(&repo, CM_A);
    let b = blob(&repo, CM_B);
    let bad = raw_tree(
        &repo,
        &[("100644", b"app.yaml", &a), ("100644", b"app.yaml", &b)],
    );
    let prod = raw_tree(&repo, &[("40000", b"apps", &bad)]);
    let envs = raw_tree(&repo, &[("40000", b"prod", &prod)]);
    let root = raw_tree(&repo, &[("40000", b"envs", &envs)]);
    let id = commit_tree(&repo, &root, "deep");
    let source = GitSource::open(repo.path()).unwrap();
    let revision = source.resolve(&id).await.unwrap();
    for folder in [None, Some("envs/prod")] {
        let (tree, path, entry, defect) =
            invalid(source.snapshot(&revision, folder).await.unwrap_err());
        assert_eq!(tree, bad);
        // Named from the repository's root, whatever folder was read.
        assert_eq!(path, "envs/prod/apps");
        assert_eq!(entry, "app.yaml");
        assert_eq!(defect, TreeDefect::DuplicateEntries);
    }

    // Above the snapshot's folder: two `envs` folders, one of which git
    // shows and the other deployed.
    let good_envs = raw_tree(
        &repo,
        &[(
            "40000",
            b"prod",
            &raw_tree(&repo, &[("100644", b"app.yaml", &a)]),
        )],
    );
    let evil_envs = raw_tree(
        &repo,
        &[(
            "40000",
            b"prod",
            &raw_tree(&repo, &[("100644", b"app.yaml", &b)]),
        )],
    );
    let root = raw_tree(
        &repo,
        &[
            ("40000", b"envs", &good_envs),
            ("40000", b"envs", &evil_envs),
        ],
    );
    let id = commit_tree(&repo, &root, "two envs");
    let revision = source.resolve(&id).await.unwrap();
    let (tree, path, entry, defect) = invalid(
        source
            .snapshot(&revision, Some("envs/prod"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (tree, path, entry, defect),
        (
            root,
            String::new(),
            "envs".to_owned(),
            TreeDefect::DuplicateEntries
        )
    );
}

#[tokio::test]
async fn valid_raw_trees_are_accepted_in_git_order() {
    // The same writer, with a tree git fsck accepts: `a.yaml` sorts before
    // the folder `a` (compared as `a/`), which sorts before `a0`.
    let repo = repo_with_history();
    let a = blob(&repo, CM_A);
    let inner = raw_tree(&repo, &[("100644", b"x.yaml", &a)]);
    let root = raw_tree(
        &repo,
        &[
            ("100644", b"a.yaml", &a),
            ("40000", b"a", &inner),
            ("100644", b"a0", &a),
            ("100644", b"z.gitmodules", &a),
        ],
    );
    let id = commit_tree(&repo, &root, "valid");
    // git agrees that it is valid.
    repo.git(&["fsck", "--strict", "--no-dangling"]);
    let source = GitSource::open(repo.path()).unwrap();
    let revision = source.resolve(&id).await.unwrap();
    let snapshot = source.snapshot(&revision, None).await.unwrap();
    let paths: Vec<_> = snapshot.files().map(|(p, _)| p.to_owned()).collect();
    assert_eq!(paths, ["a.yaml", "a/x.yaml", "a0", "z.gitmodules"]);
}

#[tokio::test]
async fn an_incremental_snapshot_checks_the_new_trees() {
    let repo = repo_with_history();
    let source = GitSource::open(repo.path()).unwrap();
    let first = source.resolve("main").await.unwrap();
    let previous = source.snapshot(&first, None).await.unwrap();
    let a = blob(&repo, CM_A);
    let b = blob(&repo, CM_B);
    let bad = raw_tree(
        &repo,
        &[("100644", b"app.yaml", &a), ("100644", b"app.yaml", &b)],
    );
    let id = commit_tree(&repo, &bad, "crafted");
    let second = source.resolve(&id).await.unwrap();
    let err = source
        .snapshot_incremental(&previous, &first, &second, None)
        .unwrap_err();
    assert_eq!(invalid(err).3, TreeDefect::DuplicateEntries);
}

/// Through the reconciler: a revision whose tree is crafted applies
/// nothing, and the report names the tree and the entry.
#[tokio::test]
async fn the_reconciler_applies_nothing_from_a_crafted_tree() {
    let repo = repo_with_history();
    let a = blob(&repo, CM_A);
    let b = blob(&repo, CM_B);
    let source = GitSource::open(repo.path()).unwrap();
    let runtime = MemoryRuntime::with_system_namespaces();
    let config = ReconcilerConfig::new(OwnerId::new("app").unwrap());
    let reconciler = Reconciler::new(source, runtime.clone(), config).unwrap();
    let report = reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced);
    let before = runtime.len();

    // `git show main:app.yaml` shows the first entry; a reader that keeps
    // the last one would deploy the second.
    let tree = raw_tree(
        &repo,
        &[("100644", b"app.yaml", &a), ("100644", b"app.yaml", &b)],
    );
    commit_tree(&repo, &tree, "crafted");
    let shown = repo.git(&["show", "main:app.yaml"]);
    assert!(shown.contains("shown"), "{shown}");

    let err = reconciler.reconcile_once("main").await.unwrap_err();
    assert_eq!(err.phase(), gitops_core::Phase::Snapshot);
    assert!(
        matches!(
            err.cause(),
            Some(gitops_core::Cause::Source(SourceError::InvalidTree { .. }))
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let report = err.report;
    assert_eq!(report.status, SyncStatus::SourceFailed);
    assert!(report.steps.is_empty());
    let message = report
        .errors
        .iter()
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        message.contains(&tree)
            && message.contains("app.yaml")
            && message.contains("duplicateEntries"),
        "{message}"
    );
    assert_eq!(runtime.len(), before);
    let live = format!("{:?}", runtime.objects());
    assert!(!live.contains("deployed"), "{live}");
}

/// The error names a forged entry escaped: its name cannot add a line to
/// the message or reach the terminal as an escape sequence.
#[tokio::test]
async fn the_invalid_tree_error_escapes_the_entry_name() {
    let repo = repo_with_history();
    let a = blob(&repo, CM_A);
    let name = "x\n  applied: nothing wrong\u{1b}[2J\u{202e}.yaml".as_bytes();
    let tree = raw_tree(&repo, &[("100644", name, &a), ("100644", name, &a)]);
    let id = commit_tree(&repo, &tree, "forged name");
    let source = GitSource::open(repo.path()).unwrap();
    let revision = source.resolve(&id).await.unwrap();
    let err = source.snapshot(&revision, None).await.unwrap_err();
    let shown = err.to_string();
    assert_eq!(
        shown,
        format!(
            "invalid tree {tree} at \"\": entry \"x\\n  applied: nothing wrong\\e[2J\\u{{202e}}.yaml\": \
             the tree has two entries of this name (git fsck: duplicateEntries)"
        )
    );
    // The error keeps the exact name for programs.
    assert_eq!(invalid(err).2.as_bytes(), name);
}
