//! `--name NAME` on the local backend: a name, not a path, names the lock.

//! Portable: the commands run under the lock are the test suite's helper
//! (`helper.rs`) and lockrun itself, so these cases run under Wine too.

use crate::helper::helper_argv;
use crate::testenv::{PATIENCE, TestEnv, bin, code, go, stderr, wait_output};

/// `lockrun with ARGS -- helper hold`, returned once the helper runs under the lock.
#[cfg(unix)]
fn hold(env: &TestEnv, args: &[&str], name: &str) -> std::process::Child {
    let ready = env
        .path(&format!("{name}.ready"))
        .to_string_lossy()
        .into_owned();
    let go = env
        .path(&format!("{name}.go"))
        .to_string_lossy()
        .into_owned();
    let mut full: Vec<String> = vec!["with".into()];
    full.extend(args.iter().map(|a| a.to_string()));
    full.push("--".into());
    full.extend(helper_argv("hold", &[&ready, &go]));
    let child = env
        .command(&full)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::testenv::wait_until(&format!("{name} to hold the lock"), || {
        env.path(&format!("{name}.ready")).exists()
    });
    child
}

#[test]
fn a_name_is_one_lock_from_any_directory_in_the_state_dir() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("a")).unwrap();
    std::fs::create_dir_all(env.path("b/c")).unwrap();
    let state = env.path("state");
    let holder = hold_with_state(&env, &state);
    // From another directory the same name is busy, and the busy line names it.
    let ran = env.path("b/c/ran").to_string_lossy().into_owned();
    let ran_argv = helper_argv("hold", &[&ran, &ran]);
    let out = env
        .command([
            "with",
            "-n",
            "--name",
            "nightly-backup",
            "--",
            &ran_argv[0],
            &ran_argv[1],
            &ran_argv[2],
            &ran_argv[3],
            &ran_argv[4],
        ])
        .current_dir(env.path("b/c"))
        .env("XDG_STATE_HOME", &state)
        .env("LOCALAPPDATA", &state)
        .output()
        .unwrap();
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("lockrun: nightly-backup is locked by "),
        "{}",
        stderr(&out)
    );
    assert!(
        state.join("lockrun").is_dir(),
        "no lock dir in the state dir"
    );
    // Another name is free.
    let out = env
        .command(["with", "-n", "--name", "other", "--", bin(), "--version"])
        .env("XDG_STATE_HOME", &state)
        .env("LOCALAPPDATA", &state)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    go(&env, "h");
    let out = wait_output(holder, PATIENCE);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!env.path("b/c/ran").exists());
}

/// Unix only: on Windows a path's key is its case-folded text while a name is taken as
/// written (a name must mean one lock on every host), so a name spelling a path is that
/// file's lock only when spelled in lower case there.
#[cfg(unix)]
#[test]
fn a_name_that_spells_a_path_is_that_files_lock_in_the_same_lock_dir() {
    let env = TestEnv::new();
    let file = env.path("data.json");
    let canonical = std::fs::canonicalize(env.root()).unwrap().join("data.json");
    let holder = hold(&env, &["--lock-dir", "locks", file.to_str().unwrap()], "h");
    let out = env
        .command([
            "with",
            "-n",
            "--lock-dir",
            "locks",
            "--name",
            canonical.to_str().unwrap(),
            "--",
            bin(),
            "--version",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    go(&env, "h");
    let out = wait_output(holder, PATIENCE);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn status_and_update_take_a_name_too() {
    let env = TestEnv::new();
    env.write("memo.json", "{\"n\":0}\n");
    let out = env
        .command([
            "update",
            "--lock-dir",
            "locks",
            "--name",
            "memo",
            "memo.json",
            ".n += 1",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.read("memo.json"), "{\"n\":1}\n");
    let out = env
        .command(["status", "--lock-dir", "locks", "--name", "memo"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A name with '//' could reach into another name's keys in etcd: refused everywhere.
    let out = env
        .command(["with", "--name", "a//b", "--", bin(), "--version"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

/// `with --name N FILE -- CMD` would run FILE as the command (clap drops the `--`): it
/// is a usage error naming FILE, and nothing runs. (Unix: it runs sh scripts.)
#[cfg(unix)]
#[test]
fn with_name_and_a_file_before_the_dashes_is_refused() {
    let env = TestEnv::new();
    env.write("f.sh", "#!/bin/sh\ntouch ran-file\n");
    std::fs::set_permissions(
        env.path("f.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = env
        .command([
            "with",
            "--name",
            "job",
            "--lock-dir",
            "locks",
            "./f.sh",
            "--",
            "touch",
            "ran-cmd",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("lockrun: with --name: \"./f.sh\" before '--'"),
        "{err}"
    );
    assert!(!env.path("ran-file").exists() && !env.path("ran-cmd").exists());
    // Without FILE, or without `--`, everything after the options is the command.
    for args in [
        &[
            "with",
            "--name",
            "job",
            "--lock-dir",
            "locks",
            "--",
            "touch",
            "a",
        ][..],
        &["with", "--name", "job", "--lock-dir", "locks", "touch", "b"][..],
        &[
            "with",
            "--name",
            "job",
            "--lock-dir",
            "locks",
            "--",
            "sh",
            "-c",
            "touch c",
            "--",
        ][..],
        // The command's own `--` (git log -- path, sh -c '...' -- args), no `--` before.
        &[
            "with",
            "--name",
            "job",
            "--lock-dir",
            "locks",
            "sh",
            "-c",
            "touch \"$1\"",
            "--",
            "d",
        ][..],
        &[
            "with",
            "--name",
            "job",
            "--lock-dir",
            "locks",
            "--",
            "sh",
            "-c",
            "touch \"$1\"",
            "--",
            "e",
        ][..],
    ] {
        let out = env.command(args).output().unwrap();
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    }
    for f in ["a", "b", "c", "d", "e"] {
        assert!(env.path(f).exists(), "{f}");
    }
}

/// `with --name nightly-backup -- helper hold` with the state directory `state`.
/// (`LOCALAPPDATA` too: Windows keeps name locks there whatever `XDG_STATE_HOME` says.)
fn hold_with_state(env: &TestEnv, state: &std::path::Path) -> std::process::Child {
    let ready = env.path("h.ready").to_string_lossy().into_owned();
    let go = env.path("h.go").to_string_lossy().into_owned();
    let mut full: Vec<String> = ["with", "--name", "nightly-backup", "--"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    full.extend(helper_argv("hold", &[&ready, &go]));
    let child = env
        .command(&full)
        .env("XDG_STATE_HOME", state)
        .env("LOCALAPPDATA", state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::testenv::wait_until("the holder", || env.path("h.ready").exists());
    child
}
