//! Escaping text for people: user-controlled strings (file paths, object
//! names, keys, values, messages) printed in a plan, a diff, a report or an
//! error must not be able to forge lines or drive the terminal.
//!
//! A name such as `"web\n  + create Secret/prod/backdoor"` or one carrying
//! `ESC [ 2 J` would otherwise print a line the plan does not contain, or
//! clear the screen; a right-to-left override (U+202E) would show `yaml.exe`
//! as `exe.lmay`. Everything a human reads goes through [`escape`],
//! [`Escaped`] or [`EscapeWriter`], which replace
//!
//! * every control character (Unicode category `Cc`: the C0 controls
//!   U+0000–U+001F, including newline, carriage return, tab and ESC;
//!   DEL U+007F; the C1 controls U+0080–U+009F, including the 8-bit CSI
//!   U+009B and NEL U+0085),
//! * the bidirectional formatting characters (U+061C, U+200E, U+200F,
//!   U+202A–U+202E, U+2066–U+2069),
//! * the line and paragraph separators U+2028 and U+2029,
//!
//! with a visible escape: `\n`, `\r`, `\t`, `\0`, `\e` for ESC, and
//! `\u{XXXX}` for the others. Everything else (including non-ASCII letters)
//! is left as written.
//!
//! The escaped form is for display. It is not injective (a name that
//! contains a backslash followed by `n` prints like a name with a newline):
//! machine-readable output (JSON) keeps the exact text. Backslashes are left
//! alone on purpose, so escaping is idempotent: text that is escaped twice
//! (a `Display` of a key inside the `Display` of a plan) reads the same as
//! text escaped once.
//!
//! ```
//! use gitops_diff::escape::{escape, Escaped};
//!
//! assert_eq!(escape("web\n  + create Secret/x"), "web\\n  + create Secret/x");
//! assert_eq!(escape("\u{1b}[2Jclear"), "\\e[2Jclear");
//! assert_eq!(escape("invoice\u{202e}lmth.exe"), "invoice\\u{202e}lmth.exe");
//! assert_eq!(escape("plain: ünïcode"), "plain: ünïcode");
//! assert_eq!(format!("{}", Escaped(&"a\rb")), "a\\rb");
//! ```

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Whether `c` must not reach a terminal as is (see the
/// [module documentation](self)).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Writes the visible escape of `c` (which [`needs_escape`]).
fn write_escape(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        '\0' => out.write_str("\\0"),
        '\u{1b}' => out.write_str("\\e"),
        c => write!(out, "\\u{{{:x}}}", u32::from(c)),
    }
}

/// `text` with every character that [`needs_escape`] replaced by a visible
/// escape; borrowed when nothing needs it.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    // Writing into a String cannot fail.
    let _ = EscapeWriter::new(&mut out).write_str(text);
    Cow::Owned(out)
}

/// A [`fmt::Write`] adaptor that escapes everything written through it
/// (see [`escape`]) before passing it on.
///
/// It turns any `Display` into a safe one: `write!(EscapeWriter::new(f),
/// "{key}: {value}")` cannot emit a control character, whatever `key` and
/// `value` contain.
#[derive(Debug)]
pub struct EscapeWriter<W> {
    inner: W,
}

impl<W: fmt::Write> EscapeWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner }
    }

    /// The wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: fmt::Write> fmt::Write for EscapeWriter<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
            self.inner.write_str(&rest[..at])?;
            write_escape(&mut self.inner, c)?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.inner.write_str(rest)
    }
}

/// Displays a value with every character that [`needs_escape`] escaped:
/// `format!("{}", Escaped(&path))`.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a, T: fmt::Display + ?Sized>(pub &'a T);

impl<T: fmt::Display + ?Sized> fmt::Display for Escaped<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Padding and precision apply to the escaped text, as a reader sees it.
        if f.width().is_some() || f.precision().is_some() {
            let mut s = String::new();
            write!(EscapeWriter::new(&mut s), "{}", self.0)?;
            return f.pad(&s);
        }
        write!(EscapeWriter::new(f), "{}", self.0)
    }
}

/// [`Escaped`], as a function: `format!("{}", escaped(&name))`.
pub fn escaped<T: fmt::Display + ?Sized>(value: &T) -> Escaped<'_, T> {
    Escaped(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_bidi_and_separators() {
        assert_eq!(escape("a\nb\r\tc\0"), "a\\nb\\r\\tc\\0");
        assert_eq!(escape("\u{1b}]8;;http://x\u{7}"), "\\e]8;;http://x\\u{7}");
        assert_eq!(escape("\u{9b}31m\u{85}\u{7f}"), "\\u{9b}31m\\u{85}\\u{7f}");
        assert_eq!(
            escape("\u{202a}\u{202e}\u{2066}\u{2069}\u{200e}\u{200f}\u{61c}"),
            "\\u{202a}\\u{202e}\\u{2066}\\u{2069}\\u{200e}\\u{200f}\\u{61c}"
        );
        assert_eq!(escape("x\u{2028}y\u{2029}"), "x\\u{2028}y\\u{2029}");
    }

    #[test]
    fn leaves_ordinary_text_alone_and_is_idempotent() {
        for s in ["", "web", "ConfigMap/prod/a.b", "back\\slash", "日本語 ü €"] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s}");
        }
        let once = escape("a\n\u{1b}[1mb\u{202e}").into_owned();
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn escaped_display_pads_the_escaped_text() {
        assert_eq!(format!("[{:<6}]", Escaped("a\nb")), "[a\\nb  ]");
        assert_eq!(format!("{}", escaped(&42)), "42");
    }
}
