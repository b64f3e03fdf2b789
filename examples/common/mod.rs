//! What every example program shares: command-line parsing with clap and
//! the exit codes of examples/README.md, and output that ends cleanly when
//! the reader of a pipe goes away (`quickstart | head`).
//!
//! Rust ignores `SIGPIPE`, so writing to a closed pipe is an `EPIPE` error,
//! and `println!` panics on it. The examples print with [`outln!`] and
//! [`out!`] instead, which return the error; [`finish`] treats a closed
//! stdout as a normal end.

// Each example uses a part of this module.
#![allow(dead_code, unused_macros)]

use std::error::Error;
use std::io::{self, Write as _};
use std::process::ExitCode;

use clap::Parser;

/// Exit code of a run that failed (bad arguments included): 1.
pub const EXIT_ERROR: u8 = 1;

/// `println!` that returns an [`io::Error`] instead of panicking.
macro_rules! outln {
    () => { ::std::io::Write::write_all(&mut ::std::io::stdout().lock(), b"\n") };
    ($($arg:tt)*) => { ::std::io::Write::write_fmt(&mut ::std::io::stdout().lock(), format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that returns an [`io::Error`] instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => { ::std::io::Write::write_fmt(&mut ::std::io::stdout().lock(), format_args!($($arg)*)) };
}

/// Parses the command line: `--help` and `--version` print on stdout and
/// exit 0; a bad argument prints the error and usage on stderr and exits
/// with [`EXIT_ERROR`].
pub fn parse<T: Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(EXIT_ERROR)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Whether `error` (or one of its causes) is a write to a closed pipe.
pub fn is_broken_pipe(error: &(dyn Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Prints `error` and its causes on stderr, as `error: ...` then
/// `  caused by: ...` lines.
pub fn report(error: &(dyn Error + 'static)) {
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "error: {error}");
    let mut cause = error.source();
    while let Some(c) = cause {
        let _ = writeln!(stderr, "  caused by: {c}");
        cause = c.source();
    }
}

/// The exit code of a run: `ok` when it succeeded or when stdout was closed
/// by its reader (nothing more was wanted), else the error on stderr and
/// [`EXIT_ERROR`].
pub fn finish(result: Result<ExitCode, Box<dyn Error>>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(e.as_ref()) => ExitCode::SUCCESS,
        Err(e) => {
            report(e.as_ref());
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Writes one line on stderr (ignoring a closed stderr).
pub fn warn(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{message}");
}

/// A temporary folder removed on drop, also when a run stops early.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A new, empty folder under the system's temporary folder.
    pub fn new(prefix: &str) -> io::Result<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
