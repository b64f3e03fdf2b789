//! Snapshots of a repository repacked as `git gc --aggressive` does (delta
//! chains up to 50): files are read in pack order, and the result and its
//! errors are the same as from loose objects.

use std::collections::BTreeMap;

use gitops_core::SourceError;
use gitops_git::{GitSource, GitSourceOptions};

use crate::fixture::Repo;

fn manifest(i: usize, rev: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{i:03}\n  namespace: team-{}\ndata:\n  revision: \"{rev}\"\n  LOG_FORMAT: json\n  padding: \"{}\"\n",
        i % 5,
        "x".repeat(200)
    )
}

/// 100 similar files over 10 commits, each commit editing 30 of them.
fn history() -> Repo {
    let mut repo = Repo::new();
    for i in 0..100 {
        repo.write(&format!("team-{}/app-{i:03}.yaml", i % 5), manifest(i, 0));
    }
    repo.commit("all files");
    for rev in 1..=10 {
        for k in 0..30 {
            let i = (rev * 37 + k * 7) % 100;
            repo.write(&format!("team-{}/app-{i:03}.yaml", i % 5), manifest(i, rev));
        }
        repo.commit(&format!("edit {rev}"));
    }
    repo
}

fn files(source: &GitSource, head: &str) -> BTreeMap<String, Vec<u8>> {
    let revision = source.resolve_blocking(head).unwrap();
    source
        .snapshot_blocking(&revision, None)
        .unwrap()
        .files()
        .map(|(p, b)| (p.to_owned(), b.data.to_vec()))
        .collect()
}

#[test]
fn a_deep_delta_repository_reads_as_its_loose_objects() {
    let repo = history();
    let head = repo.head();
    let loose = files(&GitSource::open(repo.path()).unwrap(), &head);
    assert_eq!(loose.len(), 100);
    repo.git(&["repack", "-adf", "-q", "--depth=50", "--window=250"]);
    repo.git(&["prune-packed"]);
    let chains = repo.git(&["verify-pack", "-v", &pack_of(&repo)]);
    assert!(
        chains.contains("chain length = 10"),
        "delta chains of 10 and more: {chains}"
    );
    for options in [
        GitSourceOptions::default(),
        GitSourceOptions::default().with_pack_cache(0),
        GitSourceOptions::default().with_cache(0, 0),
    ] {
        let source = GitSource::open_with(repo.path(), options).unwrap();
        assert_eq!(files(&source, &head), loose);
    }
}

#[test]
fn the_error_named_is_the_first_in_tree_order_whatever_the_packing() {
    let repo = history();
    repo.git(&["repack", "-adf", "-q", "--depth=50", "--window=250"]);
    let options = GitSourceOptions::default().with_max_file_size(10);
    let source = GitSource::open_with(repo.path(), options).unwrap();
    let revision = source.resolve_blocking(&repo.head()).unwrap();
    match source.snapshot_blocking(&revision, None) {
        Err(SourceError::Refused { path, .. }) => assert_eq!(path, "team-0/app-000.yaml"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn pack_of(repo: &Repo) -> String {
    let dir = repo.path().join(".git/objects/pack");
    let pack = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap();
    pack.display().to_string()
}
