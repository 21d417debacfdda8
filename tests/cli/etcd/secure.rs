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

#[test]
fn acquire_and_release_over_tls_with_relative_files_and_no_backend_variable() {
    // acquire's keeper runs in `/`: relative TLS files must still be the caller's. And
    // release takes the members from the id, the TLS files from the options or the
    // environment, with no --backend or LOCKRUN_BACKEND.
    let Some(etcd) = Etcd::start(Options {
        members: 1,
        tls: true,
        ..Options::default()
    }) else {
        return;
    };
    let env = TestEnv::new();
    let script = r#"ca=$LOCKRUN_ETCD_CA cert=$LOCKRUN_ETCD_CERT key=$LOCKRUN_ETCD_KEY
cp "$ca" ca.pem && cp "$cert" c.pem && cp "$key" k.pem || exit 8
unset LOCKRUN_ETCD_CA LOCKRUN_ETCD_CERT LOCKRUN_ETCD_KEY
id=$("$L" acquire --name job --etcd-ca ca.pem --etcd-cert c.pem --etcd-key k.pem) || exit 9
"$L" status --name job --etcd-ca ca.pem --etcd-cert c.pem --etcd-key k.pem >/dev/null
echo "held=$?"
unset LOCKRUN_BACKEND
LOCKRUN_ETCD_CA=$ca LOCKRUN_ETCD_CERT=$cert LOCKRUN_ETCD_KEY=$key "$L" release "$id"
echo "released=$?""#;
    let out = finish(shell(&env, &etcd, script));
    let said = crate::testenv::stdout(&out);
    assert_eq!(code(&out), 0, "{said}{}", stderr(&out));
    assert_eq!(said, "held=1\nreleased=0\n", "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let out = run(&env, &etcd, &["status", "--name", "job"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
