//! etcd doing what etcd does in production: compacting the history a waiter watches
//! from, and expiring auth tokens under a holder.

use std::time::{Duration, Instant};

use super::fixture::{Etcd, Options};
use super::harness::*;
use crate::testenv::{PATIENCE, TestEnv, code, go, stderr, wait_output, wait_until};

/// A waiter whose watch breaks (its member killed) after etcd compacted the revision it
/// watches from is told "compacted" by the next member: it reads the lock again and
/// watches anew, and still wakes the moment the holder releases.
#[test]
fn a_waiter_wakes_after_etcd_compacts_the_revision_it_watches_from() {
    let Some(mut etcd) = Etcd::start(Options {
        members: 3,
        ..Options::default()
    }) else {
        return;
    };
    let env = TestEnv::new();
    let leader = etcd.leader();
    let follower = (leader + 1) % 3;
    let to_leader = etcd.url_starting_with(leader);
    let to_follower = etcd.url_starting_with(follower);
    let holder = hold(
        &env,
        &etcd,
        &["--backend", &to_leader, "--name", "job"],
        "h",
    );
    let waiter = spawn(
        &env,
        &etcd,
        &[
            "with",
            "-q",
            "-v",
            "-w",
            "60",
            "--backend",
            &to_follower,
            "--name",
            "job",
            "--",
            "touch",
            "taken",
        ],
    );
    // The waiter watches (on the follower) from the revision it read the lock at.
    std::thread::sleep(Duration::from_millis(800));
    let live = [leader, (leader + 2) % 3];
    for i in 0..5 {
        etcd.etcdctl(&["put", "other", &i.to_string()]);
    }
    let status = etcd.etcdctl(&["get", "other", "-w", "json"]);
    let revision =
        serde_json::from_str::<serde_json::Value>(&status).unwrap()["header"]["revision"]
            .as_i64()
            .expect("a revision");
    etcd.etcdctl(&["compact", &revision.to_string()]);
    etcd.kill(follower);
    // The waiter moves on to another member, from a revision etcd no longer has.
    std::thread::sleep(Duration::from_millis(800));
    assert!(!env.path("taken").exists(), "the waiter took a held lock");
    let released = Instant::now();
    go(&env, "h");
    assert_eq!(code(&wait_output(holder, PATIENCE)), 0);
    wait_until("the waiter to take the lock", || env.path("taken").exists());
    let handoff = released.elapsed();
    let out = finish(waiter);
    assert!(
        stderr(&out).contains("was compacted"),
        "the waiter never met the compaction: {}\n{}",
        stderr(&out),
        etcd.etcdctl_at(&live, &["endpoint", "status"]).status
    );
    // No minute-long re-watch, no polling: at once.
    assert!(handoff < Duration::from_secs(3), "handoff took {handoff:?}");
}

/// etcd's simple auth tokens expire (here after 2 s): a holder and a waiter that outlive
/// their token get a new one and release cleanly, with no warning.
#[test]
fn holders_outliving_their_auth_token_reauthenticate_and_release_cleanly() {
    let Some(mut etcd) = Etcd::start(Options {
        members: 1,
        auth_token_ttl: Some(2),
        ..Options::default()
    }) else {
        return;
    };
    etcd.enable_auth("alice", "alice-secret", "lockrun/");
    let env = TestEnv::new();
    let as_alice = |args: &[&str]| {
        let mut cmd = lockrun(&env, &etcd, args);
        cmd.env("LOCKRUN_ETCD_USER", "alice")
            .env("LOCKRUN_ETCD_PASSWORD", "alice-secret")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let holder = as_alice(&[
        "with",
        "--name",
        "job",
        "--",
        "sh",
        "-c",
        "touch h.ready; sleep 3.5",
    ])
    .spawn()
    .unwrap();
    wait_until("the holder", || env.path("h.ready").exists());
    let waiter = as_alice(&[
        "with",
        "-q",
        "-w",
        "20",
        "--name",
        "job",
        "--",
        "sh",
        "-c",
        "touch taken; sleep 3",
    ])
    .spawn()
    .unwrap();
    let out = finish(holder);
    assert_eq!(stderr(&out), "", "the holder's release was not clean");
    wait_until("the waiter to take the lock", || env.path("taken").exists());
    let out = finish(waiter);
    assert_eq!(stderr(&out), "", "the waiter's release was not clean");
    // Released for real (revoked), not left to expire: free at once.
    let out = as_alice(&["status", "--name", "job"]).output().unwrap();
    assert_eq!(
        code(&out),
        0,
        "still held after a clean release: {}",
        stderr(&out)
    );
}
