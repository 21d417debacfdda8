//! When things break: a holder killed with SIGKILL, etcd frozen past the lease TTL,
//! etcd not there at all.

use std::time::{Duration, Instant};

use super::harness::*;
use crate::testenv::{PATIENCE, TestEnv, code, stderr, wait_output, wait_until};

/// The default lease TTL (documented; `--lease-ttl` changes it).
const TTL: Duration = Duration::from_secs(2);

#[test]
fn a_killed_holder_hands_the_lock_on_within_the_ttl() {
    let Some((etcd, env)) = single() else { return };
    let mut holder = hold(&env, &etcd, &["--name", "job"], "h");
    let waiter = waiter(&env, &etcd, "20", "job", "taken");
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    holder.kill().unwrap(); // SIGKILL: no release, the lease must expire
    holder.wait().unwrap();
    wait_until("the waiter to take the lock", || env.path("taken").exists());
    let handoff = killed.elapsed();
    eprintln!("etcd handoff after kill -9 of the holder: {handoff:?}");
    // etcd expires leases in a sweep every 500 ms; 1 s more for a loaded machine.
    assert!(
        handoff < TTL + Duration::from_millis(1500),
        "handoff took {handoff:?}"
    );
    finish(waiter);
}

#[test]
fn etcd_frozen_past_the_ttl_kills_the_command_and_exits_69() {
    let Some((etcd, env)) = single() else { return };
    let holder = with_sh(
        &env,
        &etcd,
        "job",
        "echo $$ > cmd.pid; touch h.ready; sleep 30; touch survived",
    );
    wait_until("the holder's command to run", || {
        env.path("h.ready").exists()
    });
    let pid: i32 = env.read("cmd.pid").trim().parse().unwrap();
    etcd.pause(0);
    let out = wait_output(holder, PATIENCE);
    etcd.resume(0);
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("lockrun: lost the lock on job: lease expired after "),
        "{err}"
    );
    // The command is gone (SIGKILLed), not left running without its lock.
    let gone = rustix::process::test_kill_process(rustix::process::Pid::from_raw(pid).unwrap());
    assert!(gone.is_err(), "the command (PID {pid}) still runs");
    assert!(!env.path("survived").exists());
}

#[test]
fn etcd_down_at_start_is_one_line_within_the_wait() {
    // Nothing listens on this port (it was free a moment ago): no etcd is needed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = TestEnv::new();
    let started = Instant::now();
    let out = env
        .command([
            "with",
            "-w",
            "1",
            "--backend",
            &format!("etcd://127.0.0.1:{port}"),
            "--name",
            "job",
            "--",
            "touch",
            "ran",
        ])
        .env_remove("LOCKRUN_BACKEND")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("lockrun: etcd is unreachable"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(!env.path("ran").exists());
}

#[test]
fn unlock_force_revokes_the_holders_lease_and_its_command_is_killed() {
    let Some((etcd, env)) = single() else { return };
    let holder = hold(&env, &etcd, &["--name", "job"], "h");
    let out = run(&env, &etcd, &["unlock", "--name", "job"]);
    assert_eq!(
        code(&out),
        75,
        "a live lock needs --force: {}",
        stderr(&out)
    );
    run_expect(&env, &etcd, &["unlock", "--force", "--name", "job"], 0);
    let out = wait_output(holder, PATIENCE);
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("lockrun: lost the lock on job: "),
        "{}",
        stderr(&out)
    );
}

/// `update` proves its lease just before the rename: a writer that lost its lock while
/// it computed (here: frozen with SIGSTOP past the lease TTL) replaces nothing.
#[test]
fn update_that_lost_its_lease_replaces_nothing() {
    let Some((etcd, env)) = single() else { return };
    env.write("memo.json", "{\"n\":0}\n");
    // A filter that computes for a while (a fraction of a second when built for release).
    let writer = spawn(
        &env,
        &etcd,
        &[
            "update",
            "--name",
            "memo",
            "memo.json",
            "reduce range(0; 300000) as $i (.; .n += 1)",
        ],
    );
    let pid = rustix::process::Pid::from_raw(writer.id() as i32).unwrap();
    // Freeze it as soon as it holds the lock, keepalive thread and all.
    wait_until("the writer to hold the lock", || {
        code(&run(&env, &etcd, &["status", "--name", "memo"])) == 1
    });
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    std::thread::sleep(TTL + Duration::from_millis(1500));
    // Its lease has expired: somebody else can take the lock meanwhile.
    let out = try_once(&env, &etcd, "memo", false);
    assert_eq!(
        code(&out),
        0,
        "the expired lease still holds: {}",
        stderr(&out)
    );
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
    let out = wait_output(writer, PATIENCE);
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("lockrun: lost the lock on memo: lease expired after "),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.read("memo.json"), "{\"n\":0}\n");
    let leftovers: Vec<_> = std::fs::read_dir(env.root())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("memo.json") && n != "memo.json")
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}
