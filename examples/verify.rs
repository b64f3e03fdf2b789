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

#[macro_use]
mod common;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gitops_trust::{AllowedSigners, Mode, OpenPgpKeyring, TrustConfig, Verdict, Verifier};

/// Checks the signature of a reference's commit (or of every commit since
/// another one), in-process.
///
/// Exit status: 0 when trusted, 1 otherwise (with the reason).
#[derive(Parser)]
#[command(version)]
#[command(group(clap::ArgGroup::new("keys").required(true).multiple(true)))]
struct Args {
    /// The Git repository (work tree or git directory).
    #[arg(long, value_name = "DIR")]
    repo: PathBuf,
    /// The reference or commit to check (e.g. refs/heads/prod).
    #[arg(long = "ref", value_name = "REF")]
    reference: String,
    /// Trusted SSH keys, in git's gpg.ssh.allowedSignersFile format.
    #[arg(long, value_name = "FILE", group = "keys")]
    allowed_signers: Option<PathBuf>,
    /// Trusted OpenPGP public keys (armored).
    #[arg(long, value_name = "FILE", group = "keys")]
    openpgp_keys: Option<PathBuf>,
    /// Check every commit after COMMIT up to REF, not only REF.
    #[arg(long, value_name = "COMMIT")]
    since: Option<String>,
}

fn run(args: Args) -> Result<bool, Box<dyn Error>> {
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
    let mut config = TrustConfig::new(mode);
    if let Some(signers) = allowed_signers {
        config = config.allowed_signers(signers);
    }
    if let Some(keyring) = openpgp {
        config = config.openpgp(keyring);
    }
    let repo = args.repo;
    let reference = args.reference;
    let verifier = Verifier::open(&repo, config).map_err(|e| e.to_string())?;
    let range = verifier
        .verify_range(args.since.as_deref(), &reference)
        .map_err(|e| e.to_string())?;
    for c in &range.commits {
        match &c.verdict {
            Verdict::Trusted(s) => {
                outln!(
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
                )?;
            }
            Verdict::Unsigned => outln!("{} UNSIGNED   {:?}", c.short_id(), c.summary)?,
            Verdict::Untrusted(r) => outln!("{} UNTRUSTED  {:?}: {r}", c.short_id(), c.summary)?,
            other => outln!("{} NOT TRUSTED {:?}: {other:?}", c.short_id(), c.summary)?,
        }
    }
    outln!("{}", range.explain())?;
    Ok(range.is_trusted())
}

fn main() -> ExitCode {
    let args: Args = match common::parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    common::finish(run(args).map(|trusted| {
        if trusted {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(common::EXIT_ERROR)
        }
    }))
}
