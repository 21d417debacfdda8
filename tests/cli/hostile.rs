//! The hostile-input catalogue (issue 12): special files, nesting and recursion, crafted
//! lock-directory entries, fake lock ids, odd names, usage errors, resource limits.
//!
//! Every case runs the real executable in a fresh temp dir and checks, through one
//! harness (`check`):
//! - the exit code (the documented one) and that it finished within `LIMIT`;
//! - stderr: exactly one line starting with `lockrun: ` (a usage error may add one hint
//!   line that mentions --help), with no control character in it;
//! - every file, symlink, FIFO, socket and device in the temp dir is still there, the
//!   same type, byte-identical and with the same mtime; nothing new is left behind but
//!   the lock directory itself and its reader gates (`<hex>.rw`).
//!
//! Cases that must succeed and change something (a dangling symlink written through,
//! the deepest allowed document, long names) are separate tests at the end.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::testenv::{TestEnv, bin, is_root, lock_path_of};

/// No case may take longer than this (lockrun answers these in milliseconds).
const LIMIT: Duration = Duration::from_secs(10);

const DOC: &[u8] = b"{\n  \"a\": 1,\n  \"list\": [1, 2]\n}\n";

/// A nesting depth far past any limit lockrun may choose.
const VERY_DEEP: usize = 100_000;

/// As deep as one argument can hold (Linux limits one to 128 KiB).
const ARG_DEEP: usize = 60_000;

// ---------------------------------------------------------------------------------------
// The harness

/// Something placed in the temp dir before a case runs. Paths are relative to the temp
/// dir; `{hex}` in a path or argument is replaced by the lock name of `f.json`.
#[derive(Clone, Debug)]
enum Plant {
    File(Vec<u8>, Vec<u8>),
    Dir(Vec<u8>),
    Fifo(Vec<u8>),
    Socket(Vec<u8>),
    /// A character device (1, 3: what /dev/null is); needs root.
    CharDev(Vec<u8>),
    Symlink(Vec<u8>, Vec<u8>),
    Mode(Vec<u8>, u32),
}

fn file(path: &str, bytes: impl AsRef<[u8]>) -> Plant {
    Plant::File(path.into(), bytes.as_ref().to_vec())
}
fn dir(path: &str) -> Plant {
    Plant::Dir(path.into())
}
fn fifo(path: &str) -> Plant {
    Plant::Fifo(path.into())
}
fn socket(path: &str) -> Plant {
    Plant::Socket(path.into())
}
fn chardev(path: &str) -> Plant {
    Plant::CharDev(path.into())
}
fn symlink(path: &str, target: &str) -> Plant {
    Plant::Symlink(path.into(), target.into())
}

#[derive(Clone, Debug)]
enum Want {
    /// Exit `code`, one line on stderr containing every `says`.
    Fail(i32, Vec<String>),
    /// Exit 0, stderr empty, stdout containing every text.
    Ok(Vec<String>),
}

#[derive(Clone, Debug)]
struct Case {
    name: String,
    plants: Vec<Plant>,
    args: Vec<OsString>,
    stdin: Vec<u8>,
    env: Vec<(String, OsString)>,
    want: Want,
    /// RLIMIT_FSIZE in bytes (through prlimit(1)).
    fsize: Option<u64>,
    /// Stdout must stay empty (a failing JSON command prints nothing).
    quiet_stdout: bool,
    needs_root: bool,
    /// Run as nobody (setpriv), so that permissions bite although the tests run as root.
    nobody: bool,
}

fn case(name: &str, args: &[&str]) -> Case {
    Case {
        name: name.to_string(),
        plants: vec![file("f.json", DOC)],
        args: args.iter().map(OsString::from).collect(),
        stdin: Vec::new(),
        env: Vec::new(),
        want: Want::Fail(65, Vec::new()),
        fsize: None,
        quiet_stdout: true,
        needs_root: false,
        nobody: false,
    }
}

impl Case {
    fn plant(mut self, p: Plant) -> Self {
        if p.is_root_only() {
            self.needs_root = true;
        }
        self.plants.push(p);
        self
    }
    /// Removes the default f.json.
    fn bare(mut self) -> Self {
        self.plants
            .retain(|p| !matches!(p, Plant::File(n, _) if n == b"f.json"));
        self
    }
    fn fails(mut self, code: i32, says: &[&str]) -> Self {
        self.want = Want::Fail(code, says.iter().map(|s| s.to_string()).collect());
        self
    }
    fn ok(mut self, stdout_has: &[&str]) -> Self {
        self.want = Want::Ok(stdout_has.iter().map(|s| s.to_string()).collect());
        self.quiet_stdout = false;
        self
    }
    fn stdin(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.stdin = bytes.as_ref().to_vec();
        self
    }
    fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.env.push((k.into(), v.as_ref().to_os_string()));
        self
    }
    fn arg_os(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }
    fn fsize(mut self, bytes: u64) -> Self {
        self.fsize = Some(bytes);
        self
    }
    fn nobody(mut self) -> Self {
        self.nobody = true;
        self
    }
    fn noisy_stdout(mut self) -> Self {
        self.quiet_stdout = false;
        self
    }
}

impl Plant {
    fn is_root_only(&self) -> bool {
        matches!(self, Plant::CharDev(_))
    }
}

fn subst(bytes: &[u8], hex: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"{hex}") {
            out.extend_from_slice(hex.as_bytes());
            i += 5;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn rel(root: &Path, bytes: &[u8], hex: &str) -> PathBuf {
    root.join(OsStr::from_bytes(&subst(bytes, hex)))
}

fn hex_of(env: &TestEnv) -> String {
    let lock = lock_path_of(env, "f.json");
    let name = lock.file_name().unwrap().to_string_lossy().into_owned();
    name.trim_end_matches(".lock").to_string()
}

fn make_parent(p: &Path) {
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
}

fn plant(env: &TestEnv, p: &Plant, hex: &str) {
    let root = env.root();
    match p {
        Plant::File(n, bytes) => {
            let path = rel(root, n, hex);
            make_parent(&path);
            fs::write(&path, bytes).unwrap();
        }
        Plant::Dir(n) => fs::create_dir_all(rel(root, n, hex)).unwrap(),
        Plant::Fifo(n) => {
            let path = rel(root, n, hex);
            make_parent(&path);
            let ok = Command::new("mkfifo").arg(&path).status();
            assert!(ok.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
        }
        Plant::Socket(n) => {
            let path = rel(root, n, hex);
            make_parent(&path);
            // The socket file stays after the listener closes.
            drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        }
        Plant::CharDev(n) => {
            let path = rel(root, n, hex);
            make_parent(&path);
            // What /dev/null is (1, 3 on Linux).
            let ok = Command::new("mknod")
                .arg(&path)
                .args(["c", "1", "3"])
                .status();
            assert!(ok.is_ok_and(|s| s.success()), "mknod {}", path.display());
        }
        Plant::Symlink(n, target) => {
            let path = rel(root, n, hex);
            make_parent(&path);
            std::os::unix::fs::symlink(OsStr::from_bytes(&subst(target, hex)), &path).unwrap();
        }
        Plant::Mode(n, mode) => {
            fs::set_permissions(rel(root, n, hex), fs::Permissions::from_mode(*mode)).unwrap()
        }
    }
}

/// What a path is, as compared before and after a case.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Dir(u32),
    File(Vec<u8>, i64, i64, u32),
    Link(PathBuf, i64, i64),
    Special(&'static str, i64, i64, u64),
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(m) = fs::symlink_metadata(&path) else {
                continue;
            };
            let key = path.strip_prefix(root).unwrap().to_path_buf();
            let ft = m.file_type();
            let node = if ft.is_dir() {
                walk(root, &path, out);
                Node::Dir(m.mode())
            } else if ft.is_symlink() {
                Node::Link(fs::read_link(&path).unwrap(), m.mtime(), m.mtime_nsec())
            } else if ft.is_file() {
                Node::File(
                    fs::read(&path).unwrap_or_default(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.mode(),
                )
            } else {
                let kind = if ft.is_fifo() {
                    "fifo"
                } else if ft.is_socket() {
                    "socket"
                } else if ft.is_char_device() {
                    "char device"
                } else {
                    "block device"
                };
                Node::Special(kind, m.mtime(), m.mtime_nsec(), m.rdev())
            };
            out.insert(key, node);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// New paths a case may leave: the lock directory and its reader gates.
fn allowed_new(path: &Path, node: &Node) -> bool {
    let name = path.to_string_lossy();
    let gate = name
        .strip_prefix(".locks/")
        .and_then(|n| n.strip_suffix(".rw"))
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    (name == ".locks" && matches!(node, Node::Dir(_)))
        || (gate && matches!(node, Node::File(b, ..) if b.is_empty()))
}

fn run_bounded(mut cmd: Command, stdin: Vec<u8>) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&stdin);
    });
    fn drain(p: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut v);
            }
            v
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = feeder.join();
    Some(Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    })
}

/// Runs one case; the problems found, empty when it passed.
fn check(c: &Case) -> Vec<String> {
    let env = TestEnv::new();
    let hex = hex_of(&env);
    for p in &c.plants {
        plant(&env, p, &hex);
    }
    let before = snapshot(env.root());
    let args: Vec<OsString> = c
        .args
        .iter()
        .map(|a| OsString::from_vec(subst(a.as_bytes(), &hex)))
        .collect();
    let mut cmd = match (c.fsize, c.nobody && is_root()) {
        (Some(n), _) => {
            let mut cmd = Command::new("prlimit");
            cmd.arg(format!("--fsize={n}:{n}")).arg("--").arg(bin());
            cmd
        }
        (None, true) => {
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
            cmd
        }
        (None, false) => Command::new(bin()),
    };
    cmd.args(&args)
        .current_dir(env.root())
        .env_remove("LOCKRUN_DIR")
        .env_remove("LOCKRUN_TIMEOUT")
        .env_remove("LOCKRUN_DEBUG")
        .env("NO_COLOR", "1");
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    let mut problems = Vec::new();
    let Some(out) = run_bounded(cmd, c.stdin.clone()) else {
        problems.push(format!("did not finish within {LIMIT:?}"));
        return problems;
    };
    let code = out.status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + out.status.signal().unwrap_or(0)
    });
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    match &c.want {
        Want::Fail(want, says) => {
            if code != *want {
                problems.push(format!("exit {code} (want {want})"));
            }
            let lines: Vec<&str> = err.strip_suffix('\n').unwrap_or(&err).split('\n').collect();
            let hint_ok = *want == 2
                && lines.len() == 2
                && lines[1].contains("--help")
                && !lines[1].starts_with("lockrun:");
            if !err.ends_with('\n') || (lines.len() != 1 && !hint_ok) {
                problems.push(format!("stderr is {} lines", lines.len()));
            }
            if !err.starts_with("lockrun: ") {
                problems.push("stderr does not start with 'lockrun: '".into());
            }
            for s in says {
                let s = String::from_utf8(subst(s.as_bytes(), &hex)).unwrap();
                if !err.contains(s.as_str()) {
                    problems.push(format!("stderr lacks {s:?}"));
                }
            }
        }
        Want::Ok(has) => {
            if code != 0 {
                problems.push(format!("exit {code} (want 0)"));
            }
            if !err.is_empty() {
                problems.push("stderr not empty".into());
            }
            for s in has {
                if !stdout.contains(s.as_str()) {
                    problems.push(format!("stdout lacks {s:?}"));
                }
            }
        }
    }
    if err.chars().any(|ch| ch.is_control() && ch != '\n') {
        problems.push("stderr holds a raw control character".into());
    }
    if stdout
        .chars()
        .any(|ch| ch.is_control() && ch != '\n' && ch != '\t')
    {
        problems.push("stdout holds a raw control character".into());
    }
    if c.quiet_stdout && !out.stdout.is_empty() {
        problems.push("stdout not empty".into());
    }
    let after = snapshot(env.root());
    for (path, node) in &before {
        match after.get(path) {
            None => problems.push(format!("{} was removed", path.display())),
            Some(now) if now != node => {
                problems.push(format!("{} changed", path.display()));
            }
            Some(_) => {}
        }
    }
    for (path, node) in &after {
        if !before.contains_key(path) && !allowed_new(path, node) {
            problems.push(format!("{} left behind", path.display()));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("stderr: {:?}", err.trim_end()));
    }
    problems
}

/// Runs a table; fails listing every case that broke the promise.
fn run_table(table: &str, cases: Vec<Case>) {
    let root = is_root();
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in &cases {
        if c.needs_root && !root {
            eprintln!("skipped {}: mknod of a device needs root", c.name);
            continue;
        }
        if c.nobody && is_root() && Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!(
                "skipped {}: root ignores permissions and setpriv(1) is missing",
                c.name
            );
            continue;
        }
        if c.fsize.is_some() && Command::new("prlimit").arg("--version").output().is_err() {
            eprintln!("skipped {}: prlimit(1) is not installed", c.name);
            continue;
        }
        ran += 1;
        let problems = check(c);
        if !problems.is_empty() {
            failures.push(format!("{}: {}", c.name, problems.join("; ")));
        }
    }
    eprintln!("{table}: {ran} cases run, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{table}: {} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn deep_array(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn deep_object(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

// ---------------------------------------------------------------------------------------
// Special files: the JSON commands read and replace only regular files (or a symlink to
// one); a FIFO, socket, device or directory is refused before any blocking open, with
// one line naming its type (exit 74), also when reached through a symlink.

/// Every JSON command, run on `t`.
fn json_commands(t: &str) -> Vec<(&'static str, Vec<String>)> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        ("update", v(&["update", "-n", t, ".a = 1"])),
        (
            "update --create",
            v(&["update", t, ".a = 1", "--create", "{}"]),
        ),
        ("set", v(&["set", "-n", t, "/a", "1"])),
        ("get", v(&["get", "-n", t, "/a"])),
        ("delete", v(&["delete", "-n", t, "/a"])),
        ("patch", v(&["patch", "-n", t, "p.json"])),
        ("patch --merge", v(&["patch", "--merge", t, "m.json"])),
        ("read", v(&["read", "-n", t])),
        ("read --no-lock", v(&["read", "--no-lock", t])),
        ("write", v(&["write", "-n", t])),
        ("write --json", v(&["write", "--json", t])),
        ("append", v(&["append", "-n", t, "{\"x\":1}"])),
    ]
}

fn special_cases() -> Vec<Case> {
    type MakePlant = fn(&str) -> Plant;
    let kinds: Vec<(&str, MakePlant, &str)> = vec![
        ("FIFO", fifo, "FIFO"),
        ("socket", socket, "socket"),
        ("char device", chardev, "character device"),
        ("directory", dir, "directory"),
    ];
    let mut cases = Vec::new();
    for (kind, make, says) in &kinds {
        for (cmd, args) in json_commands("s.json") {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cases.push(
                case(&format!("{cmd} of a {kind}"), &args)
                    .plant(make("s.json"))
                    .plant(file("p.json", r#"[{"op":"add","path":"/a","value":2}]"#))
                    .plant(file("m.json", r#"{"a":2}"#))
                    .stdin("{\"w\": 1}\n")
                    .fails(74, &["s.json", says]),
            );
        }
        // The same through a symlink, for a writer and a reader.
        for args in [["update", "l.json", ".a = 1"], ["read", "l.json", "/a"]] {
            cases.push(
                case(&format!("{} of a symlink to a {kind}", args[0]), &args)
                    .plant(make("s.json"))
                    .plant(symlink("l.json", "s.json"))
                    .fails(74, &["l.json", says]),
            );
        }
    }
    // The patch itself may come from a pipe (`<(...)`), but not from a directory.
    cases.push(
        case("patch from a directory", &["patch", "f.json", "pd"])
            .plant(dir("pd"))
            .fails(74, &["pd", "directory"]),
    );
    cases
}

#[test]
fn special_files_are_refused_before_any_blocking_open() {
    run_table("special files", special_cases());
}

// ---------------------------------------------------------------------------------------
// Nesting and recursion: exit 65, one line, nothing written, lock released; or, where
// the filter's result is fine (a deep value used up inside the filter, a filter that
// nests deep but yields the input), exit 0 with nothing changed and no crash.

fn nesting_cases() -> Vec<Case> {
    let deep = deep_array(VERY_DEEP);
    let deep_obj = deep_object(VERY_DEEP);
    let deep_arg = deep_array(ARG_DEEP);
    let deep_obj_arg = deep_object(20_000);
    let mut cases = vec![
        case("recursive def", &["update", "f.json", "def f: [f]; f"]).fails(65, &["f.json"]),
        case(
            "recursive def with an argument",
            &["update", "f.json", "def f(x): [f(x)]; f(.)"],
        )
        .fails(65, &["f.json"]),
        case(
            "mutually recursive defs",
            &["update", "f.json", "def f: def g: [f]; {a: g}; f"],
        )
        .fails(65, &["f.json"]),
        case(
            "reduce builds a 200000-deep value",
            &["update", "f.json", "reduce range(200000) as $i (1;[.])"],
        )
        .fails(65, &["f.json"]),
        case(
            "reduce builds a deep value then drops it",
            &[
                "update",
                "f.json",
                "(reduce range(200000) as $i (1;[.])) as $x | .",
            ],
        )
        .ok(&[]),
        case(
            "reduce builds a deep value then prints it",
            &[
                "update",
                "f.json",
                "(reduce range(200000) as $i (1;[.]) | tojson | length) as $n | .",
            ],
        )
        .ok(&[]),
        case(
            "deep object by reduce",
            &["update", "f.json", "reduce range(200000) as $i (1;{a:.})"],
        )
        .fails(65, &["f.json"]),
        case(
            "a result just past the limit",
            &["update", "f.json", "reduce range(70000) as $i (1;[.])"],
        )
        .fails(65, &["f.json"]),
        case(
            "deep setpath",
            &["update", "f.json", "setpath([range(200000)|0]; 1)"],
        )
        .fails(65, &["f.json"]),
        case(
            "deep path update",
            &["update", "f.json", "getpath([range(200000)|\"a\"]) |= 1"],
        )
        .fails(65, &["f.json"]),
        case(
            "deep array literal in the filter",
            &["update", "f.json", &deep_arg],
        )
        .fails(65, &["f.json"]),
        case(
            "deep parentheses in the filter",
            &[
                "update",
                "f.json",
                &format!("{}.{}", "(".repeat(60_000), ")".repeat(60_000)),
            ],
        )
        .ok(&[]),
        case(
            "deep object literal in the filter",
            &["update", "f.json", &deep_obj_arg],
        )
        .fails(65, &["f.json"]),
        case(
            "deep if in the filter",
            &[
                "update",
                "f.json",
                &format!(
                    "{}.{}",
                    "if . then ".repeat(5_000),
                    " else . end".repeat(5_000)
                ),
            ],
        )
        .ok(&[]),
        case(
            "long chain of additions in the filter",
            &[
                "update",
                "f.json",
                &format!("(1{}) as $n | .", "+1".repeat(60_000)),
            ],
        )
        .ok(&[]),
        case(
            "deep --argjson",
            &["update", "f.json", ".a = $x", "--argjson", "x", &deep_arg],
        )
        .fails(65, &["--argjson"]),
        case(
            "deep --create",
            &["update", "g.json", ".", "--create", &deep_arg],
        )
        .fails(65, &["--create"]),
        case("deep set value", &["set", "f.json", "/a", &deep_arg]).fails(65, &["f.json"]),
        case(
            "deep set value (object)",
            &["set", "f.json", "/a", &deep_obj_arg],
        )
        .fails(65, &["f.json"]),
        case("deep append value", &["append", "f.json", &deep_arg]).fails(65, &["f.json"]),
        case("deep write --json stdin", &["write", "--json", "f.json"])
            .stdin(&deep)
            .fails(65, &["<stdin>"]),
        case("deep patch value", &["patch", "f.json", "dp.json"])
            .plant(file(
                "dp.json",
                format!(r#"[{{"op":"add","path":"/a","value":{deep}}}]"#),
            ))
            .fails(65, &["dp.json"]),
        case(
            "deep merge patch",
            &["patch", "--merge", "f.json", "dp.json"],
        )
        .plant(file("dp.json", &deep_obj))
        .fails(65, &["dp.json"]),
        case("deep patch from stdin", &["patch", "f.json", "-"])
            .stdin(format!(r#"[{{"op":"add","path":"/a","value":{deep}}}]"#))
            .fails(65, &["<stdin>"]),
        case(
            "deep schema",
            &["update", "f.json", ".a = 2", "--schema", "ds.json"],
        )
        .plant(file("ds.json", &deep_obj))
        .fails(65, &["ds.json"]),
        case(
            "deep fromjson",
            &[
                "update",
                "f.json",
                ".a = ($s | fromjson)",
                "--arg",
                "s",
                &deep_arg,
            ],
        )
        .fails(65, &["f.json"]),
    ];
    // A file that is already too deep: every reader and writer says so.
    for args in [
        vec!["read", "d.json"],
        vec!["read", "--no-lock", "d.json"],
        vec!["read", "--compact", "d.json"],
        vec!["get", "d.json", "/0"],
        vec!["update", "d.json", "."],
        vec!["set", "d.json", "/0", "1"],
        vec!["delete", "d.json", "/0"],
        vec!["patch", "--merge", "d.json", "m.json"],
    ] {
        cases.push(
            case(&format!("{} of a too deep file", args.join(" ")), &args)
                .plant(file("d.json", &deep))
                .plant(file("m.json", "{}"))
                .fails(65, &["d.json"]),
        );
    }
    cases
}

#[test]
fn nesting_and_recursion_end_with_one_line() {
    run_table("nesting", nesting_cases());
}

// ---------------------------------------------------------------------------------------
// Crafted entries in a shared lock directory: show and cleanup report each bad entry as
// one row and skip it (never touched, never a panic, never 74 for everyone); status,
// unlock and release handle them with one line.

/// A name whose byte 64 after the prefix falls inside a two-byte character.
fn split_char(prefix: &str) -> String {
    format!("{prefix}{}é-x", "a".repeat(63))
}

fn lockdir_plants() -> Vec<(&'static str, Vec<Plant>)> {
    let info = "PID: 1\nACQUIRED: 2026-11-22T21:54:59Z\nHOSTNAME: elsewhere\n";
    vec![
        (
            "a non-UTF-8 name",
            vec![Plant::File(b".locks/\xff\xfe.lock".to_vec(), b"x".to_vec())],
        ),
        (
            "a non-UTF-8 .released- directory",
            vec![Plant::Dir(b".locks/.released-{hex}-\xff".to_vec())],
        ),
        (
            "a .tmp- name split inside a character",
            vec![dir(&format!(".locks/{}", split_char(".tmp-")))],
        ),
        (
            "a .stale- name split inside a character",
            vec![dir(&format!(".locks/{}", split_char(".stale-")))],
        ),
        (
            "a .released- name split inside a character",
            vec![dir(&format!(".locks/{}", split_char(".released-")))],
        ),
        (
            "a multibyte .lock name",
            vec![dir(&format!(".locks/{}é.lock", "a".repeat(62)))],
        ),
        (
            "a .released- entry whose info is a symlink",
            vec![
                dir(".locks/.released-{hex}-x"),
                symlink(".locks/.released-{hex}-x/info", "/etc/passwd"),
            ],
        ),
        (
            "a .stale- entry whose info is a FIFO",
            vec![
                dir(".locks/.stale-{hex}-x"),
                fifo(".locks/.stale-{hex}-x/info"),
            ],
        ),
        (
            "a .tmp- entry that is a file",
            vec![file(".locks/.tmp-{hex}-x", "not a dir")],
        ),
        (
            "a .released- entry that is a symlink to a directory",
            vec![
                dir("elsewhere"),
                symlink(".locks/.released-{hex}-y", "../elsewhere"),
            ],
        ),
        (
            "a lock that is a file",
            vec![file(".locks/{hex}.lock", "x")],
        ),
        (
            "a lock that is a symlink",
            vec![
                dir("elsewhere"),
                symlink(".locks/{hex}.lock", "../elsewhere"),
            ],
        ),
        ("a lock that is a FIFO", vec![fifo(".locks/{hex}.lock")]),
        (
            "a lock whose info is a directory",
            vec![dir(".locks/{hex}.lock/info")],
        ),
        (
            "a lock whose info is a symlink",
            vec![
                dir(".locks/{hex}.lock"),
                symlink(".locks/{hex}.lock/info", "/etc/passwd"),
            ],
        ),
        (
            "a lock whose info is binary",
            vec![file(".locks/{hex}.lock/info", b"\xff\xfe\x00\x1b[31m\n\n")],
        ),
        ("a gate that is a directory", vec![dir(".locks/{hex}.rw")]),
        (
            "a lock with a label holding escape codes",
            vec![file(
                ".locks/{hex}.lock/info",
                format!("{info}LABEL: x\u{1b}[31m\u{7}\rPID: 2\n"),
            )],
        ),
    ]
}

fn lockdir_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (what, plants) in lockdir_plants() {
        let mut rows = vec![
            (
                "show",
                case(&format!("show with {what}"), &["show"]).ok(&[]),
            ),
            (
                "show --json",
                case(&format!("show --json with {what}"), &["show", "--json"]).ok(&["["]),
            ),
            (
                "cleanup",
                case(&format!("cleanup with {what}"), &["cleanup"]).ok(&["removed 0"]),
            ),
            (
                "cleanup --dry-run",
                case(
                    &format!("cleanup --dry-run with {what}"),
                    &["cleanup", "--dry-run"],
                )
                .ok(&[]),
            ),
        ];
        for (_, c) in rows.iter_mut() {
            for p in &plants {
                *c = c.clone().plant(p.clone());
            }
        }
        cases.extend(rows.into_iter().map(|(_, c)| c));
    }
    // A name that is not a lockrun entry is reported as one.
    cases.push(
        case("show names a crafted .tmp- entry", &["show"])
            .plant(dir(&format!(".locks/{}", split_char(".tmp-"))))
            .ok(&["not a lockrun entry"]),
    );
    cases.push(
        case("show names a symlinked .released- info", &["show"])
            .plant(dir(".locks/.released-{hex}-x"))
            .plant(symlink(".locks/.released-{hex}-x/info", "/etc/passwd"))
            .ok(&["not a lockrun entry"]),
    );
    // Something that is not a lock directory sits at <hex>.lock: 73, the path once.
    for (what, p) in [
        ("a symlink", symlink(".locks/{hex}.lock", "../elsewhere")),
        ("a file", file(".locks/{hex}.lock", "x")),
        ("a FIFO", fifo(".locks/{hex}.lock")),
    ] {
        for args in [
            vec!["status", "f.json"],
            vec!["status", "--json", "f.json"],
            vec!["unlock", "f.json"],
            vec!["unlock", "--force", "f.json"],
            vec!["with", "-n", "f.json", "--", "true"],
            vec!["update", "-n", "f.json", ".a = 2"],
        ] {
            cases.push(
                case(
                    &format!("{} with {what} at the lock", args.join(" ")),
                    &args,
                )
                .plant(dir("elsewhere"))
                .plant(p.clone())
                .fails(73, &["{hex}.lock"]),
            );
        }
    }
    cases
}

#[test]
fn crafted_lock_dir_entries_are_reported_and_skipped() {
    let cases = lockdir_cases();
    // The path is printed once, not twice.
    let mut failures = Vec::new();
    for c in cases.iter().filter(|c| matches!(c.want, Want::Fail(73, _))) {
        let env = TestEnv::new();
        let hex = hex_of(&env);
        for p in &c.plants {
            plant(&env, p, &hex);
        }
        let out = env.run(&c.args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if err.matches(&format!("{hex}.lock")).count() != 1 {
            failures.push(format!("{}: {err:?}", c.name));
        }
    }
    run_table("lock directory", cases);
    assert!(
        failures.is_empty(),
        "path not printed once:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// release: an id that is not a lock lockrun made is refused (exit 2), nothing removed,
// never a recursion into unknown content.

fn release_cases() -> Vec<Case> {
    let info = "PID: 1\nACQUIRED: 2026-11-22T21:54:59Z\nHOSTNAME: elsewhere\nLIVENESS: pid\n";
    let id = "x/{hex}.lock";
    let mut cases = vec![
        case(
            "release --force of a fake lock with a text info",
            &["release", "--force", id],
        )
        .plant(file("x/{hex}.lock/info", "hello\n"))
        .plant(file("x/{hex}.lock/precious/data", "keep me"))
        .fails(2, &["{hex}.lock"]),
        case(
            "release --force of a fake lock with a binary info",
            &["release", "--force", id],
        )
        .plant(file("x/{hex}.lock/info", b"\x7fELF\x00\x01"))
        .fails(2, &["{hex}.lock"]),
        case(
            "release --force of a lock holding unknown content",
            &["release", "--force", id],
        )
        .plant(file("x/{hex}.lock/info", info))
        .plant(file("x/{hex}.lock/precious/data", "keep me"))
        .fails(2, &["{hex}.lock"]),
        case(
            "release --force where info is a directory",
            &["release", "--force", id],
        )
        .plant(file("x/{hex}.lock/info/data", "keep me"))
        .fails(2, &["{hex}.lock"]),
        case(
            "release --force where info is a symlink",
            &["release", "--force", id],
        )
        .plant(file("victim", info))
        .plant(dir("x/{hex}.lock"))
        .plant(symlink("x/{hex}.lock/info", "../../victim"))
        .fails(2, &["{hex}.lock"]),
        case(
            "release --force where info is a FIFO",
            &["release", "--force", id],
        )
        .plant(dir("x/{hex}.lock"))
        .plant(fifo("x/{hex}.lock/info"))
        .fails(2, &["{hex}.lock"]),
        case(
            "release --force of an empty info",
            &["release", "--force", id],
        )
        .plant(file("x/{hex}.lock/info", ""))
        .fails(2, &["{hex}.lock"]),
        case(
            "release --force of an info without PID",
            &["release", "--force", id],
        )
        .plant(file("x/{hex}.lock/info", "HOSTNAME: h\nACQUIRED: now\n"))
        .fails(2, &["{hex}.lock"]),
        case(
            "release of a lock id with a newline",
            &["release", "x/\n{hex}.lock"],
        )
        .fails(2, &["lock id"]),
        case(
            "release of a symlink id",
            &["release", "--force", "y/{hex}.lock"],
        )
        .plant(file("x/{hex}.lock/info", info))
        .plant(symlink("y/{hex}.lock", "../x/{hex}.lock"))
        .fails(2, &["{hex}.lock"]),
        case("release of an empty id", &["release", ""]).fails(2, &["lock id"]),
        case(
            "release of a non-lock name",
            &["release", "--force", "f.json"],
        )
        .fails(2, &["f.json"]),
    ];
    for c in cases.iter_mut() {
        c.quiet_stdout = true;
    }
    cases
}

#[test]
fn release_refuses_what_is_not_a_lockrun_lock() {
    run_table("release", release_cases());
}

// ---------------------------------------------------------------------------------------
// Messages: every path, label and command lockrun prints is escaped; one line each.

fn message_cases() -> Vec<Case> {
    vec![
        case("missing file named with a newline", &["update", "a\nb.json", "."])
            .fails(66, &["a\\nb.json"]),
        case("missing file named with an escape code", &["read", "a\u{1b}[31mb.json"])
            .fails(66, &["b.json"]),
        case("invalid JSON in a file named with a newline", &["read", "n\nl.json"])
            .plant(file("n\nl.json", "[1,"))
            .fails(65, &["l.json"]),
        case("special file named with a newline", &["read", "n\nl.json"])
            .plant(fifo("n\nl.json"))
            .fails(74, &["l.json"]),
        case("missing file with a carriage return", &["get", "a\rb.json", "/a"])
            .fails(66, &["b.json"]),
        case("non-UTF-8 file name", &["update"])
            .arg_os(OsStr::from_bytes(b"\xff\xfe.json"))
            .arg_os(".")
            .fails(66, &[".json"]),
        case("busy lock held by a label with a newline", &["update", "-n", "f.json", ".a = 2"])
            .plant(file(
                ".locks/{hex}.lock/info",
                "PID: 1\nACQUIRED: 2026-11-22T21:54:59Z\nHOSTNAME: elsewhere\nLIVENESS: pid\nLABEL: x\\nPID: 1\u{1b}[31m\nCOMMAND: evil\u{7}\n",
            ))
            .fails(75, &["f.json", "locked"]),
        case("busy lock with a raw escape in its command", &["with", "-n", "f.json", "--", "true"])
            .plant(file(
                ".locks/{hex}.lock/info",
                "PID: 1\nACQUIRED: 2026-11-22T21:54:59Z\nHOSTNAME: elsewhere\nLIVENESS: pid\nCOMMAND: a\u{1b}]0;pwned\u{7}b\n",
            ))
            .fails(75, &["f.json"]),
        case("status of a lock with an escaping label", &["status", "f.json"])
            .plant(file(
                ".locks/{hex}.lock/info",
                "PID: 1\nACQUIRED: 2026-11-22T21:54:59Z\nHOSTNAME: elsewhere\nLIVENESS: pid\nLABEL: x\u{1b}[2J\rPID: 2\n",
            ))
            .fails(1, &[])
            .noisy_stdout(),
        case("command not found, named with a newline", &["with", "f.json", "--", "no\nsuch"])
            .fails(127, &["no\\nsuch"]),
        case("command not found, named with an escape", &["with", "f.json", "--", "x\u{1b}[31m"])
            .fails(127, &["x"]),
        case("lock dir named with a newline, not a directory", &["with", "--lock-dir", "l\nd", "f.json", "--", "true"])
            .plant(file("l\nd", "x"))
            .fails(73, &["l\\nd"]),
        case("schema file named with an escape", &["update", "f.json", ".", "--schema", "s\u{1b}.json"])
            .fails(66, &["s"]),
        case("patch file named with a newline", &["patch", "f.json", "p\n.json"])
            .fails(66, &["p\\n.json"]),
    ]
}

#[test]
fn messages_are_one_escaped_line() {
    let mut cases = message_cases();
    // status prints to stdout; the harness refuses raw control characters there too.
    for c in cases.iter_mut() {
        if c.name.starts_with("status") {
            c.want = Want::Fail(1, Vec::new());
        }
    }
    let (status, rest): (Vec<Case>, Vec<Case>) = cases
        .into_iter()
        .partition(|c| c.name.starts_with("status"));
    run_table("messages", rest);
    // status exits 1 with the holder on stdout, nothing on stderr.
    for c in status {
        let env = TestEnv::new();
        let hex = hex_of(&env);
        for p in &c.plants {
            plant(&env, p, &hex);
        }
        let out = env.run(&c.args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{}: {text}", c.name);
        assert!(
            !text.chars().any(|ch| ch.is_control() && ch != '\n'),
            "{}: raw control character in {text:?}",
            c.name
        );
        assert!(
            !text.contains("\nPID: 2"),
            "{}: a forged line in {text:?}",
            c.name
        );
    }
}

// ---------------------------------------------------------------------------------------
// Usage errors: `lockrun: <what>` plus at most one hint line; exit 2.

fn usage_cases() -> Vec<Case> {
    let u = |name: &str, args: &[&str], says: &[&str]| case(name, args).fails(2, says);
    vec![
        u(
            "negative -w",
            &["with", "-w", "-1", "f.json", "--", "true"],
            &["negative"],
        ),
        u(
            "negative --timeout=",
            &["update", "--timeout=-1", "f.json", "."],
            &["negative"],
        ),
        u(
            "negative fraction -w",
            &["read", "-w", "-0.5", "f.json"],
            &["negative"],
        ),
        u(
            "-w not a number",
            &["read", "-w", "abc", "f.json"],
            &["abc"],
        ),
        u("-w NaN", &["read", "-w", "nan", "f.json"], &["nan"]),
        u(
            "--max-hold negative",
            &["with", "--max-hold", "-3", "f.json", "--", "true"],
            &["negative"],
        ),
        u(
            "--stale-after garbage",
            &["status", "--stale-after", "soon", "f.json"],
            &["soon"],
        ),
        u(
            "negative -E",
            &["with", "-E", "-1", "f.json", "--", "true"],
            &["-1"],
        ),
        u(
            "-E out of range",
            &["with", "-E", "256", "f.json", "--", "true"],
            &["256"],
        ),
        u(
            "--backup=bogus",
            &["update", "--backup=bogus", "f.json", "."],
            &["bogus"],
        ),
        u(
            "--backup-keep 0",
            &["update", "--backup-keep", "0", "f.json", "."],
            &["backup-keep"],
        ),
        case("invalid LOCKRUN_TIMEOUT", &["read", "f.json"])
            .env("LOCKRUN_TIMEOUT", "abc")
            .fails(2, &["LOCKRUN_TIMEOUT"]),
        case(
            "negative LOCKRUN_TIMEOUT",
            &["with", "f.json", "--", "true"],
        )
        .env("LOCKRUN_TIMEOUT", "-1")
        .fails(2, &["LOCKRUN_TIMEOUT"]),
        case("empty LOCKRUN_DIR", &["with", "f.json", "--", "true"])
            .env("LOCKRUN_DIR", "")
            .fails(2, &["LOCKRUN_DIR"]),
        case("empty LOCKRUN_DIR for show", &["show"])
            .env("LOCKRUN_DIR", "")
            .fails(2, &["LOCKRUN_DIR"]),
        u(
            "empty --lock-dir",
            &["with", "--lock-dir", "", "f.json", "--", "true"],
            &["--lock-dir"],
        ),
        u("unknown subcommand", &["frobnicate"], &["frobnicate"]),
        u("no subcommand", &[], &["command"]),
        u(
            "unknown option",
            &["update", "--frob", "f.json", "."],
            &["--frob"],
        ),
        u("with without command", &["with", "f.json"], &["COMMAND"]),
        u("with without file", &["with"], &["FILE"]),
        u("update without filter", &["update", "f.json"], &["FILTER"]),
        u("set without value", &["set", "f.json", "/a"], &["VALUE"]),
        u("get without pointer", &["get", "f.json"], &["POINTER"]),
        u(
            "delete without pointer",
            &["delete", "f.json"],
            &["POINTER"],
        ),
        u("patch without patch", &["patch", "f.json"], &["PATCH"]),
        u("append without value", &["append", "f.json"], &["JSON"]),
        u("read without file", &["read"], &["FILE"]),
        u(
            "write with an extra argument",
            &["write", "f.json", "g.json"],
            &["g.json"],
        ),
        u("status without file", &["status"], &["FILE"]),
        u("show with a stray argument", &["show", "a", "b"], &["b"]),
        u(
            "cleanup with an unknown option",
            &["cleanup", "--all"],
            &["--all"],
        ),
        u("unlock without file", &["unlock"], &["FILE"]),
        u("acquire without file", &["acquire"], &["FILE"]),
        u("release without id", &["release"], &["ID"]),
        u("man with an argument", &["man", "x"], &["x"]),
        u(
            "completions for an unknown shell",
            &["completions", "cmd.exe"],
            &["cmd.exe"],
        ),
        u("completions without shell", &["completions"], &["SHELL"]),
        u(
            "--arg without value",
            &["update", "f.json", ".", "--arg", "x"],
            &["--arg"],
        ),
        u(
            "--arg with a bad name",
            &["update", "f.json", ".", "--arg", "1x", "v"],
            &["1x"],
        ),
        u("bad pointer", &["get", "f.json", "a"], &["pointer"]),
        u("empty file name", &["update", "", "."], &["FILE"]),
        u(
            "--inherit with --exec",
            &["with", "--inherit", "-F", "f.json", "--", "true"],
            &["--exec"],
        ),
        u("non-UTF-8 filter", &["update", "f.json"], &["UTF-8"])
            .arg_os(OsStr::from_bytes(b".a\xff")),
    ]
}

#[test]
fn usage_errors_are_one_line_and_a_hint() {
    run_table("usage", usage_cases());
}

// ---------------------------------------------------------------------------------------
// Resource limits and long names: a failed replace or append leaves every byte and the
// mtime; a backup name that cannot fit has its own error.

fn limit_cases() -> Vec<Case> {
    let big = format!("{{\"big\": \"{}\"}}", "y".repeat(20_000));
    let name255 = format!("{}.json", "n".repeat(250));
    let name254 = format!("{}.json", "n".repeat(249));
    vec![
        case(
            "update past the file size limit",
            &["update", "f.json", ".a = $b", "--argjson", "b", &big],
        )
        .fsize(4096)
        .fails(74, &["f.json"]),
        case(
            "set past the file size limit",
            &["set", "f.json", "/a", &big],
        )
        .fsize(4096)
        .fails(74, &["f.json"]),
        case("write past the file size limit", &["write", "f.json"])
            .stdin(&big)
            .fsize(4096)
            .fails(74, &["f.json"]),
        case(
            "append past the file size limit",
            &["append", "j.jsonl", &big],
        )
        .plant(file("j.jsonl", "{\"a\":1}\n"))
        .fsize(4096)
        .fails(74, &["j.jsonl"]),
        case(
            "append that just crosses the file size limit",
            &["append", "j.jsonl", &big],
        )
        .plant(file("j.jsonl", "x".repeat(4000) + "\n"))
        .fsize(4096)
        .fails(74, &["j.jsonl"]),
        case(
            "patch past the file size limit",
            &["patch", "--merge", "f.json", "-"],
        )
        .stdin(&big)
        .fsize(4096)
        .fails(74, &["f.json"]),
        case(
            "a backup name that cannot fit (255-byte name)",
            &["update", "--backup", &name255, ".a = 2"],
        )
        .plant(file(&name255, DOC))
        .fails(74, &["backup"]),
        case(
            "a numbered backup name that cannot fit",
            &["update", "--backup=numbered", &name254, ".a = 2"],
        )
        .plant(file(&name254, DOC))
        .fails(74, &["backup"]),
        case(
            "a 256-byte name",
            &["update", &format!("{}.json", "n".repeat(251)), "."],
        )
        .fails(74, &["too long"]),
        case(
            "a 256-byte name for write",
            &["write", &format!("{}.json", "n".repeat(251))],
        )
        .fails(74, &["too long"]),
    ]
}

/// A read-only directory (as nobody): the message blames the directory, not the file.
fn permission_cases() -> Vec<Case> {
    let ro = |name: &str, args: &[&str]| {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--lock-dir", "locks"]);
        case(name, &full)
            .bare()
            .plant(file("ro/f.json", DOC))
            .plant(file("ro/j.jsonl", "{}\n"))
            .plant(Plant::Mode(b"ro/f.json".to_vec(), 0o666))
            .plant(Plant::Mode(b"ro/j.jsonl".to_vec(), 0o666))
            .plant(Plant::Mode(b"ro".to_vec(), 0o555))
            .plant(dir("locks"))
            .plant(Plant::Mode(b"locks".to_vec(), 0o777))
            .plant(Plant::Mode(b".".to_vec(), 0o755))
            .nobody()
            .fails(77, &["ro", "directory", "not writable"])
    };
    vec![
        ro(
            "update in a read-only directory",
            &["update", "ro/f.json", ".a = 2"],
        ),
        ro(
            "set in a read-only directory",
            &["set", "ro/f.json", "/a", "2"],
        ),
        ro(
            "delete in a read-only directory",
            &["delete", "ro/f.json", "/a"],
        ),
        ro("write in a read-only directory", &["write", "ro/f.json"]),
        ro(
            "patch in a read-only directory",
            &["patch", "--merge", "ro/f.json", "-"],
        )
        .stdin("{\"a\":3}"),
        ro(
            "create in a read-only directory",
            &["update", "ro/new.json", ".", "--create", "{}"],
        ),
        ro(
            "append creating a file in a read-only directory",
            &["append", "ro/new.jsonl", "1"],
        ),
    ]
}

#[test]
fn read_only_directories_are_named() {
    run_table("permissions", permission_cases());
}

#[test]
fn resource_limits_and_long_names_leave_every_byte() {
    run_table("limits", limit_cases());
}

// ---------------------------------------------------------------------------------------
// Everything the catalogue holds, counted.

#[test]
fn catalogue_holds_at_least_150_cases() {
    let n = special_cases().len()
        + nesting_cases().len()
        + lockdir_cases().len()
        + release_cases().len()
        + message_cases().len()
        + usage_cases().len()
        + limit_cases().len()
        + permission_cases().len();
    assert!(n >= 150, "{n} cases");
}

// ---------------------------------------------------------------------------------------
// What must work: a dangling symlink is written through, the deepest allowed document
// round-trips through every reader and writer, names up to NAME_MAX are updated.

/// The nesting limit the docs promise (README, man page): arrays and objects inside
/// each other up to this many levels are read and written; one more is refused.
const NESTING_LIMIT: usize = 4096;

fn run_in(env: &TestEnv, args: &[&str], stdin: &str) -> Output {
    let mut cmd = env.command(args);
    run_bounded(
        std::mem::replace(&mut cmd, Command::new("true")),
        stdin.as_bytes().to_vec(),
    )
    .expect("lockrun finished in time")
}

fn assert_ok(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_dangling_symlink_stays_a_symlink_and_the_file_is_created_where_it_points() {
    let runs: Vec<(&str, Vec<&str>, &str)> = vec![
        ("write", vec!["write", "d.json"], "{\"w\":1}\n"),
        (
            "write --json",
            vec!["write", "--json", "d.json"],
            "{\"w\":1}\n",
        ),
        (
            "set --create",
            vec!["set", "d.json", "/w", "1", "--create", "{}"],
            "",
        ),
        (
            "update --create",
            vec!["update", "d.json", ".w = 1", "--create", "{}"],
            "",
        ),
        (
            "patch --create",
            vec!["patch", "--merge", "d.json", "-", "--create", "{}"],
            "{\"w\":1}",
        ),
        ("append", vec!["append", "d.json", "{\"w\":1}"], ""),
    ];
    for (what, args, stdin) in runs {
        let env = TestEnv::new();
        fs::create_dir(env.path("sub")).unwrap();
        std::os::unix::fs::symlink("sub/notyet.json", env.path("d.json")).unwrap();
        let out = run_in(&env, &args, stdin);
        assert_ok(&out, what);
        let meta = fs::symlink_metadata(env.path("d.json")).unwrap();
        assert!(
            meta.file_type().is_symlink(),
            "{what}: d.json is no longer a symlink"
        );
        let text = fs::read_to_string(env.path("sub/notyet.json")).unwrap();
        assert!(text.contains("\"w\""), "{what}: {text:?}");
        let mut names: Vec<String> = fs::read_dir(env.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".locks")
            .collect();
        names.sort();
        assert_eq!(names, ["d.json", "sub"], "{what}");
        // The lock lives beside the target the link names (sub/.locks).
        let beside: Vec<String> = fs::read_dir(env.path("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".locks")
            .collect();
        assert_eq!(
            beside,
            ["notyet.json"],
            "{what}: a stray file beside the link's target"
        );
    }
}

#[test]
fn the_deepest_allowed_document_is_written_and_read_back_by_every_command() {
    let env = TestEnv::new();
    env.write("f.json", "{}");
    let filter = format!("reduce range({NESTING_LIMIT}) as $i (1;[.])");
    assert_ok(&run_in(&env, &["update", "f.json", &filter], ""), "update");
    let deepest = format!(
        "{}1{}",
        "[".repeat(NESTING_LIMIT),
        "]".repeat(NESTING_LIMIT)
    );
    let compact = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let deep_path = "/0".repeat(NESTING_LIMIT - 1);
    env.write(
        "p.json",
        &format!(r#"[{{"op":"replace","path":"{deep_path}","value":[2]}}]"#),
    );
    assert_eq!(compact(&env.read("f.json")), deepest);
    let read = run_in(&env, &["read", "f.json"], "");
    assert_ok(&read, "read");
    assert_eq!(compact(&String::from_utf8_lossy(&read.stdout)), deepest);
    for args in [
        vec!["read", "--compact", "f.json"],
        vec!["read", "--no-lock", "f.json"],
        vec!["get", "f.json", "/0"],
        vec!["update", "f.json", "."],
        vec!["update", "f.json", ".[0] = .[0]"],
        vec!["set", "f.json", "/0", "[[1]]"],
        vec!["patch", "f.json", "p.json"],
        vec!["delete", "f.json", "/0"],
    ] {
        // Each starts from the deepest document.
        env.write("f.json", &deepest);
        env.write("m.json", "{\"x\": 1}");
        assert_ok(&run_in(&env, &args, ""), &args.join(" "));
    }
    // The limit as a value given to each writer: accepted exactly at the limit.
    let at_limit = format!("{}{}", "[".repeat(NESTING_LIMIT), "]".repeat(NESTING_LIMIT));
    assert_ok(
        &run_in(&env, &["write", "--json", "g.json"], &at_limit),
        "write --json",
    );
    assert_ok(
        &run_in(&env, &["append", "j.jsonl", &at_limit], ""),
        "append",
    );
    assert_ok(
        &run_in(&env, &["update", "h.json", ".", "--create", &at_limit], ""),
        "update --create",
    );
    env.write("s.json", "{}");
    let one_less = format!(
        "{}{}",
        "[".repeat(NESTING_LIMIT - 1),
        "]".repeat(NESTING_LIMIT - 1)
    );
    assert_ok(
        &run_in(&env, &["set", "s.json", "/a", &one_less], ""),
        "set",
    );
    // One level more is refused by each.
    let past = format!("[{at_limit}]");
    for (args, stdin) in [
        (vec!["write", "--json", "g.json"], past.as_str()),
        (vec!["append", "j.jsonl", &past], ""),
        (vec!["set", "s.json", "/a", &at_limit], ""),
        (
            vec![
                "update",
                "s.json",
                &format!("reduce range({}) as $i (1;[.])", NESTING_LIMIT + 1),
            ],
            "",
        ),
    ] {
        let out = run_in(&env, &args, stdin);
        assert_eq!(
            out.status.code(),
            Some(65),
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&NESTING_LIMIT.to_string()),
            "{}: {err}",
            args.join(" ")
        );
    }
}

#[test]
fn names_up_to_name_max_can_be_updated() {
    for len in [240, 250, 255] {
        let env = TestEnv::new();
        let name = format!("{}.json", "n".repeat(len - 5));
        env.write(&name, "{\"a\": 1}\n");
        for (args, stdin) in [
            (vec!["update", name.as_str(), ".a = 2"], ""),
            (vec!["set", name.as_str(), "/b", "3"], ""),
            (vec!["write", name.as_str()], "{\"c\": 4}\n"),
            (vec!["append", name.as_str(), "5"], ""),
        ] {
            let out = run_in(&env, &args, stdin);
            assert_ok(&out, &format!("{} of a {len}-byte name", args[0]));
        }
        assert_eq!(env.read(&name), "{\"c\": 4}\n5\n");
        let names: Vec<_> = fs::read_dir(env.root()).unwrap().collect();
        assert_eq!(names.len(), 2, "a stray file beside the {len}-byte name");
    }
}

/// A tmpfs of `size` mounted at `path` for one test (root only); unmounted on drop.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(path: &Path, size: &str) -> Option<SmallFs> {
        fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallFs(path.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs ({}); this needs root with CAP_SYS_ADMIN",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount(8): {e}");
                None
            }
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// ENOSPC: every writer fails with 74 and one line, and the file keeps its bytes and its
/// mtime (a failed append is cut back and given its times back); nothing is left beside
/// it. The lock directory is elsewhere, so only the data write can fail.
#[test]
fn a_full_file_system_leaves_every_byte_and_mtime() {
    let env = TestEnv::new();
    let Some(small) = SmallFs::mount(&env.path("small"), "64k") else {
        return;
    };
    let dir = small.0.clone();
    fs::write(dir.join("f.json"), DOC).unwrap();
    fs::write(dir.join("j.jsonl"), "{\"a\":1}\n").unwrap();
    // Fill it up.
    {
        let mut filler = fs::File::create(dir.join("filler")).unwrap();
        let chunk = vec![b'z'; 4096];
        while filler.write_all(&chunk).is_ok() {}
        let _ = filler.sync_all();
    }
    let big = format!("\"{}\"", "y".repeat(20_000));
    let locks = env.path("locks");
    let runs: Vec<(Vec<&str>, &str)> = vec![
        (vec!["append", "j.jsonl", &big], ""),
        (
            vec!["update", "f.json", ".a = $b", "--argjson", "b", &big],
            "",
        ),
        (vec!["set", "f.json", "/a", &big], ""),
        (vec!["write", "f.json"], big.as_str()),
    ];
    for (args, stdin) in runs {
        let before = snapshot(&dir);
        let mut cmd = env.command(&args);
        cmd.current_dir(&dir).arg("--lock-dir").arg(&locks);
        let out = run_bounded(cmd, stdin.as_bytes().to_vec()).expect("finished in time");
        let err = String::from_utf8_lossy(&out.stderr);
        let what = args.join(" ");
        assert_eq!(out.status.code(), Some(74), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert_eq!(snapshot(&dir), before, "{what}: the directory changed");
    }
}

/// Started with fd 1 (or 0 and 2) closed, lockrun must not let a file it opens (a
/// lock's info, a reader gate, a temp file) take the place of stdout: what it prints
/// then goes nowhere, never into a lock or the document.
#[test]
fn closed_standard_descriptors_never_become_lock_files() {
    let env = TestEnv::new();
    env.write("f.json", "{\"marker\": \"m-1\"}\n");
    let scripts = [
        r#"exec 1>&-; "$L" read f.json"#,
        r#"exec 1>&-; "$L" get f.json /marker"#,
        r#"exec 1>&-; "$L" update --print f.json '.n = "m-2"'"#,
        r#"exec 1>&- 2>&-; "$L" update f.json '.n = "m-3"'"#,
        r#"exec 0<&- 1>&-; "$L" with f.json -- echo m-4"#,
        r#"exec 1>&-; "$L" status f.json"#,
        r#"exec 1>&-; "$L" show"#,
    ];
    for script in scripts {
        let out = crate::testenv::wait_output(crate::testenv::sh(&env, script), PATIENCE_SHORT);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // No file but f.json holds what was printed.
        for (path, node) in snapshot(env.root()) {
            if path == Path::new("f.json") {
                continue;
            }
            if let Node::File(bytes, ..) = node {
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains("m-") && !text.contains("marker"),
                    "{script}: {} received the output: {text:?}",
                    path.display()
                );
            }
        }
    }
    let doc = env.read("f.json");
    assert!(doc.contains("m-3"), "{doc}");
}

const PATIENCE_SHORT: Duration = Duration::from_secs(10);
