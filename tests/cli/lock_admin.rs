//! `status`, `show`, `cleanup`, `unlock`, `acquire` and `release`: every state of
//! lockrun locks and of hand-made bash-style lock directories, exact cleanup counts, a
//! cleanup loop racing live holders, manual locks across invocations, hostile ids.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::testenv::{self, Check};
use crate::testenv::{
    PATIENCE, TestEnv, bash_lock, code, dead_pid, go, here, hold, lock_path_of, sh, status_field,
    stderr, stdout, wait_output, wait_until,
};

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

fn set_age(path: &Path, age: Duration) {
    fs::File::open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

fn status(env: &TestEnv, target: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["status", "--json"];
    args.extend_from_slice(extra);
    args.push(target);
    let out = env.run(&args);
    (code(&out), json(&out))
}

#[test]
fn status_of_a_lockrun_exclusive_lock_free_held_stale() {
    let env = TestEnv::new();
    let out = env.run(["status", "f.json"]);
    out.assert_success();
    assert!(stdout(&out).ends_with("f.json: free\n"), "{}", stdout(&out));

    let before_hold = Instant::now();
    let mut holder = hold(&env, &["--label", "mcp-server", "f.json"], "h");
    let (rc, v) = status(&env, "f.json", &[]);
    assert_eq!(rc, 1);
    assert_eq!(v["state"], "held");
    assert_eq!(v["liveness"], "flock");
    assert_eq!(v["pid"], holder.id());
    assert_eq!(v["label"], "mcp-server");
    assert_eq!(v["mode"], "exclusive");
    assert_eq!(v["host"], here());
    assert!(v["command"].as_str().unwrap().starts_with("sh -c"), "{v}");
    // Held since the holder took it: not before this test started it (the 50 ms allow
    // for a file system's coarse timestamps and the rounding to milliseconds).
    let held = v["held_secs"].as_f64().unwrap();
    let bound = before_hold.elapsed().as_secs_f64() + 0.05;
    assert!(
        (0.0..=bound).contains(&held),
        "held_secs {held} not in 0..={bound}"
    );
    let text = env.run(["status", "f.json"]);
    text.assert_failure_with(1);
    let text = stdout(&text);
    assert!(
        text.contains(&format!(
            "held by mcp-server (PID {} on {}",
            holder.id(),
            here()
        )),
        "{text}"
    );
    assert!(text.contains("liveness: flock"), "{text}");

    // SIGKILL the holder: the kernel drops its flock, status proves it dead.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let (rc, v) = status(&env, "f.json", &[]);
    assert_eq!(rc, 3, "{v}");
    assert_eq!(v["state"], "stale");
    assert!(v["reason"].as_str().unwrap().contains("exited"), "{v}");
    let text = env.run(["status", "f.json"]);
    assert!(
        stdout(&text).contains(": stale: holder PID"),
        "{}",
        stdout(&text)
    );
}

#[test]
fn status_lists_shared_holders_by_pid() {
    let env = TestEnv::new();
    let a = hold(&env, &["-s", "f.json"], "a");
    let b = hold(&env, &["-s", "f.json"], "b");
    let (rc, v) = status(&env, "f.json", &[]);
    assert_eq!(rc, 1, "{v}");
    assert_eq!(v["state"], "held");
    assert_eq!(v["liveness"], "readers");
    let mut want = vec![a.id(), b.id()];
    want.sort();
    let got: Vec<u32> = v["readers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(got, want);
    let text = stdout(&env.run(["status", "f.json"]));
    assert!(text.contains(&format!("PID {}", a.id())), "{text}");
    go(&env, "a");
    go(&env, "b");
    wait_output(a, PATIENCE).assert_success();
    wait_output(b, PATIENCE).assert_success();
    let (rc, v) = status(&env, "f.json", &[]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["readers"], serde_json::json!([]));
}

#[test]
fn status_of_hand_made_bash_locks() {
    let env = TestEnv::new();
    // A live PID of this host: the test process itself.
    bash_lock(&env, "live.json", std::process::id(), &here());
    let (rc, v) = status(&env, "live.json", &[]);
    assert_eq!(
        (rc, &v["state"], &v["liveness"]),
        (1, &"held".into(), &"pid".into()),
        "{v}"
    );
    assert_eq!(v["pid"], std::process::id());

    let dead = dead_pid();
    bash_lock(&env, "dead.json", dead, &here());
    let (rc, v) = status(&env, "dead.json", &[]);
    assert_eq!(rc, 3, "{v}");
    assert_eq!(
        v["reason"].as_str().unwrap(),
        format!("holder PID {dead} is gone")
    );

    // A prober holding the info flock for an instant does not make it look alive.
    let dead_lock = lock_path_of(&env, "dead.json");
    let prober = fs::File::open(dead_lock.join("info")).unwrap();
    prober.lock().unwrap();
    let letgo = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(60));
        drop(prober);
    });
    let (rc, v) = status(&env, "dead.json", &[]);
    assert_eq!(rc, 3, "{v}");
    letgo.join().unwrap();

    bash_lock(&env, "remote.json", dead, "some-other-host");
    let (rc, v) = status(&env, "remote.json", &[]);
    assert_eq!((rc, &v["liveness"]), (1, &"host".into()), "{v}");
    assert_eq!(v["host"], "some-other-host");
    let (rc, v) = status(&env, "remote.json", &["--stale-after", "0"]);
    assert_eq!(rc, 3, "{v}");

    // No info: being created within the 2 s grace, dead after it.
    let young = lock_path_of(&env, "young.json");
    fs::create_dir_all(&young).unwrap();
    let (rc, v) = status(&env, "young.json", &[]);
    assert_eq!((rc, &v["liveness"]), (1, &"creating".into()), "{v}");
    let old = lock_path_of(&env, "old.json");
    fs::create_dir_all(&old).unwrap();
    set_age(&old, Duration::from_secs(10));
    let (rc, v) = status(&env, "old.json", &[]);
    assert_eq!(rc, 3, "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .starts_with("no info file after"),
        "{v}"
    );
    // status only looks: every lock is still there.
    for t in [
        "live.json",
        "dead.json",
        "remote.json",
        "young.json",
        "old.json",
    ] {
        assert!(lock_path_of(&env, t).is_dir(), "{t}");
    }
}

#[test]
fn acquire_and_release_across_invocations_of_one_shell() {
    let env = TestEnv::new();
    let out = wait_output(
        sh(
            &env,
            r#"id=$($L acquire --label deploy f.json) || exit 1
               $L status --json f.json > held.json; s=$?
               $L release "$id" || exit 2
               $L status f.json > /dev/null; echo "$s $? $id""#,
        ),
        PATIENCE,
    );
    out.assert_success();
    let text = stdout(&out);
    let mut words = text.split_whitespace();
    assert_eq!(words.next(), Some("1"), "held while acquired: {text}");
    assert_eq!(words.next(), Some("0"), "free after release: {text}");
    assert_eq!(
        words.next().map(PathBuf::from),
        Some(lock_path_of(&env, "f.json"))
    );
    let held: Value = serde_json::from_str(&env.read("held.json")).unwrap();
    assert_eq!(held["liveness"], "pid");
    assert_eq!(held["label"], "deploy");
    assert_eq!(env.lock_entries(".locks"), Vec::<String>::new());
}

/// A shell that acquires f.json's lock and lives on (its lock live) until `go(env,
/// "stop")`; returns it and the lock's id.
fn shell_holding_an_acquired_lock(env: &TestEnv) -> (Child, String) {
    let owner = sh(
        env,
        r#"$L acquire f.json > id.txt || exit 1; while [ ! -e stop.go ]; do sleep 0.01; done"#,
    );
    wait_until("the shell to acquire", || {
        env.path("id.txt").exists() && !env.read("id.txt").is_empty()
    });
    (owner, env.read("id.txt").trim_end().to_string())
}

#[test]
fn release_by_another_owner_is_refused_and_force_warns() {
    let env = TestEnv::new();
    let (owner, id) = shell_holding_an_acquired_lock(&env);
    // The test process is another owner.
    let out = env.run(["release", &id]);
    out.assert_failure_with(77);
    assert!(
        stderr(&out).contains(&format!("PID {}", owner.id())),
        "{}",
        stderr(&out)
    );
    assert!(Path::new(&id).is_dir());
    let (rc, _) = status(&env, "f.json", &[]);
    assert_eq!(rc, 1);

    let out = env.run(["release", "--force", &id]);
    out.assert_success();
    assert!(stderr(&out).contains("warning"), "{}", stderr(&out));
    assert!(!Path::new(&id).exists());
    go(&env, "stop");
    wait_output(owner, PATIENCE).assert_success();
}

#[test]
fn owner_exit_makes_the_lock_stale_and_the_next_acquirer_breaks_it() {
    let env = TestEnv::new();
    // `; true` keeps sh from exec'ing lockrun: the shell itself must be the owner.
    let out = wait_output(sh(&env, "$L acquire f.json; true"), PATIENCE);
    out.assert_success();
    let id = stdout(&out).trim_end().to_string();
    let (rc, v) = status(&env, "f.json", &[]);
    assert_eq!(rc, 3, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("is gone"), "{v}");
    // Releasing it from elsewhere says why that is wrong.
    let out = env.run(["release", &id]);
    out.assert_failure_with(77);
    assert!(stderr(&out).contains("is gone"), "{}", stderr(&out));
    // The next acquirer (another shell) breaks it at once.
    let out = wait_output(
        sh(&env, r#"id=$($L acquire -n f.json) && $L release "$id""#),
        PATIENCE,
    );
    out.assert_success();
    // The old id now names nothing.
    let out = env.run(["release", &id]);
    out.assert_failure_with(66);
}

#[test]
fn hostile_release_ids_are_refused_and_nothing_is_touched() {
    let env = TestEnv::new();
    let (owner, id) = shell_holding_an_acquired_lock(&env);
    let hex = Path::new(&id)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    fs::create_dir_all(env.path("plain/dir")).unwrap();
    fs::create_dir_all(env.path("links")).unwrap();
    symlink(&id, env.path(&format!("links/{hex}"))).unwrap();
    fs::write(env.path(&format!("plain/{hex}")), "").unwrap();
    let before = env.lock_entries(".locks");
    let newline = format!("{id}\n");
    let hostile = [
        "/".to_string(),
        "..".to_string(),
        ".".to_string(),
        env.path("plain/dir").to_string_lossy().into_owned(),
        env.path(".locks").to_string_lossy().into_owned(),
        env.path(&format!("links/{hex}"))
            .to_string_lossy()
            .into_owned(),
        env.path(&format!("plain/{hex}"))
            .to_string_lossy()
            .into_owned(),
        newline,
        format!("{id}/.."),
        format!("{id}/info"),
    ];
    for bad in &hostile {
        for force in [false, true] {
            let mut args = vec!["release"];
            if force {
                args.push("--force");
            }
            args.push(bad);
            let out = env.run(&args);
            assert_eq!(code(&out), 2, "{bad:?}: {}", stderr(&out));
            assert_eq!(stderr(&out).lines().count(), 1, "{bad:?}: one line");
            assert!(
                stderr(&out).contains("refusing lock id"),
                "{}",
                stderr(&out)
            );
        }
    }
    assert!(Path::new(&id).is_dir());
    assert!(Path::new(&id).join("info").is_file());
    assert_eq!(env.lock_entries(".locks"), before);
    assert!(env.path(&format!("links/{hex}")).is_symlink());
    assert!(env.path("plain/dir").is_dir());
    // unlock takes a FILE: hostile spellings name other (free) locks; nothing moves.
    for bad in ["/", "..", "links", &format!("links/{hex}")] {
        let out = env.run(["unlock", "--force", bad]);
        assert_eq!(code(&out), 0, "{bad}: {}", stderr(&out));
    }
    assert!(Path::new(&id).is_dir());
    assert_eq!(env.lock_entries(".locks"), before);
    go(&env, "stop");
    wait_output(owner, PATIENCE).assert_success();
}

#[test]
fn unlock_removes_stale_refuses_live_and_forces_with_a_warning() {
    let env = TestEnv::new();
    let out = env.run(["unlock", "f.json"]);
    out.assert_success();
    assert!(stderr(&out).contains("is not locked"));

    let dead = dead_pid();
    let lock = bash_lock(&env, "f.json", dead, &here());
    let out = env.run(["unlock", "f.json"]);
    out.assert_success();
    assert!(
        stderr(&out).contains(&format!("PID {dead} is gone")),
        "{}",
        stderr(&out)
    );
    assert!(!lock.exists());

    // A live lockrun holder: refused without --force.
    let holder = hold(&env, &["f.json"], "h");
    let out = env.run(["unlock", "f.json"]);
    out.assert_failure_with(75);
    assert_eq!(stderr(&out).lines().count(), 1);
    assert!(stderr(&out).contains(&format!("PID {}", holder.id())));
    assert!(stderr(&out).contains("--force"));
    assert!(lock.is_dir());
    // Forced: a warning naming the holder, whose own release then reports the break.
    let out = env.run(["unlock", "--force", "f.json"]);
    out.assert_success();
    let err = stderr(&out);
    assert!(
        err.contains("warning") && err.contains(&format!("PID {}", holder.id())),
        "{err}"
    );
    assert!(err.contains("report the lock as broken"), "{err}");
    assert!(!lock.exists());
    go(&env, "h");
    let out = wait_output(holder, PATIENCE);
    out.assert_failure_with(70);
    assert!(
        stderr(&out).contains("broken from outside"),
        "{}",
        stderr(&out)
    );

    // Shared holders cannot be unlocked.
    let reader = hold(&env, &["-s", "g.json"], "r");
    let out = env.run(["unlock", "--force", "g.json"]);
    out.assert_failure_with(75);
    go(&env, "r");
    wait_output(reader, PATIENCE).assert_success();
}

#[test]
fn show_lists_every_lock_and_leftover() {
    let env = TestEnv::new();
    let holder = hold(&env, &["--label", "srv", "a.json"], "h");
    let dead = dead_pid();
    bash_lock(&env, "b.json", dead, &here());
    let infoless = lock_path_of(&env, "c.json");
    fs::create_dir_all(&infoless).unwrap();
    set_age(&infoless, Duration::from_secs(60));
    let hex = "d".repeat(64);
    let garbage = env.path(&format!(".locks/.stale-{hex}-1"));
    fs::create_dir_all(&garbage).unwrap();
    fs::write(garbage.join("info"), "PID: 1\n").unwrap();
    set_age(&garbage, Duration::from_secs(60));
    fs::create_dir_all(env.path(&format!(".locks/.tmp-{hex}-2"))).unwrap();
    fs::write(env.path(".locks/README"), "mine").unwrap();

    let out = env.run(["show", "--json"]);
    out.assert_success();
    let rows = json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    let find = |name: &str| {
        rows.iter()
            .find(|r| r["name"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {rows:?}"))
    };
    let a = find(
        &lock_path_of(&env, "a.json")
            .file_name()
            .unwrap()
            .to_string_lossy(),
    );
    assert_eq!(
        (&a["kind"], &a["state"], &a["label"]),
        (&"lock".into(), &"held".into(), &"srv".into())
    );
    assert_eq!(a["target"], status_field(&env, "a.json", "target").as_str());
    let b = find(
        &lock_path_of(&env, "b.json")
            .file_name()
            .unwrap()
            .to_string_lossy(),
    );
    assert_eq!(b["state"], "stale");
    assert_eq!(b["target"], Value::Null, "bash locks name no target");
    let c = find(
        &lock_path_of(&env, "c.json")
            .file_name()
            .unwrap()
            .to_string_lossy(),
    );
    assert_eq!(c["state"], "stale");
    assert_eq!(
        (&find(".stale-")["state"], &find(".stale-")["kind"]),
        (&"garbage".into(), &"garbage".into())
    );
    assert_eq!(
        find(".tmp-")["state"],
        "busy",
        "young leftovers are left alone"
    );
    assert_eq!(find("README")["state"], "other");

    let text = stdout(&env.run(["show"]));
    assert_eq!(text.lines().count(), 6, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("held") && l.contains("srv (PID")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("stale") && l.contains("is gone")),
        "{text}"
    );
    // The same directory, named three ways.
    let by_file = env.run(["show", "--json", "a.json"]);
    let by_dir = env.run(["show", "--json", "--lock-dir", ".locks"]);
    assert_eq!(json(&by_file).as_array().unwrap().len(), 6);
    assert_eq!(json(&by_dir).as_array().unwrap().len(), 6);
    // A file where the directory should be: one line naming it, exit 73.
    for cmd in ["show", "cleanup"] {
        let out = env.run([cmd, "--lock-dir", "h.ready"]);
        out.assert_failure_with(73);
        assert_eq!(stderr(&out).lines().count(), 1);
        assert!(
            stderr(&out).contains("h.ready is not a directory"),
            "{}",
            stderr(&out)
        );
    }
    // A missing directory lists nothing.
    let out = env.run(["show", "--json", "--lock-dir", "nowhere"]);
    assert_eq!((code(&out), json(&out)), (0, serde_json::json!([])));
    go(&env, "h");
    wait_output(holder, PATIENCE).assert_success();
}

#[test]
fn cleanup_removes_exactly_the_stale_and_garbage_and_counts_them() {
    let env = TestEnv::new();
    let holder = hold(&env, &["live.json"], "h");
    bash_lock(&env, "mine.json", std::process::id(), &here());
    bash_lock(&env, "remote.json", dead_pid(), "other-host");
    bash_lock(&env, "d1.json", dead_pid(), &here());
    bash_lock(&env, "d2.json", dead_pid(), &here());
    let infoless = lock_path_of(&env, "c.json");
    fs::create_dir_all(&infoless).unwrap();
    set_age(&infoless, Duration::from_secs(60));
    let young = lock_path_of(&env, "y.json");
    fs::create_dir_all(&young).unwrap();
    let hex = "e".repeat(64);
    let old_garbage = env.path(&format!(".locks/.released-{hex}-1"));
    fs::create_dir_all(&old_garbage).unwrap();
    fs::write(old_garbage.join("info"), "PID: 1\n").unwrap();
    set_age(&old_garbage, Duration::from_secs(60));
    fs::create_dir_all(env.path(&format!(".locks/.tmp-{hex}-2"))).unwrap();
    // Garbage whose info flock is held: in use, whatever its age.
    let busy = env.path(&format!(".locks/.stale-{hex}-3"));
    fs::create_dir_all(&busy).unwrap();
    fs::write(busy.join("info"), "").unwrap();
    let flocked = fs::File::open(busy.join("info")).unwrap();
    flocked.lock().unwrap();
    set_age(&busy, Duration::from_secs(60));
    fs::write(env.path(".locks/notes.txt"), "").unwrap();
    let before = env.lock_entries(".locks");

    let out = env.run(["cleanup", "--dry-run", "--json"]);
    out.assert_success();
    let v = json(&out);
    assert_eq!(v["count"], 4, "{v}");
    assert_eq!(v["dry_run"], true);
    assert_eq!(
        env.lock_entries(".locks"),
        before,
        "a dry run removes nothing"
    );

    let out = env.run(["cleanup", "--json"]);
    out.assert_success();
    let v = json(&out);
    assert_eq!(v["count"], 4, "{v}");
    let removed = v["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 4);
    assert!(
        removed
            .iter()
            .all(|r| !r["reason"].as_str().unwrap().is_empty())
    );
    for t in ["d1.json", "d2.json", "c.json"] {
        assert!(!lock_path_of(&env, t).exists(), "{t} removed");
    }
    assert!(!old_garbage.exists());
    for t in ["live.json", "mine.json", "remote.json", "y.json"] {
        assert!(lock_path_of(&env, t).is_dir(), "{t} kept");
    }
    assert!(busy.is_dir() && env.path(&format!(".locks/.tmp-{hex}-2")).is_dir());
    assert!(env.path(".locks/notes.txt").exists());
    let out = env.run(["cleanup"]);
    out.assert_success();
    assert!(
        stdout(&out).contains("removed 0 entries"),
        "{}",
        stdout(&out)
    );
    drop(flocked);
    go(&env, "h");
    assert_eq!(
        code(&wait_output(holder, PATIENCE)),
        0,
        "the live holder was never broken"
    );
}

#[test]
fn cleanup_loop_never_breaks_a_live_lock() {
    let env = TestEnv::new();
    const ROUNDS: usize = 40;
    for f in ["a", "b"] {
        fs::write(env.path(&format!("{f}.count")), "0").unwrap();
    }
    // Each holder proves it is alone: `mkdir occ` fails if another holder is inside.
    let body =
        "f=$1; mkdir $f.occ || exit 99; c=$(cat $f.count); echo $((c+1)) > $f.count; rmdir $f.occ";
    // 4 processes, each cycling both files.
    let workers: Vec<Child> = (0..4)
        .map(|_| {
            sh(
                &env,
                &format!(
                    r#"for i in $(seq {ROUNDS}); do
                         for f in a b; do
                           $L with -w 15 $f -- sh -c '{body}' x $f || {{ echo "rc $?"; exit 1; }}
                         done
                       done"#
                ),
            )
        })
        .collect();
    let cleaner = sh(
        &env,
        r#"n=0; while [ ! -e stop ]; do $L cleanup -q >> cleanup.log || exit 1; n=$((n+1)); done; echo $n"#,
    );
    // Meanwhile a fifth process keeps leaving stale `acquire` locks (their owner shell
    // exits at once) on the same files: workers and the cleaner race to break them.
    let dropper = sh(
        &env,
        r#"for i in $(seq 20); do for f in a b; do
             sh -c "$L acquire -w 15 $f > /dev/null; true" || exit 1
           done; done"#,
    );
    let out = wait_output(dropper, Duration::from_secs(60));
    out.assert_success();
    for w in workers {
        let out = wait_output(w, Duration::from_secs(60));
        assert_eq!(code(&out), 0, "{} {}", stdout(&out), stderr(&out));
    }
    fs::write(env.path("stop"), "").unwrap();
    let out = wait_output(cleaner, PATIENCE);
    out.assert_success();
    let cleanups: usize = stdout(&out).trim().parse().unwrap();
    assert!(cleanups > 0);
    eprintln!("{cleanups} cleanups ran meanwhile");
    for f in ["a", "b"] {
        assert_eq!(
            env.read(&format!("{f}.count")).trim(),
            (4 * ROUNDS).to_string(),
            "{f}"
        );
    }
    // The cleaner only ever removed the dropped acquire locks, whose owner is gone;
    // never a `with` lock (whose holders all lived).
    let log = env.read("cleanup.log");
    let breaks: Vec<&str> = log.lines().filter(|l| l.contains("stale lock")).collect();
    assert!(breaks.len() <= 40, "{log}");
    // Whether the cleaner or a worker got to a dropped lock first is a race, so the
    // loop below may see no line: first prove on one dropped lock, alone, that a
    // cleaner's break line is one the loop recognizes.
    let out = wait_output(
        sh(&env, r#"sh -c "$L acquire -w 15 a > /dev/null; true""#),
        PATIENCE,
    );
    out.assert_success();
    let out = env.run(["cleanup"]);
    out.assert_success();
    let alone: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| l.contains("stale lock"))
        .map(str::to_string)
        .collect();
    assert_eq!(alone.len(), 1, "{}", stdout(&out));
    assert!(
        alone[0].ends_with("is gone") && alone[0].contains("acquire"),
        "{}",
        alone[0]
    );
    for line in &breaks {
        assert!(
            line.ends_with("is gone") && line.contains("acquire"),
            "{line}"
        );
    }
    eprintln!(
        "the cleaner broke {} of 40 dropped stale locks",
        breaks.len()
    );
}

#[test]
fn cleanup_never_removes_a_lock_re_created_after_its_verdict() {
    if !testenv::has_test_hooks() {
        // By design: the build that ships has no test hooks (the debug run covers this).
        testenv::skip(testenv::Skip::Platform(
            "the executable under test is the shipped build, without test hooks".into(),
        ));
        return;
    }
    let env = TestEnv::new();
    let lock = bash_lock(&env, "f.json", dead_pid(), &here());
    let gate = env.path("gate");
    // The cleaner judges the lock dead, then pauses before breaking it.
    let cleaner = env
        .command(["cleanup", "--json"])
        .env("LOCKRUN_TEST_BREAK_PAUSE", &gate)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the cleaner to pause", || env.path("gate.paused").exists());
    // Meanwhile the dead lock goes and a live holder takes the file.
    fs::remove_dir_all(&lock).unwrap();
    let holder = hold(&env, &["f.json"], "h");
    fs::write(&gate, "").unwrap();
    let out = wait_output(cleaner, PATIENCE);
    out.assert_success();
    assert_eq!(
        json(&out)["count"],
        0,
        "nothing was removed by this cleaner"
    );
    assert!(lock.join("info").is_file(), "the new lock is intact");
    let (rc, v) = status(&env, "f.json", &[]);
    assert_eq!((rc, &v["pid"]), (1, &holder.id().into()));
    go(&env, "h");
    assert_eq!(
        code(&wait_output(holder, PATIENCE)),
        0,
        "its release found it intact"
    );
}

#[test]
fn show_names_shared_holders_of_a_gate() {
    let env = TestEnv::new();
    let reader = hold(&env, &["-s", "f.json"], "r");
    let out = env.run(["show", "--json"]);
    let rows = json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (&rows[0]["kind"], &rows[0]["state"]),
        (&"gate".into(), &"held".into())
    );
    assert_eq!(rows[0]["readers"], serde_json::json!([reader.id()]));
    let text = stdout(&env.run(["show"]));
    assert!(
        text.contains(&format!("shared by PID {}", reader.id())),
        "{text}"
    );
    go(&env, "r");
    wait_output(reader, PATIENCE).assert_success();
    let rows = json(&env.run(["show", "--json"]));
    assert_eq!(rows[0]["state"], "idle", "{rows}");
    // cleanup keeps gates.
    let out = env.run(["cleanup", "--json"]);
    assert_eq!(json(&out)["count"], 0);
}
