//! `with`, `update` and `status` on the etcd backend: the same options, messages and exit
//! codes as local locks.

use std::time::{Duration, Instant};

use super::harness::*;
use crate::testenv::{PATIENCE, TestEnv, code, go, here, stderr, stdout, wait_output};

#[test]
fn with_runs_the_command_and_passes_its_status_and_a_growing_fencing_token() {
    let Some((etcd, env)) = single() else { return };
    let token = |env: &TestEnv| {
        let out = run_expect(
            env,
            &etcd,
            &[
                "with",
                "--name",
                "job",
                "--",
                "sh",
                "-c",
                "echo $LOCKRUN_FENCING_TOKEN",
            ],
            0,
        );
        stdout(&out)
            .trim()
            .parse::<u64>()
            .expect("a numeric fencing token")
    };
    let first = token(&env);
    let second = token(&env);
    assert!(second > first, "tokens {first} then {second}");
    run_expect(
        &env,
        &etcd,
        &["with", "--name", "job", "--", "sh", "-c", "exit 7"],
        7,
    );
    // --backend on the command line works as LOCKRUN_BACKEND does.
    let out = env
        .command([
            "with",
            "--backend",
            &etcd.url(),
            "--name",
            "job",
            "--",
            "true",
        ])
        .env_remove("LOCKRUN_BACKEND")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn busy_names_the_holder_and_exits_75_or_the_e_code() {
    let Some((etcd, env)) = single() else { return };
    let holder = hold(&env, &etcd, &["--name", "job", "--label", "cron-x"], "h");
    let out = run_expect(
        &env,
        &etcd,
        &["with", "-n", "--name", "job", "--", "touch", "ran"],
        75,
    );
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    let expected = format!(
        "lockrun: job is locked by cron-x (PID {} on {}, 'sh -c",
        holder.id(),
        here()
    );
    assert!(err.starts_with(&expected), "{err}\nexpected: {expected}");
    assert!(err.contains("gave up after one try (-n)"), "{err}");
    run_expect(
        &env,
        &etcd,
        &[
            "with", "-n", "-E", "0", "--name", "job", "--", "touch", "ran",
        ],
        0,
    );
    // A fractional wait gives up too, after waiting.
    let started = Instant::now();
    let out = run_expect(
        &env,
        &etcd,
        &["with", "-w", "0.3", "--name", "job", "--", "touch", "ran"],
        75,
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        stderr(&out).contains("gave up after 0.3s"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("ran").exists(), "a busy lock ran the command");
    release(&env, holder, "h");
}

#[test]
fn a_waiter_runs_only_after_the_holder_releases() {
    let Some((etcd, env)) = single() else { return };
    let holder = hold(&env, &etcd, &["--name", "job"], "h");
    let waiter = waiter(&env, &etcd, "inf", "job", "waited");
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        !env.path("waited").exists(),
        "the waiter ran while the lock was held"
    );
    release(&env, holder, "h");
    finish(waiter);
    assert!(env.path("waited").exists());
}

#[test]
fn shared_holders_run_together_and_a_waiting_writer_goes_first() {
    let Some((etcd, env)) = single() else { return };
    let r1 = hold(&env, &etcd, &["-s", "--name", "db"], "r1");
    let r2 = hold(&env, &etcd, &["-s", "--name", "db"], "r2");
    // Both readers hold it; a writer cannot get in.
    expect(try_once(&env, &etcd, "db", false), 75);
    // A writer waits; from then on a new reader queues behind it.
    let writer = waiter(&env, &etcd, "inf", "db", "wrote");
    std::thread::sleep(Duration::from_millis(400));
    let out = try_once(&env, &etcd, "db", true);
    assert_eq!(
        code(&out),
        75,
        "a reader overtook the waiting writer: {}",
        stderr(&out)
    );
    assert!(!env.path("wrote").exists());
    go(&env, "r1");
    go(&env, "r2");
    for r in [r1, r2] {
        finish(r);
    }
    finish(writer);
    assert!(env.path("wrote").exists());
}

#[test]
fn max_hold_stops_the_command_with_124() {
    let Some((etcd, env)) = single() else { return };
    run_expect(
        &env,
        &etcd,
        &[
            "with",
            "--max-hold",
            "0.3",
            "--kill-after",
            "0.5",
            "--name",
            "job",
            "--",
            "sleep",
            "30",
        ],
        124,
    );
    // And the lock is free again.
    expect(try_once(&env, &etcd, "job", false), 0);
}

#[test]
fn status_tells_free_and_held_with_the_holder() {
    let Some((etcd, env)) = single() else { return };
    let out = run_expect(&env, &etcd, &["status", "--name", "job"], 0);
    assert!(stdout(&out).contains("free"), "{}", stdout(&out));
    let holder = hold(&env, &etcd, &["--name", "job", "--label", "nightly"], "h");
    let out = run_expect(&env, &etcd, &["status", "--name", "job"], 1);
    let text = stdout(&out);
    assert!(text.contains("held") && text.contains("nightly"), "{text}");
    let out = run_expect(&env, &etcd, &["status", "--json", "--name", "job"], 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(v["state"], "held");
    assert_eq!(v["label"], "nightly");
    assert_eq!(v["pid"], holder.id());
    assert_eq!(v["host"], here());
    assert_eq!(v["mode"], "exclusive");
    release(&env, holder, "h");
}

#[test]
fn update_takes_the_named_lock_in_etcd() {
    let Some((etcd, env)) = single() else { return };
    run_expect(
        &env,
        &etcd,
        &[
            "update",
            "--name",
            "memo",
            "--create",
            "{\"n\":0}",
            "memo.json",
            ".n += 1",
        ],
        0,
    );
    let n = |env: &TestEnv| {
        serde_json::from_str::<serde_json::Value>(&env.read("memo.json")).unwrap()["n"].clone()
    };
    assert_eq!(n(&env), 1);
    // Held in etcd, the name keeps update out.
    let holder = hold(&env, &etcd, &["--name", "memo"], "h");
    run_expect(
        &env,
        &etcd,
        &["update", "-n", "--name", "memo", "memo.json", ".n += 1"],
        75,
    );
    assert_eq!(n(&env), 1);
    release(&env, holder, "h");
}

#[test]
fn bad_backends_and_names_are_one_line_usage_errors() {
    let env = TestEnv::new();
    for (backend, name) in [
        ("etcd://", "job"),
        ("http://127.0.0.1:2379", "job"),
        ("etcd://127.0.0.1:notaport", "job"),
        ("etcd://127.0.0.1:2379", "a//b"),
        ("etcd://127.0.0.1:2379", "a/"),
    ] {
        let out = env
            .command([
                "with",
                "--backend",
                backend,
                "--name",
                name,
                "--",
                "touch",
                "ran",
            ])
            .env_remove("LOCKRUN_BACKEND")
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{backend} {name}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("lockrun: "), "{err}");
        assert!(!env.path("ran").exists());
    }
}

/// SIGTERM to lockrun reaches the command (etcdctl lock does not pass signals on), and
/// the lock is released.
#[test]
fn sigterm_is_forwarded_to_the_command_and_the_lock_released() {
    let Some((etcd, env)) = single() else { return };
    let holder = with_sh(
        &env,
        &etcd,
        "job",
        "trap 'touch got-term; exit 3' TERM; touch h.ready; while :; do sleep 0.01; done",
    );
    crate::testenv::wait_until("the command", || env.path("h.ready").exists());
    let pid = rustix::process::Pid::from_raw(holder.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = wait_output(holder, PATIENCE);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(env.path("got-term").exists());
    let out = try_once(&env, &etcd, "job", false);
    assert_eq!(code(&out), 0, "not released: {}", stderr(&out));
}

/// Readers (`read`, `get`) take the shared lock in etcd: they pass a shared holder and
/// wait for an exclusive one.
#[test]
fn read_takes_a_shared_lock_in_etcd() {
    let Some((etcd, env)) = single() else { return };
    env.write("memo.json", "{\"n\":5}\n");
    let reader = hold(&env, &etcd, &["-s", "--name", "memo"], "r");
    let out = run_expect(
        &env,
        &etcd,
        &["read", "-n", "--name", "memo", "memo.json"],
        0,
    );
    assert_eq!(stdout(&out), "{\"n\":5}\n");
    go(&env, "r");
    assert_eq!(code(&wait_output(reader, PATIENCE)), 0);
    let writer = hold(&env, &etcd, &["--name", "memo"], "w");
    run_expect(
        &env,
        &etcd,
        &["get", "-n", "--name", "memo", "memo.json", "/n"],
        75,
    );
    go(&env, "w");
    assert_eq!(code(&wait_output(writer, PATIENCE)), 0);
}
