//! jq syntax that jaq's parser does not read, rewritten into jq that it does, before
//! parsing. Only programs that use these forms change; every other program is passed
//! on byte for byte (so error positions stay right).
//!
//! - `.5` (a number in jq) becomes `0.5`.
//! - `$__loc__` becomes `{"file":"<top-level>","line":N}` (`{$__loc__}` becomes
//!   `{"__loc__": {...}}`).
//! - `$name: pattern` in an object pattern (`. as {$a, $b: [$c]}`) becomes
//!   `$name, "name": pattern`.
//! - Destructuring alternatives `E as P1 ?// P2 ?// P3 | BODY` become
//!   `E as $v | . as $d | try (<all variables null> | $v as P1 | BODY)
//!   catch ($d | try (... P2 ...) catch ($d | (... P3 | BODY)))`: as in jq, an error
//!   in binding a pattern or in the body moves on to the next pattern, the error of
//!   the last one is the result, and every variable of every pattern is bound (null
//!   where its pattern did not bind it).

use jaq_core::load::lex::{StrPart, Tok, Token};
use jaq_core::load::{Lexer, span};

/// The program with the forms above rewritten.
pub(crate) fn rewrite(code: &str) -> String {
    let mut out = simple_edits(code);
    // Each round rewrites one `?//` group (its body may hold another one).
    for n in 0..64 {
        match alt_once(&out, n) {
            Some(next) => out = next,
            None => break,
        }
    }
    out
}

type Edit = (std::ops::Range<usize>, String);

fn apply(code: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(code.len() + 64);
    let mut at = 0;
    for (r, text) in edits {
        if r.start < at {
            continue;
        }
        out.push_str(&code[at..r.start]);
        out.push_str(&text);
        at = r.end;
    }
    out.push_str(&code[at..]);
    out
}

fn is_sym(t: &Token<&str>, s: &str) -> bool {
    matches!(t.1, Tok::Sym) && t.0 == s
}

fn is_word(t: &Token<&str>, s: &str) -> bool {
    matches!(t.1, Tok::Word) && t.0 == s
}

fn simple_edits(code: &str) -> String {
    let dot_digit = code
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'.' && w[1].is_ascii_digit());
    if !code.contains("$__loc__") && !code.contains(':') && !dot_digit {
        return code.to_string();
    }
    let Ok(tokens) = Lexer::new(code).lex() else {
        return code.to_string();
    };
    let mut edits = Vec::new();
    walk(code, &tokens, None, &mut edits);
    if edits.is_empty() {
        code.to_string()
    } else {
        apply(code, edits)
    }
}

/// Collects `$__loc__` and `{$name: pattern}` edits; `block` is the opening
/// delimiter of the block `tokens` are in.
fn walk(code: &str, tokens: &[Token<&str>], block: Option<char>, edits: &mut Vec<Edit>) {
    for (i, t) in tokens.iter().enumerate() {
        match &t.1 {
            // `.5` is a number in jq; jaq reads `.` and `5`.
            Tok::Sym
                if t.0 == "."
                    && tokens.get(i + 1).is_some_and(|n| {
                        matches!(n.1, Tok::Num) && span(code, n.0).start == span(code, t.0).end
                    }) =>
            {
                edits.push((span(code, t.0), "0.".to_string()));
            }
            Tok::Var if t.0 == "$__loc__" => {
                let r = span(code, t.0);
                let line = code[..r.start].matches('\n').count() + 1;
                let loc = format!("{{\"file\":\"<top-level>\",\"line\":{line}}}");
                let prev_sep = i == 0 || is_sym(&tokens[i - 1], ",");
                let next_sep = tokens
                    .get(i + 1)
                    .is_none_or(|n| is_sym(n, ",") || is_sym(n, "}"));
                if block == Some('{') && prev_sep && next_sep {
                    edits.push((r, format!("\"__loc__\": {loc}")));
                } else {
                    edits.push((r, loc));
                }
            }
            Tok::Block(inner) => {
                let open = t.0.chars().next();
                if open == Some('{') && in_pattern(tokens, i) {
                    pattern_keys(code, inner, edits);
                }
                walk(code, inner, open, edits);
            }
            Tok::Str(parts) => {
                for p in parts {
                    if let StrPart::Term(Token(_, Tok::Block(inner))) = p {
                        walk(code, inner, Some('('), edits);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether the block at `tokens[i]` is a pattern: it follows `as` or `?//`.
fn in_pattern(tokens: &[Token<&str>], i: usize) -> bool {
    i >= 1
        && (is_word(&tokens[i - 1], "as")
            || (i >= 2 && is_sym(&tokens[i - 1], "//") && is_sym(&tokens[i - 2], "?")))
}

/// Inside an object pattern: `$name:` becomes `$name, "name":`; nested object
/// patterns (values after `:`) are handled by the caller's walk.
fn pattern_keys(code: &str, inner: &[Token<&str>], edits: &mut Vec<Edit>) {
    for (i, t) in inner.iter().enumerate() {
        if matches!(t.1, Tok::Var)
            && inner.get(i + 1).is_some_and(|n| is_sym(n, ":"))
            && (i == 0 || is_sym(&inner[i - 1], ","))
        {
            let name = &t.0[1..];
            edits.push((span(code, t.0), format!("{}, \"{name}\"", t.0)));
        }
        if let Tok::Block(b) = &t.1
            && t.0.starts_with('{')
            && i >= 1
            && is_sym(&inner[i - 1], ":")
        {
            pattern_keys(code, b, edits);
        }
    }
}

/// Rewrites the first `?//` group found; `None` when there is none.
fn alt_once(code: &str, n: usize) -> Option<String> {
    if !code.contains("?//") {
        return None;
    }
    let tokens = Lexer::new(code).lex().ok()?;
    let edit = find_alt(code, &tokens, n)?;
    Some(apply(code, vec![edit]))
}

fn find_alt(code: &str, tokens: &[Token<&str>], n: usize) -> Option<Edit> {
    for (i, t) in tokens.iter().enumerate() {
        if is_word(t, "as")
            && let Some(edit) = alt_at(code, tokens, i, n)
        {
            return Some(edit);
        }
        let nested: Vec<&[Token<&str>]> = match &t.1 {
            Tok::Block(inner) => vec![inner.as_slice()],
            Tok::Str(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    StrPart::Term(Token(_, Tok::Block(inner))) => Some(inner.as_slice()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for inner in nested {
            if let Some(edit) = find_alt(code, inner, n) {
                return Some(edit);
            }
        }
    }
    None
}

fn is_pattern(t: &Token<&str>) -> bool {
    matches!(t.1, Tok::Var)
        || (matches!(t.1, Tok::Block(_)) && (t.0.starts_with('[') || t.0.starts_with('{')))
}

/// `tokens[at]` is `as`: the edit for `as P1 ?// P2 ... | BODY`, if that is what
/// follows.
fn alt_at(code: &str, tokens: &[Token<&str>], at: usize, n: usize) -> Option<Edit> {
    let mut pats: Vec<&Token<&str>> = Vec::new();
    let mut i = at + 1;
    pats.push(tokens.get(i).filter(|t| is_pattern(t))?);
    i += 1;
    while i + 2 < tokens.len() + 1
        && tokens.get(i).is_some_and(|t| is_sym(t, "?"))
        && tokens.get(i + 1).is_some_and(|t| is_sym(t, "//"))
    {
        pats.push(tokens.get(i + 2).filter(|t| is_pattern(t))?);
        i += 3;
    }
    if pats.len() < 2 || !tokens.get(i).is_some_and(|t| is_sym(t, "|")) {
        return None;
    }
    let body_start = i + 1;
    let mut end = body_start;
    // The body ends where the enclosing construct goes on: `;`, `then`, `elif`,
    // `else`, `end` or a closing delimiter that belongs to no `def` or `if` of the
    // body's own.
    let (mut defs, mut ifs) = (0usize, 0usize);
    while end < tokens.len() {
        let t = &tokens[end];
        if is_word(t, "def") {
            defs += 1;
        } else if is_word(t, "if") {
            ifs += 1;
        } else if is_sym(t, ";") {
            if defs == 0 {
                break;
            }
            defs -= 1;
        } else if is_word(t, "end") {
            if ifs == 0 {
                break;
            }
            ifs -= 1;
        } else if (ifs == 0 && ["then", "elif", "else"].iter().any(|w| is_word(t, w)))
            || [")", "]", "}"].iter().any(|s| is_sym(t, s))
        {
            break;
        }
        end += 1;
    }
    let body = if end > body_start {
        let first = span(code, tokens[body_start].0).start;
        let last = span(code, tokens[end - 1].0).end;
        &code[first..last]
    } else {
        "."
    };
    let mut vars: Vec<&str> = Vec::new();
    for p in &pats {
        pattern_vars(p, &mut vars);
    }
    vars.sort_unstable();
    vars.dedup();
    let nulls: String = vars.iter().map(|v| format!("null as {v} | ")).collect();
    let alt = format!("$__lr_alt{n}");
    let dot = format!("$__lr_dot{n}");
    let branch = |p: &Token<&str>| format!("({nulls}{alt} as {} | {body})", p.0);
    let mut chain = branch(pats[pats.len() - 1]);
    for p in pats[..pats.len() - 1].iter().rev() {
        chain = format!("try {} catch ({dot} | {chain})", branch(p));
    }
    let start = span(code, tokens[at].0).start;
    let stop = if end > body_start {
        span(code, tokens[end - 1].0).end
    } else {
        span(code, tokens[i].0).end
    };
    Some((start..stop, format!("as {alt} | . as {dot} | {chain}")))
}

/// The variables a pattern binds (not those used inside key expressions).
fn pattern_vars<'a>(t: &Token<&'a str>, out: &mut Vec<&'a str>) {
    match &t.1 {
        Tok::Var => out.push(t.0),
        Tok::Block(inner) if !t.0.starts_with('(') => {
            for x in inner {
                pattern_vars(x, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn programs_without_the_forms_are_unchanged() {
        for p in [
            ".a.b = 1",
            "{a: 1} | .a",
            ". as [$x] | $x",
            "\"$__loc__\"",
            ".a? // 1",
        ] {
            assert_eq!(rewrite(p), p);
        }
    }

    #[test]
    fn loc_becomes_an_object() {
        assert_eq!(
            rewrite("1 |\n$__loc__"),
            "1 |\n{\"file\":\"<top-level>\",\"line\":2}"
        );
        assert_eq!(
            rewrite("{a, $__loc__}"),
            "{a, \"__loc__\": {\"file\":\"<top-level>\",\"line\":1}}"
        );
    }

    #[test]
    fn alternatives_become_try_chains() {
        let r = rewrite(".[] as [$a] ?// $a | $a");
        assert!(
            r.contains("try (null as $a | $__lr_alt0 as [$a] | $a) catch"),
            "{r}"
        );
        assert!(!r.contains("?//"), "{r}");
    }
}
