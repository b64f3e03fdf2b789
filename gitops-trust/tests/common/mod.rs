//! Test fixtures: repositories with commits signed by the real `git`,
//! `ssh-keygen` and `gpg`, with keys generated at test time.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// Whether `tool` is on the PATH. When it is not: prints `SKIPPED: ...` and
/// returns false outside CI; panics (the test fails) when `CI` is set.
pub fn have(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{tool} not found, and CI is set: install it (Debian: git, openssh-client, gnupg)"
            );
        }
        eprintln!("SKIPPED: {tool} not found");
    }
    found
}

/// The tools needed for SSH tests.
pub fn have_ssh() -> bool {
    have("git") & have("ssh-keygen")
}

/// The tools needed for OpenPGP tests.
pub fn have_gpg() -> bool {
    have("git") & have("gpg")
}

/// The fixed committer date of [`Fixture::commit`] (2026-01-15 12:00 UTC).
pub const COMMIT_TIME: i64 = 1_768_478_400;

/// A temp dir with a git repository, keys and a GnuPG home.
pub struct Fixture {
    pub dir: TempDir,
    pub repo: PathBuf,
    pub gnupg: PathBuf,
    counter: std::cell::Cell<u32>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.gnupg.join("pubring.kbx").exists() {
            let _ = Command::new("gpgconf")
                .args(["--kill", "gpg-agent"])
                .env("GNUPGHOME", &self.gnupg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("gt").tempdir().unwrap();
        let repo = dir.path().join("repo");
        let gnupg = dir.path().join("g");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::create_dir_all(&gnupg).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let f = Self {
            dir,
            repo,
            gnupg,
            counter: std::cell::Cell::new(0),
        };
        f.git(&["init", "-q", "-b", "main"]);
        f
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.dir.path())
            .env("GNUPGHOME", &self.gnupg)
            .env("GIT_AUTHOR_NAME", "Alice")
            .env("GIT_AUTHOR_EMAIL", "alice@example.com")
            .env("GIT_COMMITTER_NAME", "Alice")
            .env("GIT_COMMITTER_EMAIL", "alice@example.com")
            .env("GIT_AUTHOR_DATE", format!("@{COMMIT_TIME} +0000"))
            .env("GIT_COMMITTER_DATE", format!("@{COMMIT_TIME} +0000"))
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
    }

    /// Runs git in the repository; returns stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.repo).args(args);
        self.env(&mut cmd);
        run(&mut cmd)
    }

    /// Runs gpg with this fixture's GnuPG home; returns stdout.
    pub fn gpg(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("gpg");
        cmd.args([
            "--batch",
            "--yes",
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
        ])
        .args(args)
        .env("GNUPGHOME", &self.gnupg);
        run(&mut cmd)
    }

    /// Generates an SSH key pair `name` (`ed25519`, `ecdsa`, `rsa`); returns
    /// the private key path.
    pub fn ssh_key(&self, name: &str, kind: &str) -> PathBuf {
        let key = self.path(name);
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&key);
        if kind == "rsa" {
            cmd.args(["-b", "2048"]);
        }
        run(&mut cmd);
        key
    }

    /// The `KEYTYPE BASE64` public key line of an SSH key.
    pub fn ssh_public(&self, key: &Path) -> String {
        let text = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let mut parts = text.split_whitespace();
        format!("{} {}", parts.next().unwrap(), parts.next().unwrap())
    }

    /// Generates an OpenPGP key (no passphrase); returns its fingerprint.
    pub fn gpg_key(&self, uid: &str, algo: &str, extra: &[&str]) -> String {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--quick-gen-key", uid, algo, "default", "never"]);
        self.gpg(&args);
        self.gpg_fingerprint(uid)
    }

    pub fn gpg_fingerprint(&self, uid: &str) -> String {
        let out = self.gpg(&["--with-colons", "--list-keys", uid]);
        out.lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_owned()
    }

    /// The armored public keys of `who`.
    pub fn gpg_export(&self, who: &[&str]) -> String {
        let mut args = vec!["--armor", "--export"];
        args.extend(who);
        self.gpg(&args)
    }

    fn next_file(&self) -> String {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        format!("file{n}.txt")
    }

    fn add_file(&self) {
        let name = self.next_file();
        std::fs::write(self.repo.join(&name), format!("{name}\n")).unwrap();
        self.git(&["add", &name]);
    }

    /// An unsigned commit; returns its id.
    pub fn commit(&self, message: &str) -> String {
        self.add_file();
        self.git(&["commit", "-q", "--no-gpg-sign", "-m", message]);
        self.head()
    }

    /// A commit signed with the SSH key at `key`.
    pub fn commit_ssh(&self, key: &Path, message: &str) -> String {
        self.add_file();
        let signing = format!("user.signingkey={}", key.display());
        self.git(&[
            "-c",
            "gpg.format=ssh",
            "-c",
            &signing,
            "commit",
            "-q",
            "-S",
            "-m",
            message,
        ]);
        self.head()
    }

    /// A commit signed with the SSH key at `key`, with author and committer
    /// dates set to `time` (seconds since the epoch): as anyone can date a
    /// commit.
    pub fn commit_ssh_at(&self, key: &Path, time: i64, message: &str) -> String {
        self.add_file();
        let signing = format!("user.signingkey={}", key.display());
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.repo).args([
            "-c",
            "gpg.format=ssh",
            "-c",
            &signing,
            "commit",
            "-q",
            "-S",
            "-m",
            message,
        ]);
        self.env(&mut cmd);
        cmd.env("GIT_AUTHOR_DATE", format!("@{time} +0000"))
            .env("GIT_COMMITTER_DATE", format!("@{time} +0000"));
        run(&mut cmd);
        self.head()
    }

    /// A commit signed with the OpenPGP key `fpr` (gpg picks the subkey).
    pub fn commit_gpg(&self, fpr: &str, message: &str) -> String {
        self.add_file();
        let signing = format!("user.signingkey={fpr}");
        self.git(&[
            "-c",
            "gpg.program=gpg",
            "-c",
            &signing,
            "commit",
            "-q",
            "-S",
            "-m",
            message,
        ]);
        self.head()
    }

    /// A commit signed with the OpenPGP key `fpr` by a `gpg` whose clock
    /// says `faked_time` (`YYYYMMDDTHHMMSS`).
    pub fn commit_gpg_at(&self, fpr: &str, faked_time: &str, message: &str) -> String {
        let wrapper = self.path("gpg-faked");
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\nexec gpg --faked-system-time {faked_time} \"$@\"\n"),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        self.add_file();
        let program = format!("gpg.program={}", wrapper.display());
        let signing = format!("user.signingkey={fpr}");
        self.git(&[
            "-c", &program, "-c", &signing, "commit", "-q", "-S", "-m", message,
        ]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// Writes a copy of commit `id` with its message replaced, keeping the
    /// signature; returns the new id.
    pub fn tamper(&self, id: &str, new_message: &str) -> String {
        let raw = self.git(&["cat-file", "commit", id]);
        let (headers, _) = raw.split_once("\n\n").unwrap();
        let forged = format!("{headers}\n\n{new_message}\n");
        let file = self.path("forged-commit");
        std::fs::write(&file, forged).unwrap();
        let file = file.to_str().unwrap().to_owned();
        self.git(&["hash-object", "-t", "commit", "-w", &file])
            .trim()
            .to_owned()
    }
}
