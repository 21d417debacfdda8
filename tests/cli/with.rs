//! `lockrun with`: exclusion, shared locks, crashes, dead and foreign locks, timeouts,
//! exit codes and signals. Every test runs real lockrun processes in a temp dir.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::testenv::{self, Check};
use crate::testenv::{
    PATIENCE, TestEnv, bash_lock, bin, code, dead_pid, go, here, hold, lock_path_of, sh,
    start_token, stderr, stdout, wait_output, wait_until,
};

fn pid_alive(pid: i32) -> bool {
    // A zombie is as good as dead for us.
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

#[test]
fn runs_the_command_and_leaves_nothing_behind() {
    let env = TestEnv::new();
    let out = env.run(["with", "demo.json", "--", "echo", "ok"]);
    out.assert_success();
    assert_eq!(stdout(&out), "ok\n");
    assert_eq!(env.lock_entries(".locks"), Vec::<String>::new());
    assert!(
        !env.path("demo.json").exists(),
        "the target is never created"
    );
}

#[test]
fn eight_processes_never_overlap_and_lose_no_increment() {
    let env = TestEnv::new();
    env.write("counter", "0");
    // Each cycle: mark occupancy (mkdir fails if another holder is inside), read, pause,
    // write. An overlap exits 99 and stops that worker; a lost update shows in the count.
    let cycle = r#"mkdir occ || exit 99; n=$(cat counter); sleep 0.001; echo $((n+1)) > counter; rmdir occ"#;
    let worker = format!(
        r#"i=0; while [ $i -lt 100 ]; do "$L" with -w 60 counter -- sh -c '{cycle}' || exit $?; i=$((i+1)); done"#
    );
    let workers: Vec<_> = (0..8).map(|_| sh(&env, &worker)).collect();
    for w in workers {
        let out = wait_output(w, Duration::from_secs(120));
        assert_eq!(
            code(&out),
            0,
            "a worker failed (99 = two holders at once): {}",
            stderr(&out)
        );
    }
    assert_eq!(env.read("counter").trim(), "800");
    assert_eq!(env.lock_entries(".locks"), Vec::<String>::new());
}

#[test]
fn shared_holders_overlap() {
    let env = TestEnv::new();
    // Each reader finishes only once it has seen the other inside: they must overlap.
    let reader = |me: &str, other: &str| {
        env.spawn([
            "with",
            "-s",
            "data",
            "--",
            "sh",
            "-c",
            &format!("touch {me}; while [ ! -e {other} ]; do sleep 0.01; done"),
        ])
    };
    let a = reader("a.in", "b.in");
    let b = reader("b.in", "a.in");
    for r in [a, b] {
        let out = wait_output(r, PATIENCE);
        out.assert_success();
    }
}

#[test]
fn writer_waits_for_readers_and_new_readers_queue_behind_it() {
    let env = TestEnv::new();
    let r1 = hold(&env, &["-s", "data"], "r1");
    let r2 = hold(&env, &["-s", "data"], "r2");
    let writer = env.spawn(["with", "data", "--", "sh", "-c", "echo W >> order"]);
    // The writer holds the directory lock while it waits for the readers to drain.
    let lock = lock_path_of(&env, "data");
    wait_until("the writer to queue", || lock.exists());
    // A reader arriving now must wait behind the writer (no writer starvation).
    let late = env.spawn(["with", "-s", "data", "--", "sh", "-c", "echo R >> order"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !env.path("order").exists(),
        "nobody may run while the first readers hold"
    );
    go(&env, "r1");
    wait_output(r1, PATIENCE).assert_success();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !env.path("order").exists(),
        "the writer must wait for the second reader too"
    );
    go(&env, "r2");
    for c in [r2, writer, late] {
        let out = wait_output(c, PATIENCE);
        out.assert_success();
    }
    assert_eq!(env.read("order"), "W\nR\n");
}

#[test]
fn kill_9_of_lockrun_kills_the_command_and_frees_the_lock_at_once() {
    let env = TestEnv::new();
    let mut holder = env.spawn([
        "with",
        "f",
        "--",
        "sh",
        "-c",
        "echo $$ > child.pid; exec sleep 60",
    ]);
    wait_until("the command to start", || {
        env.path("child.pid").exists() && !env.read("child.pid").trim().is_empty()
    });
    let child_pid: i32 = env.read("child.pid").trim().parse().unwrap();
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    wait_until("the command to die with lockrun", || !pid_alive(child_pid));
    let start = Instant::now();
    let out = env.run(["with", "-w", "5", "f", "--", "true"]);
    out.assert_success();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "the dead lock was broken at once, not waited out"
    );
}

/// Leaves a dead lockrun lock on `target`: a holder killed with SIGKILL.
fn make_dead_lock(env: &TestEnv, target: &str) {
    let mut holder = hold(env, &[target], "dead");
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(
        lock_path_of(env, target).exists(),
        "the killed holder's lock dir stays"
    );
}

#[test]
fn ten_acquirers_facing_one_dead_lock_all_finish_one_at_a_time() {
    let env = TestEnv::new();
    make_dead_lock(&env, "f");
    let cycle = "mkdir occ || exit 99; sleep 0.02; echo x >> done; rmdir occ";
    let racers: Vec<_> = (0..10)
        .map(|_| env.spawn(["with", "-w", "30", "f", "--", "sh", "-c", cycle]))
        .collect();
    for r in racers {
        let out = wait_output(r, PATIENCE);
        assert_eq!(code(&out), 0, "99 = two holders at once: {}", stderr(&out));
    }
    assert_eq!(env.read("done").lines().count(), 10);
    assert_eq!(env.lock_entries(".locks"), Vec::<String>::new());
}

#[test]
fn a_parked_breaker_leaves_a_recreated_lock_alone() {
    if !testenv::has_test_hooks() {
        // By design: the build that ships has no test hooks (the debug run covers this).
        testenv::skip(testenv::Skip::Platform(
            "the executable under test is the shipped build, without test hooks".into(),
        ));
        return;
    }
    let env = TestEnv::new();
    make_dead_lock(&env, "f");
    let gate = env.path("gate");
    // The breaker judges the lock dead, then parks before removing it.
    let breaker = env
        .command(["with", "-n", "f", "--", "sh", "-c", "echo breaker >> ran"])
        .env("LOCKRUN_TEST_BREAK_PAUSE", &gate)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the breaker to park", || env.path("gate.paused").exists());
    // Meanwhile the dead lock goes away by other means and a new holder takes the lock.
    fs::remove_dir_all(lock_path_of(&env, "f")).unwrap();
    let new_holder = hold(&env, &["f"], "new");
    fs::write(&gate, "").unwrap();
    let out = wait_output(breaker, PATIENCE);
    assert_eq!(
        code(&out),
        75,
        "the breaker must find the new lock busy: {}",
        stderr(&out)
    );
    assert!(
        !env.path("ran").exists(),
        "the breaker never ran beside the new holder"
    );
    assert!(
        lock_path_of(&env, "f").exists(),
        "the new holder's lock is intact"
    );
    go(&env, "new");
    wait_output(new_holder, PATIENCE).assert_success();
    assert_eq!(env.lock_entries(".locks"), Vec::<String>::new());
}

#[test]
fn foreign_lock_with_live_pid_blocks() {
    let env = TestEnv::new();
    let dir = bash_lock(&env, "f", std::process::id(), &here());
    let out = env.run(["with", "-n", "f", "--", "true"]);
    out.assert_failure_with(75);
    assert!(
        stderr(&out).contains(&format!("PID {}", std::process::id())),
        "{}",
        stderr(&out)
    );
    assert!(
        dir.join("info").exists(),
        "a live foreign lock is never touched"
    );
}

#[test]
fn foreign_lock_with_dead_pid_is_broken() {
    let env = TestEnv::new();
    let pid = dead_pid();
    bash_lock(&env, "f", pid, &here());
    let out = env.run(["with", "-n", "f", "--", "true"]);
    out.assert_success();
    assert_eq!(env.lock_entries(".locks"), Vec::<String>::new());
}

#[test]
fn foreign_lock_from_another_host_is_kept_unless_stale_after() {
    let env = TestEnv::new();
    let dir = bash_lock(&env, "f", 1, "some-other-host");
    let out = env.run(["with", "-n", "f", "--", "true"]);
    out.assert_failure_with(75);
    assert!(stderr(&out).contains("some-other-host"), "{}", stderr(&out));
    assert!(dir.exists());
    let out = env.run(["with", "-n", "--stale-after", "0", "f", "--", "true"]);
    out.assert_success();
    assert!(!dir.exists());
}

#[test]
fn infoless_lock_dir_is_kept_during_grace_and_removed_after() {
    let env = TestEnv::new();
    let dir = lock_path_of(&env, "f");
    fs::create_dir_all(&dir).unwrap();
    let out = env.run(["with", "-n", "f", "--", "true"]);
    assert_eq!(
        code(&out),
        75,
        "a fresh info-less dir is being created: {}",
        stderr(&out)
    );
    assert!(dir.exists());
    let old = SystemTime::now() - Duration::from_secs(10);
    fs::File::open(&dir).unwrap().set_modified(old).unwrap();
    let out = env.run(["with", "-n", "f", "--", "true"]);
    out.assert_success();
    assert!(!dir.exists());
}

#[test]
fn nonblock_makes_one_attempt_and_names_the_holder() {
    let env = TestEnv::new();
    let holder = hold(&env, &["--label", "mcp-server", "f"], "h");
    let out = env.run(["with", "-n", "f", "--", "touch", "ran"]);
    out.assert_failure_with(75);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("is locked by mcp-server (PID"), "{err}");
    assert!(!env.path("ran").exists());
    // -E chooses the busy code (hooks use -n -E 0).
    let out = env.run(["with", "-n", "-E", "0", "f", "--", "touch", "ran"]);
    out.assert_success();
    assert!(
        !env.path("ran").exists(),
        "the command does not run when busy"
    );
    assert!(
        env.path("h.ready").exists() && !env.path("h.go").exists(),
        "holder still holding"
    );
    go(&env, "h");
    wait_output(holder, PATIENCE).assert_success();
}

#[test]
fn timeout_gives_up_after_its_time_and_before_the_holder_ends() {
    let env = TestEnv::new();
    let holder = hold(&env, &["f"], "h");
    let start = Instant::now();
    let out = env.run(["with", "-w", "0.3", "f", "--", "touch", "ran"]);
    let waited = start.elapsed();
    out.assert_failure_with(75);
    assert!(
        waited >= Duration::from_millis(300),
        "gave up too early: {waited:?}"
    );
    assert!(
        !env.path("h.go").exists(),
        "returned while the holder still held"
    );
    assert!(
        stderr(&out).contains("gave up after 0.3s"),
        "{}",
        stderr(&out)
    );
    go(&env, "h");
    wait_output(holder, PATIENCE).assert_success();
}

#[test]
fn a_waiter_runs_once_the_holder_releases_and_not_before() {
    let env = TestEnv::new();
    let holder = hold(&env, &["f"], "h");
    let waiter = env.spawn(["with", "-w", "inf", "f", "--", "touch", "ran"]);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!env.path("ran").exists());
    go(&env, "h");
    wait_output(holder, PATIENCE).assert_success();
    let out = wait_output(waiter, PATIENCE);
    out.assert_success();
    assert!(env.path("ran").exists());
}

#[test]
fn a_long_wait_says_once_what_it_waits_for_unless_quiet() {
    let env = TestEnv::new();
    let holder = hold(&env, &["--label", "slow-job", "f"], "h");
    let waiter = env.spawn(["with", "f", "--", "true"]);
    let quiet = env.spawn(["with", "-q", "f", "--", "true"]);
    std::thread::sleep(Duration::from_millis(1300));
    go(&env, "h");
    wait_output(holder, PATIENCE).assert_success();
    let out = wait_output(waiter, PATIENCE);
    out.assert_success();
    let err = stderr(&out);
    assert_eq!(err.matches("waiting for").count(), 1, "{err}");
    assert!(err.contains("slow-job"), "{err}");
    let out = wait_output(quiet, PATIENCE);
    out.assert_success();
    assert_eq!(stderr(&out), "");
}

#[test]
fn exit_codes_pass_through() {
    let env = TestEnv::new();
    env.run(["with", "f", "--", "sh", "-c", "exit 3"])
        .assert_failure_with(3);
    // A command killed by a signal: lockrun releases and dies of it too (a shell sees
    // 128+N, as without lockrun).
    let out = env.run(["with", "f", "--", "sh", "-c", "kill -USR1 $$"]);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGUSR1)
    );
    let out = sh(
        &env,
        r#""$L" with f -- sh -c 'kill -USR1 $$'; echo "status=$?""#,
    );
    assert_eq!(stdout(&wait_output(out, PATIENCE)).trim(), "status=138");
    let out = env.run(["with", "f", "--", "no-such-command-xyz"]);
    out.assert_failure_with(127);
    assert!(
        stderr(&out).contains("no-such-command-xyz"),
        "{}",
        stderr(&out)
    );
    env.write("not-exec.sh", "#!/bin/sh\necho hi\n");
    let out = env.run(["with", "f", "--", "./not-exec.sh"]);
    out.assert_failure_with(126);
    assert_eq!(
        env.lock_entries(".locks"),
        Vec::<String>::new(),
        "released after a failed start"
    );
}

#[test]
fn bad_timeouts_are_usage_errors() {
    let env = TestEnv::new();
    for bad in ["-1", "abc", "nan", ""] {
        let out = env.run(["with", "-w", bad, "f", "--", "true"]);
        assert_eq!(code(&out), 2, "-w {bad:?}: {}", stderr(&out));
    }
    let out = env
        .command(["with", "f", "--", "true"])
        .env("LOCKRUN_TIMEOUT", "soon")
        .output()
        .unwrap();
    out.assert_failure_with(2);
    assert_eq!(code(&env.run(["with", "f"])), 2, "a command is required");
}

#[test]
fn sigterm_is_forwarded_and_the_lock_is_free_after() {
    let env = TestEnv::new();
    let script =
        "trap 'echo got-term > log; exit 7' TERM; touch ready; while :; do sleep 0.01; done";
    let holder = env.spawn(["with", "f", "--", "sh", "-c", script]);
    wait_until("the command to start", || env.path("ready").exists());
    Command::new("kill")
        .args(["-TERM", &holder.id().to_string()])
        .status()
        .unwrap();
    let out = wait_output(holder, PATIENCE);
    out.assert_failure_with(7);
    assert_eq!(env.read("log"), "got-term\n");
    assert_eq!(env.lock_entries(".locks"), Vec::<String>::new());
    env.run(["with", "-n", "f", "--", "true"]).assert_success();
}

#[test]
fn max_hold_stops_the_command_with_124() {
    let env = TestEnv::new();
    let start = Instant::now();
    let out = env.run(["with", "--max-hold", "0.2", "f", "--", "sleep", "30"]);
    out.assert_failure_with(124);
    assert!(start.elapsed() < Duration::from_secs(10));
    // A command that ignores SIGTERM gets SIGKILL after --kill-after.
    let out = env.run([
        "with",
        "--max-hold",
        "0.2",
        "--kill-after",
        "0.2",
        "f",
        "--",
        "sh",
        "-c",
        "trap '' TERM; sleep 30",
    ]);
    out.assert_failure_with(124);
    assert_eq!(env.lock_entries(".locks"), Vec::<String>::new());
}

#[test]
fn lock_fd_is_not_inherited_unless_asked() {
    let env = TestEnv::new();
    let list_fds = "ls -l /proc/$$/fd";
    let out = env.run(["with", "f", "--", "sh", "-c", list_fds]);
    out.assert_success();
    // The listing is real (stdout is the test's pipe), and shows no lock file.
    assert!(stdout(&out).contains("pipe:"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("info"), "{}", stdout(&out));
    let out = env.run(["with", "--inherit", "f", "--", "sh", "-c", list_fds]);
    assert!(stdout(&out).contains(".lock/info"), "{}", stdout(&out));
}

#[test]
fn exec_mode_holds_the_lock_until_the_command_exits() {
    let env = TestEnv::new();
    // Inside the exec'd command the lock is held: a nested -n attempt is busy.
    let out = env.run([
        "with",
        "-F",
        "f",
        "--",
        "sh",
        "-c",
        "\"$0\" with -n f -- true; echo $?",
        bin(),
    ]);
    out.assert_success();
    assert_eq!(stdout(&out).trim(), "75");
    // Afterwards the dead lock is taken over at once.
    let out = env.run(["with", "-n", "f", "--", "true"]);
    out.assert_success();
}

#[test]
fn every_spelling_of_a_path_names_one_lock() {
    let env = TestEnv::new();
    fs::create_dir(env.path("sub")).unwrap();
    env.write("a.json", "{}");
    symlink(env.path("a.json"), env.path("link.json")).unwrap();
    let holder = hold(&env, &["a.json"], "h");
    let absolute = env.path("a.json").to_string_lossy().into_owned();
    for spelling in ["./a.json", absolute.as_str(), "sub/../a.json", "link.json"] {
        let out = env.run(["with", "-n", spelling, "--", "true"]);
        assert_eq!(
            code(&out),
            75,
            "{spelling} must name the held lock: {}",
            stderr(&out)
        );
    }
    go(&env, "h");
    wait_output(holder, PATIENCE).assert_success();
}

#[test]
fn missing_targets_and_dangling_links_name_one_lock() {
    let env = TestEnv::new();
    symlink("later.json", env.path("dangling.json")).unwrap();
    let holder = hold(&env, &["later.json"], "h");
    for spelling in ["dangling.json", "./later.json", "x/../later.json"] {
        let out = env.run(["with", "-n", spelling, "--", "true"]);
        assert_eq!(code(&out), 75, "{spelling}: {}", stderr(&out));
    }
    go(&env, "h");
    wait_output(holder, PATIENCE).assert_success();
}

#[test]
fn lock_dir_that_is_a_file_is_one_clear_line() {
    let env = TestEnv::new();
    env.write("not-a-dir", "x");
    let out = env.run(["with", "--lock-dir", "not-a-dir", "f", "--", "touch", "ran"]);
    out.assert_failure_with(73);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("not-a-dir") && err.contains("--lock-dir"),
        "{err}"
    );
    assert!(!env.path("ran").exists());
}

#[test]
fn lock_dir_that_cannot_be_created_is_one_clear_line() {
    let env = TestEnv::new();
    // Nobody, not even root, can create directories under /proc.
    let out = env.run([
        "with",
        "--lock-dir",
        "/proc/lockrun-test/locks",
        "f",
        "--",
        "touch",
        "ran",
    ]);
    out.assert_failure_with(73);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/proc/lockrun-test/locks") && err.contains("LOCKRUN_DIR"),
        "{err}"
    );
    assert!(!env.path("ran").exists());
}

#[test]
fn lockrun_dir_env_and_flag_choose_the_lock_dir() {
    let env = TestEnv::new();
    let out = env
        .command([
            "with",
            "f",
            "--",
            "sh",
            "-c",
            "ls shared-locks | grep -c '\\.lock$'",
        ])
        .env("LOCKRUN_DIR", env.path("shared-locks"))
        .output()
        .unwrap();
    out.assert_success();
    assert_eq!(stdout(&out).trim(), "1");
    let out = env.run([
        "with",
        "--lock-dir",
        "other",
        "f",
        "--",
        "sh",
        "-c",
        "ls other | grep -c '\\.lock$'",
    ]);
    assert_eq!(stdout(&out).trim(), "1");
    assert!(!Path::new(&env.path(".locks")).exists());
}

#[test]
fn symlinks_planted_in_the_lock_dir_are_never_followed() {
    let env = TestEnv::new();
    // A real-looking lock somewhere else, and a symlink to it where f's lock goes.
    let decoy = env.path("decoy");
    fs::create_dir(&decoy).unwrap();
    fs::write(decoy.join("info"), "PID: 1\nLIVENESS: flock\n").unwrap();
    let lock = lock_path_of(&env, "f");
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    symlink(&decoy, &lock).unwrap();
    let out = env.run(["with", "-n", "f", "--", "touch", "ran"]);
    out.assert_failure_with(73);
    assert!(stderr(&out).contains("symlink"), "{}", stderr(&out));
    assert!(
        decoy.join("info").exists() && lock.is_symlink(),
        "nothing was followed or removed"
    );
    assert!(!env.path("ran").exists());

    // A lock dir whose info is a symlink is refused the same way.
    fs::remove_file(&lock).unwrap();
    fs::create_dir(&lock).unwrap();
    symlink(decoy.join("info"), lock.join("info")).unwrap();
    let out = env.run(["with", "-n", "f", "--", "touch", "ran"]);
    out.assert_failure_with(73);
    assert!(decoy.join("info").exists() && lock.join("info").is_symlink());
    assert!(!env.path("ran").exists());
}

#[test]
fn a_target_in_a_missing_directory_creates_nothing() {
    let env = TestEnv::new();
    let out = env.run(["with", "no/such/dir/f", "--", "touch", "ran"]);
    out.assert_failure_with(73);
    assert!(
        stderr(&out).contains("no/such/dir/.locks"),
        "{}",
        stderr(&out)
    );
    assert!(
        !env.path("no").exists(),
        "the target's directory is never created"
    );
    assert!(!env.path("ran").exists());
}

#[test]
fn a_taker_waits_for_the_command_of_a_killed_holder_to_be_gone() {
    // A SIGKILLed lockrun loses its flock an instant before the kernel kills its command.
    // Build that state by hand: a dead lockrun lock whose CHILD still runs.
    let env = TestEnv::new();
    let mut orphan = Command::new("sleep").arg("0.5").spawn().unwrap();
    let token = start_token(&env, orphan.id());
    let dead_pid = testenv::dead_pid();
    let lock = lock_path_of(&env, "f");
    fs::create_dir_all(&lock).unwrap();
    fs::write(
        lock.join("info"),
        format!(
            "PID: {dead_pid}\nACQUIRED: 2026-11-22T21:54:59Z\nHOSTNAME: {}\nLIVENESS: flock\nCHILD: {}\nCHILD_START: {token}\n",
            here(),
            orphan.id()
        ),
    )
    .unwrap();
    let out = env.run(["with", "-w", "5", "f", "--", "true"]);
    out.assert_success();
    assert!(
        orphan.try_wait().unwrap().is_some(),
        "the new holder ran while the dead holder's command was still running"
    );
}

#[test]
fn a_writer_waits_for_the_command_of_a_killed_shared_holder_to_be_gone() {
    // A SIGKILLed `with -s` drops its LOCK_SH on the reader gate an instant before the
    // kernel kills its command. Build that state by hand: a free gate that records a
    // reader's command which still runs.
    let env = TestEnv::new();
    let mut orphan = Command::new("sleep").arg("0.5").spawn().unwrap();
    let token = start_token(&env, orphan.id());
    let gate = lock_path_of(&env, "f").with_extension("rw");
    fs::create_dir_all(gate.parent().unwrap()).unwrap();
    fs::write(
        &gate,
        format!("CHILD: {}\nCHILD_START: {token}\n", orphan.id()),
    )
    .unwrap();
    let out = env.run(["with", "-w", "5", "f", "--", "true"]);
    out.assert_success();
    assert!(
        orphan.try_wait().unwrap().is_some(),
        "the writer ran while a killed reader's command was still running"
    );
    assert_eq!(
        fs::read_to_string(&gate).unwrap(),
        "",
        "the settled list is emptied"
    );
}

#[test]
fn a_shared_holder_records_its_command_in_the_reader_gate() {
    let env = TestEnv::new();
    let reader = hold(&env, &["-s", "f"], "r");
    let gate = lock_path_of(&env, "f").with_extension("rw");
    wait_until("the reader's command is recorded", || {
        fs::read_to_string(&gate)
            .is_ok_and(|t| t.contains("CHILD: ") && t.contains("CHILD_START: "))
    });
    go(&env, "r");
    assert!(wait_output(reader, PATIENCE).status.success());
}

#[test]
fn waiters_that_give_up_leave_nothing_in_the_lock_directory() {
    // Waiters keep a prepared lock directory (.tmp-*) across lost races; one that gives
    // up must remove it. Short timeouts under heavy contention make many give up just
    // after losing a race.
    let env = TestEnv::new();
    let script = "for i in $(seq 40); do \"$L\" with -w 0.01 f -- sleep 0.002; done; exit 0";
    let racers: Vec<_> = (0..6).map(|_| sh(&env, script)).collect();
    for r in racers {
        assert!(wait_output(r, Duration::from_secs(60)).status.success());
    }
    let entries = env.lock_entries(".locks");
    assert!(
        entries.iter().all(|e| !e.starts_with(".tmp-")),
        "prepared lock directories left behind: {entries:?}"
    );
}
