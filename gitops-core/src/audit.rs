//! Audit sinks: where every [`SyncReport`] is recorded.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, mpsc};

use crate::report::SyncReport;

/// The error returned by audit sinks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Writing or reading the log failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be encoded.
    #[error("audit record could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Records sync reports. Called once per reconciliation, whatever its outcome.
///
/// The reconciler calls [`record_async`](Self::record_async), so that a
/// sink that writes a file or a network service does not hold an executor
/// thread while it waits. Its default runs [`record`](Self::record) inline,
/// which is right for sinks that do not block (memory, a channel); sinks
/// that do I/O override it, as [`JsonLinesAudit`] does.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Records one report durably before returning. May block the calling
    /// thread (a file write and `fsync`).
    fn record(&self, report: &SyncReport) -> Result<(), AuditError>;

    /// Records one report durably before completing, without blocking the
    /// calling task's thread. Defaults to [`record`](Self::record).
    async fn record_async(&self, report: &SyncReport) -> Result<(), AuditError> {
        self.record(report)
    }
}

/// What the writer thread of a [`JsonLinesAudit`] is asked to do: append
/// one line, then tell the caller how it went.
struct Job {
    line: String,
    reply: Box<dyn FnOnce(std::io::Result<()>) + Send>,
}

/// An append-only JSON Lines file: one [`SyncReport`] per line.
///
/// Each record is written with a single `write` on a file opened in append
/// mode and synced to disk before [`record`](AuditSink::record) returns, so
/// a crash can at worst leave the *last* line incomplete; earlier records are
/// never rewritten. [`read_log`] skips (and reports) such a torn last line.
///
/// The file is written by one thread of the sink's own (started by
/// [`open`](Self::open), stopped when the sink is dropped), in the order
/// records arrive: [`record_async`](AuditSink::record_async) hands the line
/// to it and waits for its answer without blocking the executor, so this
/// crate stays free of any async runtime and a slow disk never stalls other
/// tasks. A record whose future is dropped before it completes may still be
/// written.
#[derive(Debug)]
pub struct JsonLinesAudit {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
}

impl JsonLinesAudit {
    /// Opens (creating if needed) a log file for appending, and starts its
    /// writer thread.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        // Make the file's existence durable too (its directory entry).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gitops-audit".into())
            .spawn(move || {
                let mut file = file;
                // Ends when the sink (the only sender) is dropped.
                for job in queue {
                    (job.reply)(append(&mut file, job.line.as_bytes()));
                }
            })
            .map_err(io)?;
        Ok(Self { path, jobs })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn submit(
        &self,
        report: &SyncReport,
        reply: Box<dyn FnOnce(std::io::Result<()>) + Send>,
    ) -> Result<(), AuditError> {
        let mut line = report.to_json_line()?;
        line.push('\n');
        self.jobs
            .send(Job { line, reply })
            .map_err(|_| self.io(writer_gone()))
    }

    fn io(&self, source: std::io::Error) -> AuditError {
        AuditError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

fn writer_gone() -> std::io::Error {
    std::io::Error::other("the audit writer thread has stopped")
}

/// Appends `line` and syncs it; on failure, takes a partial line back out,
/// so the next record starts on a line of its own (best effort: the disk
/// may be what failed).
fn append(file: &mut File, line: &[u8]) -> std::io::Result<()> {
    let before = file.metadata()?.len();
    let written = file.write_all(line).and_then(|()| file.sync_data());
    if written.is_err() {
        let _ = file.set_len(before);
    }
    written
}

#[async_trait::async_trait]
impl AuditSink for JsonLinesAudit {
    fn record(&self, report: &SyncReport) -> Result<(), AuditError> {
        let (tx, rx) = mpsc::channel();
        self.submit(
            report,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.recv()
            .unwrap_or_else(|_| Err(writer_gone()))
            .map_err(|e| self.io(e))
    }

    async fn record_async(&self, report: &SyncReport) -> Result<(), AuditError> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.submit(
            report,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.await
            .unwrap_or_else(|_| Err(writer_gone()))
            .map_err(|e| self.io(e))
    }
}

/// Keeps reports in memory (for tests and embedding).
#[derive(Debug, Default)]
pub struct MemoryAudit {
    records: Mutex<Vec<SyncReport>>,
}

impl MemoryAudit {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The reports recorded so far.
    pub fn records(&self) -> Vec<SyncReport> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, report: &SyncReport) -> Result<(), AuditError> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(report.clone());
        Ok(())
    }
}

/// What [`read_log`] found.
#[derive(Debug, Default)]
pub struct AuditLog {
    /// The records, oldest first.
    pub records: Vec<SyncReport>,
    /// Lines that could not be read (1-based line number and the error):
    /// a torn last line after a crash, or lines written by something else.
    pub unreadable: Vec<(usize, String)>,
}

/// Reads a JSON Lines audit log.
pub fn read_log(path: impl AsRef<Path>) -> Result<AuditLog, AuditError> {
    let path = path.as_ref();
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut log = AuditLog::default();
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(io)?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<SyncReport>(&line) {
            Ok(r) => log.records.push(r),
            Err(e) => log.unreadable.push((i + 1, e.to_string())),
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unwrap_used)]
    fn report(owner: &str) -> SyncReport {
        SyncReport::start(&crate::target::OwnerId::new(owner).unwrap())
    }

    #[test]
    fn records_from_many_tasks_land_whole_and_in_one_file() {
        let dir = std::env::temp_dir().join(format!("gitops-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        let sink = JsonLinesAudit::open(&path).unwrap();
        let owners: Vec<String> = (0..20).map(|i| format!("app-{i}")).collect();
        let reports: Vec<SyncReport> = owners.iter().map(|o| report(o)).collect();
        // All twenty futures are in flight at once on one thread: none of
        // them blocks it while the writer thread appends and syncs.
        futures::executor::block_on(futures::future::try_join_all(
            reports.iter().map(|r| sink.record_async(r)),
        ))
        .unwrap();
        sink.record(&report("blocking")).unwrap();
        drop(sink);
        let log = read_log(&path).unwrap();
        assert!(log.unreadable.is_empty(), "{:?}", log.unreadable);
        let mut seen: Vec<String> = log.records.iter().map(|r| r.owner.to_string()).collect();
        assert_eq!(seen.pop().as_deref(), Some("blocking"));
        seen.sort();
        let mut expected = owners.clone();
        expected.sort();
        assert_eq!(seen, expected);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unwritable_log_is_an_error_naming_the_file() {
        let err = JsonLinesAudit::open("/nonexistent-dir/audit.jsonl").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-dir/audit.jsonl"),
            "{err}"
        );
    }

    #[test]
    fn the_default_async_record_is_the_blocking_one() {
        let sink = MemoryAudit::new();
        futures::executor::block_on(sink.record_async(&report("a"))).unwrap();
        assert_eq!(sink.records().len(), 1);
    }
}
