//! Checks the signature of a reference's commit (or of every commit since
//! another one), in-process, as the reconciler does before applying.
//!
//! ```text
//! cargo run --example verify -- --repo DIR --ref REF --allowed-signers FILE \
//!     [--openpgp-keys FILE] [--since COMMIT]
//! ```
//!
//! Without `--since`, only the commit `REF` points to is checked; with it,
//! every commit reachable from `REF` and not from `COMMIT` (merged side
//! branches included). Exit status: 0 when trusted; 1 otherwise, with the
//! reason (not trusted, bad arguments, unreadable repository or key file).

use std::process::ExitCode;

use gitops_trust::{AllowedSigners, Mode, OpenPgpKeyring, TrustConfig, Verdict, Verifier};

const USAGE: &str = "usage: verify --repo DIR --ref REF --allowed-signers FILE [--openpgp-keys FILE] [--since COMMIT]

  --repo DIR               the Git repository (work tree or git directory)
  --ref REF                the reference or commit to check (e.g. refs/heads/prod)
  --allowed-signers FILE   trusted SSH keys, in git's gpg.ssh.allowedSignersFile format
  --openpgp-keys FILE      trusted OpenPGP public keys (armored)
  --since COMMIT           check every commit after COMMIT up to REF, not only REF

exit status: 0 when trusted, 1 otherwise (with the reason)";

#[derive(Default)]
struct Args {
    repo: Option<String>,
    reference: Option<String>,
    allowed_signers: Option<String>,
    openpgp_keys: Option<String>,
    since: Option<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args::default();
    while let Some(flag) = it.next() {
        let slot = match flag.as_str() {
            "--repo" => &mut args.repo,
            "--ref" => &mut args.reference,
            "--allowed-signers" => &mut args.allowed_signers,
            "--openpgp-keys" => &mut args.openpgp_keys,
            "--since" => &mut args.since,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        };
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if slot.replace(value).is_some() {
            return Err(format!("{flag} given twice"));
        }
    }
    if args.repo.is_none() {
        return Err("--repo is required".to_owned());
    }
    if args.reference.is_none() {
        return Err("--ref is required".to_owned());
    }
    if args.allowed_signers.is_none() && args.openpgp_keys.is_none() {
        return Err("--allowed-signers (or --openpgp-keys) is required".to_owned());
    }
    Ok(args)
}

fn run(args: Args) -> Result<bool, String> {
    let allowed_signers = args
        .allowed_signers
        .as_deref()
        .map(AllowedSigners::from_file)
        .transpose()
        .map_err(|e| e.to_string())?;
    let openpgp = args
        .openpgp_keys
        .as_deref()
        .map(OpenPgpKeyring::from_file)
        .transpose()
        .map_err(|e| e.to_string())?;
    let mode = if args.since.is_some() {
        Mode::EveryCommit
    } else {
        Mode::Tip
    };
    let config = TrustConfig {
        mode,
        allowed_signers,
        openpgp,
    };
    let repo = args.repo.unwrap_or_default();
    let reference = args.reference.unwrap_or_default();
    let verifier = Verifier::open(&repo, config).map_err(|e| e.to_string())?;
    let range = verifier
        .verify_range(args.since.as_deref(), &reference)
        .map_err(|e| e.to_string())?;
    for c in &range.commits {
        match &c.verdict {
            Verdict::Trusted(s) => {
                println!(
                    "{} trusted    {:?} signer={} key={}{} ({:?})",
                    c.short_id(),
                    c.summary,
                    s.identity,
                    s.fingerprint,
                    s.subkey
                        .as_ref()
                        .map(|k| format!(" subkey={k}"))
                        .unwrap_or_default(),
                    s.method
                );
            }
            Verdict::Unsigned => println!("{} UNSIGNED   {:?}", c.short_id(), c.summary),
            Verdict::Untrusted(r) => println!("{} UNTRUSTED  {:?}: {r}", c.short_id(), c.summary),
        }
    }
    println!("{}", range.explain());
    Ok(range.is_trusted())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(1);
        }
    };
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
