//! `with`, `update` and `status` on the etcd backend: the same options, messages and exit
//! codes as local locks.

use std::time::{Duration, Instant};

use super::fixture::Etcd;
use super::{hold, run, spawn};
use crate::testenv::{PATIENCE, TestEnv, code, go, here, stderr, stdout, wait_output};

#[test]
fn with_runs_the_command_and_passes_its_status_and_a_growing_fencing_token() {
    let Some(etcd) = Etcd::single() else { return };
    let env = TestEnv::new();
    let token = |env: &TestEnv| {
        let out = run(
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
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
            .trim()
            .parse::<u64>()
            .expect("a numeric fencing token")
    };
    let first = token(&env);
    let second = token(&env);
    assert!(second > first, "tokens {first} then {second}");
    let out = run(
        &env,
        &etcd,
        &["with", "--name", "job", "--", "sh", "-c", "exit 7"],
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
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
    let Some(etcd) = Etcd::single() else { return };
    let env = TestEnv::new();
    let holder = hold(&env, &etcd, &["--name", "job", "--label", "cron-x"], "h");
    let out = run(
        &env,
        &etcd,
        &["with", "-n", "--name", "job", "--", "touch", "ran"],
    );
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    let expected = format!(
        "lockrun: job is locked by cron-x (PID {} on {}, 'sh -c",
        holder.id(),
        here()
    );
    assert!(err.starts_with(&expected), "{err}\nexpected: {expected}");
    assert!(err.contains("gave up after one try (-n)"), "{err}");
    let out = run(
        &env,
        &etcd,
        &[
            "with", "-n", "-E", "0", "--name", "job", "--", "touch", "ran",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A fractional wait gives up too, after waiting.
    let started = Instant::now();
    let out = run(
        &env,
        &etcd,
        &["with", "-w", "0.3", "--name", "job", "--", "touch", "ran"],
    );
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        stderr(&out).contains("gave up after 0.3s"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("ran").exists(), "a busy lock ran the command");
    go(&env, "h");
    let out = wait_output(holder, PATIENCE);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_waiter_runs_only_after_the_holder_releases() {
    let Some(etcd) = Etcd::single() else { return };
    let env = TestEnv::new();
    let holder = hold(&env, &etcd, &["--name", "job"], "h");
    let waiter = spawn(
        &env,
        &etcd,
        &[
            "with", "-q", "-w", "inf", "--name", "job", "--", "touch", "waited",
        ],
    );
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        !env.path("waited").exists(),
        "the waiter ran while the lock was held"
    );
    go(&env, "h");
    let out = wait_output(holder, PATIENCE);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = wait_output(waiter, PATIENCE);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("waited").exists());
}

#[test]
fn shared_holders_run_together_and_a_waiting_writer_goes_first() {
    let Some(etcd) = Etcd::single() else { return };
    let env = TestEnv::new();
    let r1 = hold(&env, &etcd, &["-s", "--name", "db"], "r1");
    let r2 = hold(&env, &etcd, &["-s", "--name", "db"], "r2");
    // Both readers hold it; a writer cannot get in.
    let out = run(&env, &etcd, &["with", "-n", "--name", "db", "--", "true"]);
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    // A writer waits; from then on a new reader queues behind it.
    let writer = spawn(
        &env,
        &etcd,
        &[
            "with", "-q", "-w", "inf", "--name", "db", "--", "touch", "wrote",
        ],
    );
    std::thread::sleep(Duration::from_millis(400));
    let out = run(
        &env,
        &etcd,
        &["with", "-s", "-n", "--name", "db", "--", "true"],
    );
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
        let out = wait_output(r, PATIENCE);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let out = wait_output(writer, PATIENCE);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("wrote").exists());
}

#[test]
fn max_hold_stops_the_command_with_124() {
    let Some(etcd) = Etcd::single() else { return };
    let env = TestEnv::new();
    let out = run(
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
    );
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    // And the lock is free again.
    let out = run(&env, &etcd, &["with", "-n", "--name", "job", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn status_tells_free_and_held_with_the_holder() {
    let Some(etcd) = Etcd::single() else { return };
    let env = TestEnv::new();
    let out = run(&env, &etcd, &["status", "--name", "job"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("free"), "{}", stdout(&out));
    let holder = hold(&env, &etcd, &["--name", "job", "--label", "nightly"], "h");
    let out = run(&env, &etcd, &["status", "--name", "job"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("held") && text.contains("nightly"), "{text}");
    let out = run(&env, &etcd, &["status", "--json", "--name", "job"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(v["state"], "held");
    assert_eq!(v["label"], "nightly");
    assert_eq!(v["pid"], holder.id());
    assert_eq!(v["host"], here());
    assert_eq!(v["mode"], "exclusive");
    go(&env, "h");
    let out = wait_output(holder, PATIENCE);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn update_takes_the_named_lock_in_etcd() {
    let Some(etcd) = Etcd::single() else { return };
    let env = TestEnv::new();
    let out = run(
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
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let n = |env: &TestEnv| {
        serde_json::from_str::<serde_json::Value>(&env.read("memo.json")).unwrap()["n"].clone()
    };
    assert_eq!(n(&env), 1);
    // Held in etcd, the name keeps update out.
    let holder = hold(&env, &etcd, &["--name", "memo"], "h");
    let out = run(
        &env,
        &etcd,
        &["update", "-n", "--name", "memo", "memo.json", ".n += 1"],
    );
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert_eq!(n(&env), 1);
    go(&env, "h");
    let out = wait_output(holder, PATIENCE);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
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
    let Some(etcd) = Etcd::single() else { return };
    let env = TestEnv::new();
    let holder = spawn(
        &env,
        &etcd,
        &[
            "with",
            "--name",
            "job",
            "--",
            "sh",
            "-c",
            "trap 'touch got-term; exit 3' TERM; touch h.ready; while :; do sleep 0.01; done",
        ],
    );
    crate::testenv::wait_until("the command", || env.path("h.ready").exists());
    let pid = rustix::process::Pid::from_raw(holder.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = wait_output(holder, PATIENCE);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(env.path("got-term").exists());
    let out = run(&env, &etcd, &["with", "-n", "--name", "job", "--", "true"]);
    assert_eq!(code(&out), 0, "not released: {}", stderr(&out));
}

/// Readers (`read`, `get`) take the shared lock in etcd: they pass a shared holder and
/// wait for an exclusive one.
#[test]
fn read_takes_a_shared_lock_in_etcd() {
    let Some(etcd) = Etcd::single() else { return };
    let env = TestEnv::new();
    env.write("memo.json", "{\"n\":5}\n");
    let reader = hold(&env, &etcd, &["-s", "--name", "memo"], "r");
    let out = run(&env, &etcd, &["read", "-n", "--name", "memo", "memo.json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "{\"n\":5}\n");
    go(&env, "r");
    assert_eq!(code(&wait_output(reader, PATIENCE)), 0);
    let writer = hold(&env, &etcd, &["--name", "memo"], "w");
    let out = run(
        &env,
        &etcd,
        &["get", "-n", "--name", "memo", "memo.json", "/n"],
    );
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    go(&env, "w");
    assert_eq!(code(&wait_output(writer, PATIENCE)), 0);
}
