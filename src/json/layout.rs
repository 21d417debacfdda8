//! Faithful output: learn the layout of the file we read (compact or indented, indent
//! unit, spaces after `:` and `,`, line ending, final newline) and write the new
//! document the same way. Key order comes from serde_json's `preserve_order`; number
//! text from `arbitrary_precision` (a number is written exactly as it was read).

use std::borrow::Cow;
use std::io;

use serde_json::Value;

/// What the layout writer needs to see of a JSON value, so that one writer serves both
/// serde_json's `Value` and jaq's `Val` (which `update` keeps its documents in).
pub trait Node: Sized {
    fn view(&self) -> View<'_, Self>;
}

/// One JSON value as the writer sees it.
#[allow(missing_debug_implementations)]
pub enum View<'a, N> {
    Null,
    Bool(bool),
    /// The number's text.
    Number(Cow<'a, str>),
    String(Cow<'a, str>),
    Array(&'a [N]),
    Object(Box<dyn ExactSizeIterator<Item = (Cow<'a, str>, &'a N)> + 'a>),
}

impl Node for Value {
    fn view(&self) -> View<'_, Self> {
        match self {
            Value::Null => View::Null,
            Value::Bool(b) => View::Bool(*b),
            Value::Number(n) => View::Number(Cow::Borrowed(n.as_str())),
            Value::String(s) => View::String(Cow::Borrowed(s)),
            Value::Array(items) => View::Array(items),
            Value::Object(map) => View::Object(Box::new(
                map.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), v)),
            )),
        }
    }
}

/// How a JSON document is laid out on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// `None`: everything on one line. `Some(unit)`: one member per line, each level
    /// indented by `unit` (spaces or a tab; may be empty).
    pub(crate) indent: Option<String>,
    /// A space after `:`.
    pub(crate) colon_space: bool,
    /// A space after `,` (one-line layout only).
    pub(crate) comma_space: bool,
    /// `"\n"` or `"\r\n"`.
    pub(crate) newline: &'static str,
    /// The document ends with a line ending.
    pub(crate) final_newline: bool,
    /// How the file spells exponents (`1E5`, `1e+5`, `1e5`), if it has any: serde_json
    /// reads them all as `1e+5`, so numbers are written back in the file's spelling.
    pub(crate) exponent: Option<Exponent>,
    /// The file starts with a UTF-8 byte order mark, which a rewrite keeps.
    pub(crate) bom: bool,
}

/// The spelling of a number's exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exponent {
    /// `E` rather than `e`.
    pub(crate) upper: bool,
    /// `e+5` rather than `e5`.
    pub(crate) plus: bool,
}

impl Default for Layout {
    /// jq's default: two-space indent, `": "`, final newline.
    fn default() -> Self {
        Layout {
            indent: Some("  ".to_string()),
            colon_space: true,
            comma_space: false,
            newline: "\n",
            final_newline: true,
            exponent: None,
            bom: false,
        }
    }
}

impl Layout {
    /// One compact line, as JSON Lines and `--compact` want it.
    pub(crate) fn compact() -> Self {
        Layout {
            indent: None,
            colon_space: false,
            comma_space: false,
            newline: "\n",
            final_newline: false,
            exponent: None,
            bom: false,
        }
    }

    /// The layout of `text`, which must be valid JSON.
    pub(crate) fn detect(text: &[u8]) -> Self {
        let (text, bom) = crate::json::strip_bom(text);
        let mut layout = Layout {
            indent: None,
            colon_space: false,
            comma_space: false,
            newline: "\n",
            final_newline: false,
            exponent: None,
            bom,
        };
        let end = text
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        let tail = &text[end..];
        layout.final_newline = tail.contains(&b'\n');
        if tail.starts_with(b"\r\n") {
            layout.newline = "\r\n";
        }
        let body = &text[..end];

        let mut in_string = false;
        let mut escaped = false;
        let mut depth = 0usize;
        let mut seen_colon = false;
        let mut seen_comma = false;
        let mut seen_newline = false;
        let mut plus_seen = false;
        let mut i = 0;
        while i < body.len() {
            let b = body[i];
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                i += 1;
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'e' | b'E' if i > 0 && body[i - 1].is_ascii_digit() => {
                    // The case comes from the first exponent; whether positive ones
                    // carry a `+` from the first one that is not negative.
                    let sign = body.get(i + 1);
                    let style = layout.exponent.get_or_insert(Exponent {
                        upper: b == b'E',
                        plus: sign == Some(&b'+'),
                    });
                    if sign != Some(&b'-') && !plus_seen {
                        plus_seen = true;
                        style.plus = sign == Some(&b'+');
                    }
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                b':' if !seen_colon => {
                    seen_colon = true;
                    layout.colon_space = body.get(i + 1) == Some(&b' ');
                }
                b',' if !seen_comma => {
                    seen_comma = true;
                    layout.comma_space = body.get(i + 1) == Some(&b' ');
                }
                b'\n' if !seen_newline => {
                    seen_newline = true;
                    if i > 0 && body[i - 1] == b'\r' {
                        layout.newline = "\r\n";
                    }
                    let run: Vec<u8> = body[i + 1..]
                        .iter()
                        .copied()
                        .take_while(|c| *c == b' ' || *c == b'\t')
                        .collect();
                    let next = body.get(i + 1 + run.len());
                    let level = match next {
                        Some(b'}' | b']') => depth.saturating_sub(1),
                        _ => depth,
                    };
                    let unit = match run.len().checked_div(level) {
                        Some(n) => String::from_utf8_lossy(&run[..n]).into_owned(),
                        None => String::new(),
                    };
                    layout.indent = Some(unit);
                }
                _ => {}
            }
            i += 1;
        }
        if layout.indent.is_some() {
            layout.comma_space = false;
        }
        layout
    }

    /// `value` written in this layout.
    pub(crate) fn render<N: Node>(&self, value: &N) -> String {
        let mut out = Out {
            text: String::new(),
            sink: None,
        };
        // Without a sink nothing can fail.
        let _ = self.write_document(&mut out, value);
        out.text
    }

    /// `value` written in this layout to `sink`, a chunk at a time: a large document
    /// is never held as text.
    pub(crate) fn render_to<N: Node>(&self, value: &N, sink: &mut dyn io::Write) -> io::Result<()> {
        let mut out = Out {
            text: String::with_capacity(SPILL_AT + SPILL_AT / 4),
            sink: Some(sink),
        };
        self.write_document(&mut out, value)?;
        out.spill(0)
    }

    fn write_document<N: Node>(&self, out: &mut Out<'_>, value: &N) -> io::Result<()> {
        if self.bom {
            out.text.push('\u{feff}');
        }
        self.write(out, value, 0)?;
        if self.final_newline {
            out.text.push_str(self.newline);
        }
        Ok(())
    }

    fn write<N: Node>(&self, out: &mut Out<'_>, value: &N, level: usize) -> io::Result<()> {
        let text = &mut out.text;
        match value.view() {
            View::Null => text.push_str("null"),
            View::Bool(b) => text.push_str(if b { "true" } else { "false" }),
            View::Number(n) => self.write_number(text, &n),
            View::String(s) => write_string(text, &s),
            View::Array(items) => {
                if items.is_empty() {
                    text.push_str("[]");
                    return Ok(());
                }
                text.push('[');
                for (i, item) in items.iter().enumerate() {
                    self.separator(&mut out.text, i, level + 1);
                    self.write(out, item, level + 1)?;
                    out.spill(SPILL_AT)?;
                }
                self.close(&mut out.text, level);
                out.text.push(']');
            }
            View::Object(members) => {
                if members.len() == 0 {
                    text.push_str("{}");
                    return Ok(());
                }
                text.push('{');
                for (i, (key, item)) in members.enumerate() {
                    let text = &mut out.text;
                    self.separator(text, i, level + 1);
                    write_string(text, &key);
                    text.push(':');
                    if self.colon_space {
                        text.push(' ');
                    }
                    self.write(out, item, level + 1)?;
                    out.spill(SPILL_AT)?;
                }
                self.close(&mut out.text, level);
                out.text.push('}');
            }
        }
        Ok(())
    }

    fn write_number(&self, out: &mut String, text: &str) {
        match (self.exponent, text.find(['e', 'E'])) {
            (Some(style), Some(at)) => {
                out.push_str(&text[..at]);
                out.push(if style.upper { 'E' } else { 'e' });
                let rest = &text[at + 1..];
                let digits = rest.strip_prefix('+').unwrap_or(rest);
                if style.plus && !digits.starts_with('-') {
                    out.push('+');
                }
                out.push_str(digits);
            }
            _ => out.push_str(text),
        }
    }

    fn separator(&self, out: &mut String, index: usize, level: usize) {
        if index > 0 {
            out.push(',');
            if self.indent.is_none() && self.comma_space {
                out.push(' ');
            }
        }
        if let Some(unit) = &self.indent {
            out.push_str(self.newline);
            for _ in 0..level {
                out.push_str(unit);
            }
        }
    }

    fn close(&self, out: &mut String, level: usize) {
        if let Some(unit) = &self.indent {
            out.push_str(self.newline);
            for _ in 0..level {
                out.push_str(unit);
            }
        }
    }
}

/// Text being written, handed to the sink (if any) whenever a chunk is ready.
struct Out<'a> {
    text: String,
    sink: Option<&'a mut dyn io::Write>,
}

/// The chunk size of [`Layout::render_to`].
const SPILL_AT: usize = 1 << 16;

impl Out<'_> {
    /// Hands the text to the sink once it is at least `at` bytes long.
    fn spill(&mut self, at: usize) -> io::Result<()> {
        if let Some(sink) = &mut self.sink
            && self.text.len() >= at
        {
            sink.write_all(self.text.as_bytes())?;
            self.text.clear();
        }
        Ok(())
    }
}

/// A JSON string literal: `"` `\` and control characters escaped, the rest as is.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{08}' => Some("\\b"),
            '\u{0c}' => Some("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        let v: Value = serde_json::from_str(text).unwrap();
        let layout = Layout::detect(text.as_bytes());
        assert_eq!(layout.render(&v), text, "{text:?}");
        let mut streamed = Vec::new();
        layout.render_to(&v, &mut streamed).unwrap();
        assert_eq!(streamed, text.as_bytes(), "{text:?} streamed");
    }

    #[test]
    fn layouts_round_trip() {
        round_trip("{\"a\":1,\"b\":[1,2,{}],\"c\":[]}");
        round_trip("{\"a\":1,\"b\":[1,2]}\n");
        round_trip("{\"a\": 1, \"b\": [1, 2]}\n");
        round_trip("{\n  \"b\": 1,\n  \"a\": [\n    1.0,\n    1e5\n  ]\n}\n");
        round_trip("{\n    \"z\": {\n        \"y\": 123456789012345678901234567890\n    }\n}");
        round_trip("{\n\t\"a\": \"x\\ny\\u0001\\\"\"\n}\n");
        round_trip("[\r\n  1,\r\n  2\r\n]\r\n");
        round_trip("[\n1,\n2\n]\n");
        round_trip("42\n");
        round_trip("[1e5,2e-3,3.5e10]");
        round_trip("[1E+5,2E-3]");
        round_trip("[1e+5, 2e-3, true, false]");
        round_trip("\"s\"");
        round_trip("{\n  \"a\": -0,\n  \"é\": \"ü\"\n}\n");
    }
}
