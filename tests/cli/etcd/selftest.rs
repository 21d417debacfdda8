//! The fixture itself: etcd starts on loopback, answers, and is gone after the drop.

use super::fixture::{Etcd, Options};

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
}

#[test]
fn single_member_serves_and_is_gone_after_drop() {
    let Some(etcd) = Etcd::single() else { return };
    etcd.etcdctl(&["put", "k", "v"]);
    assert_eq!(
        etcd.etcdctl(&["get", "--print-value-only", "k"]).trim(),
        "v"
    );
    let pid = etcd.members[0].pid;
    let data = etcd.dir().to_path_buf();
    assert!(alive(pid));
    drop(etcd);
    assert!(!alive(pid), "etcd {pid} still runs after the drop");
    assert!(!data.exists(), "{} left behind", data.display());
}

#[test]
fn three_members_survive_one_kill() {
    let Some(mut etcd) = Etcd::start(Options {
        members: 3,
        tls: false,
        ..Options::default()
    }) else {
        return;
    };
    etcd.etcdctl(&["put", "k", "1"]);
    etcd.kill(1);
    // A request in flight when the leader dies can hang until etcd's own request
    // timeout; a new one goes through once the two left have elected a leader.
    let live = [0, 2];
    let ok = (0..10).any(|_| {
        etcd.etcdctl_at(&live, &["--command-timeout=1s", "put", "k", "2"])
            .status
            .success()
    });
    assert!(
        ok,
        "no put went through after a member was killed:\n{}",
        etcd.logs()
    );
    assert_eq!(
        etcd.etcdctl(&["get", "--print-value-only", "k"]).trim(),
        "2"
    );
}

#[test]
fn tls_and_auth() {
    let Some(mut etcd) = Etcd::start(Options {
        members: 1,
        tls: true,
        ..Options::default()
    }) else {
        return;
    };
    etcd.enable_auth("alice", "alice-secret", "lockrun/");
    etcd.etcdctl(&["put", "lockrun/k", "v"]);
    // Without credentials etcd refuses.
    let out = etcd.etcdctl_at(&[0], &["--user=alice:wrong", "get", "lockrun/k"]);
    assert!(!out.status.success());
}
