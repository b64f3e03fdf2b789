//! The [`Source`] conformance suite.
//!
//! A backend implements [`SourceFixture`] (how to make commits in it) and
//! calls [`run_all`]; each behaviour is also a public function so a backend
//! can run the ones it supports. Every behaviour uses its own branch names,
//! so they can share one repository.

use async_trait::async_trait;

use crate::revision::Person;
use crate::source::{Source, SourceError};

/// How the suite makes commits in a backend under test.
#[async_trait]
pub trait SourceFixture: Send {
    /// The backend under test.
    type Source: Source;

    /// Commits exactly `files` (the whole tree) on `branch` (created if
    /// needed, parent = the branch's tip), and returns the commit id.
    async fn commit(
        &mut self,
        branch: &str,
        files: &[(&str, &[u8])],
        author: &Person,
        message: &str,
    ) -> String;

    /// Creates a tag pointing at a commit.
    async fn tag(&mut self, name: &str, commit: &str);

    /// The backend.
    fn source(&self) -> &Self::Source;
}

fn person(name: &str, time: i64) -> Person {
    Person {
        name: name.to_owned(),
        email: format!("{name}@example.com"),
        time,
        offset_seconds: 0,
    }
}

/// Runs every behaviour.
pub async fn run_all<F: SourceFixture>(f: &mut F) {
    resolves_references(f).await;
    unknown_references_are_not_found(f).await;
    snapshots_are_hermetic(f).await;
    snapshots_under_a_path(f).await;
    changed_paths_between_revisions(f).await;
}

/// Branches, tags, full and abbreviated ids resolve to the same revision,
/// with the commit's metadata.
pub async fn resolves_references<F: SourceFixture>(f: &mut F) {
    let ada = person("ada", 1_700_000_000);
    let first = f
        .commit(
            "conf-resolve",
            &[("a.yaml", b"a: 1\n")],
            &ada,
            "first\n\nbody",
        )
        .await;
    let second = f
        .commit(
            "conf-resolve",
            &[("a.yaml", b"a: 2\n")],
            &person("bob", 1_700_000_100),
            "second",
        )
        .await;
    f.tag("conf-resolve-v1", &first).await;
    let s = f.source();
    let by_branch = s.resolve("conf-resolve").await.expect("resolve branch");
    assert_eq!(by_branch.id, second, "a branch resolves to its tip");
    assert_eq!(
        by_branch.parents,
        vec![first.clone()],
        "parents are recorded"
    );
    assert_eq!(by_branch.author.name, "bob");
    assert_eq!(by_branch.summary(), "second");
    assert!(!by_branch.tree.is_empty(), "the tree id is recorded");
    let by_tag = s.resolve("conf-resolve-v1").await.expect("resolve tag");
    assert_eq!(by_tag.id, first, "a tag resolves to its commit");
    assert_eq!(by_tag.author.name, "ada");
    assert_eq!(by_tag.author.time, ada.time);
    assert_eq!(by_tag.message.trim_end(), "first\n\nbody");
    let by_id = s.resolve(&first).await.expect("resolve full id");
    assert_eq!(by_id.id, first);
    assert_eq!(by_id.tree, by_tag.tree);
    let by_short = s
        .resolve(&first[..10])
        .await
        .expect("resolve abbreviated id");
    assert_eq!(by_short.id, first);
    let full = s
        .resolve("refs/heads/conf-resolve")
        .await
        .expect("resolve full ref name");
    assert_eq!(full.id, second);
}

/// Unknown names and ids are [`SourceError::NotFound`].
pub async fn unknown_references_are_not_found<F: SourceFixture>(f: &mut F) {
    let s = f.source();
    for r in [
        "no-such-branch",
        "refs/heads/no-such",
        "0000000000000000000000000000000000000bad",
    ] {
        match s.resolve(r).await {
            Err(SourceError::NotFound { reference }) => assert_eq!(reference, r),
            other => panic!("resolve({r:?}) must be NotFound, got {other:?}"),
        }
    }
}

/// The same revision always gives the same snapshot; blob ids are content
/// ids (same bytes, same id; other bytes, other id).
pub async fn snapshots_are_hermetic<F: SourceFixture>(f: &mut F) {
    let p = person("ada", 1_700_000_200);
    let one = f
        .commit(
            "conf-hermetic",
            &[
                ("x/a.yaml", b"a: 1\n"),
                ("x/b.yaml", b"a: 1\n"),
                ("c.json", b"{}"),
            ],
            &p,
            "one",
        )
        .await;
    f.commit("conf-hermetic", &[("x/a.yaml", b"a: 2\n")], &p, "two")
        .await;
    let s = f.source();
    let r1 = s.resolve(&one).await.expect("resolve");
    let a = s.snapshot(&r1, None).await.expect("snapshot");
    let b = s.snapshot(&r1, None).await.expect("snapshot again");
    assert_eq!(a, b, "the same revision gives an identical snapshot");
    let paths: Vec<&str> = a.files().map(|(p, _)| p).collect();
    assert_eq!(paths, ["c.json", "x/a.yaml", "x/b.yaml"]);
    let blob = |snap: &crate::Snapshot, p: &str| snap.get(p).cloned().expect("file present");
    assert_eq!(
        blob(&a, "x/a.yaml").id,
        blob(&a, "x/b.yaml").id,
        "same bytes, same id"
    );
    assert_eq!(&*blob(&a, "x/a.yaml").data, b"a: 1\n");
    assert_eq!(a.revision().map(|r| r.id.as_str()), Some(one.as_str()));
    let r2 = s.resolve("conf-hermetic").await.expect("resolve tip");
    let c = s.snapshot(&r2, None).await.expect("snapshot tip");
    assert_eq!(c.len(), 1, "a commit's tree is exactly its files");
    assert_ne!(
        blob(&c, "x/a.yaml").id,
        blob(&a, "x/a.yaml").id,
        "other bytes, other id"
    );
}

/// A snapshot limited to a folder has paths relative to it; a missing
/// folder is [`SourceError::PathNotFound`].
pub async fn snapshots_under_a_path<F: SourceFixture>(f: &mut F) {
    let p = person("ada", 1_700_000_300);
    f.commit(
        "conf-path",
        &[
            ("envs/prod/app.yaml", b"p: 1\n"),
            ("envs/prod/db/db.yaml", b"d: 1\n"),
            ("envs/dev/app.yaml", b"p: 2\n"),
            ("envs/prod-old/x.yaml", b"o: 1\n"),
        ],
        &p,
        "envs",
    )
    .await;
    let s = f.source();
    let r = s.resolve("conf-path").await.expect("resolve");
    for path in ["envs/prod", "envs/prod/", "/envs/prod"] {
        let snap = s
            .snapshot(&r, Some(path))
            .await
            .expect("snapshot under path");
        let paths: Vec<&str> = snap.files().map(|(p, _)| p).collect();
        assert_eq!(paths, ["app.yaml", "db/db.yaml"], "under {path:?}");
    }
    match s.snapshot(&r, Some("envs/nope")).await {
        Err(SourceError::PathNotFound { path, .. }) => assert_eq!(path, "envs/nope"),
        other => panic!("a missing folder must be PathNotFound, got {other:?}"),
    }
}

/// Added, modified and deleted files are listed, sorted, limited to a folder.
pub async fn changed_paths_between_revisions<F: SourceFixture>(f: &mut F) {
    let p = person("ada", 1_700_000_400);
    let a = f
        .commit(
            "conf-changes",
            &[
                ("d/keep.yaml", b"k\n"),
                ("d/mod.yaml", b"m1\n"),
                ("d/del.yaml", b"x\n"),
                ("top.yaml", b"t\n"),
            ],
            &p,
            "a",
        )
        .await;
    let b = f
        .commit(
            "conf-changes",
            &[
                ("d/keep.yaml", b"k\n"),
                ("d/mod.yaml", b"m2\n"),
                ("d/new.yaml", b"n\n"),
                ("top.yaml", b"t2\n"),
            ],
            &p,
            "b",
        )
        .await;
    let s = f.source();
    let ra = s.resolve(&a).await.expect("resolve a");
    let rb = s.resolve(&b).await.expect("resolve b");
    let all = s
        .changed_paths(&ra, &rb, None)
        .await
        .expect("changed paths");
    assert_eq!(all, ["d/del.yaml", "d/mod.yaml", "d/new.yaml", "top.yaml"]);
    let under = s
        .changed_paths(&ra, &rb, Some("d"))
        .await
        .expect("changed under d");
    assert_eq!(under, ["del.yaml", "mod.yaml", "new.yaml"]);
    let none = s.changed_paths(&rb, &rb, None).await.expect("no changes");
    assert!(none.is_empty());
}
