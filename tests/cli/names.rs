//! `--name NAME` on the local backend: a name, not a path, names the lock.

use crate::testenv::{PATIENCE, TestEnv, code, go, hold, stderr, wait_output};

#[test]
fn a_name_is_one_lock_from_any_directory_in_the_state_dir() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("a")).unwrap();
    std::fs::create_dir_all(env.path("b/c")).unwrap();
    let state = env.path("state");
    let holder = {
        let script = "touch h.ready; while [ ! -e h.go ]; do sleep 0.01; done";
        let child = env
            .command(["with", "--name", "nightly-backup", "--", "sh", "-c", script])
            .env("XDG_STATE_HOME", &state)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        crate::testenv::wait_until("the holder", || env.path("h.ready").exists());
        child
    };
    // From another directory the same name is busy, and the busy line names it.
    let out = env
        .command([
            "with",
            "-n",
            "--name",
            "nightly-backup",
            "--",
            "touch",
            "ran",
        ])
        .current_dir(env.path("b/c"))
        .env("XDG_STATE_HOME", &state)
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
        .command(["with", "-n", "--name", "other", "--", "true"])
        .env("XDG_STATE_HOME", &state)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    go(&env, "h");
    let out = wait_output(holder, PATIENCE);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!env.path("b/c/ran").exists());
}

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
            "true",
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
        .command(["with", "--name", "a//b", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

/// `with --name N FILE -- CMD` would run FILE as the command (clap drops the `--`): it
/// is a usage error naming FILE, and nothing runs.
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
    ] {
        let out = env.command(args).output().unwrap();
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    }
    for f in ["a", "b", "c"] {
        assert!(env.path(f).exists(), "{f}");
    }
}
