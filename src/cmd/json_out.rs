//! Printing JSON results on stdout (shared by the JSON subcommands).

use std::io::Write;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::layout::Layout;

/// Writes `text` to stdout, adding a final newline when it has none.
pub(crate) fn print_text(text: &str) -> Result<()> {
    // The file's byte order mark, which a rewrite keeps, is not part of the document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = std::io::stdout().lock();
    let mut r = out.write_all(text.as_bytes());
    if r.is_ok() && !text.ends_with('\n') {
        r = out.write_all(b"\n");
    }
    r.and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

/// A value as `read`/`get` print it: `--raw` strings bare, `--compact` on one line,
/// else indented by two spaces.
pub(crate) fn render_value(value: &Value, raw: bool, compact: bool) -> String {
    if raw && let Value::String(s) = value {
        return s.clone();
    }
    let mut layout = if compact {
        Layout::compact()
    } else {
        Layout::default()
    };
    layout.final_newline = false;
    layout.render(value)
}
