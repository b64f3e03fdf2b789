//! `render`: build a kustomization like `kustomize build`, natively.
//!
//! ```text
//! cargo run --example render -- [--root DIR] PATH
//! ```
//!
//! DIR (default: PATH's enclosing Git work tree, else PATH itself) is read
//! as a snapshot the way a commit is: regular files only, symlinks not
//! followed, nothing outside DIR. PATH is relative to the current directory
//! and must lie inside DIR. The rendered objects go to stdout as
//! multi-document YAML (exit 0); errors go to stderr (exit 1).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use gitops_core::{Blob, Snapshot, SpecialEntry};

/// Render a kustomization (or a plain folder of manifests) as multi-document YAML.
#[derive(Parser, Debug)]
#[command(name = "render")]
struct Args {
    /// The directory read as the snapshot (default: PATH's Git work tree, else PATH).
    #[arg(long)]
    root: Option<PathBuf>,
    /// The kustomization directory to render.
    path: PathBuf,
}

/// Reads `dir` into a snapshot: files only; symlinks are recorded, not followed.
fn read_snapshot(dir: &Path) -> std::io::Result<Snapshot> {
    fn walk(base: &Path, dir: &Path, snap: &mut Snapshot) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let ft = e.file_type()?;
            let p = e.path();
            let rel = p
                .strip_prefix(base)
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            if ft.is_symlink() {
                let target = std::fs::read_link(&p)?.to_string_lossy().into_owned();
                snap.insert_special(rel, SpecialEntry::Symlink { target });
            } else if ft.is_dir() {
                if e.file_name() != ".git" {
                    walk(base, &p, snap)?;
                }
            } else if ft.is_file() {
                snap.insert(rel, Blob::from_bytes(std::fs::read(&p)?));
            }
        }
        Ok(())
    }
    let mut s = Snapshot::new();
    walk(dir, dir, &mut s)?;
    Ok(s)
}

/// The enclosing Git work tree of `path` (a parent holding `.git`).
fn work_tree(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|a| a.join(".git").exists())
        .map(Path::to_path_buf)
}

fn run(args: &Args) -> Result<String, String> {
    let path =
        std::fs::canonicalize(&args.path).map_err(|e| format!("{}: {e}", args.path.display()))?;
    let root = match &args.root {
        Some(r) => std::fs::canonicalize(r).map_err(|e| format!("{}: {e}", r.display()))?,
        None => work_tree(&path).unwrap_or_else(|| path.clone()),
    };
    let rel = path
        .strip_prefix(&root)
        .map_err(|_| format!("{} is not inside {}", path.display(), root.display()))?
        .to_string_lossy()
        .replace('\\', "/");
    let snap = read_snapshot(&root).map_err(|e| format!("reading {}: {e}", root.display()))?;
    if !gitops_kustomize::is_kustomization_dir(&snap, &rel) {
        return Err(format!(
            "{}: no kustomization.yaml, kustomization.yml or Kustomization",
            path.display()
        ));
    }
    let objs = gitops_kustomize::build(&snap, &rel).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for (i, o) in objs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml::to_string(o).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
