//! Property tests (proptest): the lock `info` parser, key canonicalization and the
//! layout-preserving JSON writer. Case counts are modest so the whole file runs in
//! seconds; `PROPTEST_CASES=N` asks for more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::json::layout::{Exponent, Layout};
use crate::lock::LockKey;
use crate::lock::info::{Info, Liveness, Mode};
use crate::lock::key::canonical_target;
use proptest::prelude::*;
use serde_json::Value;

fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// info

const KEYS: &[&str] = &[
    "PID",
    "ACQUIRED",
    "HOSTNAME",
    "TOOL",
    "PID_START",
    "UID",
    "MODE",
    "LIVENESS",
    "TARGET",
    "LABEL",
    "COMMAND",
    "NONCE",
    "OTHER",
    "",
];

/// Lines that look like info lines: known keys with any value, in any order.
fn info_like_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(KEYS),
            prop::sample::select(&[":", ": ", " : ", "", "::"][..]),
            any::<String>(),
        ),
        0..20,
    )
    .prop_map(|lines| {
        lines
            .into_iter()
            .map(|(k, sep, v)| format!("{k}{sep}{v}\n"))
            .collect()
    })
}

/// An `Info` as lockrun writes one: any text in the free-text fields (a file name, a
/// label, a command line), well-formed identifiers elsewhere.
fn written_info() -> impl Strategy<Value = Info> {
    let text = || prop::option::of(any::<String>());
    (
        (
            prop::option::of(any::<u32>()),
            prop::option::of("20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z"),
            prop::option::of("[a-zA-Z0-9][a-zA-Z0-9.-]{0,40}"),
            prop::option::of("lockrun [0-9]\\.[0-9]{1,2}\\.[0-9]{1,2}"),
            prop::option::of(
                "[0-9]{1,12}@[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            ),
            prop::option::of(any::<u32>()),
        ),
        (
            prop::option::of(prop::sample::select(&[Mode::Exclusive, Mode::Shared][..])),
            prop::option::of(prop::sample::select(&[Liveness::Flock, Liveness::Pid][..])),
            text(),
            text(),
            prop::option::of(".{0,250}"),
            prop::option::of("[0-9a-f]{8,32}"),
        ),
    )
        .prop_map(
            |(
                (pid, acquired, hostname, tool, pid_start, uid),
                (mode, liveness, target, label, command, nonce),
            )| Info {
                pid,
                acquired,
                hostname,
                tool,
                pid_start,
                uid,
                mode,
                liveness,
                target,
                label,
                command,
                nonce,
                child: None,
                child_start: None,
                child_pgid: None,
            },
        )
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn info_parser_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let info = Info::read_from(&bytes[..]).unwrap();
        // Whatever it read, it can write and read back.
        let _ = Info::parse(&info.render());
        let _ = info.describe(None);
        let _ = info.boot_id();
    }

    #[test]
    fn info_parser_never_panics_on_info_like_lines(text in info_like_text()) {
        let info = Info::parse(&text);
        let _ = info.describe(None);
        let _ = info.boot_id();
    }

    #[test]
    fn info_round_trips_what_lockrun_writes(info in written_info()) {
        let text = info.render();
        prop_assert_eq!(Info::parse(&text), info.clone());
        // One line per field, bash-compatible keys first.
        let keys: Vec<&str> = text.lines().map(|l| l.split_once(": ").unwrap().0).collect();
        let mut order: Vec<usize> = keys.iter().map(|k| KEYS.iter().position(|x| x == k).unwrap()).collect();
        let sorted = { let mut s = order.clone(); s.sort(); s };
        prop_assert_eq!(&order, &sorted);
        order.dedup();
        prop_assert_eq!(order.len(), keys.len());
    }
}

// ---------------------------------------------------------------------------------------
// key canonicalization

/// A tree in a temp dir:
///   a/ a/b/ a/b/c/ a/b/f d/          real directories and a file
///   la -> a        lab -> <root>/a/b (absolute)    d/up -> ../a
///   a/b/lf -> f    a/b/c/back -> ../../b           dl -> a/m9 (dangling)
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("a/b/f"), "x").unwrap();
    symlink("a", root.join("la")).unwrap();
    symlink(root.join("a/b"), root.join("lab")).unwrap();
    symlink("../a", root.join("d/up")).unwrap();
    symlink("f", root.join("a/b/lf")).unwrap();
    symlink("../../b", root.join("a/b/c/back")).unwrap();
    symlink("a/m9", root.join("dl")).unwrap();
    Tree { _dir: dir, root }
}

/// Ways to spell the next real components from a real directory: (where, spelled,
/// consumed real components).
const REWRITES: &[(&str, &[&str], &[&str])] = &[
    ("", &["la"], &["a"]),
    ("", &["lab"], &["a", "b"]),
    ("", &["d", "up"], &["a"]),
    ("", &["d", ".."], &[]),
    ("", &["a", "b", "c", "back", ".."], &["a"]),
    ("", &["dl"], &["a", "m9"]),
    ("a", &["b", ".."], &[]),
    ("a/b", &["lf"], &["f"]),
    ("a/b", &["c", "back"], &[]),
    ("a/b", &["c", ".."], &[]),
    ("a/b", &["..", "b"], &[]),
];

/// Children of a real directory, and names that do not exist.
fn real_children(at: &str) -> &'static [&'static str] {
    match at {
        "" => &["a", "d", "m1", "spaced name "],
        "a" => &["b", "m9"],
        "a/b" => &["c", "f", "m3"],
        "a/b/c" => &["m4"],
        _ => &["m5", "x"],
    }
}

/// A real path below the root: walk down `picks`, stopping after a file.
fn real_path(picks: &[u8]) -> Vec<&'static str> {
    let mut path: Vec<&'static str> = Vec::new();
    for &p in picks {
        let at = path.join("/");
        if path.last() == Some(&"f") {
            break;
        }
        let kids = real_children(&at);
        path.push(kids[p as usize % kids.len()]);
    }
    path
}

/// A spelling of `real` chosen by `choices`: plain names, `.`, detours through `..` and
/// symlinks that resolve to the same place.
fn spell(real: &[&'static str], choices: &[u8]) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut c = choices.iter().copied().cycle();
    let mut budget = 12;
    while i < real.len() || budget > 0 {
        let at = real[..i].join("/");
        let mut options: Vec<(&[&str], usize)> = Vec::new();
        if i < real.len() {
            options.push((std::slice::from_ref(&real[i]), 1));
        }
        if budget > 0 {
            options.push((&["."], 0));
            for (from, spelled, consumed) in REWRITES {
                if *from == at && real[i..].starts_with(consumed) {
                    options.push((spelled, consumed.len()));
                }
            }
        }
        if options.is_empty() {
            break;
        }
        let pick = c.next().unwrap_or(0) as usize % options.len();
        let (spelled, consumed) = options[pick];
        if consumed == 0 {
            budget -= 1;
        }
        out.extend_from_slice(spelled);
        i += consumed;
        if i >= real.len() && budget > 0 && c.next().unwrap_or(0) % 3 == 0 {
            budget = 0;
        }
    }
    out
}

fn join(root: &Path, parts: &[&str]) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_spelling_names_one_key_and_canonicalization_is_idempotent(
        picks in prop::collection::vec(any::<u8>(), 0..5),
        choices in prop::collection::vec(any::<u8>(), 1..24),
    ) {
        let t = tree();
        let real = real_path(&picks);
        let real_abs = join(&t.root, &real);
        let spelled = spell(&real, &choices);
        let spelled_abs = join(&t.root, &spelled);
        let canon = canonical_target(&spelled_abs).unwrap();
        prop_assert_eq!(&canon, &real_abs, "spelled {:?}", spelled_abs);
        prop_assert_eq!(canonical_target(&canon).unwrap(), canon.clone());
        prop_assert_eq!(
            LockKey::for_path(&spelled_abs).unwrap(),
            LockKey::for_path(&real_abs).unwrap()
        );
        // Where the whole path exists, std agrees.
        if let Ok(std_canon) = fs::canonicalize(&spelled_abs) {
            prop_assert_eq!(std_canon, canon);
        }
    }
}

// ---------------------------------------------------------------------------------------
// layout-preserving writer

fn json_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (any::<i32>(), 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        (-9i32..10, 0u32..100, -40i32..40, any::<bool>())
            .prop_map(|(a, b, e, upper)| format!("{a}.{b}{}{e}", if upper { "E" } else { "e" })),
        "-?[1-9][0-9]{20,40}",
        Just("-0".to_string()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number().prop_map(|t| serde_json::from_str::<Value>(&t).unwrap()),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn layouts() -> Vec<Layout> {
    let mut v = vec![Layout::compact(), Layout::default()];
    for (indent, colon, comma, nl, fin, exp) in [
        (Some("    "), true, false, "\n", true, None),
        (Some("\t"), true, false, "\n", false, None),
        (Some("  "), false, false, "\r\n", true, None),
        (Some(""), true, false, "\n", true, None),
        (None, true, true, "\n", true, None),
        (None, false, true, "\n", false, Some((true, true))),
        (Some(" "), true, false, "\n", true, Some((false, false))),
    ] {
        v.push(Layout {
            indent: indent.map(str::to_string),
            colon_space: colon,
            comma_space: comma,
            newline: nl,
            final_newline: fin,
            exponent: exp.map(|(upper, plus)| Exponent { upper, plus }),
            // One layout with a byte order mark, which detect must see and keep.
            bom: nl == "\r\n",
        });
    }
    v
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_layout_writer_round_trips_every_json_value(v in json_value()) {
        for layout in layouts() {
            let text = layout.render(&v);
            // The text is the same JSON value...
            // (lockrun's parser: it reads past a byte order mark, as jq does.)
            let back: Value = crate::json::parse("t.json", text.as_bytes())
                .map_err(|e| TestCaseError::fail(format!("{layout:?}: {e}: {text:?}")))?;
            prop_assert!(crate::json::order::same(&back, &v), "{:?}: {:?}", layout, text);
            prop_assert_eq!(&back, &v);
            // ...and writing it back in the layout detected from it changes no byte.
            let again = Layout::detect(text.as_bytes()).render(&back);
            prop_assert_eq!(&again, &text, "{:?}", layout);
        }
        // Text from other tools keeps its layout too.
        for text in [serde_json::to_string(&v).unwrap(), serde_json::to_string_pretty(&v).unwrap() + "\n"] {
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(Layout::detect(text.as_bytes()).render(&back), text);
        }
    }
}

/// jq and serde_json write `1e-5` and `1e+5`: a file whose first exponent is negative
/// must not lose the `+` of the later ones.
#[test]
fn mixed_exponent_signs_keep_their_spelling() {
    for text in [
        "[1e-5, 1e+5]\n",
        "{\"a\": 1E-5, \"b\": 2E+5}",
        "[1e-5, 2e5]",
    ] {
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(Layout::detect(text.as_bytes()).render(&v), text);
    }
}
