//! Test repositories, built with the git CLI in temporary folders, isolated
//! from the user's and system's configuration and deterministic.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gitops_core::Person;

/// Runs git in `dir` with isolated configuration and fixed identities.
pub fn git_in(dir: &Path, args: &[&str], env: &[(&str, String)], stdin: Option<&[u8]>) -> String {
    let mut cmd = Command::new("git");
    cmd.args([
        "-c",
        "user.name=Test User",
        "-c",
        "user.email=test@example.com",
        "-c",
        "init.defaultBranch=main",
        "-c",
        "commit.gpgsign=false",
        "-c",
        "tag.gpgsign=false",
        "-c",
        "protocol.file.allow=always",
    ])
    .args(args)
    .current_dir(dir)
    .env("GIT_CONFIG_GLOBAL", "/dev/null")
    .env("GIT_CONFIG_NOSYSTEM", "1")
    .env("HOME", dir)
    .env_remove("GIT_DIR")
    .env_remove("GIT_INDEX_FILE")
    .env_remove("GIT_WORK_TREE")
    .stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("git runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("git finishes");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim_end()
        .to_owned()
}

/// The environment for a commit by `person` (author and committer).
pub fn identity(person: &Person) -> Vec<(&'static str, String)> {
    let off = person.offset_seconds;
    let sign = if off < 0 { '-' } else { '+' };
    let date = format!(
        "@{} {sign}{:02}{:02}",
        person.time,
        off.abs() / 3600,
        off.abs() % 3600 / 60
    );
    vec![
        ("GIT_AUTHOR_NAME", person.name.clone()),
        ("GIT_AUTHOR_EMAIL", person.email.clone()),
        ("GIT_AUTHOR_DATE", date.clone()),
        ("GIT_COMMITTER_NAME", person.name.clone()),
        ("GIT_COMMITTER_EMAIL", person.email.clone()),
        ("GIT_COMMITTER_DATE", date),
    ]
}

/// A person at a time.
pub fn person(name: &str, time: i64) -> Person {
    Person::new(name, format!("{name}@example.com"), time)
}

/// A repository with a work tree, committing what is written into it.
pub struct Repo {
    pub dir: tempfile::TempDir,
    clock: i64,
}

impl Repo {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        git_in(dir.path(), &["init", "-q", "-b", "main"], &[], None);
        Self {
            dir,
            clock: 1_700_000_000,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn git(&self, args: &[&str]) -> String {
        git_in(
            self.dir.path(),
            args,
            &identity(&person("Test User", self.clock)),
            None,
        )
    }

    pub fn git_stdin(&self, args: &[&str], stdin: &[u8]) -> String {
        git_in(
            self.dir.path(),
            args,
            &identity(&person("Test User", self.clock)),
            Some(stdin),
        )
    }

    pub fn write(&self, path: &str, content: impl AsRef<[u8]>) {
        let p = self.dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }

    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.dir.path().join(path)).expect("remove");
    }

    /// Commits everything in the work tree (also when nothing changed).
    pub fn commit(&mut self, message: &str) -> String {
        self.commit_as(&person("Test User", 0), message)
    }

    /// Commits everything as `who` (its time is replaced by the repo clock).
    pub fn commit_as(&mut self, who: &Person, message: &str) -> String {
        self.clock += 60;
        let who = who.clone().with_time(self.clock);
        let env = identity(&who);
        git_in(self.dir.path(), &["add", "-A"], &env, None);
        git_in(
            self.dir.path(),
            &["commit", "-q", "--allow-empty", "-m", message],
            &env,
            None,
        );
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Stages a symlink (mode 120000) to `target` at `path` in the index.
    pub fn stage_symlink(&self, path: &str, target: &str) {
        let blob = self.git_stdin(&["hash-object", "-w", "--stdin"], target.as_bytes());
        self.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("120000,{blob},{path}"),
        ]);
    }

    /// Stages a submodule entry (mode 160000) at `path` pointing at `commit`.
    pub fn stage_submodule(&self, path: &str, commit: &str) {
        self.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{commit},{path}"),
        ]);
    }

    /// Commits the index as is (without `add -A`).
    pub fn commit_index(&mut self, message: &str) -> String {
        self.clock += 60;
        let env = identity(&person("Test User", self.clock));
        git_in(
            self.dir.path(),
            &["commit", "-q", "--allow-empty", "-m", message],
            &env,
            None,
        );
        self.head()
    }
}
