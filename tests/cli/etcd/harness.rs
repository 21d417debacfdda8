//! What the etcd tests share: lockrun and shells with the backend set to a test etcd,
//! a holder that runs until told to go, a waiter, and the checks of how they end.

use std::process::{Child, Command, Output, Stdio};

use super::fixture::Etcd;
use crate::testenv::{PATIENCE, TestEnv, code, go, stderr, wait_output};

/// `lockrun ARGS` in `env`'s dir with `LOCKRUN_BACKEND` set to `etcd`'s URL.
pub fn lockrun(env: &TestEnv, etcd: &Etcd, args: &[&str]) -> Command {
    let mut cmd = env.command(args);
    with_backend(&mut cmd, env, etcd);
    cmd
}

/// `sh -c SCRIPT` in `env`'s dir, `$L` being lockrun, with the backend set as for
/// [`lockrun`], in a process group of its own (so that a test can kill what it runs).
pub fn shell(env: &TestEnv, etcd: &Etcd, script: &str) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .current_dir(env.root())
        .env("L", crate::testenv::bin())
        .env_remove("LOCKRUN_DIR")
        .env_remove("LOCKRUN_TIMEOUT")
        .env_remove("LOCKRUN_DEBUG")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    with_backend(&mut cmd, env, etcd);
    cmd.spawn().expect("spawn sh")
}

/// The environment of a lockrun that uses `etcd`: its URL and TLS files, no user, and
/// the state directory (where `acquire`'s keepers keep their notes) inside `env`.
fn with_backend(cmd: &mut Command, env: &TestEnv, etcd: &Etcd) {
    cmd.env("LOCKRUN_BACKEND", etcd.url())
        .env("XDG_STATE_HOME", env.path("state"))
        .env_remove("LOCKRUN_ETCD_USER")
        .env_remove("LOCKRUN_ETCD_PASSWORD")
        .env_remove("LOCKRUN_ETCD_CA")
        .env_remove("LOCKRUN_ETCD_CERT")
        .env_remove("LOCKRUN_ETCD_KEY")
        .env_remove("LOCKRUN_FENCING_TOKEN");
    if let Some(c) = &etcd.certs {
        cmd.env("LOCKRUN_ETCD_CA", &c.ca)
            .env("LOCKRUN_ETCD_CERT", &c.client_cert)
            .env("LOCKRUN_ETCD_KEY", &c.client_key);
    }
}

pub fn run(env: &TestEnv, etcd: &Etcd, args: &[&str]) -> Output {
    let child = lockrun(env, etcd, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lockrun");
    wait_output(child, PATIENCE)
}

pub fn spawn(env: &TestEnv, etcd: &Etcd, args: &[&str]) -> Child {
    lockrun(env, etcd, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lockrun")
}

/// `lockrun with ARGS -- sh -c '<touch NAME.ready, wait for NAME.go>'`, returned once
/// the command runs (it holds the lock until `crate::testenv::go(env, NAME)`).
pub fn hold(env: &TestEnv, etcd: &Etcd, args: &[&str], name: &str) -> Child {
    let script = format!("touch {name}.ready; while [ ! -e {name}.go ]; do sleep 0.01; done");
    let mut full: Vec<&str> = vec!["with"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--", "sh", "-c", &script]);
    let mut child = spawn(env, etcd, &full);
    let ready = env.path(&format!("{name}.ready"));
    let start = std::time::Instant::now();
    while !ready.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let out = wait_output(child, PATIENCE);
            panic!(
                "holder {name} exited ({status}) before its command ran: {}",
                crate::testenv::stderr(&out)
            );
        }
        assert!(
            start.elapsed() < PATIENCE,
            "holder {name} never ran its command"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child
}

/// Asserts that `out` ended with `want`, showing its stderr if not; returns it.
#[track_caller]
pub fn expect(out: Output, want: i32) -> Output {
    assert_eq!(code(&out), want, "{}", stderr(&out));
    out
}

/// `lockrun ARGS` (as [`run`]) that must exit `want`.
#[track_caller]
pub fn run_expect(env: &TestEnv, etcd: &Etcd, args: &[&str], want: i32) -> Output {
    expect(run(env, etcd, args), want)
}

/// Waits for `child` (bounded) and asserts it succeeded.
#[track_caller]
pub fn finish(child: Child) -> Output {
    expect(wait_output(child, PATIENCE), 0)
}

/// Lets the holder `name` of [`hold`] go and asserts it released cleanly.
#[track_caller]
pub fn release(env: &TestEnv, holder: Child, name: &str) -> Output {
    go(env, name);
    finish(holder)
}

/// `with -q -w WAIT --name NAME -- touch MARKER` in the background: a waiter whose
/// command leaves MARKER once it holds the lock.
pub fn waiter(env: &TestEnv, etcd: &Etcd, wait: &str, name: &str, marker: &str) -> Child {
    spawn(
        env,
        etcd,
        &[
            "with", "-q", "-w", wait, "--name", name, "--", "touch", marker,
        ],
    )
}

/// `with -n [-s] --name NAME -- true`: the exit status of one try at the lock.
pub fn try_once(env: &TestEnv, etcd: &Etcd, name: &str, shared: bool) -> Output {
    let mut args = vec!["with", "-n"];
    if shared {
        args.push("-s");
    }
    args.extend(["--name", name, "--", "true"]);
    run(env, etcd, &args)
}

/// A one-member etcd and a test directory; `None` (the test skipped) without etcd.
pub fn single() -> Option<(Etcd, TestEnv)> {
    Etcd::single().map(|etcd| (etcd, TestEnv::new()))
}

/// `with --name NAME -- sh -c SCRIPT` in the background.
pub fn with_sh(env: &TestEnv, etcd: &Etcd, name: &str, script: &str) -> Child {
    spawn(
        env,
        etcd,
        &["with", "--name", name, "--", "sh", "-c", script],
    )
}
