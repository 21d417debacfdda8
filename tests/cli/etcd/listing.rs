//! `show` and `cleanup` on the etcd backend: they list what is in etcd, never the local
//! lock directory.

use super::harness::*;
use crate::testenv::{PATIENCE, code, go, here, stderr, stdout, wait_output};

#[test]
fn show_lists_the_locks_in_etcd_and_not_the_local_directory() {
    let Some((etcd, env)) = single() else { return };
    let out = run_expect(&env, &etcd, &["show"], 0);
    assert_eq!(
        stderr(&out),
        format!(
            "lockrun: no locks in etcd at {} under lockrun/\n",
            etcd.url()
        )
    );
    // A local lock, held, in the directory a local show would list.
    let local = crate::testenv::hold(&env, &["local.json"], "local");
    let job = hold(&env, &etcd, &["--name", "job", "--label", "nightly"], "job");
    let r1 = hold(&env, &etcd, &["-s", "--name", "db"], "r1");
    let r2 = hold(&env, &etcd, &["-s", "--name", "db"], "r2");
    etcd.etcdctl(&["put", "lockrun/stray", "x"]);
    let out = run_expect(&env, &etcd, &["show"], 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("held     job  nightly (PID ") && lines[0].contains(&here()),
        "{text}"
    );
    assert!(
        lines[1].starts_with("held     db  shared by PID "),
        "{text}"
    );
    assert!(
        lines[2].starts_with("other    lockrun/stray  not a lockrun entry"),
        "{text}"
    );
    assert!(!text.contains("local.json"), "a local lock listed: {text}");
    let out = run(&env, &etcd, &["show", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("show --json");
    let rows = v.as_array().expect("an array");
    assert_eq!(rows.len(), 3, "{v}");
    assert_eq!(rows[0]["name"], "job");
    assert_eq!(rows[0]["kind"], "lock");
    assert_eq!(rows[0]["state"], "held");
    assert_eq!(rows[0]["label"], "nightly");
    assert_eq!(rows[0]["pid"], job.id());
    assert!(
        rows[0]["path"]
            .as_str()
            .unwrap()
            .starts_with("lockrun/job//")
    );
    assert_eq!(rows[1]["mode"], "shared");
    let mut readers: Vec<u64> = rows[1]["readers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    readers.sort_unstable();
    let mut expected = vec![u64::from(r1.id()), u64::from(r2.id())];
    expected.sort_unstable();
    assert_eq!(readers, expected);
    assert_eq!(rows[2]["kind"], "other");
    // One lock is looked at with status, not show.
    let out = run_expect(&env, &etcd, &["show", "--name", "job"], 2);
    assert_eq!(stderr(&out).lines().count(), 1);
    for (child, name) in [(job, "job"), (r1, "r1"), (r2, "r2"), (local, "local")] {
        go(&env, name);
        assert_eq!(code(&wait_output(child, PATIENCE)), 0);
    }
}

#[test]
fn cleanup_says_there_is_nothing_to_clean_and_touches_no_foreign_key() {
    let Some((etcd, env)) = single() else { return };
    let job = hold(&env, &etcd, &["--name", "job"], "job");
    etcd.etcdctl(&["put", "lockrun/stray", "x"]);
    let out = run_expect(&env, &etcd, &["cleanup"], 0);
    let text = stdout(&out);
    assert_eq!(
        text,
        format!(
            "skipped lockrun/stray: not a lockrun entry: a key without a lease (never touched; delete it with etcdctl if it is in the way)\n\
             nothing to clean in etcd at {} under lockrun/: a lock there ends with its holder's lease, so none is ever stale\n",
            etcd.url()
        )
    );
    let out = run(&env, &etcd, &["cleanup", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cleanup --json");
    assert_eq!(v["count"], 0);
    assert_eq!(v["backend"], etcd.url());
    assert_eq!(v["skipped"][0]["path"], "lockrun/stray");
    assert_eq!(
        etcd.etcdctl(&["get", "--print-value-only", "lockrun/stray"])
            .trim(),
        "x"
    );
    let out = run(&env, &etcd, &["status", "--name", "job"]);
    assert_eq!(code(&out), 1, "cleanup touched a live lock");
    go(&env, "job");
    assert_eq!(code(&wait_output(job, PATIENCE)), 0);
}
