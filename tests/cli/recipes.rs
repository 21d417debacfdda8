//! The README's recipes, run as written: the code blocks are taken from README.md
//! itself, with HOME in a temp dir and the built lockrun first on PATH.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::testenv::{Check, Skip, skip};
use crate::testenv::{PATIENCE, TestEnv, bin, code, go, hold, stderr, stdout, wait_output};

const README: &str = include_str!("../../README.md");

/// The fenced code blocks (language, body) of the README section headed `heading`,
/// up to the next heading outside a code block.
fn blocks(heading: &str) -> Vec<(String, String)> {
    let mut lines = README.lines().skip_while(|l| *l != heading);
    assert!(lines.next().is_some(), "README has no {heading}");
    let mut out = Vec::new();
    while let Some(line) = lines.next() {
        if line.starts_with('#') {
            break;
        }
        if let Some(lang) = line.strip_prefix("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            out.push((lang.to_string(), body.join("\n") + "\n"));
        }
    }
    out
}

fn block(heading: &str, lang: &str, nth: usize) -> String {
    blocks(heading)
        .into_iter()
        .filter(|(l, _)| l == lang)
        .nth(nth)
        .unwrap_or_else(|| panic!("{heading}: no {lang} block #{nth}"))
        .1
}

fn path_with_lockrun() -> String {
    let dir = Path::new(bin()).parent().expect("bin dir");
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `program args` with HOME = the temp dir, lockrun on PATH, `stdin` fed in.
fn run(env: &TestEnv, program: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(env.root())
        .env("HOME", env.root())
        .env("PATH", path_with_lockrun())
        .env_remove("LOCKRUN_DIR")
        .env_remove("LOCKRUN_TIMEOUT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("feed stdin");
    drop(input);
    wait_output(child, PATIENCE)
}

fn executable(env: &TestEnv, rel: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = env.write(rel, body);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn claude_code_hooks_record_and_never_wait() {
    if !have("jq") {
        skip(Skip::Missing("the record.sh recipe needs jq".into()));
        return;
    }
    let env = TestEnv::new();
    let heading = "### Claude Code hooks";
    let settings: serde_json::Value =
        serde_json::from_str(&block(heading, "json", 0)).expect("settings.json parses");
    env.write(".claude/settings.json", &block(heading, "json", 0));
    let post = settings["hooks"]["PostToolUse"][0]["hooks"][0]["command"]
        .as_str()
        .expect("PostToolUse command")
        .to_string();
    let stop = settings["hooks"]["Stop"][0]["hooks"][0]["command"]
        .as_str()
        .expect("Stop command")
        .to_string();
    // Updates wait a little rather than drop data (issue 11).
    assert!(post.contains("-w 2 -E 0") && stop.contains("-w 2 -E 0"));
    executable(&env, "aiconfig/hooks/record.sh", &block(heading, "sh", 0));

    for shell in ["sh", "bash"] {
        let out = run(
            &env,
            shell,
            &["-c", &post],
            r#"{"session_id":"s1","tool_name":"Edit"}"#,
        );
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
    }
    let out = run(&env, "sh", &["-c", &stop], r#"{"session_id":"s2"}"#);
    out.assert_success();
    let memory: serde_json::Value =
        serde_json::from_str(&env.read("aiconfig/memory.json")).expect("valid JSON");
    assert_eq!(memory["edits"], 2);
    assert_eq!(memory["last_session"], "s1");
    assert_eq!(memory["stops"], 1);
    assert_eq!(memory["last_stop"], "s2");

    // The "try it by hand" line.
    let line = README
        .lines()
        .find(|l| l.starts_with("Try a hook's command by hand: `"))
        .expect("by-hand line");
    let cmd = line
        .trim_start_matches("Try a hook's command by hand: `")
        .trim_end_matches("`.");
    let out = run(&env, "sh", &["-c", cmd], "");
    out.assert_success();

    // Two sessions' hooks colliding, while a third session holds the file for a
    // moment: every update lands.
    let before: serde_json::Value =
        serde_json::from_str(&env.read("aiconfig/memory.json")).expect("valid JSON");
    let holder = hold(
        &env,
        &["--label", "other-session", "aiconfig/memory.json"],
        "brief",
    );
    let runs: Vec<_> = [(&post, "s4"), (&post, "s5"), (&stop, "s6"), (&stop, "s7")]
        .into_iter()
        .map(|(command, session)| {
            let mut child = Command::new("sh")
                .args(["-c", command])
                .current_dir(env.root())
                .env("HOME", env.root())
                .env("PATH", path_with_lockrun())
                .env_remove("LOCKRUN_DIR")
                .env_remove("LOCKRUN_TIMEOUT")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn hook");
            let mut input = child.stdin.take().expect("stdin");
            input
                .write_all(format!(r#"{{"session_id":"{session}"}}"#).as_bytes())
                .expect("feed stdin");
            drop(input);
            child
        })
        .collect();
    // The hooks are waiting on the lock now (or soon); the holder lets go well within
    // their 2 s wait.
    std::thread::sleep(Duration::from_millis(300));
    go(&env, "brief");
    for child in runs {
        let out = wait_output(child, PATIENCE);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    wait_output(holder, PATIENCE).assert_success();
    let memory: serde_json::Value =
        serde_json::from_str(&env.read("aiconfig/memory.json")).expect("valid JSON");
    assert_eq!(memory["edits"], before["edits"].as_i64().unwrap() + 2);
    assert_eq!(memory["stops"], before["stops"].as_i64().unwrap() + 2);

    // Busy for longer than the wait: both hooks give up after 2 s with 0 and change
    // nothing.
    let before = env.read("aiconfig/memory.json");
    let holder = hold(
        &env,
        &["--label", "other-session", "aiconfig/memory.json"],
        "holder",
    );
    for command in [&post, &stop] {
        let start = Instant::now();
        let out = run(&env, "sh", &["-c", command], r#"{"session_id":"s3"}"#);
        out.assert_success();
        assert!(stderr(&out).contains("is locked by other-session"));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{command} waited too long"
        );
    }
    assert_eq!(env.read("aiconfig/memory.json"), before);
    go(&env, "holder");
    wait_output(holder, PATIENCE).assert_success();
}

#[test]
fn cursor_hook_script_records_the_edited_file() {
    let env = TestEnv::new();
    let heading = "### Cursor hooks";
    let hooks: serde_json::Value =
        serde_json::from_str(&block(heading, "json", 0)).expect("hooks.json parses");
    let command = hooks["hooks"]["afterFileEdit"][0]["command"]
        .as_str()
        .expect("afterFileEdit command");
    assert_eq!(command, "./hooks/record-edit.sh");
    executable(
        &env,
        ".cursor/hooks/record-edit.sh",
        &block(heading, "sh", 0),
    );
    // lockrun never creates the memory file's directory: the user's ~/aiconfig exists.
    std::fs::create_dir_all(env.path("aiconfig")).expect("mkdir aiconfig");
    let event = r#"{"conversation_id":"c1","hook_event_name":"afterFileEdit","file_path":"/repo/src/main.rs","edits":[]}"#;
    let out = run(
        &env,
        "sh",
        &["-c", "cd .cursor && ./hooks/record-edit.sh"],
        event,
    );
    out.assert_success();
    let memory: serde_json::Value =
        serde_json::from_str(&env.read("aiconfig/memory.json")).expect("valid JSON");
    assert_eq!(memory["edits"], 1);
    assert_eq!(memory["last_file"], "/repo/src/main.rs");
}

#[test]
fn mcp_server_python_recipe_updates_per_call_and_reports_busy() {
    if !have("python3") {
        skip(Skip::Missing("no python3".into()));
        return;
    }
    let env = TestEnv::new();
    let module = block("### An MCP server", "python", 0);
    let script = format!(
        "{module}\nadd_note('hello')\nadd_note('quotes \" and $dollars')\nprint(json.dumps(notes()))\n"
    );
    env.write("server.py", &script);
    let out = run(&env, "python3", &["server.py"], "");
    out.assert_success();
    assert_eq!(
        stdout(&out),
        "[{\"text\": \"hello\"}, {\"text\": \"quotes \\\" and $dollars\"}]\n"
    );

    let holder = hold(&env, &["--label", "other-session", "memory.json"], "holder");
    let start = Instant::now();
    let out = run(&env, "python3", &["server.py"], "");
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("is locked by other-session")
            && stderr(&out).contains("gave up after 2s"),
        "{}",
        stderr(&out)
    );
    assert!(start.elapsed() < Duration::from_secs(4));
    go(&env, "holder");
    wait_output(holder, PATIENCE).assert_success();
}

#[test]
fn cron_line_skips_an_overlap_and_stops_a_hung_run() {
    let env = TestEnv::new();
    let cron = block("### Cron jobs that never overlap", "cron", 0);
    // Drop the five schedule fields; cron hands the rest to sh.
    let command: String = cron
        .trim()
        .splitn(6, ' ')
        .nth(5)
        .expect("a cron line")
        .to_string();
    std::fs::create_dir_all(env.path(".cargo/bin")).expect("mkdir");
    std::os::unix::fs::symlink(bin(), env.path(".cargo/bin/lockrun")).expect("symlink");
    std::fs::create_dir_all(env.path(".cache")).expect("mkdir");
    executable(
        &env,
        "bin/backup.sh",
        "#!/bin/sh\necho start >> \"$HOME/runs\"\nexec sleep \"${BACKUP_SECS:-1}\"\n",
    );
    let first = Command::new("sh")
        .args(["-c", &command])
        .current_dir(env.root())
        .env("HOME", env.root())
        .env("BACKUP_SECS", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("first run");
    crate::testenv::wait_until("the first run to start", || env.path("runs").exists());
    let out = run(&env, "sh", &["-c", &command], "");
    out.assert_failure_with(75);
    assert!(
        stderr(&out).contains("is locked by backup"),
        "{}",
        stderr(&out)
    );
    let first = wait_output(first, PATIENCE);
    first.assert_success();
    assert_eq!(
        env.read("runs"),
        "start\n",
        "the overlapping run was skipped"
    );

    // --max-hold, shortened: a hung run is stopped with 124.
    let short = command.replace("--max-hold 3600", "--max-hold 0.5 --kill-after 0.5");
    assert_ne!(short, command);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &short])
        .current_dir(env.root())
        .env("HOME", env.root())
        .env("BACKUP_SECS", "30")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = wait_output(cmd.spawn().expect("hung run"), PATIENCE);
    out.assert_failure_with(124);
    assert!(start.elapsed() < Duration::from_secs(10));
}
