//! jq 1.7.1 semantics on top of jaq: a value type of lockrun's own ([`value::Jv`]),
//! native filters ([`funs`]), jq-language definitions (`FIRST`, `early.jq`, `late.jq`) that
//! replace jaq-std's where jq behaves differently or jaq lacks a builtin, and a
//! rewrite of the few bits of jq syntax that jaq's parser does not read
//! ([`rewrite`]).

pub(crate) mod funs;
pub(crate) mod rewrite;
pub(crate) mod value;

use jaq_core::load::parse::Def;

/// Definitions that jaq-core's own definitions use: they come first of all.
const FIRST: &str = "
# A negative count yields everything (jq 1.7.1).
def limit($n; f): if $n < 0 then f else _jaq_limit($n; f) end;
";
/// Definitions that jaq-std's own definitions use (`nan`, `join`, ...).
const EARLY: &str = include_str!("early.jq");
/// Definitions that use jaq-std's.
const LATE: &str = include_str!("late.jq");
/// Name and arity of each definition in `late.jq` (kept in step by a test).
const LATE_NAMES: &[(&str, usize)] = &[
    ("flatten", 1),
    ("nth", 2),
    ("leaf_paths", 0),
    ("pick", 1),
    ("tostream", 0),
    ("fromstream", 1),
    ("truncate_stream", 1),
    ("IN", 1),
    ("IN", 2),
    ("INDEX", 2),
    ("INDEX", 1),
    ("JOIN", 2),
    ("JOIN", 3),
    ("JOIN", 4),
    ("ascii", 0),
    ("input", 0),
    ("inputs", 0),
    ("input_filename", 0),
    ("@csv", 0),
    ("@tsv", 0),
    ("@base32", 0),
    ("@base32d", 0),
    ("_lr_broken_down", 0),
    ("mktime", 0),
    ("strftime", 1),
    ("strflocaltime", 1),
    ("have_literal_numbers", 0),
    ("have_decnum", 0),
];

fn parse_defs(code: &'static str) -> Vec<Def<&'static str>> {
    // Both files are part of the program and covered by tests; a parse failure is a
    // build mistake, not an input error.
    jaq_core::load::parse(code, |p| p.defs()).unwrap_or_default()
}

/// The whole library in order: lockrun's first definitions, jaq-core's, lockrun's early ones,
/// jaq-std's and jaq-json's, lockrun's late ones; a jaq definition that lockrun
/// redefines (same name and arity) is left out, so every reference to it, jaq's own
/// included, reaches lockrun's.
///
/// Only `code` (the user's filter) can call a late definition, so they are parsed only
/// when `code` names one of them: most filters do not, and parsing costs time on every
/// run that needs the library.
pub(crate) fn library(code: &str) -> Vec<Def<&'static str>> {
    let first = parse_defs(FIRST);
    let early = parse_defs(EARLY);
    let late = if LATE_NAMES.iter().any(|(name, _)| code.contains(name)) {
        parse_defs(LATE)
    } else {
        Vec::new()
    };
    // jaq's definitions of lockrun's natives go too: a definition wins over a native.
    let ours: std::collections::HashSet<(&str, usize)> = first
        .iter()
        .chain(&early)
        .map(|d| (d.name, d.args.len()))
        .chain(LATE_NAMES.iter().copied())
        .chain(funs::signatures())
        .collect();
    let keep = |d: &Def<&'static str>| !ours.contains(&(d.name, d.args.len()));
    let mut all = first;
    all.extend(jaq_core::defs().filter(keep));
    all.extend(early);
    all.extend(jaq_std::defs().filter(keep));
    all.extend(jaq_json::defs().filter(keep));
    all.extend(late);
    all
}

/// Native filters: lockrun's first (they win over jaq's of the same name), then
/// jaq-core's and jaq-std's (jaq-json's natives work only on its own value type;
/// [`funs`] has lockrun's versions of them). A jaq native that a lockrun definition
/// redefines is offered as `_jaq_NAME` instead, so that the definition can call it
/// and every call of NAME reaches the definition.
pub(crate) fn natives() -> impl Iterator<Item = jaq_core::native::Fun<funs::Data>> {
    let rename = |(name, args, f): jaq_core::native::Fun<funs::Data>| {
        let name = match REDEFINED_NATIVES
            .iter()
            .find(|(n, arity, _)| *n == name && *arity == args.len())
        {
            Some((_, _, renamed)) => renamed,
            None => name,
        };
        (name, args, f)
    };
    funs::funs()
        .chain(jaq_core::funs().map(rename))
        .chain(jaq_std::funs().map(rename))
}

/// jaq natives (name, arity) that lockrun's definitions wrap, and the names they go
/// by then (kept in step with the definitions by a test).
const REDEFINED_NATIVES: &[(&str, usize, &str)] = &[
    ("limit", 2, "_jaq_limit"),
    ("mktime", 0, "_jaq_mktime"),
    ("strftime", 1, "_jaq_strftime"),
    ("strflocaltime", 1, "_jaq_strflocaltime"),
];

/// `name/arity` of every filter a program can call, as jq's `builtins` lists them
/// (names starting with `_` are internal and left out).
pub(crate) fn builtin_names() -> Vec<String> {
    let mut names: Vec<(String, usize)> = library("")
        .iter()
        .chain(&parse_defs(LATE))
        .map(|d| (d.name.to_string(), d.args.len()))
        .chain(
            funs::signatures()
                .map(|(n, a)| (n.to_string(), a))
                .chain(jaq_core::funs::<funs::Data>().map(|(n, a, _)| (n.to_string(), a.len())))
                .chain(jaq_std::funs::<funs::Data>().map(|(n, a, _)| (n.to_string(), a.len()))),
        )
        .filter(|(n, _)| !n.starts_with('_') && !n.starts_with('@') && !n.ends_with("_empty"))
        .collect();
    names.sort();
    names.dedup();
    names.into_iter().map(|(n, a)| format!("{n}/{a}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_files_parse() {
        assert!(!parse_defs(EARLY).is_empty());
        let late: Vec<(&str, usize)> = parse_defs(LATE)
            .iter()
            .map(|d| (d.name, d.args.len()))
            .collect();
        assert_eq!(
            late, LATE_NAMES,
            "LATE_NAMES must list late.jq's definitions"
        );
    }

    #[test]
    fn renamed_natives_are_the_redefined_ones() {
        let ours: Vec<(&str, usize)> = parse_defs(FIRST)
            .iter()
            .chain(&parse_defs(EARLY))
            .chain(&parse_defs(LATE))
            .map(|d| (d.name, d.args.len()))
            .collect();
        let jaq: Vec<(&str, usize)> = jaq_core::funs::<funs::Data>()
            .chain(jaq_std::funs::<funs::Data>())
            .map(|(n, a, _)| (n, a.len()))
            .collect();
        for (name, arity) in &ours {
            let renamed = REDEFINED_NATIVES
                .iter()
                .any(|(n, a, _)| n == name && a == arity);
            assert_eq!(
                jaq.contains(&(*name, *arity)),
                renamed,
                "{name}/{arity}: a jaq native redefined in jq must be listed in REDEFINED_NATIVES"
            );
        }
    }

    /// Every definition compiles: a program calling all of them (unused arguments
    /// are `.`), with and without the late definitions.
    #[test]
    fn every_definition_compiles() {
        compiles_all(&library("tostream"));
        let without_late = library("");
        assert!(without_late.iter().all(|d| d.name != "tostream"));
        compiles_all(&without_late);
    }

    fn compiles_all(lib: &[Def<&'static str>]) {
        use jaq_core::load::{Arena, File, Loader};
        let calls: Vec<String> = lib
            .iter()
            .filter(|d| !d.name.starts_with('@'))
            .map(|d| {
                if d.args.is_empty() {
                    format!("[{}]", d.name)
                } else {
                    let args = vec!["."; d.args.len()].join("; ");
                    format!("[{}({args})]", d.name)
                }
            })
            .collect();
        let code = format!("def f: {}; 1", calls.join(", "));
        let arena = Arena::default();
        let modules = Loader::new(lib.to_vec())
            .load(
                &arena,
                File {
                    code: code.as_str(),
                    path: (),
                },
            )
            .map_err(|_| "load")
            .unwrap();
        let compiled = jaq_core::Compiler::default()
            .with_funs(natives())
            .with_global_vars(["$ENV", "$ARGS", "$__prog_name", "$__lr_file"])
            .compile(modules);
        if let Err(errs) = compiled {
            let names: Vec<String> = errs
                .into_iter()
                .flat_map(|(_, list)| list)
                .map(|(name, undef)| format!("{name} ({})", undef.as_str()))
                .collect();
            panic!("undefined in the library: {}", names.join(", "));
        }
    }
}
