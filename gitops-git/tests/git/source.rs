//! GitSource against fixture repositories: references, snapshots, changes,
//! history, signatures, caches and environments.

use gitops_core::{BlobId, Source, SourceError, SpecialEntry};
use gitops_git::{GitSource, GitSourceOptions, SymlinkPolicy};

use crate::fixture::{Repo, person};

const MULTI_DOC: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n";

/// A repository with many files in nested folders, a multi-document file,
/// and a tag of each kind.
fn many_files() -> (Repo, String) {
    let mut repo = Repo::new();
    for env in ["dev", "staging", "prod"] {
        for app in 0..20 {
            repo.write(
                &format!("envs/{env}/apps/app-{app:02}/deploy.yaml"),
                format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{app}\n  namespace: {env}\n"),
            );
        }
    }
    repo.write("envs/prod/multi.yaml", MULTI_DOC);
    repo.write("README.md", "# env repo\n");
    let first = repo.commit("initial layout");
    repo.git(&["tag", "v1-light"]);
    repo.git(&["tag", "-a", "v1-annotated", "-m", "release 1"]);
    (repo, first)
}

#[tokio::test]
async fn resolves_every_kind_of_reference() {
    let (mut repo, first) = many_files();
    repo.write("envs/dev/extra.yaml", "a: 1\n");
    let ada = person("Ada Lovelace", 0);
    let second = repo.commit_as(&ada, "dev: add extra\n\nWhy: testing.");
    let source = GitSource::open(repo.path()).unwrap();

    let head = source.resolve("HEAD").await.unwrap();
    assert_eq!(head.id, second);
    assert_eq!(head.reference.as_deref(), Some("refs/heads/main"));
    let main = source.resolve("main").await.unwrap();
    assert_eq!(main.id, second);
    assert_eq!(main.reference.as_deref(), Some("refs/heads/main"));
    assert_eq!(main.parents, vec![first.clone()]);
    assert_eq!(main.tree, repo.git(&["rev-parse", "HEAD^{tree}"]));
    assert_eq!(main.author.name, "Ada Lovelace");
    assert_eq!(main.author.email, "Ada Lovelace@example.com");
    assert_eq!(main.author.time, 1_700_000_120);
    assert_eq!(main.committer.time, 1_700_000_120);
    assert_eq!(main.message, "dev: add extra\n\nWhy: testing.\n");
    assert_eq!(main.summary(), "dev: add extra");
    assert_eq!(main.signature, gitops_core::SignatureVerdict::NotChecked);

    let light = source.resolve("v1-light").await.unwrap();
    assert_eq!(light.id, first);
    assert_eq!(light.reference.as_deref(), Some("refs/tags/v1-light"));
    let annotated = source.resolve("v1-annotated").await.unwrap();
    assert_eq!(annotated.id, first, "annotated tags peel to their commit");
    assert_eq!(
        annotated.reference.as_deref(),
        Some("refs/tags/v1-annotated")
    );
    assert_eq!(
        source.resolve("refs/tags/v1-annotated").await.unwrap().id,
        first
    );

    assert_eq!(source.resolve(&first).await.unwrap().id, first);
    assert_eq!(source.resolve(&first[..7]).await.unwrap().id, first);
    assert_eq!(
        source.resolve(&first.to_uppercase()).await.unwrap().id,
        first
    );
    assert_eq!(source.resolve("main~1").await.unwrap().id, first);
    // The annotated tag object's own id peels to the commit too.
    let tag_object = repo.git(&["rev-parse", "v1-annotated"]);
    assert_eq!(source.resolve(&tag_object).await.unwrap().id, first);
}

#[tokio::test]
async fn unknown_and_ambiguous_references_are_clear_errors() {
    let (repo, _) = many_files();
    // A branch and a tag of the same name.
    repo.git(&["branch", "prod"]);
    repo.git(&["tag", "prod"]);
    let source = GitSource::open(repo.path()).unwrap();
    match source.resolve("prod").await {
        Err(SourceError::Ambiguous {
            reference,
            candidates,
        }) => {
            assert_eq!(reference, "prod");
            assert_eq!(candidates, ["refs/tags/prod", "refs/heads/prod"]);
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    // Full names disambiguate.
    source.resolve("refs/heads/prod").await.unwrap();
    for unknown in ["nope", "refs/heads/nope", "deadbeef", "", "a..b", "HEAD~99"] {
        assert!(
            matches!(
                source.resolve(unknown).await,
                Err(SourceError::NotFound { .. })
            ),
            "{unknown:?} must be NotFound"
        );
    }
    // A tree is not a commit.
    let tree = repo.git(&["rev-parse", "HEAD^{tree}"]);
    assert!(matches!(
        source.resolve(&tree).await,
        Err(SourceError::Refused { .. })
    ));
}

#[tokio::test]
async fn an_abbreviated_id_matching_several_objects_is_ambiguous() {
    let repo = Repo::new();
    // Enough blobs that some share their first 4 hex digits.
    let mut input = Vec::new();
    for i in 0..1500 {
        let path = format!("blob-{i}");
        std::fs::write(repo.path().join(&path), format!("{i}\n")).unwrap();
        input.extend_from_slice(path.as_bytes());
        input.push(b'\n');
    }
    let ids = repo.git_stdin(&["hash-object", "-w", "--stdin-paths"], &input);
    let mut seen = std::collections::HashMap::new();
    let prefix = ids
        .lines()
        .find_map(|id| {
            seen.insert(id[..4].to_owned(), ())
                .map(|()| id[..4].to_owned())
        })
        .expect("a shared 4-digit prefix among 1500 ids");
    let source = GitSource::open(repo.path()).unwrap();
    match source.resolve(&prefix).await {
        Err(SourceError::Ambiguous { candidates, .. }) => assert!(candidates.len() >= 2),
        other => panic!("expected Ambiguous for {prefix}, got {other:?}"),
    }
}

#[tokio::test]
async fn snapshots_read_the_object_database_not_the_work_tree() {
    let (repo, first) = many_files();
    let source = GitSource::open(repo.path()).unwrap();
    let rev = source.resolve("main").await.unwrap();
    // Uncommitted changes in the work tree are invisible.
    repo.write("envs/prod/multi.yaml", "changed: true\n");
    repo.write("envs/prod/untracked.yaml", "x: 1\n");
    let snap = source.snapshot(&rev, None).await.unwrap();
    assert_eq!(snap.len(), 3 * 20 + 2);
    assert_eq!(snap.revision().unwrap().id, first);
    let multi = snap.get("envs/prod/multi.yaml").unwrap();
    assert_eq!(
        &*multi.data,
        MULTI_DOC.as_bytes(),
        "multi-document files are kept whole"
    );
    assert_eq!(
        multi.id,
        BlobId::from_hex(repo.git(&["rev-parse", "HEAD:envs/prod/multi.yaml"]))
    );
    assert_eq!(multi.id, BlobId::for_bytes(MULTI_DOC.as_bytes()));
    for (path, blob) in snap.files() {
        assert_eq!(
            blob.id,
            BlobId::for_bytes(&blob.data),
            "{path}: id is the content id"
        );
    }

    let prod = source.snapshot(&rev, Some("envs/prod")).await.unwrap();
    assert_eq!(prod.len(), 21);
    assert_eq!(prod.root(), Some("envs/prod"));
    assert!(prod.get("apps/app-07/deploy.yaml").is_some());
    let deep = source
        .snapshot(&rev, Some("./envs//prod/apps/"))
        .await
        .unwrap();
    assert_eq!(deep.len(), 20);
    assert_eq!(deep.root(), Some("envs/prod/apps"));

    for missing in ["envs/nope", "README.md", "envs/prod/multi.yaml"] {
        assert!(
            matches!(
                source.snapshot(&rev, Some(missing)).await,
                Err(SourceError::PathNotFound { .. })
            ),
            "{missing}"
        );
    }
    assert!(matches!(
        source.snapshot(&rev, Some("envs/../secrets")).await,
        Err(SourceError::Refused { .. })
    ));
    // A revision that is not in the repository.
    let mut bogus = rev.clone();
    bogus.id = "1".repeat(40);
    assert!(matches!(
        source.snapshot(&bogus, None).await,
        Err(SourceError::NotFound { .. })
    ));
}

#[tokio::test]
async fn bare_repositories_work_the_same() {
    let (repo, first) = many_files();
    let bare = tempfile::tempdir().unwrap();
    let bare_path = bare.path().join("env.git");
    repo.git(&["clone", "-q", "--bare", ".", bare_path.to_str().unwrap()]);
    let source = GitSource::open(&bare_path).unwrap();
    let rev = source.resolve("main").await.unwrap();
    assert_eq!(rev.id, first);
    let a = source.snapshot(&rev, None).await.unwrap();
    let b = GitSource::open(repo.path())
        .unwrap()
        .snapshot(&rev, None)
        .await
        .unwrap();
    assert_eq!(a, b);
}

#[tokio::test]
async fn symlinks_are_never_followed_and_submodules_are_reported() {
    let mut repo = Repo::new();
    repo.write("app/deploy.yaml", "a: 1\n");
    repo.write("secret.txt", "outside\n");
    repo.commit("base");
    let sub = repo.head();
    repo.stage_symlink("app/link.yaml", "../secret.txt");
    repo.stage_submodule("vendor/lib", &sub);
    repo.commit_index("link and submodule");

    let source = GitSource::open(repo.path()).unwrap();
    let rev = source.resolve("main").await.unwrap();
    let snap = source.snapshot(&rev, None).await.unwrap();
    assert!(snap.get("app/link.yaml").is_none(), "a link is not a file");
    let special: Vec<_> = snap
        .special_entries()
        .map(|(p, e)| (p.to_owned(), e.clone()))
        .collect();
    assert_eq!(
        special,
        [
            (
                "app/link.yaml".to_owned(),
                SpecialEntry::Symlink {
                    target: "../secret.txt".to_owned()
                }
            ),
            (
                "vendor/lib".to_owned(),
                SpecialEntry::Submodule {
                    commit: sub.clone()
                }
            ),
        ]
    );
    let under = source.snapshot(&rev, Some("app")).await.unwrap();
    assert_eq!(under.special_entries().count(), 1);

    let strict = GitSource::open_with(
        repo.path(),
        GitSourceOptions::default().with_symlinks(SymlinkPolicy::Refuse),
    )
    .unwrap();
    match strict.snapshot(&rev, None).await {
        Err(SourceError::Refused { path, .. }) => assert_eq!(path, "app/link.yaml"),
        other => panic!("expected Refused, got {other:?}"),
    }
    // Outside the link's folder, nothing is refused.
    let vendor = strict.snapshot(&rev, Some("vendor")).await.unwrap();
    assert_eq!(vendor.special_entries().count(), 1);
}

#[tokio::test]
async fn files_over_the_size_limit_are_refused() {
    let mut repo = Repo::new();
    repo.write("small.yaml", "a: 1\n");
    repo.write("big/huge.yaml", "x".repeat(10_000));
    repo.commit("big file");
    let source = GitSource::open_with(
        repo.path(),
        GitSourceOptions::default().with_max_file_size(1024),
    )
    .unwrap();
    let rev = source.resolve("main").await.unwrap();
    match source.snapshot(&rev, None).await {
        Err(SourceError::Refused { path, reason }) => {
            assert_eq!(path, "big/huge.yaml");
            assert!(reason.contains("10000 bytes"), "{reason}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    // A warm cache does not bypass the limit.
    let lax = GitSource::open(repo.path()).unwrap();
    lax.snapshot(&rev, None).await.unwrap();
    source.snapshot(&rev, Some("big")).await.unwrap_err();
    assert_eq!(source.snapshot(&rev, None).await.ok(), None);
    assert_eq!(lax.snapshot(&rev, Some("big")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn changed_paths_cover_renames_empty_commits_and_folders() {
    let (mut repo, first) = many_files();
    repo.write("envs/prod/apps/app-01/deploy.yaml", "changed: 1\n");
    repo.remove("envs/dev/apps/app-02/deploy.yaml");
    repo.write("envs/staging/new.yaml", "n: 1\n");
    let second = repo.commit("mixed changes");
    let empty = repo.commit("empty");
    repo.git(&["mv", "envs/prod/multi.yaml", "envs/prod/multi-docs.yaml"]);
    let renamed = repo.commit_index("rename only");

    let source = GitSource::open(repo.path()).unwrap();
    let r = |id: &str| source.resolve_blocking(id).unwrap();
    let (r1, r2, r3, r4) = (r(&first), r(&second), r(&empty), r(&renamed));
    assert_eq!(
        source.changed_paths(&r1, &r2, None).await.unwrap(),
        [
            "envs/dev/apps/app-02/deploy.yaml",
            "envs/prod/apps/app-01/deploy.yaml",
            "envs/staging/new.yaml"
        ]
    );
    assert_eq!(
        source
            .changed_paths(&r1, &r2, Some("envs/prod"))
            .await
            .unwrap(),
        ["apps/app-01/deploy.yaml"]
    );
    assert!(
        source
            .changed_paths(&r2, &r3, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        source.changed_paths(&r3, &r4, None).await.unwrap(),
        ["envs/prod/multi-docs.yaml", "envs/prod/multi.yaml"],
        "a rename is a deletion and an addition"
    );
    // Reversed direction lists the same paths.
    assert_eq!(
        source
            .changed_paths(&r4, &r1, Some("envs/dev"))
            .await
            .unwrap(),
        ["apps/app-02/deploy.yaml"]
    );
    assert!(matches!(
        source.changed_paths(&r1, &r2, Some("envs/none")).await,
        Err(SourceError::PathNotFound { .. })
    ));
}

#[tokio::test]
async fn history_answers_who_changed_what_when_and_why() {
    let mut repo = Repo::new();
    let ada = person("ada", 0);
    let bob = person("bob", 0);
    repo.write("envs/prod/app.yaml", "v: 1\n");
    repo.write("envs/dev/app.yaml", "v: 1\n");
    let c1 = repo.commit_as(&ada, "both: v1");
    repo.write("envs/dev/app.yaml", "v: 2\n");
    let c2 = repo.commit_as(&bob, "dev: v2");
    let c3 = repo.commit_as(&bob, "empty");
    repo.write("envs/prod/app.yaml", "v: 2\n");
    let c4 = repo.commit_as(&ada, "prod: v2\n\nPromoted after soak in dev.");
    repo.git(&["mv", "envs/dev/app.yaml", "envs/dev/application.yaml"]);
    let c5 = repo.commit_index("dev: rename");

    let source = GitSource::open(repo.path()).unwrap();
    let tip = source.resolve("main").await.unwrap();
    let ids = |revs: Vec<gitops_core::Revision>| revs.into_iter().map(|r| r.id).collect::<Vec<_>>();

    let all = source.history(None, &tip, None).unwrap();
    assert_eq!(
        ids(all),
        [c5.clone(), c4.clone(), c3.clone(), c2.clone(), c1.clone()]
    );
    let prod = source.history(None, &tip, Some("envs/prod")).unwrap();
    assert_eq!(prod.len(), 2);
    assert_eq!(prod[0].id, c4);
    assert_eq!(prod[0].author.name, "ada");
    assert_eq!(prod[0].message, "prod: v2\n\nPromoted after soak in dev.\n");
    assert!(prod[0].author.time > prod[1].author.time);
    assert_eq!(prod[1].id, c1);
    let dev = source.history(None, &tip, Some("envs/dev")).unwrap();
    assert_eq!(ids(dev), [c5.clone(), c2.clone(), c1.clone()]);
    let since_c2 = source.resolve(&c2).await.unwrap();
    let dev_since = source
        .history(Some(&since_c2), &tip, Some("envs/dev"))
        .unwrap();
    assert_eq!(ids(dev_since), [c5.as_str()]);
    assert!(source.history(Some(&tip), &tip, None).unwrap().is_empty());
    assert!(
        source
            .history(None, &tip, Some("nowhere"))
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn signed_payload_exposes_signature_and_signed_bytes() {
    let mut repo = Repo::new();
    repo.write("a.yaml", "a: 1\n");
    let unsigned = repo.commit("unsigned");
    let tree = repo.git(&["rev-parse", "HEAD^{tree}"]);
    let payload = format!(
        "tree {tree}\nparent {unsigned}\nauthor A <a@example.com> 1700000000 +0000\ncommitter A <a@example.com> 1700000000 +0000\n\nsigned\n"
    );
    let sig = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----";
    let raw = payload.replacen(
        "\n\nsigned",
        &format!("\ngpgsig {}\n\nsigned", sig.replace('\n', "\n ")),
        1,
    );
    let signed = repo.git_stdin(
        &["hash-object", "-t", "commit", "-w", "--stdin"],
        raw.as_bytes(),
    );
    repo.git(&["update-ref", "refs/heads/signed", &signed]);

    let source = GitSource::open(repo.path()).unwrap();
    let plain = source.resolve(&unsigned).await.unwrap();
    assert_eq!(source.signed_payload(&plain).unwrap(), None);
    let rev = source.resolve("signed").await.unwrap();
    assert_eq!(rev.signature, gitops_core::SignatureVerdict::NotChecked);
    assert_eq!(rev.summary(), "signed");
    let (signature, signed_bytes) = source.signed_payload(&rev).unwrap().unwrap();
    assert_eq!(String::from_utf8(signature).unwrap().trim_end(), sig);
    assert_eq!(String::from_utf8(signed_bytes).unwrap(), payload);
}

#[tokio::test]
async fn new_commits_read_only_what_changed() {
    let (mut repo, first) = many_files();
    repo.write("envs/prod/apps/app-03/deploy.yaml", "changed: 1\n");
    repo.remove("envs/dev/apps/app-04/deploy.yaml");
    repo.write("envs/dev/added.yaml", "n: 1\n");
    let second = repo.commit("one change");
    let source = GitSource::open(repo.path()).unwrap();
    let r1 = source.resolve(&first).await.unwrap();
    let r2 = source.resolve(&second).await.unwrap();

    let s1 = source.snapshot(&r1, None).await.unwrap();
    let cold = source.cache_stats();
    assert_eq!(cold.blob_hits, 0);
    // 60 deployment files, but identical contents share blobs.
    assert!(cold.blob_misses > 0);
    let s2 = source.snapshot(&r2, None).await.unwrap();
    let warm = source.cache_stats();
    assert_eq!(
        warm.blob_misses - cold.blob_misses,
        2,
        "only the two new contents are read"
    );
    // Unchanged folders are listed from the cache: only the root and the
    // changed folders' ancestors are read.
    assert_eq!(warm.tree_misses - cold.tree_misses, 7, "{warm:?}");

    let fresh = GitSource::open(repo.path()).unwrap();
    assert_eq!(
        s2,
        fresh.snapshot(&r2, None).await.unwrap(),
        "cached equals uncached"
    );

    let inc = source.snapshot_incremental(&s1, &r1, &r2, None).unwrap();
    assert_eq!(inc, s2, "incremental equals full");
    let prod1 = source.snapshot(&r1, Some("envs/prod")).await.unwrap();
    let prod2 = source
        .snapshot_incremental(&prod1, &r1, &r2, Some("envs/prod"))
        .unwrap();
    assert_eq!(
        prod2,
        source.snapshot(&r2, Some("envs/prod")).await.unwrap()
    );
    // A previous snapshot of something else falls back to a full snapshot.
    let fallback = source.snapshot_incremental(&prod1, &r1, &r2, None).unwrap();
    assert_eq!(fallback, s2);

    source.clear_caches();
    assert_eq!(source.cache_stats(), Default::default());
}

#[tokio::test]
async fn tiny_caches_still_give_correct_snapshots() {
    let (repo, _) = many_files();
    let source =
        GitSource::open_with(repo.path(), GitSourceOptions::default().with_cache(256, 4)).unwrap();
    let reference = GitSource::open(repo.path()).unwrap();
    let rev = source.resolve("main").await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            source.snapshot(&rev, None).await.unwrap(),
            reference.snapshot(&rev, None).await.unwrap()
        );
    }
}

#[tokio::test]
async fn environments_as_branches_or_as_folders() {
    // One branch per environment.
    let mut branches = Repo::new();
    for env in ["dev", "staging", "prod"] {
        branches.git(&["checkout", "-q", "--orphan", env]);
        branches.git(&["rm", "-rfq", "--ignore-unmatch", "."]);
        branches.write("app.yaml", format!("env: {env}\n"));
        branches.commit(&format!("{env}: app"));
    }
    // One folder per environment.
    let mut folders = Repo::new();
    for env in ["dev", "staging", "prod"] {
        folders.write(&format!("envs/{env}/app.yaml"), format!("env: {env}\n"));
    }
    folders.commit("all environments");

    let by_branch = GitSource::open(branches.path()).unwrap();
    let by_folder = GitSource::open(folders.path()).unwrap();
    for env in ["dev", "staging", "prod"] {
        let rev = by_branch.resolve(env).await.unwrap();
        assert_eq!(
            rev.reference.as_deref(),
            Some(format!("refs/heads/{env}").as_str())
        );
        let a = by_branch.snapshot(&rev, None).await.unwrap();
        let rev = by_folder.resolve("main").await.unwrap();
        let b = by_folder
            .snapshot(&rev, Some(&format!("envs/{env}")))
            .await
            .unwrap();
        let files = |s: &gitops_core::Snapshot| {
            s.files()
                .map(|(p, b)| (p.to_owned(), b.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(files(&a), files(&b), "{env}: same files either way");
        assert_eq!(
            &*a.get("app.yaml").unwrap().data,
            format!("env: {env}\n").as_bytes()
        );
    }
}

#[tokio::test]
async fn non_utf8_file_names_are_refused() {
    let mut repo = Repo::new();
    repo.write("ok.yaml", "a: 1\n");
    repo.commit("base");
    let blob = repo.git_stdin(&["hash-object", "-w", "--stdin"], b"x: 1\n");
    let mut listing = format!("100644 blob {blob}\t").into_bytes();
    listing.extend_from_slice(b"bad-\xff.yaml\n");
    let tree = repo.git_stdin(&["mktree"], &listing);
    let commit = repo.git(&["commit-tree", &tree, "-m", "bad name"]);
    let source = GitSource::open(repo.path()).unwrap();
    let rev = source.resolve(&commit).await.unwrap();
    match source.snapshot(&rev, None).await {
        Err(SourceError::Refused { path, reason }) => {
            assert!(path.starts_with("bad-"), "{path}");
            assert!(reason.contains("UTF-8"), "{reason}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[test]
fn opening_a_path_that_does_not_exist_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = GitSource::open(dir.path().join("nothing-here")).unwrap_err();
    assert!(matches!(err, SourceError::NotFound { .. }), "{err:?}");
    assert!(!err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("nothing-here"), "{err}");
}

#[test]
fn opening_a_folder_that_is_not_a_repository_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let err = GitSource::open(dir.path()).unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err:?}");
}
