//! `render`: render a folder like `kustomize build`, natively: a
//! kustomization, or a plain folder of manifests.
//!
//! ```text
//! cargo run --example render -- [--root DIR] PATH
//! cargo run --example render -- --repo REPO --ref REF PATH
//! ```
//!
//! From the file system, DIR (default: PATH's enclosing Git work tree, else
//! PATH itself) is read as a snapshot the way a commit is: regular files
//! only, symlinks recorded and not followed, nothing outside DIR, `.git`
//! left out. PATH is relative to the current directory and must lie inside
//! DIR (the bytes of files no render of PATH can read are left unread:
//! see `read_snapshot`). With `--repo`, PATH is a folder of the commit REF resolves to
//! (relative to the repository root; `.` or empty for the root).
//!
//! A folder holding a kustomization is built with Kustomize and printed in
//! kustomize's order; any other folder is rendered as plain manifests (its
//! Kustomize sub-folders built too), validated and printed in object-key
//! order. The objects go to stdout as multi-document YAML (exit 0); errors
//! go to stderr, every one of them (exit 1).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use gitops_core::{Blob, BlobId, RenderOptions, Renderer, Snapshot, SpecialEntry};
use gitops_git::GitSource;
use gitops_kustomize::{Kustomize, LoadScope};

#[macro_use]
mod common;

/// mimalloc rather than the system allocator: a render allocates and frees
/// many small strings and maps (parsed YAML, objects, emitted text), where
/// glibc's malloc took about a sixth of the process's CPU time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Render a kustomization (or a plain folder of manifests) as multi-document YAML.
///
/// Exit codes: 0 rendered; 1 error (on stderr).
#[derive(Parser, Debug)]
#[command(name = "render", version)]
struct Args {
    /// The directory read as the snapshot (default: PATH's Git work tree, else PATH).
    #[arg(long, conflicts_with = "repo")]
    root: Option<PathBuf>,
    /// Render a commit of this Git repository instead of the file system.
    #[arg(long, requires = "reference")]
    repo: Option<PathBuf>,
    /// The branch, tag or commit to render (with --repo).
    #[arg(long = "ref", requires = "repo")]
    reference: Option<String>,
    /// The folder to render.
    path: PathBuf,
}

/// Reads `dir` into a snapshot to render its folder `path` (relative to
/// `dir`): files only; symlinks are recorded, not followed.
///
/// Every file is in the snapshot, but only the bytes a render can read are
/// read: the files under `path` (a plain folder's manifests) and those
/// under a folder holding a kustomization ([`LoadScope`]: kustomize's load
/// restrictor keeps a build there). The others (a repository's sources,
/// say) are placeholders with no bytes and the null id, which a render
/// only tests for existence: the output and errors are those of a full
/// read, at a fraction of the cost on a large repository.
fn read_snapshot(dir: &Path, path: &str) -> std::io::Result<Snapshot> {
    fn walk(
        base: &Path,
        dir: &Path,
        files: &mut Vec<(String, PathBuf)>,
        snap: &mut Snapshot,
    ) -> std::io::Result<()> {
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
                    walk(base, &p, files, snap)?;
                }
            } else if ft.is_file() {
                files.push((rel, p));
            }
        }
        Ok(())
    }
    let mut snap = Snapshot::new();
    let mut files = Vec::new();
    walk(dir, dir, &mut files, &mut snap)?;
    let scope = LoadScope::new(files.iter().map(|(rel, _)| rel.as_str()));
    let unread = Blob::with_id(BlobId::from_hex("0".repeat(40)), Vec::new());
    for (rel, p) in files {
        let under_path =
            path.is_empty() || rel.strip_prefix(path).is_some_and(|r| r.starts_with('/'));
        let blob = if under_path || scope.contains(&rel) {
            Blob::from_bytes(std::fs::read(&p)?)
        } else {
            unread.clone()
        };
        snap.insert(rel, blob);
    }
    Ok(snap)
}

/// The enclosing Git work tree of `path` (a parent holding `.git`).
fn work_tree(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|a| a.join(".git").exists())
        .map(Path::to_path_buf)
}

/// The snapshot and the folder of it to render.
fn load(args: &Args) -> Result<(Snapshot, String), Box<dyn Error>> {
    if let (Some(repo), Some(reference)) = (&args.repo, &args.reference) {
        let source = GitSource::open(repo)?;
        let revision = source.resolve_blocking(reference)?;
        let snapshot = source.snapshot_blocking(&revision, None)?;
        let dir = args.path.to_string_lossy().replace('\\', "/");
        let dir = dir.trim_matches('/').trim_start_matches("./");
        let dir = if dir == "." { "" } else { dir };
        let is_folder = dir.is_empty()
            || snapshot
                .files()
                .any(|(p, _)| p.strip_prefix(dir).is_some_and(|r| r.starts_with('/')));
        if !is_folder {
            return Err(format!(
                "{dir}: no such folder in {reference} ({})",
                revision.short_id()
            )
            .into());
        }
        return Ok((snapshot, dir.to_owned()));
    }
    let path =
        std::fs::canonicalize(&args.path).map_err(|e| format!("{}: {e}", args.path.display()))?;
    if !path.is_dir() {
        return Err(format!("{}: not a folder", args.path.display()).into());
    }
    let root = match &args.root {
        Some(r) => std::fs::canonicalize(r).map_err(|e| format!("{}: {e}", r.display()))?,
        None => work_tree(&path).unwrap_or_else(|| path.clone()),
    };
    let rel = path
        .strip_prefix(&root)
        .map_err(|_| format!("{} is not inside {}", path.display(), root.display()))?
        .to_string_lossy()
        .replace('\\', "/");
    let snapshot =
        read_snapshot(&root, &rel).map_err(|e| format!("reading {}: {e}", root.display()))?;
    Ok((snapshot, rel))
}

/// The objects as multi-document YAML, in one buffer written at once.
///
/// serde-saphyr rather than serde_yaml: it writes the same block style
/// about twice as fast (serde_yaml's libyaml emitter was a fifth of a
/// render's CPU time), and quotes strings that YAML 1.1 readers would take
/// for another type (`yes`, `on`). Long strings stay on one line and
/// multi-line ones are literal blocks, as kustomize prints them.
fn to_yaml(objects: &[serde_json::Value]) -> Result<String, serde_saphyr::ser::Error> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.min_fold_chars = usize::MAX;
    options.folded_wrap_chars = usize::MAX;
    let mut yaml = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            yaml.push_str("---\n");
        }
        serde_saphyr::to_fmt_writer_with_options(&mut yaml, o, options.clone())?;
    }
    Ok(yaml)
}

fn run(args: &Args) -> Result<ExitCode, Box<dyn Error>> {
    let (snapshot, dir) = load(args)?;
    let objects: Vec<serde_json::Value> = if gitops_kustomize::is_kustomization_dir(&snapshot, &dir)
    {
        gitops_kustomize::build(&snapshot, &dir)?
    } else {
        let mut renderer =
            Renderer::new(RenderOptions::default())?.with_step(Arc::new(Kustomize::new()));
        let desired = renderer.render_dir(&snapshot, &dir)?;
        desired
            .iter()
            .map(|(_, d)| d.object.as_value().clone())
            .collect()
    };
    std::io::Write::write_all(&mut std::io::stdout().lock(), to_yaml(&objects)?.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args = match common::parse::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    common::finish(run(&args))
}
