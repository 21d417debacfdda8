//! The bad-input catalogue: every case leaves the file byte-identical, leaves no stray
//! file beside it, exits with the documented code and names the file on stderr.

use std::fs;
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
#[cfg(unix)]
use std::process::Command;
use std::process::Stdio;

use crate::testenv::{self, PATIENCE, TestEnv, code, stderr, wait_output};
#[cfg(unix)]
use crate::testenv::{Check, bin, is_root};

const DOC: &str = "{\n  \"a\": 1,\n  \"list\": [1, 2]\n}\n";

/// Names in `dir` except the lock directory, sorted.
fn entries_but_locks(dir: &Path) -> Vec<String> {
    testenv::entries(dir)
        .into_iter()
        .filter(|n| n != ".locks")
        .collect()
}

struct Case {
    name: &'static str,
    /// Contents of f.json (None: the file does not exist).
    file: Option<&'static [u8]>,
    args: Vec<String>,
    stdin: Option<&'static str>,
    code: i32,
    /// Extra text stderr must contain.
    says: &'static str,
}

fn case(
    name: &'static str,
    file: Option<&'static [u8]>,
    args: &[&str],
    code: i32,
    says: &'static str,
) -> Case {
    Case {
        name,
        file,
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin: None,
        code,
        says,
    }
}

fn catalogue() -> Vec<Case> {
    let doc = Some(DOC.as_bytes());
    let mut cases = vec![
        case(
            "invalid JSON",
            Some(b"{\"a\": 1,\n  \"b\": }\n"),
            &["update", "f.json", "."],
            65,
            "f.json:2:",
        ),
        case(
            "empty file",
            Some(b""),
            &["update", "f.json", "."],
            65,
            "empty",
        ),
        case(
            "whitespace only",
            Some(b" \n\n"),
            &["update", "f.json", "."],
            65,
            "whitespace",
        ),
        case(
            "trailing garbage",
            Some(b"{\"a\":1} x\n"),
            &["update", "f.json", "."],
            65,
            "f.json:1:",
        ),
        case(
            "invalid UTF-8",
            Some(b"{\"a\":\"\xff\"}"),
            &["update", "f.json", "."],
            65,
            "f.json:1:",
        ),
        case(
            "invalid --argjson",
            doc,
            &["update", "f.json", ".a = $x", "--argjson", "x", "{nope"],
            65,
            "--argjson x:1:",
        ),
        case(
            "filter syntax error",
            doc,
            &["update", "f.json", ".a | ("],
            65,
            "1:7",
        ),
        case(
            "undefined filter",
            doc,
            &["update", "f.json", ".a = foo(1)"],
            65,
            "undefined filter 'foo'",
        ),
        case(
            "undefined variable",
            doc,
            &["update", "f.json", ".a = $nope"],
            65,
            "undefined variable",
        ),
        case(
            "runtime error",
            doc,
            &["update", "f.json", ".a.b = 1"],
            65,
            "run time",
        ),
        case(
            "error()",
            doc,
            &["update", "f.json", "error(\"boom\")"],
            65,
            "boom",
        ),
        case(
            "zero outputs",
            doc,
            &["update", "f.json", "empty"],
            65,
            "no value",
        ),
        case(
            "two outputs",
            doc,
            &["update", "f.json", ".,."],
            65,
            "more than one",
        ),
        case(
            "NaN result",
            doc,
            &["update", "f.json", ".a = nan"],
            65,
            "NaN",
        ),
        case(
            "Infinity result",
            doc,
            &["update", "f.json", ".a = infinite"],
            65,
            "Infinity",
        ),
        case(
            "non-string key",
            doc,
            &["update", "f.json", ".a = {(1): 2}"],
            65,
            "as object key",
        ),
        case("halt", doc, &["update", "f.json", "halt"], 65, "halt"),
        case(
            "missing file without --create",
            None,
            &["update", "f.json", ".a = 1"],
            66,
            "no such file",
        ),
        case(
            "invalid --create",
            None,
            &["update", "f.json", ".", "--create", "{"],
            65,
            "--create",
        ),
        case(
            "bad pointer syntax",
            doc,
            &["set", "f.json", "a/b", "1"],
            2,
            "JSON Pointer",
        ),
        case(
            "set: VALUE not JSON",
            doc,
            &["set", "f.json", "/a", "hello"],
            65,
            "--string",
        ),
        case(
            "set through a number",
            doc,
            &["set", "f.json", "/a/b", "1"],
            65,
            "/a/b",
        ),
        case(
            "delete of nothing",
            doc,
            &["delete", "f.json", "/zzz"],
            65,
            "/zzz",
        ),
        case(
            "get of nothing",
            doc,
            &["get", "f.json", "/zzz"],
            65,
            "/zzz",
        ),
        case(
            "read of invalid JSON",
            Some(b"[1,"),
            &["read", "f.json"],
            65,
            "f.json:1:",
        ),
        case(
            "append: not JSON",
            Some(b"{\"x\":1}\n"),
            &["append", "f.json", "{x"],
            65,
            "f.json",
        ),
        case(
            "patch test-op failure",
            doc,
            &["patch", "f.json", "p.json"],
            65,
            "operation 1",
        ),
        case(
            "patch file not JSON",
            doc,
            &["patch", "f.json", "bad.json"],
            65,
            "bad.json:1:",
        ),
        case(
            "patch not a JSON Patch",
            doc,
            &["patch", "f.json", "notpatch.json"],
            65,
            "not an RFC 6902",
        ),
        case(
            "patch remove of nothing",
            doc,
            &["patch", "f.json", "rm.json"],
            65,
            "operation 0",
        ),
        case(
            "schema violation",
            doc,
            &[
                "update",
                "f.json",
                ".a = \"str\" | .list = 3",
                "--schema",
                "schema.json",
            ],
            65,
            "/list",
        ),
        case(
            "schema file not JSON",
            doc,
            &["update", "f.json", ".a = 2", "--schema", "bad.json"],
            65,
            "bad.json",
        ),
        case(
            "--backup-keep 0",
            doc,
            &["update", "f.json", ".a = 2", "--backup-keep", "0"],
            2,
            "backup-keep",
        ),
    ];
    cases.push(Case {
        name: "write --json of invalid stdin",
        file: doc,
        args: vec!["write".into(), "f.json".into(), "--json".into()],
        stdin: Some("{\"a\": tru}"),
        code: 65,
        says: "<stdin>:1:",
    });
    cases
}

fn setup(env: &TestEnv, file: Option<&[u8]>) {
    if let Some(bytes) = file {
        fs::write(env.path("f.json"), bytes).unwrap();
    }
    // Side files some cases use.
    env.write(
        "p.json",
        r#"[{"op":"replace","path":"/a","value":5},{"op":"test","path":"/a","value":1}]"#,
    );
    env.write("rm.json", r#"[{"op":"remove","path":"/nope"}]"#);
    env.write("bad.json", "[1,");
    env.write("notpatch.json", r#"{"op":"add"}"#);
    env.write(
        "schema.json",
        r#"{"type":"object","properties":{"a":{"type":"integer"},"list":{"type":"array"}}}"#,
    );
}

#[test]
fn bad_input_catalogue_never_writes() {
    let cases = catalogue();
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for c in &cases {
        let env = TestEnv::new();
        setup(&env, c.file);
        let before = entries_but_locks(env.root());
        let mut child = env
            .command(&c.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(c.stdin.unwrap_or("").as_bytes());
        }
        let out = wait_output(child, PATIENCE);
        let err = stderr(&out);
        let after_bytes = fs::read(env.path("f.json")).ok();
        let mut problems = Vec::new();
        if code(&out) != c.code {
            problems.push(format!("exit {} (want {})", code(&out), c.code));
        }
        if after_bytes.as_deref() != c.file {
            problems.push("f.json changed".to_string());
        }
        if entries_but_locks(env.root()) != before {
            problems.push(format!("dir now {:?}", entries_but_locks(env.root())));
        }
        if c.code != 2 && !err.contains("f.json") {
            problems.push("stderr does not name f.json".to_string());
        }
        if !err.contains(c.says) {
            problems.push(format!("stderr lacks {:?}", c.says));
        }
        if err.trim_end().lines().count() != 1 && c.code != 2 {
            problems.push("stderr is not one line".to_string());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {} — stderr: {}",
                c.name,
                problems.join(", "),
                err.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn directory_as_file_is_refused() {
    let env = TestEnv::new();
    fs::create_dir(env.path("d.json")).unwrap();
    for args in [
        vec!["update", "d.json", ".a = 1"],
        vec!["read", "d.json"],
        vec!["append", "d.json", "1"],
    ] {
        let out = env.run(&args);
        assert_eq!(code(&out), 74, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("d.json"), "{}", stderr(&out));
    }
    assert_eq!(entries_but_locks(env.root()), vec!["d.json".to_string()]);
    assert_eq!(fs::read_dir(env.path("d.json")).unwrap().count(), 0);
}

#[cfg(unix)]
/// Runs lockrun as an unprivileged user: root ignores file permissions, so as root the
/// command runs as nobody (setpriv), with a world-writable lock dir.
fn run_unprivileged(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let locks = env.path("locks");
    fs::create_dir_all(&locks).unwrap();
    fs::set_permissions(&locks, fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(env.root(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    cmd.args(args)
        .arg("--lock-dir")
        .arg(&locks)
        .current_dir(env.root())
        .env_remove("LOCKRUN_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    wait_output(cmd.spawn().unwrap(), PATIENCE)
}

#[cfg(unix)]
fn setpriv_available() -> bool {
    !is_root()
        || Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

#[cfg(unix)]
#[test]
fn unreadable_file_exits_77_and_is_untouched() {
    if !setpriv_available() {
        testenv::skip(testenv::Skip::Missing(
            "running as root without setpriv(1), permissions cannot bite".into(),
        ));
        return;
    }
    let env = TestEnv::new();
    let f = env.write("f.json", DOC);
    fs::set_permissions(&f, fs::Permissions::from_mode(0o000)).unwrap();
    for args in [["update", "f.json", ".a = 2"], ["read", "f.json", "/a"]] {
        let out = run_unprivileged(&env, &args);
        assert_eq!(code(&out), 77, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("f.json"));
    }
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(fs::read_to_string(&f).unwrap(), DOC);
}

#[cfg(unix)]
#[test]
fn read_only_directory_exits_77_and_leaves_nothing() {
    if !setpriv_available() {
        testenv::skip(testenv::Skip::Missing(
            "running as root without setpriv(1), permissions cannot bite".into(),
        ));
        return;
    }
    let env = TestEnv::new();
    let dir = env.path("ro");
    fs::create_dir(&dir).unwrap();
    let f = dir.join("f.json");
    fs::write(&f, DOC).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    let out = run_unprivileged(&env, &["update", "ro/f.json", ".a = 2"]);
    out.assert_failure_with(77);
    assert!(stderr(&out).contains("f.json"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&f).unwrap(), DOC);
    assert_eq!(entries_but_locks(&dir), vec!["f.json".to_string()]);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
}
