//! The JSON subcommands end to end: faithful output, pointer/patch/append/read/write,
//! backups, schemas, and the jq differences the `update` help claims.

use std::fs;
use std::io::Write;
use std::process::Stdio;

use crate::testenv::Check;
use crate::testenv::{PATIENCE, TestEnv, code, stderr, stdout, wait_output};

fn ok(env: &TestEnv, args: &[&str]) -> String {
    let out = env.run(args);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn run_stdin(env: &TestEnv, args: &[&str], input: &str) -> std::process::Output {
    let mut child = env
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    wait_output(child, PATIENCE)
}

#[test]
fn layout_key_order_and_numbers_round_trip() {
    let cases = [
        // compact, no final newline
        (
            "{\"z\":1,\"a\":[1.0,1e5,2e-3],\"big\":123456789012345678901234567890,\"m\":-0}",
            "{\"z\":1,\"a\":[1.0,1e5,2e-3],\"big\":123456789012345678901234567890,\"m\":-0,\"new\":true}",
        ),
        // Python json.dumps style
        (
            "{\"z\": 1, \"a\": [1.50, 1E+5]}\n",
            "{\"z\": 1, \"a\": [1.50, 1E+5], \"new\": true}\n",
        ),
        // four-space indent, no final newline
        (
            "{\n    \"z\": {\n        \"y\": 1.0\n    },\n    \"a\": []\n}",
            "{\n    \"z\": {\n        \"y\": 1.0\n    },\n    \"a\": [],\n    \"new\": true\n}",
        ),
        // tabs, CRLF
        (
            "{\r\n\t\"b\": \"\\u00e9\u{e9}\",\r\n\t\"a\": 0.1\r\n}\r\n",
            "{\r\n\t\"b\": \"éé\",\r\n\t\"a\": 0.1,\r\n\t\"new\": true\r\n}\r\n",
        ),
    ];
    for (before, after) in cases {
        let env = TestEnv::new();
        env.write("f.json", before);
        ok(&env, &["update", "f.json", ".new = true"]);
        assert_eq!(env.read("f.json"), after);
    }
}

#[test]
fn deleting_keys_keeps_the_order_of_the_others() {
    let env = TestEnv::new();
    env.write("f.json", "{\"a\":1,\"b\":2,\"c\":3,\"d\":4}\n");
    ok(&env, &["update", "f.json", "del(.b)"]);
    assert_eq!(env.read("f.json"), "{\"a\":1,\"c\":3,\"d\":4}\n");
    ok(&env, &["delete", "f.json", "/a"]);
    assert_eq!(env.read("f.json"), "{\"c\":3,\"d\":4}\n");
    // A deliberate reordering survives.
    ok(
        &env,
        &["update", "f.json", "to_entries | reverse | from_entries"],
    );
    assert_eq!(env.read("f.json"), "{\"d\":4,\"c\":3}\n");
}

#[test]
fn a_no_op_update_writes_nothing() {
    let env = TestEnv::new();
    // A layout lockrun would not reproduce exactly: proof that nothing is rewritten.
    let text = "{ \"a\" : 1 ,\"b\":[ 1.0 ] }\n";
    env.write("f.json", text);
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    fs::File::options()
        .write(true)
        .open(env.path("f.json"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    #[cfg(unix)]
    let ino = fs::metadata(env.path("f.json")).unwrap();
    for filter in [".", ".a = 1", ".b[0] = .b[0]", ".a |= ."] {
        ok(&env, &["update", "f.json", filter, "--backup"]);
    }
    ok(&env, &["set", "f.json", "/a", "1"]);
    let meta = fs::metadata(env.path("f.json")).unwrap();
    assert_eq!(meta.modified().unwrap(), old);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.ino(), ino.ino());
    }
    assert_eq!(env.read("f.json"), text);
    assert!(!env.path("f.json~").exists(), "no backup of a no-op");
}

#[test]
fn update_args_env_create_print_dry_run() {
    let env = TestEnv::new();
    let out = env.run(["update", "m.json", ".a = 1"]);
    out.assert_failure_with(66);
    let printed = ok(
        &env,
        &[
            "update",
            "m.json",
            "--create",
            "{}",
            "--print",
            "--arg",
            "s",
            "x",
            "--argjson",
            "j",
            "{\"k\":[1,2]}",
            ".s = $s | .j = $j | .named = $ARGS.named.s | .home = $ENV.HOME",
        ],
    );
    // $ENV.HOME is null where HOME is unset (Windows outside Git Bash, Wine).
    let home =
        std::env::var("HOME").map_or("null".to_string(), |h| serde_json::to_string(&h).unwrap());
    let expected = format!(
        "{{\n  \"s\": \"x\",\n  \"j\": {{\n    \"k\": [\n      1,\n      2\n    ]\n  }},\n  \"named\": \"x\",\n  \"home\": {home}\n}}\n"
    );
    assert_eq!(printed, expected);
    assert_eq!(env.read("m.json"), expected);
    let dry = ok(&env, &["update", "m.json", ".s = \"y\"", "--dry-run"]);
    assert!(dry.contains("\"s\": \"y\""));
    assert_eq!(env.read("m.json"), expected);
}

#[test]
fn set_get_delete_with_pointers() {
    let env = TestEnv::new();
    env.write("f.json", "{\"a\":{\"b~c\":1,\"list\":[1]}}");
    ok(&env, &["set", "f.json", "/a/list/-", "2"]);
    ok(&env, &["set", "f.json", "/a/new/deep", "{\"x\":null}"]);
    ok(&env, &["set", "f.json", "/s", "--string", "{not json}"]);
    assert_eq!(
        env.read("f.json"),
        "{\"a\":{\"b~c\":1,\"list\":[1,2],\"new\":{\"deep\":{\"x\":null}}},\"s\":\"{not json}\"}"
    );
    assert_eq!(ok(&env, &["get", "f.json", "/a/b~0c"]), "1\n");
    assert_eq!(ok(&env, &["get", "f.json", "/s", "--raw"]), "{not json}\n");
    assert_eq!(ok(&env, &["get", "f.json", "/a/list", "-c"]), "[1,2]\n");
    assert_eq!(ok(&env, &["get", "f.json", "/a/list"]), "[\n  1,\n  2\n]\n");
    ok(&env, &["delete", "f.json", "/a/list/0"]);
    ok(&env, &["delete", "f.json", "/nothing", "--force"]);
    assert_eq!(ok(&env, &["read", "f.json", "/a/list", "-c"]), "[2]\n");
}

#[test]
fn patch_and_merge_patch() {
    let env = TestEnv::new();
    env.write("f.json", "{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": 3\n}\n");
    env.write(
        "p.json",
        r#"[{"op":"test","path":"/a","value":1},{"op":"remove","path":"/a"},{"op":"add","path":"/d","value":[1]}]"#,
    );
    ok(&env, &["patch", "f.json", "p.json"]);
    assert_eq!(
        env.read("f.json"),
        "{\n  \"b\": 2,\n  \"c\": 3,\n  \"d\": [\n    1\n  ]\n}\n"
    );
    let out = run_stdin(
        &env,
        &["patch", "f.json", "-", "--merge"],
        r#"{"b": null, "c": {"x": 1}}"#,
    );
    out.assert_success();
    assert_eq!(
        env.read("f.json"),
        "{\n  \"c\": {\n    \"x\": 1\n  },\n  \"d\": [\n    1\n  ]\n}\n"
    );
    // All or nothing: the failing second op undoes the first.
    env.write(
        "bad.json",
        r#"[{"op":"add","path":"/e","value":1},{"op":"remove","path":"/zz"}]"#,
    );
    let before = env.read("f.json");
    let out = env.run(["patch", "f.json", "bad.json"]);
    out.assert_failure_with(65);
    assert_eq!(env.read("f.json"), before);
}

#[test]
fn append_writes_one_compact_line() {
    let env = TestEnv::new();
    ok(
        &env,
        &["append", "log.jsonl", "{\"a\": 1,\n \"b\": [1, 2]}"],
    );
    env.write("log2.jsonl", "{\"x\":1}"); // last line lacks its newline
    ok(&env, &["append", "log2.jsonl", "\"s\""]);
    ok(&env, &["append", "log.jsonl", "2"]);
    assert_eq!(env.read("log.jsonl"), "{\"a\":1,\"b\":[1,2]}\n2\n");
    assert_eq!(env.read("log2.jsonl"), "{\"x\":1}\n\"s\"\n");
}

#[test]
fn read_and_write() {
    let env = TestEnv::new();
    let text = "{ \"odd\" :  [1,2] }";
    env.write("f.json", text);
    assert_eq!(ok(&env, &["read", "f.json"]), format!("{text}\n"));
    assert_eq!(
        ok(&env, &["read", "f.json", "--no-lock", "-c"]),
        "{\"odd\":[1,2]}\n"
    );
    let out = run_stdin(&env, &["write", "f.json", "--json"], "[1]\n");
    out.assert_success();
    assert_eq!(env.read("f.json"), "[1]\n");
    let out = run_stdin(&env, &["write", "t.txt", "--no-lock"], "any text");
    out.assert_success();
    assert_eq!(env.read("t.txt"), "any text");
}

/// A document of `items` members in four-space indent with CRLF line ends and the
/// number spellings serde_json would normalise; `n` is its first member.
fn large_document(items: usize, n: u32) -> String {
    let mut text = format!("{{\r\n    \"n\": {n},\r\n    \"items\": [");
    for i in 0..items {
        if i > 0 {
            text.push(',');
        }
        let members = [
            format!("\"z\": {i}"),
            "\"a\": [\r\n                \"x\",\r\n                \"y\"\r\n            ]"
                .to_string(),
            format!("\"s\": \"name-{i}\""),
            format!("\"f\": {i}.50"),
            "\"e\": 1E+5".to_string(),
            format!("\"big\": 1234567890123456789012{i}"),
            "\"t\": []".to_string(),
        ];
        text.push_str("\r\n        {");
        text.push_str(&members.map(|m| format!("\r\n            {m}")).join(","));
        text.push_str("\r\n        }");
    }
    text.push_str("\r\n    ]\r\n}");
    text
}

#[test]
fn a_large_document_streamed_through_keeps_its_layout_and_numbers() {
    // Above 4 MiB `update` parses from the file and writes the new file as it renders
    // it; the result must be what the in-memory route gives: the same layout, key order
    // and number spellings, the same backup, --print and no-op behaviour.
    let env = TestEnv::new();
    let before = large_document(22_000, 0);
    assert!(
        before.len() > 4 << 20,
        "{} bytes is not large",
        before.len()
    );
    let after = large_document(22_000, 1);
    env.write("big.json", &before);
    ok(&env, &["update", "big.json", ".n += 1", "--backup"]);
    assert!(
        env.read("big.json") == after,
        "the large document changed beyond .n"
    );
    assert!(
        env.read("big.json~") == before,
        "the backup is not the old file"
    );
    let printed = ok(&env, &["update", "big.json", ".n -= 1", "--print"]);
    assert!(
        printed.trim_end() == before,
        "--print is not the new document"
    );
    assert!(env.read("big.json") == before);
    let unchanged = ok(&env, &["update", "big.json", ".", "--print"]);
    assert!(
        unchanged.trim_end() == before,
        "a no-op --print is not the document"
    );
    // A fault far into the file is reported at its line and column; nothing is written.
    let broken = before.replacen("\"name-21999\"", "\"name-21999\" oops", 1);
    env.write("big.json", &broken);
    let out = env.run(["update", "big.json", ".n += 1"]);
    out.assert_failure_with(65);
    assert!(
        stderr(&out).contains(&format!("big.json:{}:", 4 + 21_999 * 12 + 6)),
        "no line in: {}",
        stderr(&out)
    );
    assert!(env.read("big.json") == broken, "a refused update wrote");
}

#[test]
fn numbered_backups_are_pruned() {
    let env = TestEnv::new();
    env.write("f.json", "{\"n\":0}");
    for _ in 0..4 {
        ok(&env, &["update", "f.json", ".n += 1", "--backup-keep", "2"]);
    }
    assert!(!env.path("f.json.~1~").exists());
    assert!(!env.path("f.json.~2~").exists());
    assert_eq!(env.read("f.json.~3~"), "{\"n\":2}");
    assert_eq!(env.read("f.json.~4~"), "{\"n\":3}");
    ok(&env, &["update", "f.json", ".n += 1", "--backup"]);
    assert_eq!(env.read("f.json~"), "{\"n\":4}");
    ok(&env, &["update", "f.json", ".n += 1", "--backup=numbered"]);
    assert_eq!(env.read("f.json.~5~"), "{\"n\":5}");
}

#[test]
fn schema_lists_every_violation() {
    let env = TestEnv::new();
    env.write("f.json", "{\"a\":1,\"b\":\"x\"}");
    env.write(
        "s.json",
        r#"{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},"required":["a"]}"#,
    );
    ok(&env, &["update", "f.json", ".a = 2", "--schema", "s.json"]);
    let out = env.run([
        "update",
        "f.json",
        ".a = \"no\" | .b = 3",
        "--schema",
        "s.json",
    ]);
    out.assert_failure_with(65);
    let err = stderr(&out);
    assert!(
        err.contains("2 violations") && err.contains("/a") && err.contains("/b"),
        "{err}"
    );
    assert_eq!(env.read("f.json"), "{\"a\":2,\"b\":\"x\"}");
}

#[test]
fn busy_file_honours_nonblock_and_conflict_code() {
    let env = TestEnv::new();
    env.write("f.json", "{}");
    let mut argv = vec!["with".to_string(), "f.json".into(), "--".into()];
    argv.extend(crate::helper::helper_argv(
        "hold",
        &[
            &env.path("h.ready").to_string_lossy(),
            &env.path("h.go").to_string_lossy(),
        ],
    ));
    let holder = env.spawn(&argv);
    crate::testenv::wait_until("lock held", || {
        !env.lock_entries(".locks")
            .iter()
            .all(|e| !e.ends_with(".lock"))
    });
    let out = env.run(["update", "-n", "-E", "0", "f.json", ".a = 1"]);
    out.assert_success();
    let out = env.run(["update", "-n", "f.json", ".a = 1"]);
    out.assert_failure_with(75);
    assert_eq!(env.read("f.json"), "{}");
    fs::write(env.path("h.go"), "").unwrap();
    assert_eq!(code(&wait_output(holder, PATIENCE)), 0, "the holder");
}

/// Each claim of the jq-differences text, checked.
#[test]
fn jq_differences_hold() {
    let env = TestEnv::new();
    let run = |filter: &str| {
        env.write("d.json", "{\"a\":{\"k\":1},\"b\":[1,2,3]}");
        let out = env.run(["update", "d.json", filter, "--print"]);
        (
            code(&out),
            stdout(&out).replace([' ', '\n'], ""),
            stderr(&out),
        )
    };
    // (1) No modules; definitions written into the filter work.
    let (c, _, e) = run("import \"m\" as m; .");
    assert_eq!(c, 65, "{e}");
    assert!(run("def inc: . + 1; .x = (1 | inc)").1.contains("\"x\":2"));
    // (2) Regular expressions without look-around or back-references.
    let (c, _, e) = run(".x = (\"ab\" | test(\"a(?=b)\"))");
    assert_eq!(c, 65);
    assert!(e.contains("look-around"), "{e}");
    assert!(
        run(".x = (\"abab\" | capture(\"(?<p>ab)(?<q>ab)\") | .p == .q)")
            .1
            .contains("\"x\":true")
    );
    // (3) `|= empty` on several indices of one array removes one after the other;
    // del removes them together, as jq does.
    assert!(run(".b[0,1] |= empty").1.contains("\"b\":[2]"));
    assert!(run("del(.b[0,1])").1.contains("\"b\":[3]"));
    // (4) The words of an invalid path expression's error.
    let out = run(".x = (try path(map(.k)) catch .)").1;
    assert!(out.contains("invalidpathexpressionwithinput"), "{out}");
    // (5) JSON only, in and out; the workaround maps NaN away.
    env.write("nan.json", "{\"a\":NaN}");
    assert_eq!(code(&env.run(["update", "nan.json", "."])), 65);
    assert_eq!(run(".x = nan").0, 65);
    assert!(
        run(".x = (nan | if isnan then null end)")
            .1
            .contains("\"x\":null")
    );
    // (6) Computed numbers: tostring gives jq's text.
    assert!(
        run(".x = (10 * 1e16 | tostring)")
            .1
            .contains("\"x\":\"1e+17\"")
    );
    // Integral results print as integers, as in jq; other floats in shortest form.
    let out = run(".x = (1.5 + 1.5) | .y = (1 / 3)").1;
    assert!(
        out.contains("\"x\":3,") && out.contains("\"y\":0.3333333333333333"),
        "{out}"
    );
    // Untouched numbers keep their spelling.
    env.write(
        "n.json",
        "{\"a\":1.0,\"b\":1e5,\"c\":100000000000000000001}",
    );
    ok(&env, &["update", "n.json", ".d = 1"]);
    assert_eq!(
        env.read("n.json"),
        "{\"a\":1.0,\"b\":1e5,\"c\":100000000000000000001,\"d\":1}"
    );
    // Arithmetic on a decimal makes a float: 1.0 + 1 is 2.
    ok(&env, &["update", "n.json", ".a += 1"]);
    assert!(env.read("n.json").starts_with("{\"a\":2,"));
    // $ENV and env both work.
    assert!(run(".h = ($ENV.HOME == env.HOME)").1.contains("\"h\":true"));
}

/// jq 1.7.1's `indices`: overlapping byte offsets in a string, element offsets of a
/// sub-array or of one element in an array, nothing for an empty needle.
#[test]
fn indices_finds_overlapping_runs_in_strings_and_arrays() {
    let env = TestEnv::new();
    env.write("i.json", "{}");
    let filter = r#".s = ("a,b, cd, efg" | indices(", ")) | .o = ("aaa" | indices("aa"))
        | .a = ([0,1,2,1,3,1,2] | indices([1,2])) | .e = ([0,1,2,1] | indices(1))
        | .none = [("abc" | indices("")), ([1,2] | indices([]))]"#;
    let printed = ok(&env, &["update", "-p", "i.json", filter]);
    let got: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"s": [3, 7], "o": [0, 1], "a": [1, 5], "e": [1, 3], "none": [[], []]})
    );
}
