//! The one nesting limit of every JSON reader and writer.
//!
//! Arrays and objects may sit inside each other up to [`NESTING_LIMIT`] levels: `1` is
//! level 0, `[1]` level 1, `{"a":[1]}` level 2. Every document lockrun reads (the file,
//! stdin, `--argjson`, `--create`, a `set` value, a patch, a schema) is scanned before it
//! is parsed, and every document it writes (a filter's result, the document after
//! `set`, `patch`, `append`) is measured before it is written, so what lockrun writes
//! it can always read again. The scan is one pass over the bytes; the measure walks
//! the tree without recursion, so a value nested a million levels deep costs no
//! stack.

use std::io;

/// How deep arrays and objects may nest (documented in README and the man page).
pub const NESTING_LIMIT: usize = 4096;

/// Where JSON text first nests deeper than the limit: 1-based line and column (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    pub line: usize,
    pub column: usize,
}

impl TooDeep {
    /// `origin:line:column: ...`, the message of every reader.
    pub fn message(&self, origin: &str) -> String {
        format!(
            "{origin}:{}:{}: JSON nested deeper than {NESTING_LIMIT} levels (lockrun's limit; nothing written)",
            self.line, self.column
        )
    }
}

/// The message of every writer whose result would nest too deep.
pub fn result_message(origin: &str, what: &str) -> String {
    format!(
        "{origin}: {what} would nest deeper than {NESTING_LIMIT} levels (lockrun's limit; nothing written)"
    )
}

/// Follows JSON text as it streams by and tells where it first nests too deep. It
/// needs no parse: only brackets outside strings count, so invalid text is left for
/// the parser to describe.
#[derive(Debug, Default, Clone)]
pub struct Scanner {
    depth: usize,
    in_string: bool,
    escaped: bool,
    line: usize,
    /// Bytes since the start of the current line.
    column: usize,
}

impl Scanner {
    /// Feeds the next bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), TooDeep> {
        for &b in bytes {
            self.column += 1;
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                } else if b == b'\n' {
                    self.newline();
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'[' | b'{' => {
                    self.depth += 1;
                    if self.depth > NESTING_LIMIT {
                        return Err(TooDeep {
                            line: self.line + 1,
                            column: self.column,
                        });
                    }
                }
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                b'\n' => self.newline(),
                _ => {}
            }
        }
        Ok(())
    }

    fn newline(&mut self) {
        self.line += 1;
        self.column = 0;
    }
}

/// Scans a whole text.
pub fn check_text(bytes: &[u8]) -> Result<(), TooDeep> {
    Scanner::default().feed(bytes)
}

/// A reader that fails with [`TooDeep`] (as an `io::Error` that
/// [`too_deep_in`] recognises) as soon as the text it yields nests too deep: the
/// parser reading from it never recurses past the limit.
#[derive(Debug)]
pub struct CheckedRead<R> {
    inner: R,
    scanner: Scanner,
}

impl<R> CheckedRead<R> {
    pub fn new(inner: R) -> Self {
        CheckedRead {
            inner,
            scanner: Scanner::default(),
        }
    }
}

impl<R: io::Read> io::Read for CheckedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scanner
            .feed(&buf[..n])
            .map_err(|deep| io::Error::other(DeepError(deep)))?;
        Ok(n)
    }
}

#[derive(Debug)]
struct DeepError(TooDeep);

impl std::fmt::Display for DeepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nested deeper than {NESTING_LIMIT} levels")
    }
}

impl std::error::Error for DeepError {}

/// The [`TooDeep`] a [`CheckedRead`] reported, if this error is one.
pub fn too_deep_in(e: &io::Error) -> Option<TooDeep> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<DeepError>())
        .map(|d| d.0)
}

/// Whether `value` nests deeper than the limit; walks without recursion.
pub fn value_too_deep(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    fn children(v: &Value) -> Option<Box<dyn Iterator<Item = &Value> + '_>> {
        match v {
            Value::Array(a) if !a.is_empty() => Some(Box::new(a.iter())),
            Value::Object(o) if !o.is_empty() => Some(Box::new(o.values())),
            _ => None,
        }
    }
    too_deep(value, children, |v| {
        matches!(v, Value::Array(_) | Value::Object(_))
    })
}

/// Depth-first walk with an explicit stack of child iterators: the stack's length is
/// the depth, so the walk stops one level past the limit.
fn too_deep<'v, T>(
    root: &'v T,
    children: fn(&'v T) -> Option<Box<dyn Iterator<Item = &'v T> + 'v>>,
    is_container: fn(&T) -> bool,
) -> bool {
    if !is_container(root) {
        return false;
    }
    let mut stack = Vec::new();
    if let Some(it) = children(root) {
        stack.push(it);
    }
    // `root` is level 1; every iterator on the stack is one level further in.
    while let Some(top) = stack.last_mut() {
        match top.next() {
            None => {
                stack.pop();
            }
            Some(child) if is_container(child) => {
                if stack.len() + 1 > NESTING_LIMIT {
                    return true;
                }
                if let Some(it) = children(child) {
                    stack.push(it);
                }
            }
            Some(_) => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn the_limit_is_allowed_and_one_more_is_not() {
        assert_eq!(check_text(nested(NESTING_LIMIT).as_bytes()), Ok(()));
        let err = check_text(nested(NESTING_LIMIT + 1).as_bytes()).unwrap_err();
        assert_eq!(
            err,
            TooDeep {
                line: 1,
                column: NESTING_LIMIT + 1
            }
        );
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let text = format!(
            "{{\"a\": \"{}\\\"{}\"}}",
            "[".repeat(10_000),
            "{".repeat(10_000)
        );
        assert_eq!(check_text(text.as_bytes()), Ok(()));
    }

    #[test]
    fn lines_and_columns_are_counted() {
        let text = format!("{{\n\"x\": \"a\nb\",\n  {}", "[".repeat(NESTING_LIMIT));
        let err = check_text(text.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            TooDeep {
                line: 4,
                column: 2 + NESTING_LIMIT
            }
        );
    }

    #[test]
    fn values_are_measured_without_recursion() {
        // Parsing and dropping the deepest value recurse: on the JSON thread's stack.
        crate::json::stack::with_deep_stack(measure_values);
    }

    fn measure_values() {
        let text = nested(NESTING_LIMIT);
        let ok: serde_json::Value = {
            let mut de = serde_json::Deserializer::from_str(&text);
            de.disable_recursion_limit();
            serde::Deserialize::deserialize(&mut de).unwrap()
        };
        assert!(!value_too_deep(&ok));
        let deeper = serde_json::Value::Array(vec![ok]);
        assert!(value_too_deep(&deeper));
        assert!(!value_too_deep(&serde_json::json!([[], {}, 1])));
        assert!(!value_too_deep(&serde_json::json!(1)));
    }

    #[test]
    fn a_reader_stops_at_the_limit() {
        use std::io::Read;
        let text = nested(NESTING_LIMIT + 5);
        let mut r = CheckedRead::new(text.as_bytes());
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(too_deep_in(&e).map(|d| d.column), Some(NESTING_LIMIT + 1));
    }
}
