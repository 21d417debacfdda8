//! The command that portable tests run under a lock: this test executable itself, started
//! with `--lockrun-test-helper VERB ARGS...`. A constructor that runs before the test
//! harness sees that first argument, does the verb and exits, so no test output is
//! mixed in. It is built for every target the tests are built for (a Windows run under
//! Wine has no `sh`), and needs no separate target that `cargo install` would ship.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MARK: &str = "--lockrun-test-helper";

/// No helper waits longer than this for a test's signal: a forgotten one ends by itself.
const HELPER_PATIENCE: Duration = Duration::from_secs(60);

// SAFETY (ctor's `unsafe` marker): the function only reads the arguments, touches files
// and exits; it relies on nothing that std sets up later in start-up.
#[ctor::ctor(unsafe)]
fn helper_mode() {
    let args = process_args();
    if args.get(1).is_none_or(|a| a != MARK) {
        return;
    }
    let words: Vec<String> = args[2..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(run(&words));
}

/// This process's arguments, before `main`. std has them in a constructor on glibc, macOS
/// and Windows, but on musl only once its own start-up ran: there the kernel's copy is
/// read instead.
fn process_args() -> Vec<OsString> {
    #[cfg(all(target_os = "linux", target_env = "musl"))]
    {
        use std::os::unix::ffi::OsStringExt;
        if let Ok(raw) = fs::read("/proc/self/cmdline") {
            let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
            return raw
                .split(|b| *b == 0)
                .map(|a| OsString::from_vec(a.to_vec()))
                .collect();
        }
    }
    std::env::args_os().collect()
}

/// The command line that runs the helper with `verb` and `args`.
pub fn helper_argv(verb: &str, args: &[&str]) -> Vec<String> {
    let exe = std::env::current_exe().expect("test executable path");
    let mut argv = vec![
        exe.to_string_lossy().into_owned(),
        MARK.to_string(),
        verb.to_string(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    argv
}

fn wait_for(path: &Path) -> bool {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > HELPER_PATIENCE {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

fn run(words: &[String]) -> i32 {
    let arg = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match arg(0) {
        // exit N
        "exit" => arg(1).parse().unwrap_or(2),
        // hold READY GO: say it runs, then wait for the test's go.
        "hold" => {
            let _ = fs::write(arg(1), "");
            if wait_for(Path::new(arg(2))) { 0 } else { 3 }
        }
        // critical DIR MS: the overlap detector. Creating DIR/inside exclusively fails
        // when another holder is inside at the same time; that is recorded in
        // DIR/overlap. Each pass appends one line to DIR/passes.
        "critical" => {
            let dir = PathBuf::from(arg(1));
            let ms: u64 = arg(2).parse().unwrap_or(10);
            let inside = dir.join("inside");
            if OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&inside)
                .is_err()
            {
                let _ = append(&dir.join("overlap"), "overlap\n");
                return 4;
            }
            std::thread::sleep(Duration::from_millis(ms));
            let _ = append(&dir.join("passes"), "pass\n");
            if fs::remove_file(&inside).is_err() {
                let _ = append(&dir.join("overlap"), "inside vanished\n");
                return 4;
            }
            0
        }
        // rw DIR MS MODE: the overlap detector of shared locks. A writer (MODE "w")
        // creates DIR/writer exclusively and must find DIR/readers empty; a reader ("r")
        // adds DIR/readers/<pid> and must find no DIR/writer. Either breach is recorded in
        // DIR/overlap; a reader that finds another reader inside notes it in
        // DIR/together. Each pass appends one line to DIR/passes.
        "rw" => {
            let dir = PathBuf::from(arg(1));
            let ms: u64 = arg(2).parse().unwrap_or(10);
            let readers = dir.join("readers");
            let writer = dir.join("writer");
            let others = |mine: &Path| {
                fs::read_dir(&readers)
                    .map(|d| d.filter_map(|e| e.ok()).any(|e| e.path() != mine))
                    .unwrap_or(false)
            };
            if arg(3) == "w" {
                if OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&writer)
                    .is_err()
                {
                    let _ = append(&dir.join("overlap"), "two writers\n");
                    return 4;
                }
                for _ in 0..2 {
                    if others(&writer) {
                        let _ = append(&dir.join("overlap"), "a writer among readers\n");
                    }
                    std::thread::sleep(Duration::from_millis(ms / 2));
                }
                let _ = append(&dir.join("passes"), "w\n");
                let _ = fs::remove_file(&writer);
            } else {
                let mine = readers.join(std::process::id().to_string());
                if fs::write(&mine, "").is_err() {
                    return 5;
                }
                for _ in 0..2 {
                    if writer.exists() {
                        let _ = append(&dir.join("overlap"), "a reader beside a writer\n");
                    }
                    if others(&mine) {
                        let _ = append(&dir.join("together"), ".");
                    }
                    std::thread::sleep(Duration::from_millis(ms / 2));
                }
                let _ = append(&dir.join("passes"), "r\n");
                let _ = fs::remove_file(&mine);
            }
            0
        }
        // graceful READY MARK: the polite stop's receiver. It says it runs, then waits;
        // asked to stop (SIGTERM on Unix, Ctrl-Break or Ctrl-C on Windows), it writes
        // MARK and exits 42. It never stops by itself within the helper's patience.
        "graceful" => {
            catch_stop_request();
            let _ = fs::write(arg(1), "");
            let start = Instant::now();
            while start.elapsed() < HELPER_PATIENCE {
                if STOP_ASKED.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = fs::write(arg(2), "asked to stop\n");
                    return 42;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            0
        }
        // tree READY BEAT: start a grandchild that appends to BEAT every 10 ms, say it
        // runs, then wait (the test kills lockrun meanwhile).
        "tree" => {
            let argv = helper_argv("heartbeat", &[arg(2)]);
            let child = Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if child.is_err() {
                return 5;
            }
            // The grandchild is running once its first beat is there.
            if !wait_for(Path::new(arg(2))) {
                return 3;
            }
            let _ = fs::write(arg(1), "");
            std::thread::sleep(HELPER_PATIENCE);
            0
        }
        "heartbeat" => {
            let start = Instant::now();
            while start.elapsed() < HELPER_PATIENCE {
                if append(Path::new(arg(1)), ".").is_err() {
                    return 6;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            0
        }
        // acquire LOCKRUN TARGET OUT: run `lockrun acquire TARGET` as this process's
        // child (so this process is the lock's owner), write its output to OUT, exit.
        "acquire" => match Command::new(arg(1))
            .args(["acquire", arg(2)])
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) => {
                let _ = fs::write(arg(3), &out.stdout);
                out.status.code().unwrap_or(7)
            }
            Err(_) => 7,
        },
        // hold-open FILE READY MS SHARE: keep FILE open for MS milliseconds. On Windows
        // it is opened as a virus scanner or indexer does: without sharing (SHARE
        // "none": nobody may even read it) or sharing only reads ("read": it may be read
        // but not replaced).
        "hold-open" => {
            let mut opts = OpenOptions::new();
            opts.read(true);
            #[cfg(windows)]
            std::os::windows::fs::OpenOptionsExt::share_mode(
                &mut opts,
                if arg(4) == "read" { 1 } else { 0 }, // FILE_SHARE_READ
            );
            let Ok(file) = opts.open(arg(1)) else {
                return 8;
            };
            let _ = fs::write(arg(2), "");
            std::thread::sleep(Duration::from_millis(arg(3).parse().unwrap_or(300)));
            drop(file);
            0
        }
        _ => 2,
    }
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// Set when the `graceful` helper is asked to stop.
static STOP_ASKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(unix)]
fn catch_stop_request() {
    extern "C" fn on_term(_: libc::c_int) {
        STOP_ASKED.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t) };
}

#[cfg(windows)]
fn catch_stop_request() {
    use windows_sys::Win32::System::Console::{
        CTRL_BREAK_EVENT, CTRL_C_EVENT, SetConsoleCtrlHandler,
    };
    unsafe extern "system" fn on_ctrl(kind: u32) -> windows_sys::core::BOOL {
        if kind == CTRL_C_EVENT || kind == CTRL_BREAK_EVENT {
            STOP_ASKED.store(true, std::sync::atomic::Ordering::SeqCst);
            return 1;
        }
        0
    }
    // SAFETY: the handler is a valid `extern "system"` routine for the process's life.
    // Re-enabling Ctrl-C first (null handler, FALSE): a new process group starts with
    // it disabled.
    unsafe {
        SetConsoleCtrlHandler(None, 0);
        SetConsoleCtrlHandler(Some(on_ctrl), 1);
    }
}
