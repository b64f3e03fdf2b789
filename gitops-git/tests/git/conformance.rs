//! The public Source conformance suite of gitops-core, run against
//! [`GitSource`] with commits made by the git CLI.

use async_trait::async_trait;
use gitops_core::Person;
use gitops_core::testing::source::{SourceFixture, run_all};
use gitops_git::GitSource;

use crate::fixture::{git_in, identity};

struct Fixture {
    dir: tempfile::TempDir,
    source: GitSource,
}

impl Fixture {
    fn new(bare: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = vec!["init", "-q", "-b", "main"];
        if bare {
            args.push("--bare");
        }
        git_in(dir.path(), &args, &[], None);
        let source = GitSource::open(dir.path()).expect("open");
        Self { dir, source }
    }

    fn git(&self, args: &[&str], env: &[(&str, String)], stdin: Option<&[u8]>) -> String {
        git_in(self.dir.path(), args, env, stdin)
    }
}

#[async_trait]
impl SourceFixture for Fixture {
    type Source = GitSource;

    async fn commit(
        &mut self,
        branch: &str,
        files: &[(&str, &[u8])],
        author: &Person,
        message: &str,
    ) -> String {
        // Plumbing only: blobs, a private index, a tree, a commit, a ref.
        let index = self.dir.path().join(format!("index-{branch}"));
        let _ = std::fs::remove_file(&index);
        let env = {
            let mut env = identity(author);
            env.push(("GIT_INDEX_FILE", index.display().to_string()));
            env
        };
        for (path, bytes) in files {
            let blob = self.git(&["hash-object", "-w", "--stdin"], &env, Some(bytes));
            self.git(
                &[
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    &format!("100644,{blob},{path}"),
                ],
                &env,
                None,
            );
        }
        let tree = self.git(&["write-tree"], &env, None);
        let full = format!("refs/heads/{branch}");
        let parent = std::process::Command::new("git")
            .args(["rev-parse", "--verify", "-q", &full])
            .current_dir(self.dir.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git runs");
        let parent = String::from_utf8_lossy(&parent.stdout).trim().to_owned();
        let mut args = vec!["commit-tree", tree.as_str(), "-m", message];
        if !parent.is_empty() {
            args.extend(["-p", parent.as_str()]);
        }
        let commit = self.git(&args, &env, None);
        self.git(&["update-ref", &full, &commit], &env, None);
        commit
    }

    async fn tag(&mut self, name: &str, commit: &str) {
        self.git(&["tag", name, commit], &[], None);
    }

    fn source(&self) -> &GitSource {
        &self.source
    }
}

#[tokio::test]
async fn conformance_on_a_bare_repository() {
    run_all(&mut Fixture::new(true)).await;
}

#[tokio::test]
async fn conformance_on_a_repository_with_a_work_tree() {
    run_all(&mut Fixture::new(false)).await;
}

#[tokio::test]
async fn conformance_through_dyn_and_arc() {
    // The suite through the forwarding impls of gitops-core.
    struct Boxed(Fixture, std::sync::Arc<GitSource>);
    #[async_trait]
    impl SourceFixture for Boxed {
        type Source = std::sync::Arc<GitSource>;
        async fn commit(&mut self, b: &str, f: &[(&str, &[u8])], a: &Person, m: &str) -> String {
            self.0.commit(b, f, a, m).await
        }
        async fn tag(&mut self, name: &str, commit: &str) {
            self.0.tag(name, commit).await;
        }
        fn source(&self) -> &Self::Source {
            &self.1
        }
    }
    let fixture = Fixture::new(true);
    let arc = std::sync::Arc::new(fixture.source.clone());
    run_all(&mut Boxed(fixture, arc)).await;
}
