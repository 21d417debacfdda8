//! TLS with certificates the test makes (openssl), and etcd's user/password auth.

use super::fixture::{Etcd, Options};
use super::harness::*;
use crate::testenv::{TestEnv, code, stderr};

#[test]
fn tls_with_client_certificates() {
    let Some(etcd) = Etcd::start(Options {
        members: 1,
        tls: true,
        ..Options::default()
    }) else {
        return;
    };
    let env = TestEnv::new();
    run_expect(
        &env,
        &etcd,
        &["with", "--name", "job", "--", "touch", "ran"],
        0,
    );
    assert!(env.path("ran").exists());
    // Without our CA the server's certificate is refused: one line, nothing run.
    let out = lockrun(
        &env,
        &etcd,
        &["with", "-w", "1", "--name", "job", "--", "touch", "ran2"],
    )
    .env_remove("LOCKRUN_ETCD_CA")
    .output()
    .unwrap();
    assert_ne!(code(&out), 0);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(!env.path("ran2").exists());
}

#[test]
fn auth_takes_the_user_from_the_environment() {
    let Some(mut etcd) = Etcd::single() else {
        return;
    };
    etcd.enable_auth("alice", "alice-secret", "lockrun/");
    let env = TestEnv::new();
    let out = lockrun(
        &env,
        &etcd,
        &["with", "--name", "job", "--", "touch", "ran"],
    )
    .env("LOCKRUN_ETCD_USER", "alice")
    .env("LOCKRUN_ETCD_PASSWORD", "alice-secret")
    .output()
    .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("ran").exists());
    // A wrong password, or none: permission denied (77), one line, nothing run.
    for password in [Some("wrong"), None] {
        let mut cmd = lockrun(
            &env,
            &etcd,
            &["with", "-w", "1", "--name", "job", "--", "touch", "ran2"],
        );
        if let Some(p) = password {
            cmd.env("LOCKRUN_ETCD_USER", "alice")
                .env("LOCKRUN_ETCD_PASSWORD", p);
        }
        let out = cmd.output().unwrap();
        assert_eq!(code(&out), 77, "{password:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("etcd"), "{err}");
        assert!(
            !err.contains("alice-secret") && !err.contains("wrong"),
            "a password in the message: {err}"
        );
    }
    assert!(!env.path("ran2").exists());
}
