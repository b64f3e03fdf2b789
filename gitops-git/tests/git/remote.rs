//! fetch_mirror against a local path, `file://` and a `git daemon` on
//! loopback that the test starts and stops itself.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::num::NonZeroU32;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gitops_core::{Source, SourceError};
use gitops_git::{FetchOptions, FetchProgress, GitSource, fetch_mirror};

use crate::fixture::Repo;

/// A `git daemon` serving one folder on 127.0.0.1, killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(base: &std::path::Path) -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
                "--export-all",
                "--informative-errors",
                "--timeout=30",
                "--init-timeout=10",
            ])
            .arg(base)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon starts");
        let mut daemon = Self { child, port };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "git daemon did not listen in 10s"
            );
            assert!(
                daemon.child.try_wait().unwrap().is_none(),
                "git daemon exited"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn upstream() -> (Repo, String, String) {
    let mut repo = Repo::new();
    repo.write("envs/prod/app.yaml", "v: 1\n");
    let c1 = repo.commit("v1");
    repo.write("envs/prod/app.yaml", "v: 2\n");
    let c2 = repo.commit("v2");
    repo.git(&["branch", "prod"]);
    repo.git(&["tag", "-a", "release", "-m", "release"]);
    (repo, c1, c2)
}

fn run(
    url: &str,
    mirror: &std::path::Path,
    reference: &str,
    options: &FetchOptions,
) -> (gitops_git::FetchOutcome, Vec<FetchProgress>) {
    let mut events = Vec::new();
    let outcome = fetch_mirror(url, mirror, reference, options, &mut |e| events.push(e)).unwrap();
    (outcome, events)
}

#[tokio::test]
async fn clones_then_fetches_over_git_daemon_on_loopback() {
    let (mut repo, c1, c2) = upstream();
    let daemon = Daemon::start(repo.dir.path().parent().unwrap());
    let name = repo
        .dir
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let url = format!("git://127.0.0.1:{}/{name}", daemon.port);
    let mirrors = tempfile::tempdir().unwrap();
    let mirror = mirrors.path().join("env.git");

    let (outcome, events) = run(&url, &mirror, "main", &FetchOptions::default());
    assert!(outcome.created);
    assert_eq!(outcome.reference, "refs/heads/main");
    assert_eq!(outcome.commit, c2);
    assert!(outcome.objects > 0);
    assert!(matches!(
        events.first(),
        Some(FetchProgress::Mirror { created: true })
    ));
    assert!(matches!(events.last(), Some(FetchProgress::Done { .. })));

    let source = GitSource::open(&mirror).unwrap();
    let rev = source.resolve("main").await.unwrap();
    assert_eq!(rev.id, c2);
    assert_eq!(rev.parents, [c1.as_str()]);
    let snap = source.snapshot(&rev, Some("envs/prod")).await.unwrap();
    assert_eq!(&*snap.get("app.yaml").unwrap().data, b"v: 2\n");
    assert!(
        source.resolve("release").await.is_err(),
        "tags are not followed"
    );
    assert!(
        source.resolve("prod").await.is_err(),
        "only one reference is fetched"
    );

    // Up to date: nothing received.
    let (again, _) = run(&url, &mirror, "main", &FetchOptions::default());
    assert!(!again.created);
    assert_eq!(again.objects, 0);
    assert_eq!(again.commit, c2);

    // A new upstream commit arrives with the next fetch.
    repo.write("envs/prod/app.yaml", "v: 3\n");
    let c3 = repo.commit("v3");
    let (update, _) = run(&url, &mirror, "main", &FetchOptions::default());
    assert_eq!(update.commit, c3);
    assert!(update.objects > 0);
    let rev3 = source.resolve("main").await.unwrap();
    assert_eq!(rev3.id, c3);
    assert_eq!(
        source.changed_paths(&rev, &rev3, None).await.unwrap(),
        ["envs/prod/app.yaml"]
    );

    // A full reference name (an annotated tag) can be mirrored too.
    let (tag, _) = run(&url, &mirror, "refs/tags/release", &FetchOptions::default());
    assert_eq!(tag.reference, "refs/tags/release");
    assert_eq!(source.resolve("release").await.unwrap().id, c2);

    // Unknown references are NotFound.
    let err =
        fetch_mirror(&url, &mirror, "nope", &FetchOptions::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, SourceError::NotFound { .. }), "{err:?}");
    drop(daemon);
}

#[tokio::test]
async fn shallow_clone_over_git_daemon() {
    let (repo, _, c2) = upstream();
    let daemon = Daemon::start(repo.dir.path().parent().unwrap());
    let name = repo
        .dir
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let url = format!("git://127.0.0.1:{}/{name}", daemon.port);
    let mirrors = tempfile::tempdir().unwrap();
    let mirror = mirrors.path().join("shallow.git");
    let options = FetchOptions::default().shallow(NonZeroU32::new(1).unwrap());
    let (outcome, _) = run(&url, &mirror, "prod", &options);
    assert_eq!(outcome.commit, c2);
    assert!(mirror.join("shallow").is_file(), "the mirror is shallow");
    let source = GitSource::open(&mirror).unwrap();
    let rev = source.resolve("prod").await.unwrap();
    assert_eq!(source.snapshot(&rev, None).await.unwrap().len(), 1);
    assert_eq!(
        source.history(None, &rev, None).unwrap().len(),
        1,
        "one commit of history"
    );
    drop(daemon);
}

#[tokio::test]
async fn fetches_from_a_path_and_a_file_url() {
    let (repo, _, c2) = upstream();
    let mirrors = tempfile::tempdir().unwrap();
    let path = repo.path();
    let (by_path, _) = run(
        path.to_str().unwrap(),
        &mirrors.path().join("a.git"),
        "main",
        &FetchOptions::default(),
    );
    assert_eq!(by_path.commit, c2);
    let url = format!("file://{}", path.display());
    let (by_url, _) = run(
        &url,
        &mirrors.path().join("b.git"),
        "prod",
        &FetchOptions::default(),
    );
    assert_eq!(by_url.commit, c2);
    let err = fetch_mirror(
        "/definitely/not/a/repo",
        mirrors.path().join("c.git"),
        "main",
        &FetchOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err:?}");
}

/// Set (to the upstream URL) in the child process of
/// [`user_git_config_does_not_redirect_the_fetch`].
const ISOLATION_CHILD: &str = "GITOPS_GIT_TEST_ISOLATION_URL";

/// The user's git configuration (`url.*.insteadOf`) must not redirect
/// `fetch_mirror`. Environment variables are process-wide, so the test runs
/// itself again as a child process with `HOME` and `GIT_CONFIG_GLOBAL`
/// pointing at a configuration that rewrites the upstream URL to a decoy.
#[test]
fn user_git_config_does_not_redirect_the_fetch() {
    if let Some(url) = std::env::var_os(ISOLATION_CHILD) {
        let url = url.into_string().unwrap();
        let mirror = std::path::PathBuf::from(std::env::var_os("GITOPS_GIT_TEST_MIRROR").unwrap());
        let expected = std::env::var("GITOPS_GIT_TEST_EXPECTED").unwrap();
        let (outcome, _) = run(&url, &mirror, "main", &FetchOptions::default());
        assert_eq!(outcome.commit, expected, "the fetch was redirected");
        // Fetching again into the existing mirror (opened, not created).
        let (again, _) = run(&url, &mirror, "main", &FetchOptions::default());
        assert!(!again.created);
        assert_eq!(again.commit, expected, "the fetch was redirected");
        return;
    }
    let (repo, _, c2) = upstream();
    let mut decoy = Repo::new();
    decoy.write("decoy.txt", "decoy\n");
    let decoy_commit = decoy.commit("decoy");
    assert_ne!(decoy_commit, c2);

    let home = tempfile::tempdir().unwrap();
    let url = format!("file://{}", repo.path().display());
    let config = home.path().join(".gitconfig");
    std::fs::write(
        &config,
        format!(
            "[url \"file://{}\"]\n\tinsteadOf = {url}\n",
            decoy.path().display()
        ),
    )
    .unwrap();
    let mirror = home.path().join("mirror.git");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "remote::user_git_config_does_not_redirect_the_fetch",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ISOLATION_CHILD, &url)
        .env("GITOPS_GIT_TEST_MIRROR", &mirror)
        .env("GITOPS_GIT_TEST_EXPECTED", &c2)
        .env("HOME", home.path())
        .env("GIT_CONFIG_GLOBAL", &config)
        .env_remove("GIT_CONFIG_NOSYSTEM")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
}
