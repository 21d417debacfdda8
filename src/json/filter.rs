//! jq filters, run by the embedded jaq engine (jaq-core + jaq-std + jaq-json, with
//! jq 1.7.1's semantics from `jq/`):
//! compiling them (with errors that point into the filter) and running them.
//! Converting between serde_json and jaq values is `val.rs`; equality and key order
//! are `order.rs`.
//!
//! `update` keeps its document as jaq's `Val` from parse to output: the file is parsed
//! by serde_json (strict JSON, precise error positions) and moved into a `Val`, the
//! filter changes it in place (untouched subtrees stay shared with the input, which
//! makes the no-op test and the key-order repair cheap), and the layout writer prints
//! the `Val` directly. The conversion keeps a number's text for every number the filter
//! does not compute: integers become jaq integers (printed back identically), every
//! other number (`1.0`, `1e5`, `-0`, `0.10`) becomes jaq's decimal-string number,
//! which jaq carries unchanged until arithmetic touches it.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars};
use jaq_json::Val;

use crate::json::jq::{self, value::Jv};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::order::Tree;
use crate::json::val::{into_val, json_number};
use crate::json::{depth, guard, stack};

type Data = jq::funs::Data;

/// A compiled filter with its global variables.
pub(crate) struct Program {
    filter: jaq_core::Filter<Data>,
    vars: Vec<Jv>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program").finish_non_exhaustive()
    }
}

/// Named variables: `--arg` (strings) and `--argjson` (JSON values), in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Args {
    pub(crate) named: Vec<(String, Value)>,
}

impl Program {
    /// Compiles `code`; errors name `origin` (the target file) and the filter position.
    pub(crate) fn compile(origin: &str, code: &str, args: &Args) -> Result<Program> {
        let mut names: Vec<String> = vec![
            "$ENV".into(),
            "$ARGS".into(),
            "$__prog_name".into(),
            "$__lr_file".into(),
        ];
        let mut named = serde_json::Map::new();
        for (name, value) in &args.named {
            if !is_ident(name) {
                return Err(Error::usage(format!(
                    "'{name}' is not a valid variable name for --arg/--argjson"
                )));
            }
            names.push(format!("${name}"));
            named.insert(name.clone(), value.clone());
        }
        let env: serde_json::Map<String, Value> = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    Value::String(v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        let mut arg_obj = serde_json::Map::new();
        arg_obj.insert("positional".into(), Value::Array(Vec::new()));
        arg_obj.insert("named".into(), Value::Object(named));

        let mut vars = vec![
            into_val(Value::Object(env)),
            into_val(Value::Object(arg_obj)),
            Val::utf8_str("lockrun".to_string()),
            Val::utf8_str(origin.to_string()),
        ];
        vars.extend(args.named.iter().map(|(_, v)| into_val(v.clone())));
        let vars: Vec<Jv> = vars.into_iter().map(Jv).collect();
        // jq syntax jaq does not read ($__loc__, ?//, {$name: pattern}, .5) rewritten.
        let rewritten = jq::rewrite::rewrite(code);
        let code = rewritten.as_str();

        let arena = Arena::default();
        let filter = compile_pruned(&arena, code, &names).map_err(|failure| match failure {
            Failure::Load(errs) => load_error(origin, code, errs),
            Failure::Undefined(list) => {
                let msgs: Vec<String> = list
                    .iter()
                    .map(|(name, kind)| {
                        format!("{}: undefined {kind} '{name}'", position(code, name))
                    })
                    .collect();
                Error::data(format!("{origin}: filter error: {}", msgs.join("; ")))
            }
        })?;
        Ok(Program { filter, vars })
    }

    /// Runs the filter on `input`; it must yield exactly one value, and one JSON can
    /// hold (no NaN, byte strings or non-string keys).
    pub(crate) fn run_one(&self, origin: &str, input: &Val) -> Result<Val> {
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new(self.vars.iter().cloned()));
        // A clone is a reference count: the filter copies only what it changes.
        let mut outputs = self
            .filter
            .id
            .run((ctx, Jv(input.clone())))
            .map(|r| r.map(|v| v.0));
        let first = match outputs.next() {
            None => {
                return Err(Error::data(format!(
                    "{origin}: the filter yielded no value (update needs exactly one; nothing written)"
                )));
            }
            Some(r) => r.map_err(|e| runtime_error(origin, e))?,
        };
        if let Some(second) = outputs.next() {
            second.map_err(|e| runtime_error(origin, e))?;
            return Err(Error::data(format!(
                "{origin}: the filter yielded more than one value (update needs exactly one; nothing written)"
            )));
        }
        check_json(&first, Some(input), 0).map_err(|what| match what {
            NotJson::TooDeep => Error::data(depth::result_message(origin, "the filter's result")),
            NotJson::Other(what) => Error::data(format!(
                "{origin}: the filter's result is not JSON: {what} (nothing written)"
            )),
        })?;
        Ok(first)
    }
}

type Def = jaq_core::load::parse::Def<&'static str>;

enum Failure<'c> {
    Load(jaq_core::load::Errors<&'c str, ()>),
    /// Undefined names (filters, variables, …) with what kind of name each is.
    Undefined(Vec<(&'c str, &'static str)>),
}

/// Compiles `code` with only the standard-library definitions it needs.
///
/// Parsing and compiling all of jq's standard library (about 200 definitions) cost more
/// CPU than the rest of an `update` together, yet a typical memory-file filter
/// (`.n += 1`, `.sessions += [...]`) calls none of them. So the first attempt offers no
/// library definitions at all; each attempt that fails only for undefined filters adds
/// the library definitions of those names, and the compiler itself finds what those
/// need in turn. Definitions keep their library order (a definition sees only earlier
/// ones), so the result is the same filter a full prelude gives. An error that the
/// library cannot fix is reported from a compile with the full prelude, so messages do
/// not depend on this shortcut.
fn compile_pruned<'c>(
    arena: &'c Arena,
    code: &'c str,
    globals: &'c [String],
) -> std::result::Result<jaq_core::Filter<Data>, Failure<'c>> {
    let mut library: Option<Vec<Def>> = None;
    let mut wanted: std::collections::HashSet<&str> = std::collections::HashSet::new();
    // Each round adds at least one name; the library's call depth is far below this.
    for _ in 0..16 {
        let prelude: Vec<Def> = match &library {
            None => Vec::new(),
            Some(all) => all
                .iter()
                .filter(|d| wanted.contains(d.name))
                .cloned()
                .collect(),
        };
        let missing = match compile_with(arena, code, globals, prelude)? {
            Ok(filter) => return Ok(filter),
            Err(missing) => missing,
        };
        let all = library.get_or_insert_with(|| jq::library(code));
        let before = wanted.len();
        for (name, _) in &missing {
            if all.iter().any(|d| d.name == *name) {
                wanted.insert(name);
            }
        }
        if wanted.len() == before {
            break;
        }
    }
    match compile_with(
        arena,
        code,
        globals,
        library.unwrap_or_else(|| jq::library(code)),
    )? {
        Ok(filter) => Ok(filter),
        Err(missing) => Err(Failure::Undefined(missing)),
    }
}

type Compiled<'c> = std::result::Result<jaq_core::Filter<Data>, Vec<(&'c str, &'static str)>>;

/// One compile; `Ok(Err(names))` when it failed only for undefined names.
fn compile_with<'c>(
    arena: &'c Arena,
    code: &'c str,
    globals: &'c [String],
    prelude: Vec<Def>,
) -> std::result::Result<Compiled<'c>, Failure<'c>> {
    let funs = jq::natives().chain([guard::fun()]);
    let modules = match guarded(code, prelude.clone()) {
        Some(defs) => Loader::new(defs).load(
            arena,
            File {
                code: MAIN,
                path: (),
            },
        ),
        // What the guarded form cannot express (a lex or parse error, a module
        // directive) is loaded as written, for jaq's own error message.
        None => Loader::new(prelude).load(arena, File { code, path: () }),
    }
    .map_err(Failure::Load)?;
    Ok(Compiler::default()
        .with_funs(funs)
        .with_global_vars(globals.iter().map(String::as_str))
        .compile(modules)
        .map_err(|errs| {
            errs.into_iter()
                .flat_map(|(_file, list)| list)
                .map(|(name, undef)| (name, undef.as_str()))
                .collect()
        }))
}

/// The name the user's filter is defined under in its guarded form.
const MAIN: &str = "__lockrun_main";

/// `prelude` plus the user's filter as the definition [`MAIN`], every definition
/// entered through the recursion guard (see [`guard`]).
fn guarded<'c>(
    code: &'c str,
    prelude: Vec<Def>,
) -> Option<Vec<jaq_core::load::parse::Def<&'c str>>> {
    let tokens = jaq_core::load::Lexer::new(code).lex().ok()?;
    let mut main = jaq_core::load::Parser::new(&tokens)
        .parse(|p| p.term())
        .ok()?;
    guard::term(&mut main, guard::NAME);
    let mut defs: Vec<jaq_core::load::parse::Def<&'c str>> = prelude;
    defs.iter_mut().for_each(|d| guard::def(d, guard::NAME));
    defs.push(jaq_core::load::parse::Def {
        name: MAIN,
        args: Vec::new(),
        body: main,
    });
    Some(defs)
}

fn runtime_error(origin: &str, e: jaq_core::Exn<'_, Jv>) -> Error {
    match e.get_err() {
        Ok(err) if err.to_string().contains(stack::TOO_DEEP) => Error::data(format!(
            "{origin}: {} (it recursed or nested past its share of the stack); nothing written",
            stack::TOO_DEEP
        )),
        Ok(err) => Error::data(format!(
            "{origin}: filter failed at run time: {err} (nothing written)"
        )),
        Err(exn) => match exn.get_halt() {
            Ok(code) => Error::data(format!(
                "{origin}: the filter called halt (exit code {code}); nothing written"
            )),
            Err(_) => Error::Internal(format!("{origin}: unexpected filter exception")),
        },
    }
}

fn is_ident(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `line:column` of `part` inside `code` (1-based; columns count characters).
fn position(code: &str, part: &str) -> String {
    let start = part.as_ptr() as usize;
    let base = code.as_ptr() as usize;
    let offset = if start >= base && start <= base + code.len() {
        start - base
    } else {
        code.len()
    };
    let before = &code[..offset.min(code.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{col}")
}

fn near(part: &str) -> String {
    let snippet: String = part.chars().take(12).collect();
    if snippet.is_empty() {
        "at end of filter".into()
    } else {
        format!("near '{snippet}'")
    }
}

fn load_error(origin: &str, code: &str, errs: jaq_core::load::Errors<&str, ()>) -> Error {
    use jaq_core::load::Error as E;
    let mut msgs = Vec::new();
    for (_file, err) in errs {
        match err {
            E::Io(list) => {
                for (path, why) in list {
                    msgs.push(format!(
                        "{}: cannot load module '{path}': {why}",
                        position(code, path)
                    ));
                }
            }
            E::Lex(list) => {
                for (expect, found) in list {
                    msgs.push(format!(
                        "{}: expected {} ({})",
                        position(code, found),
                        expect.as_str(),
                        near(found)
                    ));
                }
            }
            E::Parse(list) => {
                for (expect, found) in list {
                    msgs.push(format!(
                        "{}: expected {} ({})",
                        position(code, found),
                        expect.as_str(),
                        near(found)
                    ));
                }
            }
        }
    }
    Error::data(format!(
        "{origin}: filter syntax error at {}",
        msgs.join("; ")
    ))
}

/// Why a filter's result cannot be written.
enum NotJson {
    /// It nests deeper than [`depth::NESTING_LIMIT`].
    TooDeep,
    Other(String),
}

impl From<String> for NotJson {
    fn from(what: String) -> Self {
        NotJson::Other(what)
    }
}

/// Whether `new` is something JSON can hold; subtrees it shares with `old` (the
/// filter's input, parsed from JSON) are known good and skipped. `level` is how deep
/// `new` sits: a shared subtree sits exactly where it sat in the input, which was
/// within the nesting limit, so skipping it cannot hide a level too many.
fn check_json(new: &Val, old: Option<&Val>, level: usize) -> std::result::Result<(), NotJson> {
    if old.is_some_and(|o| o.shares(new)) {
        return Ok(());
    }
    if matches!(new, Val::Arr(_) | Val::Obj(_)) && level >= depth::NESTING_LIMIT {
        return Err(NotJson::TooDeep);
    }
    match new {
        Val::Null | Val::Bool(_) | Val::TStr(_) => Ok(()),
        Val::Num(n) => Ok(json_number(n).map(|_| ())?),
        Val::BStr(_) => Err(NotJson::Other("a byte string".into())),
        Val::Arr(a) => {
            let olds = match old {
                Some(Val::Arr(o)) if o.len() == a.len() => Some(o),
                _ => None,
            };
            a.iter()
                .enumerate()
                .try_for_each(|(i, v)| check_json(v, olds.map(|o| &o[i]), level + 1))
        }
        Val::Obj(o) => {
            let olds = match old {
                Some(Val::Obj(m)) => Some(m),
                _ => None,
            };
            for (k, v) in o.iter() {
                if !matches!(k, Val::TStr(_)) {
                    return Err(NotJson::Other(format!(
                        "an object key that is not a string ({k})"
                    )));
                }
                check_json(v, olds.and_then(|m| m.get(k)), level + 1)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::order::same;

    #[test]
    fn unchanged_subtrees_are_shared_and_same() {
        let doc: Value =
            serde_json::from_str(r#"{"n": 1, "items": [{"a": 1.0}, {"b": [2]}]}"#).unwrap();
        let old = into_val(doc);
        let program = Program::compile("t", ".n += 1", &Args::default()).unwrap();
        let new = program.run_one("t", &old).unwrap();
        let (Val::Obj(o), Val::Obj(n)) = (&old, &new) else {
            panic!("objects expected");
        };
        let key = Val::utf8_str("items".to_string());
        assert!(
            o[&key].shares(&n[&key]),
            "the filter copied an untouched subtree"
        );
        assert!(!same(&old, &new));
        let noop = Program::compile("t", ".items |= .", &Args::default()).unwrap();
        assert!(same(&old, &noop.run_one("t", &old).unwrap()));
    }
}
