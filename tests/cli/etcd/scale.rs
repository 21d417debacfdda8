//! Many processes, one etcd lock: no two holders overlap, no update is lost, and a
//! 3-member cluster keeps it so with one member killed.

use std::time::Duration;

use super::fixture::{Etcd, Options};
use super::harness::single;
use crate::testenv::{TestEnv, code, sh, stderr, wait_output};

/// `n` workers, each running `cycles` lock cycles on NAME; a cycle marks occupancy with
/// `mkdir occ` (which fails while another holder is inside: exit 99) and bumps a counter.
fn workers(env: &TestEnv, url: &str, n: usize, cycles: usize) -> Vec<std::process::Child> {
    workers_with(env, url, "", n, cycles)
}

fn workers_with(
    env: &TestEnv,
    url: &str,
    options: &str,
    n: usize,
    cycles: usize,
) -> Vec<std::process::Child> {
    let cycle = "mkdir occ || exit 99; read n < counter; echo $((n+1)) > counter; rmdir occ";
    let worker = format!(
        r#"i=0; while [ $i -lt {cycles} ]; do LOCKRUN_BACKEND={url} "$L" with -q -w 60 {options} --name cycles -- sh -c '{cycle}' || exit $?; i=$((i+1)); done"#
    );
    env.write("counter", "0");
    (0..n).map(|_| sh(env, &worker)).collect()
}

fn finish(children: Vec<std::process::Child>) {
    for w in children {
        let out = wait_output(w, Duration::from_secs(240));
        assert_eq!(
            code(&out),
            0,
            "a worker failed (99 = two holders at once): {}",
            stderr(&out)
        );
    }
}

#[test]
fn four_processes_by_100_cycles_never_overlap() {
    let Some((etcd, env)) = single() else { return };
    finish(workers(&env, &etcd.url(), 4, 100));
    assert_eq!(env.read("counter").trim(), "400");
}

#[test]
fn update_from_four_processes_loses_nothing() {
    let Some((etcd, env)) = single() else { return };
    env.write("memo.json", "{\"n\":0}\n");
    // The lock is the name, as for a file that several hosts mount at different paths.
    let worker = format!(
        r#"i=0; while [ $i -lt 50 ]; do LOCKRUN_BACKEND={} "$L" update -q -w 60 --name memo memo.json '.n += 1' || exit $?; i=$((i+1)); done"#,
        etcd.url()
    );
    let children: Vec<_> = (0..4).map(|_| sh(&env, &worker)).collect();
    finish(children);
    assert_eq!(env.read("memo.json").trim(), "{\"n\":200}");
}

/// Runs 3 workers x 60 cycles on a 3-member cluster and kills member `victim` (chosen
/// from the cluster) a third of the way in; every cycle must still go through.
fn cluster_run(pick_victim: impl Fn(&Etcd) -> usize, options: &str) {
    let Some(mut etcd) = Etcd::start(Options {
        members: 3,
        tls: false,
        ..Options::default()
    }) else {
        return;
    };
    let env = TestEnv::new();
    let victim = pick_victim(&etcd);
    // The victim first in the list: the clients are talking to it when it dies.
    let children = workers_with(&env, &etcd.url_starting_with(victim), options, 3, 60);
    let start = std::time::Instant::now();
    while env.read("counter").trim().parse::<u32>().unwrap_or(0) < 60 {
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    etcd.kill(victim);
    finish(children);
    assert_eq!(env.read("counter").trim(), "180");
}

/// A follower dies: the clients go on with the next member, at the default lease TTL.
#[test]
fn a_three_member_cluster_keeps_locking_with_a_follower_killed() {
    cluster_run(|etcd| (etcd.leader() + 1) % 3, "");
}

/// The leader dies: the election (1 to 2 s with etcd's defaults, more on a loaded
/// machine; 5 s was seen here at a load average of 12) holds every request up,
/// keepalives included, so the lease TTL must outlast it: README "Several machines"
/// advises --lease-ttl 10 where the leader may die.
#[test]
fn a_three_member_cluster_keeps_locking_with_the_leader_killed() {
    cluster_run(Etcd::leader, "--lease-ttl 10");
}
