//! Real processes racing and dying: no lost updates, no torn files, no leftovers.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::testenv::Check;
use crate::testenv::{PATIENCE, Rng, TestEnv, bin, dead_pid, stderr, temp_files, wait_output};

#[test]
fn four_processes_by_250_updates_lose_nothing() {
    let env = TestEnv::new();
    env.write("n.json", "{\"n\": 0}\n");
    let script = format!(
        "for i in $(seq 250); do {bin} update -w 60 n.json '.n += 1' || exit 1; done",
        bin = bin()
    );
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new("sh")
                .args(["-c", &script])
                .current_dir(env.root())
                .env_remove("LOCKRUN_DIR")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = wait_output(child, Duration::from_secs(120));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(env.read("n.json"), "{\"n\": 1000}\n");
    assert!(temp_files(env.root()).is_empty());
}

#[test]
fn three_clients_by_five_session_appends_keep_all_fifteen() {
    let env = TestEnv::new();
    env.write("memory.json", "{\n  \"sessions\": []\n}\n");
    let children: Vec<_> = (0..3)
        .map(|c| {
            let script = format!(
                "for i in 1 2 3 4 5; do {bin} update -w 60 memory.json '.sessions += [{{\"id\": $id}}]' --arg id c{c}-$i || exit 1; done"
                , bin = bin()
            );
            Command::new("sh")
                .args(["-c", &script])
                .current_dir(env.root())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = wait_output(child, Duration::from_secs(60));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let doc: serde_json::Value = serde_json::from_str(&env.read("memory.json")).unwrap();
    let ids: HashSet<String> = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 15);
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 15);
}

#[test]
fn kill_9_at_random_moments_never_tears_the_file() {
    let env = TestEnv::new();
    // A padded document so that writing takes a little while.
    let pad = "x".repeat(200_000);
    env.write("k.json", &format!("{{\"n\": 0, \"pad\": \"{pad}\"}}\n"));
    let mut rng = Rng::seeded();
    let mut n = 0u64;
    let mut killed_mid_way = 0;
    for trial in 0..120 {
        let mut child = env
            .command(["update", "-w", "10", "k.json", ".n += 1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.next() % 8000));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if !status.success() {
            killed_mid_way += 1;
        }
        let text = env.read("k.json");
        let doc: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("trial {trial}: torn file ({e})"));
        let now = doc["n"].as_u64().unwrap();
        assert!(
            now == n || now == n + 1,
            "trial {trial}: n went from {n} to {now}"
        );
        assert_eq!(doc["pad"].as_str().unwrap().len(), pad.len());
        n = now;
        // A killed writer may leave its temp file; the next writer removes it.
        assert!(
            temp_files(env.root()).len() <= 1,
            "{:?}",
            temp_files(env.root())
        );
    }
    // The next update proceeds (breaking the dead lock at once) and cleans up.
    let start = Instant::now();
    let out = env.run(["update", "-w", "5", "k.json", ".n += 1"]);
    out.assert_success();
    assert!(start.elapsed() < PATIENCE);
    assert!(
        temp_files(env.root()).is_empty(),
        "{:?}",
        temp_files(env.root())
    );
    assert!(killed_mid_way > 0, "no trial was killed before finishing");
}

#[test]
fn ulimit_f_mid_write_keeps_the_original_and_exits_74() {
    let env = TestEnv::new();
    let original = "{\n  \"n\": 1\n}\n";
    env.write("u.json", original);
    let script = format!(
        "ulimit -f 8; exec {bin} update u.json '.big = ([range(100000)] | tostring)'",
        bin = bin()
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .current_dir(env.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, PATIENCE);
    out.assert_failure_with(74);
    assert!(stderr(&out).contains("u.json"), "{}", stderr(&out));
    assert_eq!(env.read("u.json"), original);
    assert!(
        temp_files(env.root()).is_empty(),
        "{:?}",
        temp_files(env.root())
    );
}

#[test]
fn symlinked_target_stays_a_symlink_and_mode_0640_is_kept() {
    let env = TestEnv::new();
    let real = env.write("data/real.json", "{\"a\": 1}\n");
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("data/real.json", env.path("link.json")).unwrap();
    let out = env.run(["update", "link.json", ".a = 2", "--backup"]);
    out.assert_success();
    let link_meta = fs::symlink_metadata(env.path("link.json")).unwrap();
    assert!(link_meta.file_type().is_symlink());
    assert_eq!(env.read("data/real.json"), "{\"a\": 2}\n");
    assert_eq!(fs::metadata(&real).unwrap().mode() & 0o7777, 0o640);
    // The backup sits beside the real file, with its mode.
    assert_eq!(env.read("data/real.json~"), "{\"a\": 1}\n");
    assert_eq!(
        fs::metadata(env.path("data/real.json~")).unwrap().mode() & 0o7777,
        0o640
    );
}

#[test]
fn a_writer_removes_temp_files_of_gone_writers_and_spares_running_ones() {
    let env = TestEnv::new();
    env.write("t.json", "{\"n\": 0}\n");
    let gone_pid = dead_pid();
    let mut running = Command::new("sleep").arg("30").spawn().unwrap();
    let dead_tmp = format!(".t.json.lockrun-tmp-{gone_pid}-1a");
    let live_tmp = format!(".t.json.lockrun-tmp-{}-2b", running.id());
    env.write(&dead_tmp, "{\"torn");
    env.write(&live_tmp, "{\"in flight");
    let out = env.run(["update", "t.json", ".n += 1"]);
    let left = temp_files(env.root());
    running.kill().unwrap();
    running.wait().unwrap();
    out.assert_success();
    assert_eq!(env.read("t.json"), "{\"n\": 1}\n");
    assert_eq!(
        left,
        vec![live_tmp],
        "the gone writer's temp must go, the running one's stay"
    );
}
