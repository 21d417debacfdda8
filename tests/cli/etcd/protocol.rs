//! man/lockrun-protocol.5 documents what lockrun writes into etcd: the key layout, every
//! key of the stored value, and the keeper's note of `acquire`.

use super::harness::*;
use crate::testenv::{PATIENCE, code, stderr, stdout, wait_output};

const PROTOCOL: &str = include_str!("../../../man/lockrun-protocol.5");

#[test]
fn protocol_page_documents_the_etcd_keys_and_values() {
    let Some((etcd, env)) = single() else { return };
    // A `with` holder and an `acquire` holder, each printing what etcd and the keeper's
    // note hold while the lock is theirs.
    let dump = "etcdctl --endpoints=$E get --prefix lockrun/";
    let out = wait_output(
        shell(
            &env,
            &etcd,
            &format!(
                r#"export E={}
"$L" with --label docs --name w -- sh -c '{dump}'
id=$("$L" acquire --name a) || exit 9
{dump}; echo "ID $id"; cat state/lockrun/etcd-leases/*; "$L" release "$id""#,
                etcd.endpoints()
            ),
        ),
        PATIENCE,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let mut keys = std::collections::BTreeSet::new();
    let mut lock_keys = Vec::new();
    for line in text.lines() {
        if line.starts_with("lockrun/") {
            lock_keys.push(line.to_string());
        } else if let Some((key, _)) = line.split_once(": ") {
            keys.insert(key.to_string());
        }
    }
    for key in [
        "PID",
        "ACQUIRED",
        "HOSTNAME",
        "MODE",
        "TARGET",
        "LEASE",
        "PID_START",
    ] {
        assert!(keys.contains(key), "no {key} written: {text}");
    }
    for key in ["KEEPER", "KEEPER_START", "OWNER", "HOST", "NAME"] {
        assert!(keys.contains(key), "the keeper's note has no {key}: {text}");
    }
    for key in &keys {
        assert!(
            PROTOCOL.contains(&format!("\\fB{key}\\fR")),
            "man/lockrun-protocol.5 does not document {key}"
        );
    }
    // <prefix><NAME>//<lease, 16 hex>, and LEASE repeats the lease.
    assert_eq!(lock_keys.len(), 2, "{text}");
    for (key, name) in lock_keys.iter().zip(["w", "a"]) {
        let lease = key
            .strip_prefix(&format!("lockrun/{name}//"))
            .unwrap_or_else(|| panic!("{key}"));
        assert!(
            lease.len() == 16 && lease.bytes().all(|b| b.is_ascii_hexdigit()),
            "{key}"
        );
        assert!(text.contains(&format!("LEASE: {lease}\n")), "{text}");
    }
    // acquire's id is URL/key.
    assert!(
        text.contains(&format!("ID {}/{}", etcd.url(), lock_keys[1])),
        "{text}"
    );
    for documented in [
        "\\fBRELEASED\\fR",
        "\\fBLOST\\fR",
        "\\fBLOCKRUN_FENCING_TOKEN\\fR",
    ] {
        assert!(PROTOCOL.contains(documented), "{documented}");
    }
    assert_eq!(code(&run(&env, &etcd, &["status", "--name", "a"])), 0);
}
