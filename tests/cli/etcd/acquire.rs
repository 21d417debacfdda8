//! `acquire`/`release` on the etcd backend, from real shells: the lock belongs to the
//! shell that ran `acquire` and is kept by the keeper it left behind; it ends with
//! `release`, with the shell, or with the keeper.

use std::process::Child;
use std::time::{Duration, Instant};

use super::fixture::Etcd;
use super::harness::*;
use crate::testenv::{PATIENCE, TestEnv, code, go, here, stderr, stdout, wait_output, wait_until};

/// The default lease TTL.
const TTL: Duration = Duration::from_secs(2);

/// A shell that takes `job`'s lock with `acquire ARGS`, writes its id to `NAME.id`, and
/// waits for `NAME.go` to release it (writing release's status to `NAME.released`).
fn acquirer(env: &TestEnv, etcd: &Etcd, args: &str, name: &str) -> Child {
    let script = format!(
        r#"id=$("$L" acquire {args} --name job) || exit 9
echo "$id" > {name}.id; touch {name}.ready
while [ ! -e {name}.go ]; do sleep 0.01; done
"$L" release "$id"; echo $? > {name}.released"#
    );
    let mut child = shell(env, etcd, &script);
    let start = Instant::now();
    while !env.path(&format!("{name}.ready")).exists() {
        if let Ok(Some(_)) = child.try_wait() {
            let out = wait_output(child, PATIENCE);
            panic!("acquirer {name} ended early: {}", stderr(&out));
        }
        assert!(start.elapsed() < PATIENCE, "acquirer {name} never acquired");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

fn id_of(env: &TestEnv, name: &str) -> String {
    env.read(&format!("{name}.id")).trim().to_string()
}

fn kill_group(child: &Child) {
    let pgid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
}

/// The PID of the keeper of the lock whose id is `id`, from its state file.
fn keeper_of(env: &TestEnv, id: &str) -> i32 {
    let lease = id.rsplit("//").next().unwrap();
    let state = env.read(&format!("state/lockrun/etcd-leases/{lease}"));
    state
        .lines()
        .find_map(|l| l.strip_prefix("KEEPER: "))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no keeper in {state}"))
}

fn alive(pid: i32) -> bool {
    rustix::process::test_kill_process(rustix::process::Pid::from_raw(pid).unwrap()).is_ok()
}

#[test]
fn acquire_holds_for_the_shell_until_its_release_hands_over() {
    let Some((etcd, env)) = single() else { return };
    let a = acquirer(&env, &etcd, "--label deploy", "a");
    let id = id_of(&env, "a");
    assert!(
        id.starts_with(&format!("{}/lockrun/job//", etcd.url())),
        "{id}"
    );
    // The holder is the shell, with its label, as status tells.
    let out = run_expect(&env, &etcd, &["status", "--json", "--name", "job"], 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pid"], a.id());
    assert_eq!(v["host"], here());
    assert_eq!(v["label"], "deploy");
    // Another shell's acquire -n is refused with the holder named; with -w it waits.
    let out = wait_output(
        shell(&env, &etcd, r#""$L" acquire -n --name job; echo "rc=$?""#),
        PATIENCE,
    );
    assert!(stdout(&out).ends_with("rc=75\n"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("job is locked by deploy"),
        "{}",
        stderr(&out)
    );
    let waiter = shell(
        &env,
        &etcd,
        r#"id=$("$L" acquire -q -w inf --name job) || exit 9; touch b.took; "$L" release "$id""#,
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(!env.path("b.took").exists(), "the waiter took a held lock");
    release(&env, a, "a");
    assert_eq!(env.read("a.released").trim(), "0");
    finish(waiter);
    assert!(env.path("b.took").exists());
    // Released twice: the lock is gone (66), not lost.
    let out = wait_output(
        shell(&env, &etcd, &format!(r#""$L" release '{id}'"#)),
        PATIENCE,
    );
    assert_eq!(code(&out), 66, "{}", stderr(&out));
    let out = run(&env, &etcd, &["status", "--name", "job"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn a_killed_owner_shell_hands_the_lock_on_within_the_ttl() {
    let Some((etcd, env)) = single() else { return };
    let a = acquirer(&env, &etcd, "", "a");
    let keeper = keeper_of(&env, &id_of(&env, "a"));
    let waiter = waiter(&env, &etcd, "20", "job", "taken");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!env.path("taken").exists());
    let killed = Instant::now();
    kill_group(&a);
    wait_output(a, PATIENCE);
    wait_until("the waiter to take the lock", || env.path("taken").exists());
    let handoff = killed.elapsed();
    eprintln!("etcd acquire: handoff after kill -9 of the owner shell: {handoff:?}");
    assert!(
        handoff < TTL + Duration::from_millis(1500),
        "handoff took {handoff:?}"
    );
    assert_eq!(code(&wait_output(waiter, PATIENCE)), 0);
    wait_until("the keeper to exit", || !alive(keeper));
    assert!(
        !env.path("state/lockrun/etcd-leases").exists()
            || std::fs::read_dir(env.path("state/lockrun/etcd-leases"))
                .unwrap()
                .next()
                .is_none(),
        "the keeper left its state file"
    );
}

#[test]
fn a_killed_keeper_lets_the_lease_expire_and_release_says_the_lock_was_lost() {
    let Some((etcd, env)) = single() else { return };
    let a = acquirer(&env, &etcd, "", "a");
    let keeper = keeper_of(&env, &id_of(&env, "a"));
    let killed = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(keeper).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let out = run(
        &env,
        &etcd,
        &["with", "-q", "-w", "20", "--name", "job", "--", "true"],
    );
    let freed = killed.elapsed();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    eprintln!("etcd acquire: lock freed after kill -9 of the keeper: {freed:?}");
    assert!(freed < TTL + Duration::from_millis(1500), "took {freed:?}");
    let out = run(&env, &etcd, &["status", "--name", "job"]);
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).contains("lost the lock on job: its keeper"),
        "{}",
        stdout(&out)
    );
    let out = release(&env, a, "a");
    assert_eq!(env.read("a.released").trim(), "69");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "lockrun: lost the lock on job: its keeper (PID {keeper}) is gone"
        )),
        "{err}"
    );
}

#[test]
fn a_revoked_lease_is_reported_by_the_owners_release() {
    let Some((etcd, env)) = single() else { return };
    let a = acquirer(&env, &etcd, "", "a");
    let keeper = keeper_of(&env, &id_of(&env, "a"));
    run_expect(&env, &etcd, &["unlock", "--force", "--name", "job"], 0);
    // The keeper learns it at its next keepalive and says so for the release.
    wait_until("the keeper to record the loss", || {
        stdout(&run(&env, &etcd, &["status", "--name", "job"])).contains("lost the lock")
    });
    go(&env, "a");
    let out = wait_output(a, PATIENCE);
    assert_eq!(env.read("a.released").trim(), "69");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("lockrun: lost the lock on job: "), "{err}");
    wait_until("the keeper to exit", || !alive(keeper));
}

#[test]
fn release_of_another_shells_id_is_refused() {
    let Some((etcd, env)) = single() else { return };
    let a = acquirer(&env, &etcd, "", "a");
    let id = id_of(&env, "a");
    let out = wait_output(
        shell(&env, &etcd, &format!(r#""$L" release '{id}'"#)),
        PATIENCE,
    );
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("does not belong to this shell"), "{err}");
    let out = run(&env, &etcd, &["status", "--name", "job"]);
    assert_eq!(code(&out), 1, "the refused release freed the lock");
    go(&env, "a");
    assert_eq!(code(&wait_output(a, PATIENCE)), 0);
    assert_eq!(env.read("a.released").trim(), "0");
}

#[test]
fn bad_etcd_ids_are_usage_errors() {
    let env = TestEnv::new();
    for id in [
        "etcd://127.0.0.1:2379",
        "etcd://127.0.0.1:2379/lockrun/job",
        "etcd://127.0.0.1:2379/lockrun/job//xyz",
        "etcd://127.0.0.1:x/lockrun/job//0123456789abcdef",
        "etcd://127.0.0.1:2379/lockrun/job//0123456789abcdef\nx",
    ] {
        let out = env.command(["release", id]).output().unwrap();
        assert_eq!(code(&out), 2, "{id:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
}

/// A keeper killed, then its shell gone without a release: the note that would have
/// told the release is of no use; status ignores it and cleanup removes it.
#[test]
fn cleanup_removes_the_note_of_a_lost_lock_whose_shell_is_gone() {
    let Some((etcd, env)) = single() else { return };
    let a = acquirer(&env, &etcd, "", "a");
    let id = id_of(&env, "a");
    let keeper = keeper_of(&env, &id);
    let lease = id.rsplit("//").next().unwrap().to_string();
    let note = env.path(&format!("state/lockrun/etcd-leases/{lease}"));
    // A live holder's note is kept.
    let out = run_expect(&env, &etcd, &["cleanup"], 0);
    assert!(!stdout(&out).contains("removed"), "{}", stdout(&out));
    assert!(note.exists());
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(keeper).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    kill_group(&a);
    wait_output(a, PATIENCE);
    wait_until("the lease to expire", || {
        code(&run(&env, &etcd, &["status", "--name", "job"])) == 0
    });
    let out = run_expect(&env, &etcd, &["status", "--name", "job"], 0);
    assert_eq!(stdout(&out), "job: free\n");
    let out = run_expect(&env, &etcd, &["cleanup", "--dry-run"], 0);
    assert!(
        stdout(&out).starts_with("would remove "),
        "{}",
        stdout(&out)
    );
    assert!(note.exists());
    let out = run_expect(&env, &etcd, &["cleanup"], 0);
    assert!(
        stdout(&out).starts_with(&format!(
            "removed {}: the note of a lost acquire lock on job: its keeper and its owner are gone\n",
            note.display()
        )),
        "{}",
        stdout(&out)
    );
    assert!(!note.exists());
}

#[test]
fn the_keeper_keeps_no_descriptor_of_the_callers_shell() {
    // A hook runner reads the shell's output to its end. acquire gets that pipe as fd 3
    // (stdout goes to a file): a keeper that kept it would hold the reader until the shell
    // exits, here 30 s after it closed its own copy.
    let Some((etcd, env)) = single() else { return };
    let mut sh = shell(
        &env,
        &etcd,
        r#""$L" acquire --name job 3>&1 > a.id 2>a.err || exit 9
exec >/dev/null 2>&1
sleep 30"#,
    );
    let mut out = sh.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut rest);
        let _ = tx.send(rest);
    });
    let got_eof = rx.recv_timeout(PATIENCE);
    let still_held = sh.try_wait().unwrap().is_none();
    kill_group(&sh);
    let _ = sh.wait();
    assert!(
        got_eof.is_ok(),
        "the shell's stdout pipe stayed open after the shell closed it: {}",
        env.read("a.err")
    );
    assert!(still_held, "the shell ended before the pipe closed");
    assert!(
        env.read("a.id").starts_with("etcd://"),
        "{}",
        env.read("a.err")
    );
}

#[test]
fn a_note_removed_by_hand_does_not_end_the_lock() {
    // Only release (or the owner's end) ends an acquire lock: a user clearing the state
    // directory does not; the keeper writes its note again.
    let Some((etcd, env)) = single() else { return };
    let a = acquirer(&env, &etcd, "", "a");
    let id = id_of(&env, "a");
    let notes = env.path("state/lockrun/etcd-leases");
    std::fs::remove_dir_all(&notes).unwrap();
    std::fs::create_dir_all(&notes).unwrap();
    // Past a TTL: a keeper that gave up would have let the lease expire by then.
    std::thread::sleep(TTL + Duration::from_millis(800));
    run_expect(&env, &etcd, &["status", "--name", "job"], 1);
    let lease = id.rsplit("//").next().unwrap();
    assert!(
        notes.join(lease).exists(),
        "the keeper did not write its note again"
    );
    release(&env, a, "a");
    assert_eq!(env.read("a.released").trim(), "0");
    run_expect(&env, &etcd, &["status", "--name", "job"], 0);
}

#[test]
fn acquire_warns_when_its_keeper_cannot_keep_a_note() {
    let Some((etcd, env)) = single() else { return };
    env.write("not-a-dir", "");
    let out = finish(shell(
        &env,
        &etcd,
        r#"export XDG_STATE_HOME="$PWD/not-a-dir"
id=$("$L" acquire --name job) || exit 9
"$L" release "$id"; echo "released=$?""#,
    ));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "released=0\n", "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("lockrun: warning: the keeper of the lease on job cannot keep its note"),
        "{err}"
    );
}
