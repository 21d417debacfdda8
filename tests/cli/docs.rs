//! The checked-in man page must be what the clap definition generates now.

use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::testenv::{Check, TestEnv, lock_path_of, status_field, stdout};

#[test]
fn man_page_is_current() {
    let env = TestEnv::new();
    let out = env.run(["man"]);
    assert!(out.status.success());
    let checked_in = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/man/lockrun.1"))
        .expect("man/lockrun.1 exists");
    assert!(
        checked_in == out.stdout,
        "man/lockrun.1 is stale: run `cargo run -- man > man/lockrun.1`"
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = env.run(["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("lockrun"),
            "{shell} completion mentions lockrun"
        );
        assert!(
            text.contains("with"),
            "{shell} completion knows the with subcommand"
        );
    }
}

const PROTOCOL: &str = include_str!("../../man/lockrun-protocol.5");

/// man/lockrun-protocol.5 is the project's account of what is on disk: every key the
/// executable writes into a lock's `info` (as `with`, `with -s` and `acquire` write it)
/// is documented there, and the lock's name is the one the KEY section gives.
#[test]
fn protocol_page_documents_what_the_executable_writes() {
    let env = TestEnv::new();
    let mut keys = std::collections::BTreeSet::new();
    let mut collect = |text: &str| {
        for line in text.lines() {
            let (key, _) = line.split_once(": ").expect("info lines are KEY: value");
            keys.insert(key.to_string());
        }
    };
    // `with`: its command prints the info it runs under (CHILD is appended by then).
    let info_path = lock_path_of(&env, "w.json").join("info");
    let script = format!("sleep 0.2; cat '{}'", info_path.display());
    let out = env.run([
        "with", "--label", "docs", "w.json", "--", "sh", "-c", &script,
    ]);
    out.assert_success();
    collect(&stdout(&out));
    // `with -s`: the reader gate records the command.
    let gate = lock_path_of(&env, "s.json").with_extension("rw");
    let script = format!("sleep 0.2; cat '{}'", gate.display());
    let out = env.run(["with", "-s", "s.json", "--", "sh", "-c", &script]);
    out.assert_success();
    collect(&stdout(&out));
    // `acquire`: LIVENESS pid, owned by this test's process.
    let out = env.run([
        "acquire",
        "--owner",
        &std::process::id().to_string(),
        "a.json",
    ]);
    out.assert_success();
    let id = stdout(&out).trim().to_string();
    collect(&std::fs::read_to_string(Path::new(&id).join("info")).expect("acquire's info"));
    for key in [
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
        "CHILD",
        "CHILD_START",
    ] {
        assert!(
            keys.contains(key),
            "the executable no longer writes {key}: {keys:?}"
        );
    }
    for key in &keys {
        assert!(
            PROTOCOL.contains(&format!("\\fB{key}\\fR")),
            "man/lockrun-protocol.5 does not document the info key {key}"
        );
    }
    // KEY: <lockdir>/<hex>.lock, <hex> the SHA-256 of the canonical path, the lock
    // directory .locks beside the target.
    let target = status_field(&env, "a.json", "target");
    let lock = PathBuf::from(status_field(&env, "a.json", "lock"));
    let hex: String = sha2::Sha256::digest(target.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        lock,
        Path::new(&target)
            .parent()
            .expect("target has a parent")
            .join(".locks")
            .join(format!("{hex}.lock"))
    );
    let out = env.run(["release", "--owner", &std::process::id().to_string(), &id]);
    out.assert_success();
    for name in [
        ".tmp\\-",
        ".stale\\-",
        ".released\\-",
        ".rw",
        ".lockrun\\-tmp\\-",
    ] {
        assert!(PROTOCOL.contains(name), "the protocol page names {name}");
    }
}

/// Every source file that relies on the protocol points to the page, none to a design
/// document outside the repository.
#[test]
fn code_and_readme_point_to_the_protocol_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![
        root.join("src"),
        root.join("tests"),
        root.join("scripts"),
        root.join("README.md"),
    ];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                stack.push(entry.expect("dir entry").path());
            }
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if path.ends_with("docs.rs") {
            continue;
        }
        assert!(
            !text.contains("DESIGN §") && !text.contains("DESIGN.md"),
            "{} cites a design document that is not in the repository; cite lockrun-protocol(5)",
            path.display()
        );
    }
}
