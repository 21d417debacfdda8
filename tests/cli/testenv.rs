//! `TestEnv`: a temp directory and helpers that run the real `lockrun` binary in it.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The executable under test: `LOCKRUN_TEST_BIN` when set (`scripts/build.sh --test`
/// sets it to the build that ships), else the one cargo built for these tests.
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("LOCKRUN_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_lockrun").to_string())
    })
}

/// The executable under test has lockrun's test hooks (`LOCKRUN_TEST_BREAK_PAUSE`):
/// debug builds do; the build that ships (`LOCKRUN_TEST_BIN`) has none.
pub fn has_test_hooks() -> bool {
    std::env::var_os("LOCKRUN_TEST_BIN").is_none() && cfg!(debug_assertions)
}

/// Upper bound for anything a test waits on; tests fail rather than hang.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&p, contents).expect("write");
        p
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).expect("read")
    }

    /// A `lockrun` command run in the temp dir, with no LOCKRUN_* from the caller.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(self.root())
            .env_remove("LOCKRUN_DIR")
            .env_remove("LOCKRUN_TIMEOUT")
            .env_remove("LOCKRUN_DEBUG")
            .env_remove("LOCKRUN_BACKEND")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs lockrun to completion (bounded by PATIENCE) and returns its output with
    /// the command line.
    pub fn run<I, S>(&self, args: I) -> Ran
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> = args
            .into_iter()
            .map(|a| a.as_ref().to_os_string())
            .collect();
        let command = std::iter::once("lockrun".to_string())
            .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let child = self
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lockrun");
        Ran {
            output: wait_output(child, PATIENCE),
            command,
        }
    }

    /// Starts lockrun in the background.
    pub fn spawn<I, S>(&self, args: I) -> Child
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lockrun")
    }

    /// The lock directories currently present in `.locks` beside the targets.
    pub fn lock_entries(&self, lock_dir: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path(lock_dir))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A finished `lockrun` run: its output, and the command line that made it so that a
/// failed check can show the command, its stdout and its stderr (as fd's tests do).
pub struct Ran {
    pub output: Output,
    pub command: String,
}

impl std::ops::Deref for Ran {
    type Target = Output;
    fn deref(&self) -> &Output {
        &self.output
    }
}

/// Exit-status checks that say everything about a failure.
pub trait Check {
    /// Panics unless the run exited 0.
    fn assert_success(&self) -> &Self;
    /// Panics unless the run exited with `code` (a documented failure status).
    fn assert_failure_with(&self, code: i32) -> &Self;
}

impl Check for Ran {
    #[track_caller]
    fn assert_success(&self) -> &Self {
        check_status(&self.output, &self.command, 0);
        self
    }
    #[track_caller]
    fn assert_failure_with(&self, code: i32) -> &Self {
        assert_ne!(code, 0, "assert_failure_with(0): use assert_success");
        check_status(&self.output, &self.command, code);
        self
    }
}

/// For processes started by hand (`spawn`, `sh`): their command line is in the test.
impl Check for Output {
    #[track_caller]
    fn assert_success(&self) -> &Self {
        check_status(self, "(a process the test started; see the test)", 0);
        self
    }
    #[track_caller]
    fn assert_failure_with(&self, code: i32) -> &Self {
        assert_ne!(code, 0, "assert_failure_with(0): use assert_success");
        check_status(self, "(a process the test started; see the test)", code);
        self
    }
}

#[track_caller]
fn check_status(out: &Output, command: &str, want: i32) {
    let got = code(out);
    if got != want {
        panic!(
            "exit status {got}, expected {want}\ncommand: {command}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            stdout(out),
            stderr(out)
        );
    }
}

/// Waits for `child` at most `limit`; kills it and panics past that. Its piped output
/// is drained while it runs, so a child that prints more than a pipe holds finishes.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                p.read_to_end(&mut bytes).expect("read child output");
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.join().expect("stderr reader");
            panic!(
                "process did not finish within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Polls `cond` until true; panics after PATIENCE.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// `<root>/.locks/<hex>.lock` of `target` (relative to the env root), as the
/// executable names it (`status --json`).
pub fn lock_path_of(env: &TestEnv, target: &str) -> PathBuf {
    PathBuf::from(status_field(env, target, "lock"))
}

/// A string field of `lockrun status --json TARGET`.
pub fn status_field(env: &TestEnv, target: &str, field: &str) -> String {
    let out = env.run(["status", "--json", target]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json {target}: {e}: {}", stderr(&out)));
    json[field]
        .as_str()
        .unwrap_or_else(|| panic!("status --json {target} has no string {field}: {json}"))
        .to_string()
}

/// The start token lockrun records for process `pid` (`PID_START`), as the executable
/// records it: from a lock taken for `pid` with `acquire --owner` in a scratch lock
/// directory, removed again.
pub fn start_token(env: &TestEnv, pid: u32) -> String {
    let scratch = env.path(".start-token-locks");
    let out = env.run([
        "acquire".as_ref(),
        "--lock-dir".as_ref(),
        scratch.as_os_str(),
        "--owner".as_ref(),
        pid.to_string().as_ref(),
        "start-token".as_ref(),
    ]);
    assert_eq!(code(&out), 0, "acquire --owner {pid}: {}", stderr(&out));
    let id = PathBuf::from(stdout(&out).trim());
    let info = fs::read_to_string(id.join("info")).expect("read the acquire lock's info");
    fs::remove_dir_all(&scratch).expect("remove the scratch lock directory");
    info.lines()
        .find_map(|l| l.strip_prefix("PID_START: "))
        .unwrap_or_else(|| panic!("no PID_START recorded for PID {pid}: {info}"))
        .to_string()
}

/// Runs a shell script in the env root, `$L` being the lockrun binary.
pub fn sh(env: &TestEnv, script: &str) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(env.root())
        .env("L", bin())
        .env_remove("LOCKRUN_DIR")
        .env_remove("LOCKRUN_TIMEOUT")
        .env_remove("LOCKRUN_DEBUG")
        .env_remove("LOCKRUN_BACKEND")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh")
}

/// Why a test cannot run here.
#[derive(Debug)]
pub enum Skip {
    /// Something this run cannot have: a privilege a container cannot gain, another
    /// platform's facility. Skipped everywhere, with the reason.
    Platform(String),
    /// A tool or setting this machine lacks but CI provides: skipped on a developer's
    /// machine, a failure under `CI=true` (a test that silently stops running would
    /// look like a pass).
    Missing(String),
}

/// Reports a skipped test; under `CI=true` a skip for anything but the platform fails.
#[track_caller]
pub fn skip(why: Skip) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match why {
        Skip::Platform(reason) => eprintln!("SKIPPED ({reason})"),
        Skip::Missing(reason) if ci => panic!("CI=true: this test must run here, but {reason}"),
        Skip::Missing(reason) => eprintln!("SKIPPED ({reason}; under CI=true this fails)"),
    }
}

/// Entries of a directory, sorted; empty when it does not exist.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("read a directory entry").file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The temp files of unfinished atomic writes (`.<name>.lockrun-tmp-*`) in `dir`.
pub fn temp_files(dir: &Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|n| n.contains(".lockrun-tmp-"))
        .collect()
}

/// Running as root, which ignores file permissions.
#[cfg(unix)]
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A PID that belonged to a process of this host that has exited (and been reaped).
pub fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("reap true");
    pid
}

/// A small xorshift generator seeded from the clock (the seed is printed, so a failure
/// can be replayed): random moments without a crate.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        eprintln!("rng seed {seed}");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Starts `lockrun with ARGS -- (wait for NAME.go)` and returns once the command runs;
/// the holder ends when the test calls `go(env, NAME)`.
pub fn hold(env: &TestEnv, args: &[&str], name: &str) -> Child {
    let script = format!("touch {name}.ready; while [ ! -e {name}.go ]; do sleep 0.01; done");
    let mut full: Vec<&str> = vec!["with"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--", "sh", "-c", &script]);
    let child = env.spawn(&full);
    wait_until(&format!("{name} to hold the lock"), || {
        env.path(&format!("{name}.ready")).exists()
    });
    child
}

pub fn go(env: &TestEnv, name: &str) {
    fs::write(env.path(&format!("{name}.go")), "").expect("write go file");
}

/// A bash-script lock: `mkdir <lock>` and an `info` with PID/ACQUIRED/HOSTNAME.
pub fn bash_lock(env: &TestEnv, target: &str, pid: u32, host: &str) -> PathBuf {
    let lock = lock_path_of(env, target);
    fs::create_dir_all(&lock).expect("mkdir lock");
    fs::write(
        lock.join("info"),
        format!("PID: {pid}\nACQUIRED: 2026-11-22T21:54:59Z\nHOSTNAME: {host}\n"),
    )
    .expect("write info");
    lock
}

/// This host's name, as lockrun records it.
#[cfg(unix)]
pub fn here() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}
