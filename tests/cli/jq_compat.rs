//! `update` computes what jq 1.7.1 computes. Each case is a filter a jq user writes,
//! with the value jq gives, taken from the jq manual's descriptions and examples and
//! from jq 1.7.1's behaviour (where jq 1.6 differs, the test follows 1.7.1 and says
//! so). Every case runs the real executable on a real file.

use serde_json::{Value, json};

use crate::testenv::{TestEnv, code, stderr, stdout};

/// `lockrun update --dry-run --print` of `filter` on a file holding `input`: the
/// printed value, or the one-line error.
fn jq(env: &TestEnv, input: &str, filter: &str) -> Result<Value, String> {
    env.write("d.json", input);
    let out = env.run(["update", "--dry-run", "--print", "d.json", filter]);
    if code(&out) != 0 {
        return Err(stderr(&out));
    }
    serde_json::from_str(&stdout(&out)).map_err(|e| format!("{e}: {}", stdout(&out)))
}

/// Each `(input, filter, expected)` gives `expected`.
fn check(cases: &[(&str, &str, Value)]) {
    let env = TestEnv::new();
    let mut wrong = Vec::new();
    for (input, filter, want) in cases {
        match jq(&env, input, filter) {
            Ok(got) if got == *want => {}
            got => wrong.push(format!("{input} | {filter}: want {want}, got {got:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Each `(input, filter, words)` fails (exit 65, file untouched) with `words` in
/// its message.
fn check_errors(cases: &[(&str, &str, &str)]) {
    let env = TestEnv::new();
    let mut wrong = Vec::new();
    for (input, filter, words) in cases {
        env.write("d.json", input);
        let out = env.run(["update", "d.json", filter]);
        let e = stderr(&out);
        if code(&out) != 65 || !e.contains(words) || env.read("d.json") != *input {
            wrong.push(format!("{input} | {filter}: exit {}, {e}", code(&out)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn deleting_several_paths_deletes_them_all_from_the_input() {
    // jq sorts the paths and deletes from the last one, so each path means what it
    // meant in the input; deleting one after another would shift the later ones.
    let three = r#"{"sessions":["s1","s2","s3"]}"#;
    check(&[
        (
            three,
            "del(.sessions[0], .sessions[1])",
            json!({"sessions": ["s3"]}),
        ),
        (
            three,
            "del(.sessions[1], .sessions[0])",
            json!({"sessions": ["s3"]}),
        ),
        (
            three,
            r#"delpaths([["sessions",0],["sessions",1]])"#,
            json!({"sessions": ["s3"]}),
        ),
        (three, "del(.sessions[0, -1])", json!({"sessions": ["s2"]})),
        (
            three,
            "del(.sessions[0], .sessions[0])",
            json!({"sessions": ["s2", "s3"]}),
        ),
        (
            three,
            "del(.sessions[5])",
            json!({"sessions": ["s1", "s2", "s3"]}),
        ),
        (
            "[0,1,2,3,4,5,6,7,8,9]",
            "del(.[1], .[-6], .[2], .[-3:9])",
            json!([0, 3, 5, 6, 9]),
        ),
        // The manual's examples.
        (
            r#"{"foo": 42, "bar": 9001, "baz": 42}"#,
            "del(.foo)",
            json!({"bar": 9001, "baz": 42}),
        ),
        (r#"["foo", "bar", "baz"]"#, "del(.[1, 2])", json!(["foo"])),
        (
            r#"{"a":{"b":1},"x":{"y":2}}"#,
            r#"delpaths([["a","b"]])"#,
            json!({"a": {}, "x": {"y": 2}}),
        ),
        // Deleting a key keeps the order of the others.
        (
            r#"{"a":1,"b":2,"c":3}"#,
            "del(.a) | keys_unsorted",
            json!(["b", "c"]),
        ),
        ("null", "del(.a, .b[0])", json!(null)),
        (r#"{"a":1}"#, "del(.)", json!(null)),
    ]);
    check_errors(&[
        ("{}", "delpaths(0)", "Paths must be specified as an array"),
        ("{}", "delpaths([0])", "Path must be specified as an array"),
        ("5", "del(.a)", "Cannot index number"),
        (
            "5",
            r#"delpaths([["a"]])"#,
            "Cannot delete fields from number",
        ),
    ]);
}

#[test]
fn join_treats_null_as_empty_and_scalars_as_text() {
    check(&[
        (
            r#"{"project":"app"}"#,
            r#"[.project, null, "x"] | join("-")"#,
            json!("app--x"),
        ),
        // The manual's examples.
        (
            r#"["a","b,c,d","e"]"#,
            r#"join(", ")"#,
            json!("a, b,c,d, e"),
        ),
        (
            r#"["a",1,2.3,true,null,false]"#,
            r#"join(" ")"#,
            json!("a 1 2.3 true  false"),
        ),
        ("[]", r#"join("-")"#, json!("")),
        ("[null]", r#"join("-")"#, json!("")),
    ]);
    check_errors(&[(r#"["a",[1]]"#, r#"join(",")"#, "cannot be added")]);
}

#[test]
fn assignment_and_update_create_what_is_missing() {
    check(&[
        (
            "{}",
            ".settings.font.size = 12",
            json!({"settings": {"font": {"size": 12}}}),
        ),
        (
            "{}",
            ".metrics.daily.edits += 1",
            json!({"metrics": {"daily": {"edits": 1}}}),
        ),
        (
            "{}",
            r#".meta.tags |= . + ["x"]"#,
            json!({"meta": {"tags": ["x"]}}),
        ),
        ("{}", r#".a.b //= "d""#, json!({"a": {"b": "d"}})),
        ("null", ".a = 1", json!({"a": 1})),
        ("null", ".[1] = 1", json!([null, 1])),
        ("{}", r#"setpath(["a","b"]; 1)"#, json!({"a": {"b": 1}})),
        (
            "null",
            r#"setpath(["a",1,"b"]; 1)"#,
            json!({"a": [null, {"b": 1}]}),
        ),
        (
            "{}",
            r#"getpath(["a",0,"b"]) |= 5"#,
            json!({"a": [{"b": 5}]}),
        ),
        (
            r#"{"a":{"x":1}}"#,
            ".a.y.z = 2",
            json!({"a": {"x": 1, "y": {"z": 2}}}),
        ),
        // The manual's examples.
        ("null", r#"setpath(["a","b"]; 1)"#, json!({"a": {"b": 1}})),
        (
            r#"{"a": 1, "b": {"c": 2, "d": 3}, "e": 4}"#,
            "pick(.a, .b.c, .x)",
            json!({"a": 1, "b": {"c": 2}, "x": null}),
        ),
        ("[1,2,3,4]", "pick(.[2], .[0], .[0])", json!([1, null, 3])),
    ]);
    check_errors(&[
        // jq 1.7.1's words (jq 1.6 said `with "b"`).
        (
            r#"{"a":5}"#,
            ".a.b = 1",
            r#"Cannot index number with string \"b\""#,
        ),
        ("null", ".[-1] = 1", "Out of bounds negative array index"),
    ]);
}

#[test]
fn setting_past_the_end_of_an_array_pads_it_with_null() {
    check(&[
        (
            r#"{"sessions":[1]}"#,
            r#".sessions[3] = {"x":1}"#,
            json!({"sessions": [1, null, null, {"x": 1}]}),
        ),
        ("{}", ".m[1][2] = 1", json!({"m": [null, [null, null, 1]]})),
        ("[]", ".[2] += 1", json!([null, null, 1])),
        ("[1,2]", ".[-1] = 9", json!([1, 9])),
        (
            "[0,1,2,3,4,5]",
            r#".[2:4] = ["x"]"#,
            json!([0, 1, "x", 4, 5]),
        ),
        ("null", r#".[1:3] = ["x"]"#, json!(["x"])),
        ("[1,2,3]", ".[5:] = [9]", json!([1, 2, 3, 9])),
    ]);
}

#[test]
fn destructuring_alternatives() {
    check(&[
        // The first pattern that binds without error wins; the others' variables are null.
        (
            r#"[[1,2],{"a":3},"x"]"#,
            "[.[] as [$a, $b] ?// {a: $a} ?// $c | [$a, $b, $c]]",
            json!([[1, 2, null], [3, null, null], [null, null, "x"]]),
        ),
        // An error in the body moves on to the next pattern too.
        (
            "[[3]]",
            r#".[] as [$a] ?// [$b] | if $a != null then error("a") else {$a, $b} end"#,
            json!({"a": null, "b": 3}),
        ),
        // Object patterns naming a variable and its key: {$b: [$c]}.
        (
            r#"{"a":1,"b":[2]}"#,
            ". as {$a, $b: [$c]} | [$a, $b, $c]",
            json!([1, [2], 2]),
        ),
    ]);
    check_errors(&[(
        "[[3]]",
        ".[] as {a: $a} ?// {b: $a} | $a",
        "Cannot index array",
    )]);
}

#[test]
fn sql_style_builtins() {
    check(&[
        ("2", "IN(1, 2, 3)", json!(true)),
        ("5", "IN(1, 2, 3)", json!(false)),
        (
            "null",
            "[range(5;8) | IN(range(7))]",
            json!([true, true, false]),
        ),
        ("null", "IN(range(3; 9); 1, 2)", json!(false)),
        ("null", "IN(range(3); 1, 2)", json!(true)),
        (
            r#"[{"id":1,"n":"a"},{"id":2,"n":"b"}]"#,
            "INDEX(.id)",
            json!({"1": {"id": 1, "n": "a"}, "2": {"id": 2, "n": "b"}}),
        ),
        (
            "null",
            r#"INDEX(({"k":"x"},{"k":"y"}); .k)"#,
            json!({"x": {"k": "x"}, "y": {"k": "y"}}),
        ),
        (
            r#"[{"u":1},{"u":2}]"#,
            r#"JOIN({"1":"one"}; .u | tostring)"#,
            json!([[{"u": 1}, "one"], [{"u": 2}, null]]),
        ),
        (
            r#"{"1":"one"}"#,
            r#"[JOIN(.; ({"u":1}); .u | tostring)]"#,
            json!([[{"u": 1}, "one"]]),
        ),
    ]);
    check(&[(
        r#"{"1":{"name":"one"}}"#,
        r#"[JOIN(.; ({"u":1}); .u | tostring; .[0] + .[1])]"#,
        json!([{"u": 1, "name": "one"}]),
    )]);
}

#[test]
fn builtins_loc_and_inputs() {
    check(&[
        ("null", "builtins | length > 100", json!(true)),
        (
            "null",
            r#"builtins | map(select(. == "IN/1" or . == "tostream/0")) | sort"#,
            json!(["IN/1", "tostream/0"]),
        ),
        (
            "null",
            "$__loc__",
            json!({"file": "<top-level>", "line": 1}),
        ),
        (
            "null",
            "1 |\n{$__loc__}",
            json!({"__loc__": {"file": "<top-level>", "line": 2}}),
        ),
        (
            "null",
            r#"try error("\($__loc__)") catch ."#,
            json!(r#"{"file":"<top-level>","line":1}"#),
        ),
        // update reads one document: no further input.
        ("null", "[inputs]", json!([])),
        ("null", "try input catch .", json!("No more inputs")),
        // input_filename is the file being updated, as named on the command line.
        ("null", "input_filename", json!("d.json")),
    ]);
}

#[test]
fn streaming_builtins() {
    check(&[
        (
            r#"{"a":[1,{"b":2}]}"#,
            "[tostream]",
            json!([
                [["a", 0], 1],
                [["a", 1, "b"], 2],
                [["a", 1, "b"]],
                [["a", 1]],
                [["a"]]
            ]),
        ),
        ("5", "[tostream]", json!([[[], 5]])),
        ("[]", "[tostream]", json!([[[], []]])),
        // The manual's examples.
        (
            r#"{"a":[1,{"b":2}]}"#,
            ". as $dot | fromstream($dot | tostream) | . == $dot",
            json!(true),
        ),
        (
            "null",
            "[1 | truncate_stream([[0],1],[[1,0],2],[[1,0]],[[1]])]",
            json!([[[0], 2], [[0]]]),
        ),
        (
            "null",
            "fromstream(1 | truncate_stream([[0],1],[[1,0],2],[[1,0]],[[1]]))",
            json!([2]),
        ),
        (
            "null",
            "[fromstream(([[0],1],[[0]]), ([[],3]))]",
            json!([[1], 3]),
        ),
    ]);
}

#[test]
fn formats_and_text_builtins() {
    check(&[
        ("65", "ascii", json!("A")),
        ("[1,\"a\"]", "@csv", json!("1,\"a\"")),
        // The manual's examples.
        (
            r#"[1, "one", "two", "three"]"#,
            "@csv",
            json!("1,\"one\",\"two\",\"three\""),
        ),
        (
            r#"[1, "one", "two", "three"]"#,
            "@tsv",
            json!("1\tone\ttwo\tthree"),
        ),
        (
            r#"[null, true, "a\"b", "c\td\\e"]"#,
            "[@csv, @tsv]",
            json!([",true,\"a\"\"b\",\"c\td\\e\"", "\ttrue\ta\"b\tc\\td\\\\e"]),
        ),
        (
            r#""This is a message""#,
            "@base32",
            json!("KRUGS4ZANFZSAYJANVSXG43BM5SQ===="),
        ),
        (
            r#""KRUGS4ZANFZSAYJANVSXG43BM5SQ====""#,
            "@base32d",
            json!("This is a message"),
        ),
        (r#""foo""#, "@base32 | @base32d", json!("foo")),
        // jq 1.7.1: a code point out of range becomes U+FFFD.
        (
            "[65, 1114112, 55296]",
            "implode",
            json!("A\u{fffd}\u{fffd}"),
        ),
        // ltrimstr/rtrimstr leave what they cannot trim alone.
        ("1", r#"[ltrimstr("x"), rtrimstr("x")]"#, json!([1, 1])),
        (
            r#""foobar""#,
            r#"[ltrimstr("foo"), rtrimstr("bar"), ltrimstr(1)]"#,
            json!(["bar", "foo", "foobar"]),
        ),
        (
            r#"{"a":[1,{"b":null}]}"#,
            "tojson",
            json!(r#"{"a":[1,{"b":null}]}"#),
        ),
    ]);
    check_errors(&[(
        "{}",
        "@csv",
        "cannot be csv-formatted, only an array can be",
    )]);
}

#[test]
fn fractional_indices_and_slices() {
    check(&[
        ("[0,1,2,3,4,5,6,7,8,9]", ".[1.5:3.5]", json!([1, 2, 3])),
        ("[0,1,2,3,4,5,6,7,8,9]", ".[1.2:3.5]", json!([1, 2, 3])),
        (
            "[0,1,2,3,4,5,6,7,8,9]",
            "[.[1.1, 1.5, 1.7]]",
            json!([1, 1, 1]),
        ),
        ("[0,1,2,3,4]", ".[1.1] = 5", json!([0, 5, 2, 3, 4])),
        (
            "[0,1,2,3,4,5,6,7,8,9]",
            r#".[1.5:3.5] = ["x"]"#,
            json!([0, "x", 4, 5, 6, 7, 8, 9]),
        ),
        (r#""abcdef""#, ".[1.5:3.5]", json!("bcd")),
        (
            "[0,1,2]",
            "[.[nan], .[nan:1], .[1:nan]]",
            json!([null, [0], [1, 2]]),
        ),
        ("null", ".[1:3]", json!(null)),
    ]);
    check_errors(&[
        (
            "[0,1,2]",
            ".[nan] = 9",
            "Cannot set array element at NaN index",
        ),
        (
            r#""foobar""#,
            r#".[1:3] = "x""#,
            "Cannot update string slices",
        ),
    ]);
}

#[test]
fn numbers_as_jq_1_7_computes_them() {
    check(&[
        // Arithmetic is done in doubles (jq 1.7.1): 13911860366432393 becomes
        // 13911860366432392 before 10 is taken away. jq 1.6 did the same.
        ("13911860366432393", ". - 10", json!(13911860366432382_u64)),
        (
            "[9007199254740993]",
            ".[0] + 0 | tostring",
            json!("9007199254740992"),
        ),
        // A number the filter does not compute keeps all its digits (jq 1.7; jq 1.6
        // rounded it to a double on input).
        (
            r#"{"a":100000000000000000001,"n":1}"#,
            ".n += 1 | .a | tojson",
            json!("100000000000000000001"),
        ),
        (
            "null",
            "[10 * 1e16, 1 / 100000, 0.1 + 0.2, 3.0 * 1, 1e1000 * 1] | tojson",
            json!("[1e+17,1e-05,0.30000000000000004,3,1.7976931348623157e+308]"),
        ),
        (
            "null",
            "[5 % 3, -5 % 3, 5 % -3, 5.5 % 2]",
            json!([2, -2, 2, 1]),
        ),
        (
            "null",
            r#"["abc" * 0, "abc" * 1.5, "abc" * -1]"#,
            json!(["", "abc", null]),
        ),
        // limit(0; f) yields nothing and a negative count everything (jq 1.7.1; jq 1.6
        // yielded one value for 0).
        (
            "null",
            "[[limit(0; 1, 2)], [limit(-1; 1, 2)]]",
            json!([[], [1, 2]]),
        ),
        ("null", "[.[]?]", json!([])),
        ("null", "[nth(5, 7; range(9; 0; -1))]", json!([4, 2])),
        ("[0,[1],[[2]]]", "flatten(1)", json!([0, 1, [2]])),
    ]);
    check_errors(&[
        (
            "null",
            "1 / 0",
            "cannot be divided because the divisor is zero",
        ),
        (
            "null",
            "1 % 0",
            "cannot be divided (remainder) because the divisor is zero",
        ),
        ("null", "nth(-1; 1)", "nth doesn't support negative indices"),
        ("[0]", "flatten(-1)", "flatten depth must not be negative"),
    ]);
}

#[test]
fn error_messages_use_jq_words() {
    check(&[
        (
            "1",
            "try .a catch .",
            json!(r#"Cannot index number with string "a""#),
        ),
        (
            "{}",
            "try .[0] catch .",
            json!("Cannot index object with number"),
        ),
        (
            "123",
            "try .[] catch .",
            json!("Cannot iterate over number (123)"),
        ),
        (
            r#""very-long-string""#,
            "try -. catch .",
            json!(r#"string ("very-long-...) cannot be negated"#),
        ),
        (
            r#"["1","2",[3]]"#,
            r#"try join(",") catch ."#,
            json!(r#"string ("1,2,") and array ([3]) cannot be added"#),
        ),
        (
            "[[], true]",
            "[.[] | try utf8bytelength catch .]",
            json!([
                "array ([]) only strings have UTF-8 byte length",
                "boolean (true) only strings have UTF-8 byte length"
            ]),
        ),
        ("[0,1,2]", "has(nan)", json!(false)),
        (
            r#"["a",1,2,3,4,5,6,7]"#,
            "try mktime catch .",
            json!("mktime requires parsed datetime inputs"),
        ),
        (
            r#"["a",1,2,3,4,5,6,7]"#,
            r#"try strftime("%Y") catch ."#,
            json!("strftime/1 requires parsed datetime inputs"),
        ),
        (
            "1425599507",
            r#"[strftime("%Y-%m-%dT%H:%M:%SZ"), (gmtime | mktime), todate]"#,
            json!(["2015-03-05T23:51:47Z", 1425599507, "2015-03-05T23:51:47Z"]),
        ),
    ]);
}

#[test]
fn a_byte_order_mark_is_read_and_kept() {
    let env = TestEnv::new();
    let bom = "\u{feff}";
    env.write("b.json", &format!("{bom}{{\n  \"n\": 1\n}}\n"));
    let out = env.run(["update", "b.json", ".n += 1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.read("b.json"), format!("{bom}{{\n  \"n\": 2\n}}\n"));
    // --print shows the document, not the mark.
    let out = env.run(["update", "--dry-run", "--print", "b.json", ".n += 1"]);
    assert_eq!(stdout(&out), "{\n  \"n\": 3\n}\n");
    // A no-op writes nothing: the bytes stay, mark included.
    let before = std::fs::metadata(env.path("b.json"))
        .unwrap()
        .modified()
        .unwrap();
    let out = env.run(["update", "b.json", "."]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.read("b.json"), format!("{bom}{{\n  \"n\": 2\n}}\n"));
    assert_eq!(
        std::fs::metadata(env.path("b.json"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    // Without a mark, none is added.
    env.write("p.json", "{\"n\":1}");
    let out = env.run(["update", "p.json", ".n += 1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.read("p.json"), "{\"n\":2}");
}
