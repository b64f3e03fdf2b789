//! End-to-end: commits signed by the real `git` with keys made at test time
//! by `ssh-keygen` and `gpg`, verified in-process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{COMMIT_TIME, Fixture, have_gpg, have_ssh};
use gitops_core::{Revision, RevisionVerifier, SignatureMethod, SignatureVerdict};
use gitops_trust::{
    AllowedSigners, CommitVerdict, Mode, OpenPgpKeyring, Refusal, SshValidity, TrustConfig,
    Verdict, Verifier,
};

fn ssh_config(mode: Mode, allowed: &str) -> TrustConfig {
    TrustConfig::new(mode).allowed_signers(AllowedSigners::parse(allowed).unwrap())
}

fn pgp_config(mode: Mode, armored: &str) -> TrustConfig {
    TrustConfig::new(mode).openpgp(OpenPgpKeyring::from_armored(armored).unwrap())
}

fn refusal(v: &CommitVerdict) -> &Refusal {
    match &v.verdict {
        Verdict::Untrusted(r) => r,
        other => panic!("expected a refusal for {}, got {other:?}", v.commit),
    }
}

#[test]
fn ssh_good_signature_for_each_key_type() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let mut allowed = String::new();
    let mut commits = Vec::new();
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let key = f.ssh_key(kind, kind);
        allowed.push_str(&format!("{kind}@example.com {}\n", f.ssh_public(&key)));
        commits.push((kind, f.commit_ssh(&key, &format!("signed with {kind}"))));
    }
    let v = Verifier::open(&f.repo, ssh_config(Mode::Tip, &allowed)).unwrap();
    for (kind, id) in commits {
        let verdict = v.verify_commit(&id).unwrap();
        match &verdict.verdict {
            Verdict::Trusted(s) => {
                assert_eq!(s.identity, format!("{kind}@example.com"));
                assert!(s.fingerprint.starts_with("SHA256:"), "{}", s.fingerprint);
                assert_eq!(s.method, SignatureMethod::Ssh);
            }
            other => panic!("{kind}: {other:?}"),
        }
        assert_eq!(verdict.time, COMMIT_TIME);
    }
}

#[test]
fn ssh_wildcard_principal_names_the_committer() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("k", "ed25519");
    let id = f.commit_ssh(&key, "one");
    let allowed = format!(
        "\"*@example.com\" namespaces=\"git\" {}\n",
        f.ssh_public(&key)
    );
    let v = Verifier::open(&f.repo, ssh_config(Mode::Tip, &allowed)).unwrap();
    match v.verify_commit(&id).unwrap().verdict {
        Verdict::Trusted(s) => assert_eq!(s.identity, "alice@example.com"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ssh_unknown_key_is_refused() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let trusted = f.ssh_key("trusted", "ed25519");
    let other = f.ssh_key("other", "ed25519");
    let id = f.commit_ssh(&other, "by an unknown key");
    let allowed = format!("alice@example.com {}\n", f.ssh_public(&trusted));
    let v = Verifier::open(&f.repo, ssh_config(Mode::Tip, &allowed)).unwrap();
    let verdict = v.verify_commit(&id).unwrap();
    assert!(
        matches!(refusal(&verdict), Refusal::UnknownKey { .. }),
        "{verdict:?}"
    );
}

#[test]
fn ssh_tampered_commit_is_refused() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("k", "ed25519");
    let good = f.commit_ssh(&key, "deploy v1");
    let forged = f.tamper(&good, "deploy evil");
    assert_ne!(good, forged);
    let allowed = format!("alice@example.com {}\n", f.ssh_public(&key));
    let v = Verifier::open(&f.repo, ssh_config(Mode::Tip, &allowed)).unwrap();
    assert!(v.verify_commit(&good).unwrap().verdict.is_trusted());
    let verdict = v.verify_commit(&forged).unwrap();
    assert!(
        matches!(refusal(&verdict), Refusal::BadSignature { .. }),
        "{verdict:?}"
    );
}

#[test]
fn ssh_validity_window_is_checked_against_the_commit_time() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("k", "ed25519");
    let id = f.commit_ssh(&key, "one");
    let public = f.ssh_public(&key);
    // The commit is dated 2026-01-15.
    let expired = format!("alice@example.com valid-before=\"20250101\" {public}\n");
    let v = Verifier::open(&f.repo, ssh_config(Mode::Tip, &expired)).unwrap();
    let verdict = v.verify_commit(&id).unwrap();
    assert!(
        matches!(refusal(&verdict), Refusal::Expired { .. }),
        "{verdict:?}"
    );

    let future = format!("alice@example.com valid-after=\"20270101\" {public}\n");
    let v = Verifier::open(&f.repo, ssh_config(Mode::Tip, &future)).unwrap();
    let verdict = v.verify_commit(&id).unwrap();
    assert!(
        matches!(refusal(&verdict), Refusal::NotYetValid { .. }),
        "{verdict:?}"
    );

    let window = format!(
        "alice@example.com valid-after=\"20250101\",valid-before=\"209901010000\" {public}\n"
    );
    let v = Verifier::open(&f.repo, ssh_config(Mode::Tip, &window)).unwrap();
    assert!(v.verify_commit(&id).unwrap().verdict.is_trusted());
}

/// A key whose `valid-before` has passed must not verify a commit that its
/// holder backdates into the window (issue 10, item 15); git's rule, which
/// checks the committer time only, stays available as an option.
#[test]
fn ssh_key_past_its_window_does_not_verify_backdated_commits() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("leaked", "ed25519");
    let public = f.ssh_public(&key);
    // The key was valid in 2025 only; the commit is made today, dated
    // 2025-06-01 by whoever holds the key.
    let backdated_time = 1_748_736_000;
    let id = f.commit_ssh_at(&key, backdated_time, "backdated");
    let allowed = format!(
        "alice@example.com valid-after=\"20250101Z\",valid-before=\"20260101Z\" {public}\n"
    );
    let v = Verifier::open(&f.repo, ssh_config(Mode::Tip, &allowed)).unwrap();
    let verdict = v.verify_commit(&id).unwrap();
    assert_eq!(verdict.time, backdated_time);
    match refusal(&verdict) {
        Refusal::Expired {
            time, valid_until, ..
        } => {
            assert_eq!(*valid_until, 1_767_225_600);
            assert!(*time > *valid_until, "checked against now: {verdict:?}");
        }
        other => panic!("{other:?}"),
    }

    // git's rule, explicitly: the committer time alone is checked.
    let git_rule = TrustConfig::new(Mode::Tip).allowed_signers(
        AllowedSigners::parse(&allowed)
            .unwrap()
            .with_validity(SshValidity::CommitTime),
    );
    let v = Verifier::open(&f.repo, git_rule).unwrap();
    assert!(v.verify_commit(&id).unwrap().verdict.is_trusted());

    // A key whose window has not opened yet verifies nothing either, even
    // a commit dated inside the window (in the future).
    let future_time = 4_102_444_800 + 86_400; // 2100-01-02
    let id = f.commit_ssh_at(&key, future_time, "forward-dated");
    let later = format!("alice@example.com valid-after=\"21000101Z\" {public}\n");
    let v = Verifier::open(&f.repo, ssh_config(Mode::Tip, &later)).unwrap();
    let verdict = v.verify_commit(&id).unwrap();
    match refusal(&verdict) {
        Refusal::NotYetValid {
            time, valid_from, ..
        } => {
            assert_eq!(*valid_from, 4_102_444_800);
            assert!(*time < *valid_from, "checked against now: {verdict:?}");
        }
        other => panic!("{other:?}"),
    }
}

/// An allowed-signers file that ssh-keygen refuses is refused, naming the
/// line (issue 10, item 16); nothing is verified with it.
#[test]
fn allowed_signers_that_ssh_keygen_refuses_are_errors() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("k", "ed25519");
    let public = f.ssh_public(&key);
    let id = f.commit_ssh(&key, "signed");
    // The cross-check with ssh-keygen below is sound: it accepts a good file.
    let good = f.path("good_signers");
    std::fs::write(&good, format!("alice@example.com {public}\n")).unwrap();
    assert_ne!(ssh_keygen_verifies(&f, &id, &good), Some(false));
    for (text, line, what) in [
        (
            format!("# only a negation\n\n!* {public}\n"),
            3,
            "no positive pattern",
        ),
        (
            format!(
                "alice@example.com valid-before=\"20990101\",valid-before=\"21000101\" {public}\n"
            ),
            1,
            "given twice",
        ),
    ] {
        let path = f.path("allowed_signers");
        std::fs::write(&path, &text).unwrap();
        let e = AllowedSigners::from_file(&path).unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains(&format!("line {line}:")), "{shown}");
        assert!(shown.contains(what), "{shown}");
        // ssh-keygen agrees: the same file does not verify the commit.
        if let Some(verified) = ssh_keygen_verifies(&f, &id, &path) {
            assert!(!verified, "ssh-keygen accepted {text}");
        }
    }
}

/// Whether `ssh-keygen -Y verify` (as git runs it, with the principal that
/// `find-principals` gives) accepts commit `id` with the allowed-signers
/// file `path`; `None` when the commit's signature cannot be extracted.
fn ssh_keygen_verifies(f: &Fixture, id: &str, path: &std::path::Path) -> Option<bool> {
    let raw = f.git(&["cat-file", "commit", id]);
    let (headers, message) = raw.split_once("\n\n")?;
    let mut signature = String::new();
    let mut payload = String::new();
    let mut in_sig = false;
    for l in headers.lines() {
        if let Some(first) = l.strip_prefix("gpgsig ") {
            in_sig = true;
            signature.push_str(first);
            signature.push('\n');
        } else if in_sig && let Some(more) = l.strip_prefix(' ') {
            signature.push_str(more);
            signature.push('\n');
        } else {
            in_sig = false;
            payload.push_str(l);
            payload.push('\n');
        }
    }
    payload.push('\n');
    payload.push_str(message);
    let sig_file = f.path("commit.sig");
    std::fs::write(&sig_file, signature).ok()?;
    let out = std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", "git", "-I", "alice@example.com", "-f"])
        .arg(path)
        .arg("-s")
        .arg(&sig_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take()?.write_all(payload.as_bytes()).ok()?;
            child.wait().ok()
        })?;
    Some(out.success())
}

#[test]
fn ssh_wrong_namespace_is_refused() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("k", "ed25519");
    let id = f.commit_ssh(&key, "one");
    let allowed = format!(
        "alice@example.com namespaces=\"file\" {}\n",
        f.ssh_public(&key)
    );
    let v = Verifier::open(&f.repo, ssh_config(Mode::Tip, &allowed)).unwrap();
    let verdict = v.verify_commit(&id).unwrap();
    assert!(
        matches!(refusal(&verdict), Refusal::WrongNamespace { .. }),
        "{verdict:?}"
    );
}

#[test]
fn unsigned_commit_between_signed_ones() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("k", "ed25519");
    let allowed = format!("alice@example.com {}\n", f.ssh_public(&key));
    let a = f.commit_ssh(&key, "A signed");
    let b = f.commit("B unsigned");
    let c = f.commit_ssh(&key, "C signed");

    let every = Verifier::open(&f.repo, ssh_config(Mode::EveryCommit, &allowed)).unwrap();
    let range = every.verify_range(Some(&a), &c).unwrap();
    assert!(!range.is_trusted());
    assert_eq!(range.commits.len(), 2, "{range:?}");
    let refused = range.first_refused().unwrap();
    assert_eq!(refused.commit, b);
    assert_eq!(refused.verdict, Verdict::Unsigned);
    match range.to_signature_verdict() {
        SignatureVerdict::Untrusted { reason } => assert!(reason.contains(&b[..12]), "{reason}"),
        other => panic!("{other:?}"),
    }

    // Without a last applied revision only the tip is checked, and it says so.
    let range = every.verify_range(None, &c).unwrap();
    assert!(range.is_trusted());
    assert!(range.tip_only);
    assert!(
        range.explain().contains("tip commit only"),
        "{}",
        range.explain()
    );

    let tip = Verifier::open(&f.repo, ssh_config(Mode::Tip, &allowed)).unwrap();
    let range = tip.verify_range(Some(&a), &c).unwrap();
    assert!(range.is_trusted(), "{range:?}");
    assert!(matches!(
        range.to_signature_verdict(),
        SignatureVerdict::Trusted { .. }
    ));
}

#[test]
fn signed_merge_of_an_unsigned_branch() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("k", "ed25519");
    let allowed = format!("alice@example.com {}\n", f.ssh_public(&key));
    let base = f.commit_ssh(&key, "base");
    f.git(&["checkout", "-q", "-b", "side"]);
    let hidden = f.commit("forged on a side branch");
    f.git(&["checkout", "-q", "main"]);
    let signed = f.commit_ssh(&key, "signed on main");
    let signing = format!("user.signingkey={}", key.display());
    f.git(&[
        "-c",
        "gpg.format=ssh",
        "-c",
        &signing,
        "merge",
        "-q",
        "--no-ff",
        "-S",
        "-m",
        "merge side",
        "side",
    ]);
    let merge = f.head();

    let every = Verifier::open(&f.repo, ssh_config(Mode::EveryCommit, &allowed)).unwrap();
    let range = every.verify_range(Some(&base), &merge).unwrap();
    let ids: Vec<&str> = range.commits.iter().map(|c| c.commit.as_str()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.contains(&signed.as_str()) && ids.contains(&hidden.as_str()));
    assert_eq!(range.first_refused().unwrap().commit, hidden);
    match range.to_signature_verdict() {
        SignatureVerdict::Untrusted { reason } => {
            assert!(
                reason.contains(&hidden[..12]) && reason.contains("unsigned"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }

    let tip = Verifier::open(&f.repo, ssh_config(Mode::Tip, &allowed)).unwrap();
    assert!(tip.verify_range(Some(&base), &merge).unwrap().is_trusted());
}

/// A `git clone --depth` of the fixture's repository (through a `file://`
/// URL, so that the depth is honoured); returns its path.
fn shallow_clone(f: &common::Fixture, name: &str, depth: Option<u32>) -> std::path::PathBuf {
    let dest = f.path(name);
    let url = format!("file://{}", f.repo.display());
    let depth = depth.map(|d| d.to_string());
    let mut args = vec!["clone", "-q", "--bare"];
    if let Some(d) = &depth {
        args.extend(["--depth", d.as_str()]);
    }
    args.extend([url.as_str(), dest.to_str().unwrap()]);
    f.git(&args);
    dest
}

#[test]
fn every_commit_in_a_shallow_clone() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("k", "ed25519");
    let allowed = format!("alice@example.com {}\n", f.ssh_public(&key));
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(f.commit_ssh(&key, &format!("signed {n}")));
    }
    let config = || ssh_config(Mode::EveryCommit, &allowed);

    // Depth 2: HEAD~1 is at the shallow boundary; the range HEAD~1..HEAD is
    // still checked in full.
    let shallow = shallow_clone(&f, "shallow.git", Some(2));
    assert!(shallow.join("shallow").is_file());
    let v = Verifier::open(&shallow, config()).unwrap();
    let range = v.verify_range(Some("HEAD~1"), "HEAD").unwrap();
    assert!(range.is_trusted(), "{range:?}");
    assert!(range.cut_by_shallow);
    assert!(range.unchecked_beyond.is_empty());
    assert_eq!(range.commits.len(), 1);
    assert_eq!(range.commits[0].commit, ids[4]);
    assert!(range.explain().contains("shallow"), "{}", range.explain());
    assert!(matches!(
        range.to_signature_verdict(),
        SignatureVerdict::Trusted { .. }
    ));
    // The tip itself as the last applied commit, at the boundary (depth 1).
    let one = shallow_clone(&f, "one.git", Some(1));
    let v1 = Verifier::open(&one, config()).unwrap();
    let range = v1.verify_range(Some("HEAD"), "HEAD").unwrap();
    assert!(range.is_trusted(), "{range:?}");
    assert_eq!(range.commits.len(), 1);

    // A shallow mirror made by gitops-git's own `fetch_mirror`.
    let mirror = f.path("mirror.git");
    let url = format!("file://{}", f.repo.display());
    let options =
        gitops_git::FetchOptions::default().shallow(std::num::NonZeroU32::new(2).unwrap());
    gitops_git::fetch_mirror(&url, &mirror, "main", &options, &mut |_| {}).unwrap();
    let v = Verifier::open(&mirror, config()).unwrap();
    let range = v.verify_range(Some(&ids[3]), "refs/heads/main").unwrap();
    assert!(range.is_trusted(), "{range:?}");
    assert!(range.cut_by_shallow);
    assert_eq!(range.commits.len(), 1);

    // A full clone: not cut.
    let full = shallow_clone(&f, "full.git", None);
    let v = Verifier::open(&full, config()).unwrap();
    let range = v.verify_range(Some("HEAD~1"), "HEAD").unwrap();
    assert!(range.is_trusted(), "{range:?}");
    assert!(!range.cut_by_shallow);
    assert!(!range.explain().contains("shallow"), "{}", range.explain());
    let range = v.verify_range(Some(&ids[0]), "HEAD").unwrap();
    assert_eq!(range.commits.len(), 4);
}

#[test]
fn shallow_clone_still_finds_a_commit_hidden_under_a_signed_merge() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("k", "ed25519");
    let allowed = format!("alice@example.com {}\n", f.ssh_public(&key));
    f.commit_ssh(&key, "root");
    let base = f.commit_ssh(&key, "base");
    f.git(&["checkout", "-q", "-b", "side"]);
    let hidden = f.commit("forged on a side branch");
    let side_signed = f.commit_ssh(&key, "signed over the forged one");
    f.git(&["checkout", "-q", "main"]);
    let signed = f.commit_ssh(&key, "signed on main");
    let signing = format!("user.signingkey={}", key.display());
    f.git(&[
        "-c",
        "gpg.format=ssh",
        "-c",
        &signing,
        "merge",
        "-q",
        "--no-ff",
        "-S",
        "-m",
        "merge side",
        "side",
    ]);
    let merge = f.head();
    let config = || ssh_config(Mode::EveryCommit, &allowed);

    // Deep enough for the range: the forged commit is found.
    let deep = shallow_clone(&f, "deep.git", Some(4));
    assert!(deep.join("shallow").is_file());
    let v = Verifier::open(&deep, config()).unwrap();
    let range = v.verify_range(Some(&base), &merge).unwrap();
    assert!(!range.is_trusted(), "{range:?}");
    assert_eq!(range.first_refused().unwrap().commit, hidden);
    assert!(matches!(
        range.to_signature_verdict(),
        SignatureVerdict::Untrusted { .. }
    ));

    // Too shallow: the side branch reaches the boundary before the last
    // applied commit's history; its unfetched parents (the forged commit)
    // cannot be checked, so the range is not trusted although every commit
    // that could be read is signed.
    let cut = shallow_clone(&f, "cut.git", Some(2));
    let v = Verifier::open(&cut, config()).unwrap();
    let range = v.verify_range(Some(&signed), &merge).unwrap();
    let ids: Vec<&str> = range.commits.iter().map(|c| c.commit.as_str()).collect();
    assert_eq!(ids, [merge.as_str(), side_signed.as_str()]);
    assert!(range.first_refused().is_none(), "{range:?}");
    assert!(range.cut_by_shallow);
    assert_eq!(range.unchecked_beyond, std::slice::from_ref(&side_signed));
    assert!(!range.is_trusted());
    assert!(
        range.explain().starts_with("not trusted"),
        "{}",
        range.explain()
    );
    match range.to_signature_verdict() {
        SignatureVerdict::Untrusted { reason } => {
            assert!(reason.contains(&side_signed[..12]), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn revision_verifier_for_the_reconciler() {
    if !have_ssh() {
        return;
    }
    let f = Fixture::new();
    let key = f.ssh_key("k", "ed25519");
    let allowed = format!("alice@example.com {}\n", f.ssh_public(&key));
    let signed = f.commit_ssh(&key, "signed");
    let unsigned = f.commit("unsigned");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let rev = |id: &str| Revision::new(id);

    let v = Verifier::open(&f.repo, ssh_config(Mode::Tip, &allowed)).unwrap();
    match rt.block_on(v.verify(&rev(&signed), None)) {
        SignatureVerdict::Trusted {
            signer,
            fingerprint,
            method,
        } => {
            assert_eq!(signer, "alice@example.com");
            assert!(fingerprint.starts_with("SHA256:"));
            assert_eq!(method, SignatureMethod::Ssh);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rt.block_on(v.verify(&rev(&unsigned), None)),
        SignatureVerdict::Unsigned
    );
    let missing = rt.block_on(v.verify(&rev("0123456789abcdef0123456789abcdef01234567"), None));
    assert!(
        matches!(missing, SignatureVerdict::Untrusted { .. }),
        "{missing:?}"
    );

    let off = Verifier::open(&f.repo, ssh_config(Mode::Off, &allowed)).unwrap();
    assert_eq!(
        rt.block_on(off.verify(&rev(&unsigned), None)),
        SignatureVerdict::NotChecked
    );

    // An SSH-signed commit with only OpenPGP keys configured.
    let none = Verifier::open(&f.repo, TrustConfig::new(Mode::Tip)).unwrap();
    let verdict = none.verify_commit(&signed).unwrap();
    assert!(matches!(
        refusal(&verdict),
        Refusal::NoTrustedKeys(SignatureMethod::Ssh)
    ));
}

#[test]
fn openpgp_good_signature_and_unknown_key() {
    if !have_gpg() {
        return;
    }
    let f = Fixture::new();
    let alice = f.gpg_key("Alice <alice@example.com>", "default", &[]);
    let mallory = f.gpg_key("Mallory <mallory@example.com>", "ed25519", &[]);
    let good = f.commit_gpg(&alice, "by alice");
    let bad = f.commit_gpg(&mallory, "by mallory");
    let forged = f.tamper(&good, "evil");

    let keyring = f.gpg_export(&[&alice]);
    let v = Verifier::open(&f.repo, pgp_config(Mode::Tip, &keyring)).unwrap();
    match v.verify_commit(&good).unwrap().verdict {
        Verdict::Trusted(s) => {
            assert_eq!(s.identity, "Alice <alice@example.com>");
            assert_eq!(s.fingerprint, alice);
            assert_eq!(s.method, SignatureMethod::OpenPgp);
        }
        other => panic!("{other:?}"),
    }
    let verdict = v.verify_commit(&bad).unwrap();
    assert!(
        matches!(refusal(&verdict), Refusal::UnknownKey { .. }),
        "{verdict:?}"
    );
    let verdict = v.verify_commit(&forged).unwrap();
    assert!(
        matches!(refusal(&verdict), Refusal::BadSignature { .. }),
        "{verdict:?}"
    );
}

#[test]
fn openpgp_signing_subkey() {
    if !have_gpg() {
        return;
    }
    let f = Fixture::new();
    let primary = f.gpg_key("Sub <sub@example.com>", "ed25519", &[]);
    f.gpg(&["--quick-add-key", &primary, "ed25519", "sign", "never"]);
    let id = f.commit_gpg(&primary, "signed by the subkey");
    let keyring = f.gpg_export(&[&primary]);
    let v = Verifier::open(&f.repo, pgp_config(Mode::Tip, &keyring)).unwrap();
    match v.verify_commit(&id).unwrap().verdict {
        Verdict::Trusted(s) => {
            assert_eq!(s.fingerprint, primary);
            let sub = s.subkey.expect("signed by the subkey");
            assert_ne!(sub, primary);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn openpgp_expired_key_is_refused() {
    if !have_gpg() {
        return;
    }
    let f = Fixture::new();
    // Made in 2020 without expiry; the commit is signed now (gpg refuses
    // to sign with an expired key); then the key gets an expiry of one day
    // after its creation, dated 2020: expired long before the signature.
    let fpr = f.gpg_key(
        "Old <old@example.com>",
        "ed25519",
        &["--faked-system-time", "20200101T000000"],
    );
    let id = f.commit_gpg(&fpr, "signed after the key expired");
    f.gpg(&[
        "--faked-system-time",
        "20200101T010000",
        "--quick-set-expire",
        &fpr,
        "1d",
    ]);
    let keyring = f.gpg_export(&[&fpr]);
    let v = Verifier::open(&f.repo, pgp_config(Mode::Tip, &keyring)).unwrap();
    let verdict = v.verify_commit(&id).unwrap();
    assert!(
        matches!(refusal(&verdict), Refusal::Expired { .. }),
        "{verdict:?}"
    );
}

#[test]
fn openpgp_key_expired_now_is_refused_although_valid_at_signing_time() {
    if !have_gpg() {
        return;
    }
    let f = Fixture::new();
    // Valid for one day from 2020-01-01; signed at noon that day, while the
    // key was valid. The key has long expired since: as git (gpg's status
    // `G` requires a key valid now), the signature is refused, or a leaked
    // expired key could sign with a backdated creation time.
    let fpr = f.gpg_key(
        "Then <then@example.com>",
        "ed25519",
        &["--faked-system-time", "20200101T000000"],
    );
    f.gpg(&[
        "--faked-system-time",
        "20200101T000100",
        "--quick-set-expire",
        &fpr,
        "1d",
    ]);
    let id = f.commit_gpg_at(&fpr, "20200101T120000", "signed while valid");
    let keyring = f.gpg_export(&[&fpr]);
    let v = Verifier::open(&f.repo, pgp_config(Mode::Tip, &keyring)).unwrap();
    let verdict = v.verify_commit(&id).unwrap();
    match refusal(&verdict) {
        Refusal::Expired {
            time, valid_until, ..
        } => assert!(time > valid_until && *time > COMMIT_TIME, "{verdict:?}"),
        other => panic!("{other:?}"),
    }

    // A key with an expiry still ahead is valid now and at signing time.
    let fresh = f.gpg_key("Now <now@example.com>", "ed25519", &[]);
    f.gpg(&["--quick-set-expire", &fresh, "10y"]);
    let id = f.commit_gpg(&fresh, "signed by a key that expires later");
    let keyring = f.gpg_export(&[&fresh]);
    let v = Verifier::open(&f.repo, pgp_config(Mode::Tip, &keyring)).unwrap();
    let verdict = v.verify_commit(&id).unwrap();
    assert!(verdict.verdict.is_trusted(), "{verdict:?}");
}

#[test]
fn openpgp_revoked_key_is_refused() {
    if !have_gpg() {
        return;
    }
    let f = Fixture::new();
    let fpr = f.gpg_key("Gone <gone@example.com>", "ed25519", &[]);
    let id = f.commit_gpg(&fpr, "signed before revocation");
    let cert = std::fs::read_to_string(f.gnupg.join("openpgp-revocs.d").join(format!("{fpr}.rev")))
        .unwrap();
    let cert = cert.replace(
        ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----",
    );
    let file = f.path("revocation.asc");
    std::fs::write(&file, cert).unwrap();
    f.gpg(&["--import", file.to_str().unwrap()]);
    let keyring = f.gpg_export(&[&fpr]);
    let v = Verifier::open(&f.repo, pgp_config(Mode::Tip, &keyring)).unwrap();
    let verdict = v.verify_commit(&id).unwrap();
    assert!(
        matches!(refusal(&verdict), Refusal::Revoked { .. }),
        "{verdict:?}"
    );
}

#[test]
fn bad_configuration_is_an_error() {
    let e = AllowedSigners::parse("alice@example.com ssh-ed25519 AAAA\n").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(OpenPgpKeyring::from_armored("not a key").is_err());
    assert!(Verifier::open("/nonexistent/repo", TrustConfig::default()).is_err());
}
