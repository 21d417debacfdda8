//! Terminal manners: every error is one "lockrun: ..." line on stderr with nothing on
//! stdout, no colour unless stdout is a terminal (and never with NO_COLOR), --version
//! everywhere, completions and the man page cover every subcommand, and the --json
//! outputs keep their documented fields.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::testenv::{Check, Skip, skip};
use crate::testenv::{TestEnv, bin, code, stderr, stdout};

/// The visible subcommands, as `lockrun --help` lists them (clap's own `help` aside).
fn subcommands() -> Vec<String> {
    let out = Command::new(bin())
        .arg("--help")
        .output()
        .expect("run lockrun --help");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   ")) // a wrapped description
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 10, "too few subcommands in --help: {help}");
    names
}

#[test]
fn usage_errors_of_every_subcommand_say_lockrun_on_stderr_and_exit_2() {
    let env = TestEnv::new();
    let mut cases: Vec<Vec<String>> = subcommands()
        .into_iter()
        .filter(|s| !["show", "cleanup"].contains(&s.as_str()))
        .map(|s| vec![s]) // missing required arguments
        .collect();
    cases.push(vec!["frobnicate".into()]);
    cases.push(vec!["show".into(), "--bogus".into()]);
    cases.push(vec!["cleanup".into(), "a".into(), "b".into()]);
    cases.push(vec![
        "with".into(),
        "-w".into(),
        "soon".into(),
        "f".into(),
        "true".into(),
    ]);
    for args in cases {
        let out = env.run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        let err = stderr(&out);
        assert!(err.starts_with("lockrun: "), "{args:?}: {err}");
        assert!(!err.contains('\u{1b}'), "{args:?}: colour in {err:?}");
    }
}

#[test]
fn run_time_errors_of_every_subcommand_say_lockrun_on_stderr() {
    let env = TestEnv::new();
    env.write("bad.json", "{");
    env.write("plain", "x");
    let cases: &[&[&str]] = &[
        &["with", "f", "--", "/no/such/program"],
        &["update", "missing.json", "."],
        &["set", "missing.json", "/a", "1"],
        &["get", "missing.json", "/a"],
        &["delete", "missing.json", "/a"],
        &["patch", "missing.json", "-"],
        &["append", "--lock-dir", "plain", "log.jsonl", "1"],
        &["read", "bad.json"],
        &["write", "--lock-dir", "plain", "out"],
        &["completions", "tcsh"],
        &["status", "--lock-dir", "plain", "f"],
        &["show", "--lock-dir", "plain"],
        &["cleanup", "--lock-dir", "plain"],
        &["unlock", "--lock-dir", "plain", "f"],
        &["acquire", "--owner", "1", "f"],
        &["release", "/etc/passwd"],
    ];
    let covered: BTreeSet<&str> = cases.iter().map(|c| c[0]).collect();
    for sub in subcommands() {
        assert!(covered.contains(sub.as_str()), "no error case for {sub}");
    }
    for args in cases {
        let out = env.run(*args);
        assert_ne!(code(&out), 0, "{args:?}");
        let err = stderr(&out);
        assert!(err.starts_with("lockrun: "), "{args:?}: {err}");
        assert!(!err.contains('\u{1b}'), "{args:?}: colour in {err:?}");
        if args[0] != "read" && args[0] != "get" {
            assert_eq!(stdout(&out), "", "{args:?}");
        }
    }
}

#[test]
fn version_is_the_package_version_for_every_subcommand() {
    let env = TestEnv::new();
    let want = format!("lockrun {}\n", env!("CARGO_PKG_VERSION"));
    let out = env.run(["--version"]);
    out.assert_success();
    assert_eq!(stdout(&out), want);
    for sub in subcommands() {
        let out = env.run([sub.as_str(), "--version"]);
        assert_eq!(code(&out), 0, "{sub}");
        assert!(
            stdout(&out).starts_with("lockrun"),
            "{sub}: {}",
            stdout(&out)
        );
        assert!(
            stdout(&out).trim_end().ends_with(env!("CARGO_PKG_VERSION")),
            "{sub}"
        );
    }
}

#[test]
fn help_is_plain_on_a_pipe_even_when_colour_is_forced() {
    let env = TestEnv::new();
    for (var, value) in [
        ("CLICOLOR_FORCE", "1"),
        ("NO_COLOR", "1"),
        ("TERM", "xterm"),
    ] {
        let mut cmd = env.command(["with", "--help"]);
        cmd.env(var, value)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = cmd.output().expect("run");
        out.assert_success();
        assert!(!stdout(&out).contains('\u{1b}'), "{var}: colour on a pipe");
        assert!(stdout(&out).contains("Usage:"), "{var}");
    }
}

/// Runs `lockrun --help` on a pseudo-terminal with script(1); None where there is none.
fn help_on_a_terminal(no_color: Option<&str>) -> Option<String> {
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &format!("{} --help", bin()), "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .stdin(Stdio::null());
    match no_color {
        Some(v) => cmd.env("NO_COLOR", v),
        None => cmd.env_remove("NO_COLOR"),
    };
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn help_is_coloured_on_a_terminal_unless_no_color() {
    let Some(tty) = help_on_a_terminal(None) else {
        skip(Skip::Missing("no script(1) to make a terminal".into()));
        return;
    };
    assert!(tty.contains('\u{1b}'), "coloured on a terminal: {tty:?}");
    let plain = help_on_a_terminal(Some("1")).expect("script ran before");
    assert!(!plain.contains('\u{1b}'), "NO_COLOR=1: {plain:?}");
    assert!(plain.contains("Usage:"));
    // An empty NO_COLOR does not count (no-color.org).
    let empty = help_on_a_terminal(Some("")).expect("script ran before");
    assert!(empty.contains('\u{1b}'));
}

#[test]
fn completions_of_every_shell_cover_every_subcommand() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = env.run(["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}");
        let text = stdout(&out);
        for sub in subcommands() {
            assert!(text.contains(&sub), "{shell} completion lacks {sub}");
        }
        for option in ["nonblock", "max-hold", "json", "backup", "owner"] {
            let spelled = if shell == "fish" {
                format!("-l {option}")
            } else {
                format!("--{option}")
            };
            assert!(
                text.contains(&spelled),
                "{shell} completion lacks {spelled}"
            );
        }
    }
}

#[test]
fn man_page_covers_every_subcommand_and_the_sections() {
    let env = TestEnv::new();
    let page = stdout(&env.run(["man"]));
    for sub in subcommands() {
        assert!(
            page.contains(&format!(".SS \"lockrun {sub}")),
            "man page lacks {sub}"
        );
    }
    for section in [
        ".SH COMMANDS",
        ".SH \"EXIT STATUS\"",
        ".SH \"ENVIRONMENT\"",
        ".SH \"FILES\"",
        ".SH \"EXAMPLES\"",
    ] {
        assert!(page.contains(section), "man page lacks {section}");
    }
    // Every code of the EXIT STATUS table (src/exit_code.rs DOCUMENTED).
    for code in [
        "0", "N", "128+N", "1", "2", "3", "65", "66", "70", "73", "74", "75", "77", "124", "126",
        "127",
    ] {
        assert!(
            page.contains(&format!("\\fB{code}\\fR")),
            "EXIT STATUS lacks {code}"
        );
    }
    for var in [
        "LOCKRUN_DIR",
        "LOCKRUN_TIMEOUT",
        "LOCKRUN_DEBUG",
        "NO_COLOR",
    ] {
        assert!(page.contains(var), "ENVIRONMENT lacks {var}");
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The documented fields of `status --json` (see `lockrun status --help`).
const STATUS_FIELDS: &[&str] = &[
    "target",
    "lock",
    "state",
    "liveness",
    "reason",
    "pid",
    "host",
    "label",
    "command",
    "mode",
    "tool",
    "acquired",
    "held_secs",
    "readers",
    "readers_unknown",
];

#[test]
fn json_outputs_keep_their_documented_fields() {
    let env = TestEnv::new();
    let out = env.run(["status", "--json", "f.json"]);
    out.assert_success();
    let v: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(keys(&v), set(STATUS_FIELDS));
    assert_eq!(v["state"], "free");

    // A held lock (acquired for this test process).
    let pid = std::process::id().to_string();
    let out = env.run(["acquire", "--owner", &pid, "--label", "t", "f.json"]);
    out.assert_success();
    let id = stdout(&out).trim().to_string();
    let out = env.run(["status", "--json", "f.json"]);
    out.assert_failure_with(1);
    let v: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(keys(&v), set(STATUS_FIELDS));
    assert_eq!(v["state"], "held");
    assert_eq!(v["label"], "t");

    let out = env.run(["show", "--json", "f.json"]);
    out.assert_success();
    let v: Value = serde_json::from_slice(&out.stdout).expect("show JSON");
    let rows = v.as_array().expect("an array");
    assert_eq!(rows.len(), 1);
    let mut want = set(STATUS_FIELDS);
    want.extend(set(&["name", "path", "kind"]));
    assert_eq!(keys(&rows[0]), want);
    let out = env.run(["release", "--owner", &pid, &id]);
    out.assert_success();

    // A stale lock: its owner has exited.
    let mut owner = Command::new("sleep").arg("30").spawn().expect("sleep");
    let owner_pid = owner.id().to_string();
    let out = env.run(["acquire", "--owner", &owner_pid, "g.json"]);
    out.assert_success();
    owner.kill().expect("kill");
    owner.wait().expect("wait");
    let out = env.run(["cleanup", "--json", "g.json"]);
    out.assert_success();
    let v: Value = serde_json::from_slice(&out.stdout).expect("cleanup JSON");
    assert_eq!(
        keys(&v),
        set(&["lock_dir", "dry_run", "count", "removed", "skipped"])
    );
    assert_eq!(v["count"], 1, "{v}");
    let removed = &v["removed"][0];
    assert_eq!(
        keys(removed),
        set(&["name", "path", "kind", "target", "reason"])
    );
    assert_eq!(removed["kind"], "lock");
}
