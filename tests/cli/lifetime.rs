//! A lock lasts exactly as long as the work it protects (issue 11): the whole command
//! tree of `with` (kill -9, SIGTERM, --max-hold, Ctrl-C on a real pseudo-terminal,
//! zombies, the signal lockrun dies of), and the real owner of `acquire` (the shell that
//! will run `release`, past forked subshells), under bash, dash and zsh.
//!
//! The tree tests use an overlap detector, not a timer: the protected work forks a
//! worker that keeps looking for the next holder's mark while it runs, and the next
//! holder's command looks whether the worker still runs when it starts. Either sighting
//! is an overlap.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::testenv::{PATIENCE, TestEnv, bin, code, stderr, stdout, wait_output, wait_until};

/// The worker a forking command leaves running: it records its PID, then for about four
/// seconds (bounded, so a test that fails leaves nothing for long) looks for the next
/// holder's mark.
const WORKER: &str = r#"echo $$ > worker.pid.tmp && mv worker.pid.tmp worker.pid
i=0
seen=
while [ $i -lt 400 ]; do
  if [ -z "$seen" ] && [ -e next.ran ]; then
    seen=1
    echo "worker $$ saw the next holder" >> overlaps
  fi
  sleep 0.01
  i=$((i+1))
done
"#;

/// The next holder's command: it marks that it runs, and looks whether the worker of the
/// previous holder still runs (a zombie does not).
const NEXT: &str = r#"touch next.ran
w=$(cat worker.pid)
if [ -r /proc/$w/stat ]; then
  state=$(sed 's/.*) //' /proc/$w/stat | cut -d' ' -f1)
  [ "$state" != Z ] && echo "next holder started while worker $w ran ($state)" >> overlaps
fi
sleep 0.2
"#;

/// `sh -c 'sh ./worker.sh & wait'`: the protected work forks, as a hook's python does.
/// The worker does not keep lockrun's output pipes open (the test reads them to EOF).
const FORKING: &str = "sh ./worker.sh >/dev/null 2>&1 & wait";

fn setup() -> TestEnv {
    let env = TestEnv::new();
    env.write("worker.sh", WORKER);
    env
}

fn wait_for_worker(env: &TestEnv) -> u32 {
    wait_until("the worker to start", || env.path("worker.pid").exists());
    env.read("worker.pid").trim().parse().expect("worker pid")
}

fn running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Kills a worker left over by a failed run, so it does not outlive the test.
struct Reap(u32);

impl Drop for Reap {
    fn drop(&mut self) {
        if self.0 > 0 && running(self.0) {
            let _ = Command::new("kill")
                .args(["-9", &self.0.to_string()])
                .status();
        }
    }
}

/// Runs the next holder (waiting up to 10 s for the lock) and checks that it never
/// overlapped the previous holder's worker.
fn next_holder_sees_no_overlap(env: &TestEnv, worker: u32) {
    let out = env.run(["with", "-v", "-w", "10", "f", "--", "sh", "-c", NEXT]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let overlaps = fs::read_to_string(env.path("overlaps")).unwrap_or_default();
    assert!(
        overlaps.is_empty(),
        "the next holder overlapped the previous command tree:\n{overlaps}\n-v of the next holder:\n{}",
        stderr(&out)
    );
    assert!(!running(worker), "the worker {worker} still runs");
}

#[test]
fn kill_9_of_with_running_a_forking_command_never_lets_the_next_holder_overlap() {
    let env = setup();
    let mut holder = env.spawn(["with", "f", "--", "sh", "-c", FORKING]);
    let worker = wait_for_worker(&env);
    let _reap = Reap(worker);
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    next_holder_sees_no_overlap(&env, worker);
}

#[test]
fn sigterm_of_with_reaches_the_whole_command_tree() {
    let env = setup();
    let holder = env.spawn(["with", "f", "--", "sh", "-c", FORKING]);
    let worker = wait_for_worker(&env);
    let _reap = Reap(worker);
    let status = Command::new("kill")
        .args(["-TERM", &holder.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait_output(holder, PATIENCE);
    // The command died of SIGTERM, so lockrun released and died of it too.
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{out:?}");
    assert!(!running(worker), "SIGTERM did not reach the worker");
    next_holder_sees_no_overlap(&env, worker);
}

#[test]
fn max_hold_stops_the_whole_command_tree() {
    let env = setup();
    let holder = env.spawn([
        "with",
        "--max-hold",
        "0.5",
        "--kill-after",
        "2",
        "f",
        "--",
        "sh",
        "-c",
        FORKING,
    ]);
    let worker = wait_for_worker(&env);
    let _reap = Reap(worker);
    let out = wait_output(holder, PATIENCE);
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert!(!running(worker), "--max-hold did not stop the worker");
    next_holder_sees_no_overlap(&env, worker);
}

#[test]
fn a_command_killed_by_a_signal_makes_lockrun_release_and_die_of_it() {
    let env = TestEnv::new();
    for (signal, name) in [(libc::SIGINT, "INT"), (libc::SIGTERM, "TERM")] {
        let out = env.run(["with", "f", "--", "sh", "-c", &format!("kill -{name} $$")]);
        assert_eq!(
            out.status.signal(),
            Some(signal),
            "{name}: {:?}",
            out.output
        );
        assert_eq!(
            code(&env.run(["with", "-n", "f", "--", "true"])),
            0,
            "{name}: the lock was released first"
        );
    }
}

// ------------------------------------------------------------------- zombies

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` in the test's directory with no stdin; waits at most `limit` for it.
fn output_in(env: &TestEnv, cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .current_dir(env.root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    wait_output(child, limit)
}

/// The words of `out`'s stdout, one space apart (shells end lines their own way).
fn words(out: &Output) -> String {
    stdout(out).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs a python3 script with the lockrun binary as its argument; `None` (the test is
/// skipped) where there is no python3.
fn python(env: &TestEnv, script: &str) -> Option<Output> {
    if !have("python3") {
        eprintln!("SKIPPED: no python3");
        return None;
    }
    env.write("driver.py", script);
    Some(output_in(
        env,
        Command::new("python3")
            .arg("driver.py")
            .arg(bin())
            .env_remove("LOCKRUN_DIR")
            .env_remove("LOCKRUN_TIMEOUT")
            .env_remove("LOCKRUN_DEBUG"),
        Duration::from_secs(40),
    ))
}

/// An `acquire` owner that exited but was never reaped (its parent, like some container
/// inits, never waits) is gone: the next taker breaks the lock instead of waiting.
#[test]
fn an_acquire_owner_that_is_a_zombie_counts_as_gone() {
    let env = TestEnv::new();
    let Some(out) = python(
        &env,
        r#"
import os, subprocess, sys, time
L = sys.argv[1]
# A parent that never reaps: the shell that acquired the lock exits and stays a zombie.
pid = os.fork()
if pid == 0:
    os.execvp("sh", ["sh", "-c", L + " acquire f.json > id.txt"])
while True:
    with open("/proc/%d/stat" % pid) as f:
        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
            break
    time.sleep(0.01)
r = subprocess.run([L, "with", "-w", "3", "f.json", "--", "true"], stderr=subprocess.PIPE)
print("next=%d zombie=%s" % (r.returncode, os.path.exists("/proc/%d" % pid)))
sys.stderr.write(r.stderr.decode())
"#,
    ) else {
        return;
    };
    assert_eq!(
        stdout(&out).trim(),
        "next=0 zombie=True",
        "{}",
        stderr(&out)
    );
}

/// The dead holder's command tree ends as zombies nobody reaps (a subreaper that never
/// waits stands for such an init): the taker counts them as gone and goes on.
#[test]
fn a_dead_holders_tree_left_as_zombies_counts_as_gone() {
    let env = setup();
    env.write("next.sh", NEXT);
    let Some(out) = python(
        &env,
        &format!(
            r#"
import ctypes, os, subprocess, sys, time
L = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
# PR_SET_CHILD_SUBREAPER: orphans of the holder's tree become our children, never reaped.
assert libc.prctl(36, 1, 0, 0, 0) == 0
holder = os.fork()
if holder == 0:
    os.execv(L, [L, "with", "f", "--", "sh", "-c", {FORKING:?}])
while not os.path.exists("worker.pid"):
    time.sleep(0.01)
worker = int(open("worker.pid").read())
os.kill(holder, 9)
r = subprocess.run([L, "with", "-v", "-w", "5", "f", "--", "sh", "next.sh"], stderr=subprocess.PIPE)
def state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
print("next=%d worker=%s" % (r.returncode, state(worker)))
sys.stderr.write(r.stderr.decode())
if state(worker) not in ("Z", "gone"):
    os.kill(worker, 9)
"#
        ),
    ) else {
        return;
    };
    assert_eq!(stdout(&out).trim(), "next=0 worker=Z", "{}", stderr(&out));
    let overlaps = fs::read_to_string(env.path("overlaps")).unwrap_or_default();
    assert!(overlaps.is_empty(), "{overlaps}\n{}", stderr(&out));
}

// ------------------------------------------------------- a real pseudo-terminal

/// A small expect: runs an interactive bash on a new pseudo-terminal (python's pty
/// module) and follows `steps`; prints the whole transcript, and fails (exit 3) when an
/// expected text does not come within its time.
const PTY_DRIVER: &str = r#"
import os, pty, select, signal, sys, time
L = sys.argv[1]
out = b""
def read_until(text, limit):
    global out
    end = time.time() + limit
    while text.encode() not in out:
        left = end - time.time()
        if left <= 0:
            sys.stdout.write(out.decode(errors="replace"))
            print("\nTIMEOUT waiting for %r" % text)
            sys.exit(3)
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                sys.stdout.write(out.decode(errors="replace"))
                print("\nEOF waiting for %r" % text)
                sys.exit(3)
            out += chunk
def send(text):
    os.write(fd, text.encode())
env = dict(os.environ, L=L, PS1="$ ", TERM="dumb", HISTFILE="/dev/null")
ARGV = ["bash", "--norc", "--noprofile", "-i"]
def steps():
__STEPS__
pid, fd = pty.fork()
if pid == 0:
    os.execvpe(ARGV[0], ARGV, env)
try:
    steps()
finally:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
"#;

/// Follows `steps` (see PTY_DRIVER) in an interactive bash on a new pseudo-terminal.
fn pty_session(env: &TestEnv, steps: &str) -> Option<Output> {
    python(env, &PTY_DRIVER.replace("__STEPS__", steps))
}

/// In an interactive shell, a command under lockrun reads the terminal as it would
/// without lockrun.
#[test]
fn a_command_under_with_reads_the_terminal() {
    let env = TestEnv::new();
    let Some(out) = pty_session(
        &env,
        r#"    read_until("$ ", 10)
    send('"$L" with f -- sh -c \'read x; echo "got-$x"\'; echo "rc-$?"\n')
    time.sleep(0.3)
    send("hello\n")
    read_until("got-hello", 10)
    read_until("rc-0", 10)
    send("exit\n")
"#,
    ) else {
        return;
    };
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

/// Ctrl-C on a real terminal ends the whole command (also a worker it started in the
/// background, which a non-interactive sh leaves deaf to SIGINT), releases the lock,
/// and stops the shell's `for` loop: lockrun dies of SIGINT as its command did.
#[test]
fn ctrl_c_on_a_terminal_ends_the_whole_command_releases_and_stops_the_loop() {
    let env = setup();
    let Some(out) = pty_session(
        &env,
        r#"    read_until("$ ", 10)
    send('for i in 1 2 3; do "$L" with f -- sh -c "echo start-$i; sh ./worker.sh >/dev/null 2>&1 & wait"; done\n')
    read_until("start-1", 10)
    while not os.path.exists("worker.pid"):
        time.sleep(0.01)
    send("\x03")
    send('echo "after-$((1+1))"\n')
    read_until("after-2", 15)
    w = int(open("worker.pid").read())
    try:
        with open("/proc/%d/stat" % w) as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        st = "gone"
    print("\nWORKER-STATE %s" % st)
    if st not in ("Z", "gone"):
        os.kill(w, 9)
    send('"$L" with -n f -- echo "free-$((40+2))"\n')
    read_until("free-42", 10)
    send("exit\n")
"#,
    ) else {
        return;
    };
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        !text.contains("start-2"),
        "the loop went on after Ctrl-C:\n{text}"
    );
    assert!(
        text.contains("WORKER-STATE gone") || text.contains("WORKER-STATE Z"),
        "Ctrl-C left the command's worker running:\n{text}"
    );
}

/// A script (no job control) run from a terminal: Ctrl-C still stops the script.
#[test]
fn ctrl_c_stops_a_script_running_lockrun_in_a_loop() {
    let env = TestEnv::new();
    env.write(
        "loop.sh",
        "for i in 1 2 3; do \"$L\" with f -- sh -c \"echo start-$i; sleep 5\"; done\necho loop-done\n",
    );
    let Some(out) = pty_session(
        &env,
        r#"    read_until("$ ", 10)
    send("sh ./loop.sh\n")
    read_until("start-1", 10)
    time.sleep(0.2)
    send("\x03")
    send('echo "script-$((2+3))"\n')
    read_until("script-5", 15)
    send('"$L" with -n f -- echo "free-$((40+2))"\n')
    read_until("free-42", 10)
    send("exit\n")
"#,
    ) else {
        return;
    };
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        !text.contains("start-2") && !text.contains("loop-done"),
        "the script went on after Ctrl-C:\n{text}"
    );
}

// ------------------------------------------------------------------- acquire

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");

fn shells() -> Vec<&'static str> {
    let mut out = Vec::new();
    for shell in ["bash", "dash", "zsh"] {
        if have(shell) {
            out.push(shell);
        } else if std::env::var_os("CI").is_some() {
            panic!("{shell} is needed for the acquire tests (CI installs it)");
        } else {
            eprintln!("SKIPPED for {shell}: not installed");
        }
    }
    out
}

fn run_shell(env: &TestEnv, shell: &str, script: &str) -> Output {
    fs::create_dir_all(env.path("aiconfig")).expect("mkdir aiconfig");
    output_in(
        env,
        Command::new(shell)
            .arg("-c")
            .arg(script)
            .env("L", bin())
            .env("S", SCRIPTS)
            .env("LOCKRUN", bin())
            .env("AICONFIG_PATH", env.path("aiconfig"))
            // file-lock.sh's lock directory, for lockrun too.
            .env("LOCKRUN_DIR", env.path("aiconfig/.locks"))
            .env_remove("LOCKRUN_TIMEOUT")
            .env_remove("LOCKRUN_DEBUG")
            .env_remove("LOCK_TIMEOUT"),
        PATIENCE,
    )
}

/// Every way a script takes the id of `acquire`; `$TAKE` is the command whose output is
/// the id, `busy` checks the lock is held (75 from a non-blocking `with`).
const FORMS: [(&str, &str); 9] = [
    ("plain", r#"id=$("$L" acquire f.json)"#),
    (
        "stderr to /dev/null",
        r#"id=$("$L" acquire f.json 2>/dev/null)"#,
    ),
    ("stderr to stdout", r#"id=$("$L" acquire f.json 2>&1)"#),
    (
        "if id=$(...)",
        r#"if id=$("$L" acquire f.json 2>/dev/null); then :; else exit 10; fi"#,
    ),
    (
        "in a function",
        r#"take() { "$L" acquire f.json 2>/dev/null; }; id=$(take)"#,
    ),
    (
        "a function setting id",
        r#"take() { id=$("$L" acquire f.json 2>/dev/null); }; take"#,
    ),
    ("in a pipeline", r#"id=$("$L" acquire f.json | cat)"#),
    (
        "file-lock.sh",
        r#"id=$("$S"/file-lock.sh acquire f.json 2>/dev/null)"#,
    ),
    (
        "file-lock.sh plain",
        r#"id=$("$S"/file-lock.sh acquire f.json)"#,
    ),
];

fn release(form: &str) -> &'static str {
    if form.starts_with("file-lock.sh") {
        r#""$S"/file-lock.sh release"#
    } else {
        r#""$L" release"#
    }
}

#[test]
fn acquire_in_every_form_belongs_to_the_shell_that_releases() {
    let env = TestEnv::new();
    for shell in shells() {
        for (form, take) in FORMS {
            for (how, rel) in [
                (
                    "same shell",
                    format!(r#"{} "$id"; echo "release=$?""#, release(form)),
                ),
                (
                    "a subshell",
                    format!(r#"( {} "$id" ); echo "release=$?""#, release(form)),
                ),
                (
                    "a command substitution",
                    format!(r#"r=$({} "$id" 2>&1); echo "release=$? $r""#, release(form)),
                ),
            ] {
                let script = format!(
                    "{take} || exit 10\n{busy}\n{rel}\n{after}\n",
                    busy = r#""$L" with -n f.json -- true 2>/dev/null; echo "busy=$?""#,
                    after = r#""$L" with -n f.json -- true; echo "after=$?""#,
                );
                let out = run_shell(&env, shell, &script);
                assert_eq!(
                    words(&out),
                    "busy=75 release=0 after=0",
                    "{shell}, {form}, release from {how}: {}\n{script}",
                    stderr(&out)
                );
            }
        }
    }
}

#[test]
fn acquire_inside_a_subshell_is_released_there() {
    let env = TestEnv::new();
    for shell in shells() {
        let script = r#"(
  id=$("$L" acquire f.json 2>/dev/null) || exit 10
  "$L" with -n f.json -- true 2>/dev/null; echo "busy=$?"
  "$L" release "$id"; echo "release=$?"
)
"$L" with -n f.json -- true; echo "after=$?"
"#;
        let out = run_shell(&env, shell, script);
        assert_eq!(
            words(&out),
            "busy=75 release=0 after=0",
            "{shell}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn an_acquired_lock_is_stale_as_soon_as_its_shell_exits() {
    let env = TestEnv::new();
    for shell in shells() {
        for (form, take) in FORMS {
            // The shell acquires and exits without releasing; the lock must be free for
            // the next taker at once (and must not have been given to this test).
            let out = run_shell(&env, shell, &format!("{take} || exit 10\necho \"$id\""));
            assert_eq!(code(&out), 0, "{shell}, {form}: {}", stderr(&out));
            let lock_dir = env.path("aiconfig/.locks");
            let out = env.run([
                "with".as_ref(),
                "-n".as_ref(),
                "--lock-dir".as_ref(),
                lock_dir.as_os_str(),
                "f.json".as_ref(),
                "--".as_ref(),
                "true".as_ref(),
            ]);
            assert_eq!(code(&out), 0, "{shell}, {form}: {}", stderr(&out));
        }
    }
}

/// A shell started (exec'd, not forked) by another with the very same command line is a
/// new shell, not a subshell: the lock is its own and is stale when it exits.
#[test]
fn a_nested_shell_with_the_same_command_line_owns_its_own_lock() {
    let env = TestEnv::new();
    env.write(
        "nested.sh",
        r#"if [ -z "${INNER:-}" ]; then
  INNER=1 "$SH" ./nested.sh
  "$L" with -n f.json -- true; echo "after-inner=$?"
else
  id=$("$L" acquire f.json 2>/dev/null) || exit 10
  "$L" with -n f.json -- true 2>/dev/null; echo "inner-busy=$?"
fi
"#,
    );
    for shell in shells() {
        let out = output_in(
            &env,
            Command::new(shell)
                .arg("./nested.sh")
                .env("L", bin())
                .env("SH", shell)
                .env_remove("LOCKRUN_DIR")
                .env_remove("INNER"),
            PATIENCE,
        );
        assert_eq!(
            words(&out),
            "inner-busy=75 after-inner=0",
            "{shell}: {}",
            stderr(&out)
        );
    }
}

/// Ctrl-Z stops the command and lockrun with it (the shell shows the job stopped, the
/// lock stays held); `fg` gives the terminal back to the command, which reads it.
#[test]
fn ctrl_z_stops_the_job_and_fg_resumes_the_command_on_the_terminal() {
    let env = TestEnv::new();
    let Some(out) = pty_session(
        &env,
        r#"    read_until("$ ", 10)
    send('"$L" with f -- sh -c \'read x; echo "got-$x"\'\n')
    time.sleep(0.3)
    send("\x1a")
    read_until("Stopped", 10)
    send('"$L" with -n f -- true 2>/dev/null; echo "busy-$?"\n')
    read_until("busy-75", 10)
    send("fg\n")
    time.sleep(0.3)
    send("hello\n")
    read_until("got-hello", 10)
    send('"$L" with -n f -- echo "free-$((40+2))"\n')
    read_until("free-42", 10)
    send("exit\n")
"#,
    ) else {
        return;
    };
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}
