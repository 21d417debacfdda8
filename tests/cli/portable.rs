//! Cases that run unchanged on Linux (natively) and on Windows (the Windows build under
//! Wine, `scripts/wine-test.sh`): the command under the lock is the test suite's own
//! helper (`helper.rs`), never `sh`, and only std's portable process API is used (on
//! Windows `Child::kill` is TerminateProcess).

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helper::helper_argv;
use crate::testenv::{PATIENCE, TestEnv, wait_output, wait_until};

/// The lockrun executable under test (`LOCKRUN_TEST_BIN` or cargo's build).
fn exe() -> String {
    crate::testenv::bin().to_string()
}

fn lockrun(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new(exe());
    cmd.args(args)
        .current_dir(env.root())
        .env_remove("LOCKRUN_DIR")
        .env_remove("LOCKRUN_TIMEOUT")
        .env_remove("LOCKRUN_DEBUG")
        .env_remove("LOCKRUN_BACKEND")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run(env: &TestEnv, args: &[&str]) -> Output {
    wait_output(lockrun(env, args).spawn().expect("spawn lockrun"), PATIENCE)
}

fn spawn(env: &TestEnv, args: &[&str]) -> Child {
    lockrun(env, args).spawn().expect("spawn lockrun")
}

/// `lockrun with OPTS FILE -- helper VERB ARGS`.
fn with_helper(opts: &[&str], verb: &str, args: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = vec!["with".into()];
    argv.extend(opts.iter().map(|s| s.to_string()));
    argv.push("--".into());
    argv.extend(helper_argv(verb, args));
    argv
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_code(out: &Output, want: i32, what: &str) {
    assert_eq!(
        code(out),
        want,
        "{what}: stdout {:?} stderr {:?}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A path inside the env as text, for command lines.
fn p(env: &TestEnv, rel: &str) -> String {
    env.path(rel).to_string_lossy().into_owned()
}

/// Starts `with FILE -- helper hold` and returns once the helper runs under the lock.
fn hold(env: &TestEnv, target: &str, name: &str) -> Child {
    let ready = p(env, &format!("{name}.ready"));
    let go = p(env, &format!("{name}.go"));
    let argv = with_helper(&["-w", "20", target], "hold", &[&ready, &go]);
    let child = spawn(env, &strs(&argv));
    wait_until(&format!("{name} to hold {target}"), || {
        env.path(&format!("{name}.ready")).exists()
    });
    child
}

fn go(env: &TestEnv, name: &str) {
    fs::write(env.path(&format!("{name}.go")), "").expect("write go file");
}

/// Whether this Windows is Wine (its prefix carries Wine's own programs).
fn under_wine() -> bool {
    cfg!(windows) && Path::new(r"C:\windows\system32\wineboot.exe").exists()
}

#[test]
fn version_names_the_tool() {
    let env = TestEnv::new();
    let out = run(&env, &["--version"]);
    assert_code(&out, 0, "--version");
    assert!(text(&out.stdout).starts_with("lockrun "), "{:?}", out);
}

/// 4 processes, each taking the lock 6 times around the overlap detector: no two ever
/// inside at once, and every pass counted.
#[test]
fn four_processes_never_overlap() {
    let env = TestEnv::new();
    fs::create_dir(env.path("detector")).unwrap();
    let detector = p(&env, "detector");
    const WORKERS: usize = 4;
    const ROUNDS: usize = 6;
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let argv = with_helper(&["-w", "60", "shared.json"], "critical", &[&detector, "15"]);
            repeat(&env, argv, ROUNDS)
        })
        .collect();
    check_detector(
        &env,
        workers,
        WORKERS * ROUNDS,
        "two holders were inside at once",
    );
}

/// Runs `rounds` times `lockrun ARGV` in a thread; the exit codes and stderr of each.
fn repeat(
    env: &TestEnv,
    argv: Vec<String>,
    rounds: usize,
) -> std::thread::JoinHandle<Vec<(i32, String)>> {
    let root = env.root().to_path_buf();
    std::thread::spawn(move || {
        (0..rounds)
            .map(|_| {
                let child = Command::new(exe())
                    .args(&argv)
                    .current_dir(&root)
                    .env_remove("LOCKRUN_DIR")
                    .env_remove("LOCKRUN_TIMEOUT")
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn lockrun");
                let out = wait_output(child, Duration::from_secs(90));
                (code(&out), text(&out.stderr))
            })
            .collect()
    })
}

/// Every pass of `workers` succeeded, the detector in `env`'s `detector` saw no
/// overlap (`breach` says what one would mean), and it counted `passes` passes.
fn check_detector(
    env: &TestEnv,
    workers: Vec<std::thread::JoinHandle<Vec<(i32, String)>>>,
    passes: usize,
    breach: &str,
) {
    for w in workers {
        for (c, err) in w.join().expect("worker") {
            assert_eq!(c, 0, "a pass failed: {err}");
        }
    }
    assert!(
        !env.path("detector/overlap").exists(),
        "{breach}: {}",
        env.read("detector/overlap")
    );
    assert_eq!(env.read("detector/passes").lines().count(), passes);
}

/// 3 shared holders (`with -s`) and 2 exclusive ones take one lock over and over around
/// a detector: a writer never meets a reader or another writer, and every pass counts.
#[test]
fn readers_never_overlap_a_writer() {
    let env = TestEnv::new();
    fs::create_dir_all(env.path("detector/readers")).unwrap();
    let detector = p(&env, "detector");
    const READERS: usize = 3;
    const WRITERS: usize = 2;
    const ROUNDS: usize = 4;
    let mut workers = Vec::new();
    for i in 0..READERS + WRITERS {
        let (opts, mode): (&[&str], _) = if i < READERS {
            (&["-s", "-w", "60", "data.json"], "r")
        } else {
            (&["-w", "60", "data.json"], "w")
        };
        let argv = with_helper(opts, "rw", &[&detector, "30", mode]);
        workers.push(repeat(&env, argv, ROUNDS));
    }
    check_detector(
        &env,
        workers,
        (READERS + WRITERS) * ROUNDS,
        "a writer was inside with someone else",
    );
}

/// A shared holder lets other readers in at once and keeps a writer out; `show` names
/// it by PID (from /proc/locks on Linux, from the readers' records in the gate on
/// Windows). A writer waiting for the readers to drain keeps new readers out (writers
/// are preferred), and gets the lock when the reader goes.
#[test]
fn a_waiting_writer_keeps_new_readers_out() {
    let env = TestEnv::new();
    let ready = p(&env, "a.ready");
    let go_file = p(&env, "a.go");
    let argv = with_helper(
        &["-s", "-w", "20", "data.json"],
        "hold",
        &[&ready, &go_file],
    );
    let reader = spawn(&env, &strs(&argv));
    wait_until("the reader to hold data.json", || {
        env.path("a.ready").exists()
    });
    let version = exe();
    let another = run(
        &env,
        &["with", "-s", "-n", "data.json", "--", &version, "--version"],
    );
    assert_code(&another, 0, "a second reader beside the first");
    let busy = run(
        &env,
        &["with", "-n", "data.json", "--", &version, "--version"],
    );
    assert_code(&busy, 75, "a writer while a reader holds");
    let show = run(&env, &["show", "--lock-dir", &p(&env, ".locks")]);
    assert_code(&show, 0, "show");
    assert!(
        text(&show.stdout).contains(&format!("PID {}", reader.id())),
        "show does not name the reader (PID {}): {}",
        reader.id(),
        text(&show.stdout)
    );
    let mut writer = spawn(
        &env,
        &["with", "-w", "30", "data.json", "--", &version, "--version"],
    );
    // Until the writer waits, a new reader still gets in; once it waits, none does.
    let start = Instant::now();
    loop {
        let out = run(
            &env,
            &["with", "-s", "-n", "data.json", "--", &version, "--version"],
        );
        if code(&out) == 75 {
            break;
        }
        assert_code(&out, 0, "a reader before the writer waits");
        assert!(
            start.elapsed() < PATIENCE,
            "new readers still get in while a writer waits"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        writer.try_wait().expect("try_wait").is_none(),
        "the writer did not wait for the reader"
    );
    go(&env, "a");
    assert_code(&wait_output(reader, PATIENCE), 0, "the reader");
    assert_code(&wait_output(writer, PATIENCE), 0, "the waiting writer");
}

/// The holder is killed (SIGKILL on Unix, TerminateProcess on Windows): the next taker
/// gets the lock, and nothing of the killed holder's command tree still runs.
#[test]
fn killed_holder_next_taker_proceeds_and_its_command_tree_is_gone() {
    let env = TestEnv::new();
    let ready = p(&env, "tree.ready");
    let beat = p(&env, "beat");
    let argv = with_helper(&["data.json"], "tree", &[&ready, &beat]);
    let mut holder = spawn(&env, &strs(&argv));
    wait_until("the holder's command tree to run", || {
        env.path("tree.ready").exists()
    });
    let busy = run(
        &env,
        &["with", "-n", "data.json", "--", &exe(), "--version"],
    );
    assert_code(&busy, 75, "while held");
    holder.kill().expect("kill the holder");
    let _ = holder.wait();
    let next = run(
        &env,
        &["with", "-w", "15", "data.json", "--", &exe(), "--version"],
    );
    assert_code(&next, 0, "the next taker");
    // The grandchild beats every 10 ms while it lives: the file must stop growing. On
    // Windows the Job object ends the whole tree; on Unix the taker ends the dead
    // holder's process group before it runs its command.
    let len = || fs::metadata(&beat).map(|m| m.len()).unwrap_or(0);
    let settled = Instant::now();
    let mut last = len();
    let mut still_since = Instant::now();
    while still_since.elapsed() < Duration::from_millis(400) {
        assert!(
            settled.elapsed() < PATIENCE,
            "the killed holder's command tree still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
        let now = len();
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
}

/// A lock whose owner process has exited (an `acquire` made by a process that is gone)
/// is stale: `status` says so and the next taker proceeds.
#[test]
fn lock_of_a_dead_process_is_taken_over() {
    let env = TestEnv::new();
    let out_file = p(&env, "acquired");
    let argv = helper_argv("acquire", &[&exe(), &p(&env, "data.json"), &out_file]);
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(env.root())
        .output()
        .expect("run the helper");
    assert_code(&out, 0, "helper acquire");
    assert!(!env.read("acquired").trim().is_empty());
    let status = run(&env, &["status", "data.json"]);
    assert_code(&status, 3, "status of a lock whose owner is gone");
    let next = run(
        &env,
        &["with", "-n", "data.json", "--", &exe(), "--version"],
    );
    assert_code(&next, 0, "taker of a stale lock");
}

/// `acquire` holds the lock for the calling process across invocations; `release` from
/// a later invocation frees it.
#[test]
fn acquire_then_release_from_another_invocation() {
    let env = TestEnv::new();
    let got = run(&env, &["acquire", "data.json"]);
    assert_code(&got, 0, "acquire");
    let id = text(&got.stdout).trim().to_string();
    assert!(Path::new(&id).is_dir(), "lock id {id:?} is not a directory");
    let status = run(&env, &["status", "data.json"]);
    assert_code(&status, 1, "status while acquired");
    let busy = run(
        &env,
        &["with", "-n", "data.json", "--", &exe(), "--version"],
    );
    assert_code(&busy, 75, "with -n while acquired");
    let rel = run(&env, &["release", &id]);
    assert_code(&rel, 0, "release");
    assert!(!Path::new(&id).exists(), "release left {id}");
    let status = run(&env, &["status", "data.json"]);
    assert_code(&status, 0, "status after release");
}

/// `status`, `unlock` and `unlock --force` on a lock held by a live process: the same
/// exit codes and messages on every platform.
#[test]
fn status_and_unlock_of_a_live_lock() {
    let env = TestEnv::new();
    let got = run(&env, &["acquire", "data.json"]);
    assert_code(&got, 0, "acquire");
    // The owner is the calling process: this test.
    let me = format!("held by PID {}", std::process::id());
    let status = run(&env, &["status", "data.json"]);
    assert_code(&status, 1, "status while held");
    assert!(
        text(&status.stdout).contains(&me),
        "{}",
        text(&status.stdout)
    );
    // Its command line is the lock's COMMAND (read from the process on every platform).
    let exe_path = std::env::current_exe().unwrap();
    let exe_name = exe_path.file_stem().unwrap().to_string_lossy();
    assert!(
        text(&status.stdout).contains(exe_name.as_ref()),
        "COMMAND does not name {exe_name}: {}",
        text(&status.stdout)
    );
    let unlock = run(&env, &["unlock", "data.json"]);
    assert_code(&unlock, 75, "unlock of a live lock");
    let err = text(&unlock.stderr);
    assert!(
        err.starts_with("lockrun: ") && err.contains(&me) && err.contains("unlock --force"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let forced = run(&env, &["unlock", "--force", "data.json"]);
    assert_code(&forced, 0, "unlock --force");
    assert!(text(&forced.stderr).contains("warning: removing the live lock"));
    let status = run(&env, &["status", "data.json"]);
    assert_code(&status, 0, "status after unlock --force");
    assert!(
        text(&status.stdout).contains("free"),
        "{}",
        text(&status.stdout)
    );
}

/// A `with` lock names its holder while its command runs: the lines lockrun adds once
/// the command started (CHILD...) go after the holder's, never over them.
#[test]
fn status_of_a_with_lock_names_its_holder_while_the_command_runs() {
    let env = TestEnv::new();
    let mut holder = hold(&env, "data.json", "h");
    let status = run(&env, &["status", "data.json"]);
    let show = run(&env, &["show"]);
    go(&env, "h");
    let _ = holder.wait();
    let said = text(&status.stdout);
    assert_code(&status, 1, "status while held");
    assert!(
        said.contains(&format!("held by PID {}", holder.id())),
        "{said}"
    );
    assert!(
        text(&show.stdout).contains(&format!("PID {}", holder.id())),
        "{}",
        text(&show.stdout)
    );
}

/// `acquire` and `release` as separate commands of one `cmd.exe` batch script: the
/// lock belongs to that cmd (the calling shell, by PID and creation time), so it
/// stays held between the commands, `release` frees it, and a lock left by a script
/// whose cmd has exited is stale.
#[cfg(windows)]
#[test]
fn acquire_and_release_from_a_cmd_script() {
    let env = TestEnv::new();
    let script = format!(
        "@echo off\r\n\
         \"{l}\" acquire data.json > id.txt\r\n\
         \"{l}\" status data.json > held.txt\r\n\
         echo %ERRORLEVEL% > held.code\r\n\
         set /p ID=<id.txt\r\n\
         \"{l}\" release \"%ID%\"\r\n\
         echo %ERRORLEVEL% > release.code\r\n\
         \"{l}\" status data.json > after.txt\r\n\
         echo %ERRORLEVEL% > after.code\r\n\
         \"{l}\" acquire left.json > left.txt\r\n\
         for /f \"delims=\" %%i in ('{l} acquire f2.json') do set ID2=%%i\r\n\
         \"{l}\" status f2.json > held2.txt\r\n\
         echo %ERRORLEVEL% > held2.code\r\n\
         \"{l}\" release \"%ID2%\"\r\n\
         echo %ERRORLEVEL% > release2.code\r\n",
        l = exe()
    );
    // The `for /f` line runs lockrun unquoted (cmd's quoting there is its own).
    assert!(!exe().contains(' '), "a test executable path with a space");
    env.write("s.cmd", &script);
    let cmd = Command::new("cmd")
        .args(["/c", "s.cmd"])
        .current_dir(env.root())
        .env_remove("LOCKRUN_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cmd");
    let shell = cmd.id();
    let out = wait_output(cmd, PATIENCE);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let code_of = |f: &str| env.read(f).trim().to_string();
    assert_eq!(code_of("held.code"), "1", "status between the commands");
    assert!(
        env.read("held.txt")
            .contains(&format!("held by PID {shell}")),
        "the owner is not the script's cmd (PID {shell}): {}",
        env.read("held.txt")
    );
    assert_eq!(code_of("release.code"), "0", "release");
    assert_eq!(code_of("after.code"), "0", "status after release");
    // The script's cmd has exited: the lock it left is stale, and the next taker gets it.
    let status = run(&env, &["status", "left.json"]);
    assert_code(&status, 3, "status of a lock whose cmd has exited");
    // `for /f %%i in ('lockrun acquire ...')` runs lockrun under a `cmd /c` of its own
    // that ends with it: the lock still belongs to the script's cmd.
    assert_eq!(code_of("held2.code"), "1", "status after a for /f acquire");
    assert!(
        env.read("held2.txt")
            .contains(&format!("held by PID {shell}")),
        "a for /f acquire is not the script's cmd's (PID {shell}): {}",
        env.read("held2.txt")
    );
    assert_eq!(code_of("release2.code"), "0", "release of a for /f acquire");
}

/// A file that is not a program: exit 126 and one line that says so in words (Windows'
/// own text for it names a placeholder, "%1").
#[test]
fn a_file_that_is_not_a_program_is_126_in_one_line() {
    let env = TestEnv::new();
    env.write("notes.txt", "not a program\n");
    let target = p(&env, "notes.txt");
    let out = run(&env, &["with", "data.json", "--", &target]);
    assert_code(&out, 126, "with a text file as the command");
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("lockrun: cannot run "), "{err}");
    assert!(!err.contains("%1"), "{err}");
    if cfg!(windows) {
        assert!(err.contains("not a Windows program"), "{err}");
    }
    // The lock was given back.
    assert_code(&run(&env, &["status", "data.json"]), 0, "status after");
}

/// Bad command lines: one `lockrun: ` line naming what is wrong, exit 2 (usage), and
/// no lock taken or lock directory made.
#[test]
fn bad_command_lines_exit_2_with_one_line() {
    let env = TestEnv::new();
    let cases: &[(&[&str], &str)] = &[
        (&["with"], "required arguments were not given"),
        (&["with", "data.json"], "<COMMAND>"),
        (
            &["with", "-w", "abc", "data.json", "--", "x"],
            "'abc' is not a number of seconds",
        ),
        (&["with", "--bogus", "data.json", "--", "x"], "'--bogus'"),
        (&["status"], "<FILE>"),
        (&["update", "data.json"], "<FILTER>"),
        (&["release", "nothing"], "refusing lock id"),
        (&["with", "--name", "a//b", "--", "x"], "a//b"),
    ];
    for (args, says) in cases {
        let out = run(&env, args);
        assert_code(&out, 2, &format!("{args:?}"));
        let err = text(&out.stderr);
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.starts_with("lockrun: ") && err.contains(says),
            "{args:?}: {err}"
        );
    }
    assert!(
        !env.path(".locks").exists(),
        "a bad command line made a lock directory"
    );
}

/// 4 processes × 8 `update`s of one counter: none lost.
#[test]
fn update_under_contention_loses_nothing() {
    let env = TestEnv::new();
    env.write("counter.json", "{\"n\": 0}\n");
    const WORKERS: usize = 4;
    const ROUNDS: usize = 8;
    let argv: Vec<String> = ["update", "-w", "60", "counter.json", ".n += 1"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| repeat(&env, argv.clone(), ROUNDS))
        .collect();
    for w in workers {
        for (c, err) in w.join().expect("worker") {
            assert_eq!(c, 0, "an update failed: {err}");
        }
    }
    let doc: serde_json::Value = serde_json::from_str(&env.read("counter.json")).unwrap();
    assert_eq!(doc["n"], (WORKERS * ROUNDS) as u64, "lost updates");
    let leftovers = strays(&env, "counter.json");
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

/// Every spelling of one file names one lock: relative, absolute, with `..`, and on
/// Windows also forward slashes, another letter case and the `\\?\` form.
#[test]
fn path_forms_name_one_lock() {
    let env = TestEnv::new();
    env.write("sub/data.json", "{}");
    let holder = hold(&env, "sub/data.json", "h");
    let abs = p(&env, "sub/data.json");
    let mut forms = vec![
        abs.clone(),
        "sub/../sub/data.json".to_string(),
        p(&env, "sub/../sub/data.json"),
    ];
    if cfg!(windows) {
        let root = fs::canonicalize(env.root()).unwrap();
        // `\\?\C:\...` from canonicalize; the plain forms are derived from it.
        let verbatim = root.join("sub").join("data.json");
        let verbatim = verbatim.to_string_lossy().into_owned();
        let plain = verbatim.trim_start_matches(r"\\?\").to_string();
        forms.push(verbatim.clone());
        forms.push(plain.replace('\\', "/"));
        forms.push(plain.to_uppercase());
        forms.push(plain.to_lowercase());
    }
    for form in &forms {
        let out = run(&env, &["with", "-n", form, "--", &exe(), "--version"]);
        assert_code(&out, 75, &format!("{form} while sub/data.json is held"));
    }
    go(&env, "h");
    let out = wait_output(holder, PATIENCE);
    assert_code(&out, 0, "the holder");
    assert_eq!(
        fs::read_dir(env.path("sub/.locks")).unwrap().count(),
        0,
        "one lock directory, removed on release"
    );
}

/// Starts a stand-in virus scanner that keeps `rel` open for `ms` milliseconds with the
/// sharing `share` ("none" or "read"), and returns once it has the file open.
#[cfg(windows)]
fn scanner(env: &TestEnv, rel: &str, ms: u32, share: &str) -> Child {
    let ready = p(env, "open.ready");
    let argv = helper_argv("hold-open", &[&p(env, rel), &ready, &ms.to_string(), share]);
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .spawn()
        .expect("helper");
    wait_until("the scanner to open the file", || {
        env.path("open.ready").exists()
    });
    child
}

/// What is in the env's root besides `rel`, the lock directory and a scanner's ready
/// file: temp files left behind.
fn strays(env: &TestEnv, rel: &str) -> Vec<String> {
    fs::read_dir(env.root())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != rel && n != ".locks" && n != "open.ready")
        .collect()
}

/// A virus scanner or indexer holding the file open makes the read (no sharing at all)
/// or the replace (only reads shared) fail with a sharing violation for a moment:
/// `update` retries within its patience, and says so under `-v`.
#[cfg(windows)]
#[test]
fn update_retries_a_sharing_violation() {
    for share in ["none", "read"] {
        let env = TestEnv::new();
        env.write("doc.json", "{\"n\": 1}\n");
        let mut scanner = scanner(&env, "doc.json", 1500, share);
        let out = run(&env, &["update", "-v", "-w", "10", "doc.json", ".n += 1"]);
        let _ = scanner.wait();
        assert_code(
            &out,
            0,
            &format!("update while the file was open (sharing {share})"),
        );
        assert!(
            text(&out.stderr).contains("(file in use); retrying"),
            "sharing {share}: no sharing violation was met (the scanner let go too early?): {}",
            text(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_str(&env.read("doc.json")).unwrap();
        assert_eq!(doc["n"], 2, "sharing {share}");
        let left = strays(&env, "doc.json");
        assert!(left.is_empty(), "temp files left: {left:?}");
    }
}

/// A file held open by a scanner longer than the lock's wait (`-w`): the read (no
/// sharing) or the replace (reads shared) gives up when the wait is over, long before
/// the scanner lets go, with the file unchanged and no temp file left behind.
#[cfg(windows)]
#[test]
fn sharing_violations_are_retried_only_within_the_wait() {
    for share in ["none", "read"] {
        let env = TestEnv::new();
        env.write("doc.json", "{\"n\": 1}\n");
        let mut scanner = scanner(&env, "doc.json", 20000, share);
        let started = Instant::now();
        let out = run(&env, &["update", "-v", "-w", "1", "doc.json", ".n += 1"]);
        let took = started.elapsed();
        let scanner_ran = scanner.try_wait().expect("try_wait").is_none();
        let _ = scanner.kill();
        let _ = scanner.wait();
        assert!(
            scanner_ran,
            "sharing {share}: the scanner let go before update gave up"
        );
        assert_ne!(
            code(&out),
            0,
            "sharing {share}: update succeeded: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("(file in use); retrying"),
            "sharing {share}: no retry: {}",
            text(&out.stderr)
        );
        assert!(
            took < Duration::from_secs(10),
            "sharing {share}: update waited {took:?} with -w 1"
        );
        assert_eq!(env.read("doc.json"), "{\"n\": 1}\n", "sharing {share}");
        let left = strays(&env, "doc.json");
        assert!(
            left.is_empty(),
            "sharing {share}: temp files left: {left:?}"
        );
    }
}

/// A read-only target (`attrib +r`) is replaced as Unix replaces a mode-0444 file in a
/// writable directory: at once (not after the whole `-w`), and it stays read-only.
#[cfg(windows)]
#[test]
fn update_replaces_a_read_only_file_and_keeps_it_read_only() {
    let env = TestEnv::new();
    env.write("doc.json", "{\"n\": 1}\n");
    let set_readonly = |on: bool| {
        let mut perms = fs::metadata(env.path("doc.json")).unwrap().permissions();
        perms.set_readonly(on);
        fs::set_permissions(env.path("doc.json"), perms).unwrap();
    };
    set_readonly(true);
    let started = Instant::now();
    let out = run(&env, &["update", "-w", "30", "doc.json", ".n += 1"]);
    let took = started.elapsed();
    let still_readonly = fs::metadata(env.path("doc.json"))
        .map(|m| m.permissions().readonly())
        .unwrap_or(false);
    // Let TestEnv remove the directory whatever happened.
    set_readonly(false);
    assert_code(&out, 0, "update of a read-only file");
    assert!(
        took < Duration::from_secs(10),
        "update of a read-only file took {took:?} with -w 30"
    );
    let doc: serde_json::Value = serde_json::from_str(&env.read("doc.json")).unwrap();
    assert_eq!(doc["n"], 2);
    assert!(still_readonly, "the new file is not read-only");
    let left = strays(&env, "doc.json");
    assert!(left.is_empty(), "temp files left: {left:?}");
}

/// A temp file removed by another program (a cleaner) while the replace waits for a
/// scanner: `update` fails at once with one line (exit 74), the file unchanged, rather
/// than retrying a replace that can never work.
#[cfg(windows)]
#[test]
fn a_removed_temp_file_fails_the_update_at_once() {
    let env = TestEnv::new();
    env.write("doc.json", "{\"n\": 1}\n");
    let mut scanner = scanner(&env, "doc.json", 20000, "read");
    let started = Instant::now();
    let update = spawn(&env, &["update", "-w", "30", "doc.json", ".n += 1"]);
    let mut removed = Vec::new();
    wait_until("the temp file to be written", || {
        for name in strays(&env, "doc.json") {
            if fs::remove_file(env.path(&name)).is_ok() {
                removed.push(name);
            }
        }
        !removed.is_empty()
    });
    let out = wait_output(update, PATIENCE);
    let took = started.elapsed();
    let scanner_ran = scanner.try_wait().expect("try_wait").is_none();
    let _ = scanner.kill();
    let _ = scanner.wait();
    assert!(scanner_ran, "the scanner let go before update gave up");
    assert_code(&out, 74, "update whose temp file was removed");
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains("removed by another program") && err.contains("unchanged"),
        "unclear message: {err}"
    );
    assert!(
        took < Duration::from_secs(15),
        "update went on for {took:?} without its temp file (-w 30)"
    );
    assert_eq!(env.read("doc.json"), "{\"n\": 1}\n");
}

/// `--max-hold` stops a command that overstays (SIGTERM on Unix, the whole Job object on
/// Windows): exit 124, and the lock is free at once.
#[test]
fn max_hold_stops_the_command_and_frees_the_lock() {
    let env = TestEnv::new();
    let ready = p(&env, "m.ready");
    let never = p(&env, "m.never");
    let argv = with_helper(
        &["--max-hold", "0.5", "data.json"],
        "hold",
        &[&ready, &never],
    );
    let out = run(&env, &strs(&argv));
    assert_code(&out, 124, "a command past --max-hold");
    assert!(env.path("m.ready").exists(), "the command never ran");
    let status = run(&env, &["status", "data.json"]);
    assert_code(&status, 0, "status after --max-hold");
}

/// `--max-hold` first asks the command to stop (SIGTERM to its group on Unix, Ctrl-Break
/// to its console process group on Windows), so that it can clean up; only a command
/// that stays past `--kill-after` is killed. Exit 124 either way.
#[test]
fn max_hold_asks_the_command_to_stop_first() {
    let env = TestEnv::new();
    let ready = p(&env, "g.ready");
    let mark = p(&env, "g.stopped");
    let argv = with_helper(
        &["--max-hold", "0.5", "--kill-after", "30", "data.json"],
        "graceful",
        &[&ready, &mark],
    );
    let started = Instant::now();
    let out = run(&env, &strs(&argv));
    assert_code(&out, 124, "a command past --max-hold");
    assert!(env.path("g.ready").exists(), "the command never ran");
    if under_wine() {
        // Wine 8 delivers no console control events (GenerateConsoleCtrlEvent fails:
        // without a console when output is piped, ERROR_INVALID_HANDLE with one), so
        // lockrun ends the job at once; a real Windows console takes the step above.
        assert!(
            text(&out.stderr).contains("ending PID"),
            "{}",
            text(&out.stderr)
        );
        return;
    }
    assert!(
        env.path("g.stopped").exists(),
        "the command was not asked to stop before it was killed: {}",
        text(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "lockrun waited for --kill-after although the command had stopped"
    );
}

/// A remover that died mid-way leaves its grave (`.stale-*`, `.released-*`): a directory
/// holding `info` on Unix, the `info` file itself on Windows. `cleanup` removes it once
/// its lock is free and it is older than the grace period; `show` lists it before.
#[test]
fn cleanup_removes_a_leftover_grave() {
    let env = TestEnv::new();
    let hex = "a".repeat(64);
    let grave = env.path(&format!(".locks/.stale-{hex}-dead1"));
    fs::create_dir_all(env.path(".locks")).unwrap();
    let info = if cfg!(windows) {
        grave.clone()
    } else {
        fs::create_dir(&grave).unwrap();
        grave.join("info")
    };
    fs::write(&info, "PID: 1\n").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    for p in [&info, &grave] {
        let f = fs::File::options()
            .read(true)
            .open(p)
            .or_else(|_| fs::File::open(p));
        if let Ok(f) = f {
            let _ = f.set_modified(old);
        }
    }
    let lock_dir = p(&env, ".locks");
    let show = run(&env, &["show", "--lock-dir", &lock_dir]);
    assert_code(&show, 0, "show");
    assert!(
        text(&show.stdout).contains("garbage"),
        "{}",
        text(&show.stdout)
    );
    let out = run(&env, &["cleanup", "--lock-dir", &lock_dir]);
    assert_code(&out, 0, "cleanup");
    assert!(
        !grave.exists(),
        "cleanup left {}: {}",
        grave.display(),
        text(&out.stdout)
    );
}

/// `--name NAME` locks a name, not a path, in the state directory: the same lock from any
/// directory, busy while held, free once released.
#[test]
fn a_name_is_one_lock_from_any_directory() {
    let env = TestEnv::new();
    fs::create_dir_all(env.path("a/b")).unwrap();
    let state = p(&env, "state");
    let ready = p(&env, "h.ready");
    let go_file = p(&env, "h.go");
    let argv = with_helper(
        &["-w", "20", "--name", "nightly"],
        "hold",
        &[&ready, &go_file],
    );
    let holder = lockrun(&env, &strs(&argv))
        .env("XDG_STATE_HOME", &state)
        .spawn()
        .expect("spawn lockrun");
    wait_until("the holder of --name nightly", || {
        env.path("h.ready").exists()
    });
    let busy = wait_output(
        lockrun(
            &env,
            &["with", "-n", "--name", "nightly", "--", &exe(), "--version"],
        )
        .current_dir(env.path("a/b"))
        .env("XDG_STATE_HOME", &state)
        .spawn()
        .expect("spawn lockrun"),
        PATIENCE,
    );
    assert_code(
        &busy,
        75,
        "--name nightly from another directory while held",
    );
    assert!(
        text(&busy.stderr).starts_with("lockrun: nightly is locked by "),
        "{:?}",
        text(&busy.stderr)
    );
    go(&env, "h");
    assert_code(&wait_output(holder, PATIENCE), 0, "the holder");
    let free = wait_output(
        lockrun(
            &env,
            &["with", "-n", "--name", "nightly", "--", &exe(), "--version"],
        )
        .env("XDG_STATE_HOME", &state)
        .spawn()
        .expect("spawn lockrun"),
        PATIENCE,
    );
    assert_code(&free, 0, "--name nightly once released");
}

/// Without XDG_STATE_HOME and HOME (PowerShell and cmd set neither), a `--name` lock
/// lives in %LOCALAPPDATA%\lockrun on Windows; on Unix that is an error naming the
/// variables, LOCALAPPDATA or not.
#[test]
fn a_name_without_home_uses_local_app_data_on_windows() {
    let env = TestEnv::new();
    fs::create_dir(env.path("appdata")).unwrap();
    let out = wait_output(
        lockrun(
            &env,
            &["with", "--name", "nightly", "--", &exe(), "--version"],
        )
        .env_remove("HOME")
        .env_remove("XDG_STATE_HOME")
        .env("LOCALAPPDATA", env.path("appdata"))
        .spawn()
        .expect("spawn lockrun"),
        PATIENCE,
    );
    if cfg!(windows) {
        assert_code(&out, 0, "--name without HOME");
        assert!(
            env.path("appdata/lockrun").is_dir(),
            "no lock directory in LOCALAPPDATA"
        );
        // Git Bash sets HOME, PowerShell and cmd do not: one name is one lock for both.
        fs::create_dir(env.path("home")).unwrap();
        let holder = hold_name_without_home(&env, "nightly");
        let other = wait_output(
            lockrun(
                &env,
                &["with", "-n", "--name", "nightly", "--", &exe(), "--version"],
            )
            .env("HOME", env.path("home"))
            .env("LOCALAPPDATA", env.path("appdata"))
            .spawn()
            .expect("spawn lockrun"),
            PATIENCE,
        );
        go(&env, "n");
        let _ = wait_output(holder, PATIENCE);
        assert_code(&other, 75, "--name with HOME while held without HOME");
    } else {
        assert_code(&out, 2, "--name without HOME");
        assert!(
            text(&out.stderr).starts_with(
                "lockrun: --name nightly: no lock directory (no HOME or XDG_STATE_HOME)"
            ),
            "{}",
            text(&out.stderr)
        );
        assert!(!env.path("appdata/lockrun").exists());
    }
}

/// `with --name NAME -- helper hold` without HOME (as from PowerShell), LOCALAPPDATA
/// in `env`; returns once the helper runs under the lock.
fn hold_name_without_home(env: &TestEnv, name: &str) -> Child {
    let ready = p(env, "n.ready");
    let go = p(env, "n.go");
    let argv = with_helper(&["--name", name], "hold", &[&ready, &go]);
    let mut cmd = lockrun(env, &strs(&argv));
    cmd.env_remove("XDG_STATE_HOME")
        .env_remove("HOME")
        .env("LOCALAPPDATA", env.path("appdata"));
    let child = cmd.spawn().expect("spawn lockrun");
    wait_until("the name's holder", || env.path("n.ready").exists());
    child
}

/// The etcd backend is built on Unix only: on Windows `--backend` and LOCKRUN_BACKEND
/// are refused with one line and 69 (as `etcds://` is off Linux) before any lock is
/// taken or the command runs, instead of silently taking a local lock that other
/// machines never see. An empty LOCKRUN_BACKEND still means the local lock directory.
#[cfg(windows)]
#[test]
fn windows_refuses_the_etcd_backend() {
    let env = TestEnv::new();
    env.write("data.json", "{}");
    let url = "etcd://127.0.0.1:2379";
    let want =
        format!("lockrun: --backend {url}: the etcd backend is built into lockrun on Unix only");
    let ready = p(&env, "ran");
    let go_file = p(&env, "go");
    fs::write(&go_file, "").unwrap();
    let by_option = with_helper(
        &["--backend", url, "data.json"],
        "hold",
        &[&ready, &go_file],
    );
    let plain = with_helper(&["data.json"], "hold", &[&ready, &go_file]);
    let refused: Vec<(String, Output)> = vec![
        ("with --backend".into(), run(&env, &strs(&by_option))),
        (
            "with under LOCKRUN_BACKEND".into(),
            wait_output(
                lockrun(&env, &strs(&plain))
                    .env("LOCKRUN_BACKEND", url)
                    .spawn()
                    .expect("spawn lockrun"),
                PATIENCE,
            ),
        ),
        (
            "update --backend".into(),
            run(&env, &["update", "--backend", url, "data.json", "."]),
        ),
        (
            "status --backend".into(),
            run(&env, &["status", "--backend", url, "data.json"]),
        ),
        (
            "unlock --backend".into(),
            run(&env, &["unlock", "--backend", url, "data.json"]),
        ),
    ];
    for (what, out) in &refused {
        assert_code(out, 69, what);
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err:?}");
        assert!(err.starts_with(&want), "{what}: {err:?}");
        assert!(!env.path("ran").exists(), "{what}: the command ran");
        assert!(
            !env.path(".locks").exists(),
            "{what}: a local lock was taken"
        );
    }
    assert_eq!(env.read("data.json"), "{}", "the file is unchanged");
    let local = wait_output(
        lockrun(&env, &strs(&plain))
            .env("LOCKRUN_BACKEND", "")
            .spawn()
            .expect("spawn lockrun"),
        PATIENCE,
    );
    assert_code(&local, 0, "with under an empty LOCKRUN_BACKEND");
    assert!(
        env.path("ran").exists(),
        "the command ran under the local lock"
    );
}
