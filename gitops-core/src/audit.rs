//! Audit sinks: where every [`SyncReport`] is recorded.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

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
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Records one report durably before returning.
    fn record(&self, report: &SyncReport) -> Result<(), AuditError>;
}

/// An append-only JSON Lines file: one [`SyncReport`] per line.
///
/// Each record is written with a single `write` on a file opened in append
/// mode and synced to disk before [`record`](AuditSink::record) returns, so
/// a crash can at worst leave the *last* line incomplete; earlier records are
/// never rewritten. [`read_log`] skips (and reports) such a torn last line.
#[derive(Debug)]
pub struct JsonLinesAudit {
    path: PathBuf,
    file: Mutex<File>,
}

impl JsonLinesAudit {
    /// Opens (creating if needed) a log file for appending.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| AuditError::Io {
                path: path.clone(),
                source,
            })?;
        // Make the file's existence durable too (its directory entry).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AuditSink for JsonLinesAudit {
    fn record(&self, report: &SyncReport) -> Result<(), AuditError> {
        let mut line = report.to_json_line()?;
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let before = file.metadata().map_err(io)?.len();
        if let Err(e) = file
            .write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
        {
            // Take a partial line back out, so the next record starts on a
            // line of its own (best effort: the disk may be what failed).
            let _ = file.set_len(before);
            return Err(io(e));
        }
        Ok(())
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
