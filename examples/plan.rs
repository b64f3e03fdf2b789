//! What would change? Plans one revision of an environment repository
//! against another — "the diff between any two revisions", or a promotion
//! preview (`--from prod --to dev`) — and prints who changed what, when and
//! why in between.
//!
//! ```sh
//! cargo run --example plan -- --repo DIR --to REF [--from REF] [--path FOLDER]
//! ```
//!
//! The `--from` revision is applied to an in-memory runtime first (nothing
//! outside this process is touched); the plan for `--to` is then computed
//! against it, with field-level diffs.

use std::error::Error;
use std::process::ExitCode;

use gitops_core::{MemoryRuntime, OwnerId, Reconciler, ReconcilerConfig, Source};
use gitops_git::GitSource;

struct Args {
    repo: String,
    from: Option<String>,
    to: String,
    path: Option<String>,
}

const USAGE: &str = "usage: plan --repo DIR --to REF [--from REF] [--path FOLDER]";

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut repo, mut from, mut to, mut path) = (None, None, None, None);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--repo" => repo = Some(value()?),
            "--from" => from = Some(value()?),
            "--to" => to = Some(value()?),
            "--path" => path = Some(value()?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Args {
        repo: repo.ok_or(USAGE)?,
        from,
        to: to.ok_or(USAGE)?,
        path,
    })
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let source = GitSource::open(&args.repo)?;
    let runtime = MemoryRuntime::with_system_namespaces();
    let mut config = ReconcilerConfig::new(OwnerId::new("preview")?);
    config.path = args.path.clone();
    config.plan.allow_mass_prune = true;
    config.plan.allow_empty = true;
    let reconciler = Reconciler::new(source.clone(), runtime, config)?;
    let from = match &args.from {
        Some(r) => {
            let report = reconciler.reconcile_once(r).await?;
            println!("baseline {r}: {}", report.summary);
            Some(source.resolve(r).await?)
        }
        None => None,
    };
    let to = source.resolve(&args.to).await?;
    let (desired, plan) = reconciler.plan(&args.to).await?;
    println!(
        "{} objects declared at {} ({})\n",
        desired.len(),
        args.to,
        to.short_id()
    );
    print!("{plan}");
    let history = source.history(from.as_ref(), &to, args.path.as_deref())?;
    println!("\n{} commit(s) in between:", history.len());
    for c in history {
        println!(
            "  {} {} <{}> {}: {}",
            c.short_id(),
            c.author.name,
            c.author.email,
            gitops_core::time::rfc3339(c.author.time),
            c.summary()
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
