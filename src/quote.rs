//! The one quoting function for everything lockrun prints that it did not write itself:
//! paths, labels, commands, host names, entry names, and whole message lines.
//!
//! A file name may hold a newline, a label may hold `ESC [ 2 J`: printed raw, the first
//! splits a one-line error in two (and can forge a line such as `PID: 1`), the second
//! reaches another user's terminal as a command. So control characters, invalid UTF-8
//! and the invisible characters that reorder or hide text are shown as escapes: `\n`,
//! `\r`, `\t`, `\xNN` (other control bytes and bytes that are not UTF-8) and `\u{NNNN}`
//! (bidi and zero-width characters, line and paragraph separators). A backslash is
//! doubled when the text needed any other escape, so escaped text reads back
//! unambiguously, and text with nothing to escape is printed as it is.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt::Write as _;

/// Prints `lockrun: <line>` on stderr, the line quoted: every message lockrun prints
/// on stderr goes through here, so none can span two lines or carry an escape code,
/// whatever path, label or command it names.
pub fn say(line: &str) {
    eprintln!("lockrun: {}", quote(line));
}

/// `text`, safe to print on one line.
pub fn quote(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_char(&mut out, c);
    }
    Cow::Owned(out)
}

/// [`quote`] for OS text, which need not be UTF-8: a stray byte is shown as `\xNN`.
pub fn quote_os(text: &OsStr) -> Cow<'_, str> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bytes = text.as_bytes();
        match std::str::from_utf8(bytes) {
            Ok(s) => quote(s),
            Err(_) => Cow::Owned(quote_bytes(bytes)),
        }
    }
    #[cfg(not(unix))]
    {
        match text.to_str() {
            Some(s) => quote(s),
            None => Cow::Owned(quote(&text.to_string_lossy()).into_owned()),
        }
    }
}

/// Bytes that may not be UTF-8 (an `info` line, a lock-directory entry name).
#[cfg_attr(not(unix), allow(dead_code))] // Unix OS text only; its tests run everywhere.
pub fn quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible(c)
}

/// Characters that change how the text around them is shown: bidi controls, zero-width
/// characters, line and paragraph separators, the byte order mark.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\\' => out.push_str("\\\\"),
        c if c.is_control() && (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert!(matches!(quote("a b/c.json é €"), Cow::Borrowed(_)));
        assert_eq!(quote("C:\\dir"), "C:\\dir");
    }

    #[test]
    fn control_and_invisible_characters_are_escaped() {
        assert_eq!(quote("x\nPID: 1\u{1b}[31m"), "x\\nPID: 1\\x1b[31m");
        assert_eq!(quote("a\r\tb\u{7f}"), "a\\r\\tb\\x7f");
        assert_eq!(quote("\u{202e}gnp.exe"), "\\u{202e}gnp.exe");
        assert_eq!(quote("a\\b\n"), "a\\\\b\\n");
        assert_eq!(quote("\u{85}"), "\\x85");
    }

    #[test]
    fn invalid_utf8_bytes_are_escaped() {
        assert_eq!(quote_bytes(b"\xff\xfe.json"), "\\xff\\xfe.json");
        assert_eq!(quote_bytes("é\n".as_bytes()), "é\\n");
    }

    #[test]
    fn quoting_is_idempotent_on_its_own_output() {
        let once = quote("a\nb").into_owned();
        assert_eq!(quote(&once), once);
    }
}
