//! One row per function: an HCL expression and the JSON value it must produce.

mod common;

use common::FakeEnv;
use serde_json::{Value, json};
use stead_jobspec::eval_expr;

fn env() -> FakeEnv {
    FakeEnv::new()
        .file("/jobs/conf/app.txt", "hello file\n")
        .file("/jobs/conf/a.conf", "a")
        .file("/jobs/conf/sub/b.conf", "b")
        .file("/jobs/conf/c.txt", "c")
}

fn check(rows: &[(&str, Value)]) {
    let env = env();
    let mut failures = Vec::new();
    for (expr, expected) in rows {
        match eval_expr(expr, &env) {
            Ok(v) if &v == expected => {}
            Ok(v) => failures.push(format!("{expr}\n  expected {expected}\n  got      {v}")),
            Err(e) => failures.push(format!("{expr}\n  expected {expected}\n  error    {e}")),
        }
    }
    assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));
}

fn check_err(rows: &[(&str, &str)]) {
    let env = env();
    for (expr, fragment) in rows {
        match eval_expr(expr, &env) {
            Ok(v) => panic!("{expr} should fail, got {v}"),
            Err(e) => assert!(e.to_string().contains(fragment), "{expr}: error {e:?} lacks {fragment:?}"),
        }
    }
}

#[test]
fn string_functions() {
    check(&[
        (r#"concat(["a"], ["b", "c"])"#, json!(["a", "b", "c"])),
        (r#"join(", ", ["a", "b"])"#, json!("a, b")),
        (r#"split(",", "a,b,,c")"#, json!(["a", "b", "", "c"])),
        (
            r#"format("%s-%03d-%.2f-%t-%q-%x-%5s|%-3s|", "a", 7, 3.14159, true, "q", 255, "r", "l")"#,
            json!("a-007-3.14-true-\"q\"-ff-    r|l  |"),
        ),
        (r#"format("%[2]s %[1]s %v %v %%", "world", "hello", [1])"#, json!("hello world hello [1] %")),
        (r#"formatlist("%s=%d", ["a", "b"], [1, 2])"#, json!(["a=1", "b=2"])),
        (r#"formatlist("x-%s", ["a", "b"])"#, json!(["x-a", "x-b"])),
        (r#"lower("HeLLo")"#, json!("hello")),
        (r#"upper("HeLLo")"#, json!("HELLO")),
        (r#"title("hello wide world")"#, json!("Hello Wide World")),
        (r#"trimspace("  x \n")"#, json!("x")),
        (r#"trim("?!hi!?", "!?")"#, json!("hi")),
        (r#"trimprefix("helloworld", "hello")"#, json!("world")),
        (r#"trimsuffix("helloworld", "world")"#, json!("hello")),
        (r#"replace("1 + 2 + 3", "+", "-")"#, json!("1 - 2 - 3")),
        (r#"replace("hello world", "/w(or)ld/", "X$1")"#, json!("hello Xor")),
        (r#"regex("[a-z]+", "123abc456")"#, json!("abc")),
        (r#"regex("(\\d+)-(\\d+)", "10-20")"#, json!(["10", "20"])),
        (r#"regex("(?P<major>\\d+)\\.(?P<minor>\\d+)", "v1.2")"#, json!({"major": "1", "minor": "2"})),
        (r#"regexall("\\d", "a1b2c3")"#, json!(["1", "2", "3"])),
        (r#"length(regexall("z", "abc"))"#, json!(0)),
        (r#"substr("hello world", 1, 4)"#, json!("ello")),
        (r#"substr("hello", -3, -1)"#, json!("llo")),
        (r#"chomp("x\n\n")"#, json!("x")),
        (r#"strrev("abc")"#, json!("cba")),
        (r#"strlen("héllo")"#, json!(5)),
        (r#"indent(2, "a\nb")"#, json!("a\n  b")),
        (r#"urlencode("a b&c")"#, json!("a%20b%26c")),
    ]);
}

#[test]
fn collection_functions() {
    check(&[
        (r#"length([1, 2, 3])"#, json!(3)),
        (r#"length({a = 1})"#, json!(1)),
        (r#"length("abc")"#, json!(3)),
        (r#"contains(["a", "b"], "b")"#, json!(true)),
        (r#"contains(["a", "b"], "c")"#, json!(false)),
        (r#"coalesce("", null, "x", "y")"#, json!("x")),
        (r#"coalescelist([], ["a"], ["b"])"#, json!(["a"])),
        (r#"compact(["a", "", "b", null])"#, json!(["a", "b"])),
        (r#"distinct(["a", "b", "a", "c", "b"])"#, json!(["a", "b", "c"])),
        (r#"element(["a", "b", "c"], 4)"#, json!("b")),
        (r#"flatten([["a", ["b"]], [], ["c"]])"#, json!(["a", "b", "c"])),
        (r#"index(["a", "b", "c"], "b")"#, json!(1)),
        (r#"keys({b = 1, a = 2})"#, json!(["a", "b"])),
        (r#"values({b = 1, a = 2})"#, json!([2, 1])),
        (r#"lookup({a = "x"}, "a", "d")"#, json!("x")),
        (r#"lookup({a = "x"}, "b", "d")"#, json!("d")),
        (r#"merge({a = 1, b = 2}, {b = 3, c = 4})"#, json!({"a": 1, "b": 3, "c": 4})),
        (r#"range(3)"#, json!([0, 1, 2])),
        (r#"range(1, 4)"#, json!([1, 2, 3])),
        (r#"range(10, 0, -4)"#, json!([10, 6, 2])),
        (r#"reverse([1, 2, 3])"#, json!([3, 2, 1])),
        (r#"slice(["a", "b", "c", "d"], 1, 3)"#, json!(["b", "c"])),
        (r#"sort(["c", "a", "b"])"#, json!(["a", "b", "c"])),
        (r#"zipmap(["a", "b"], [1, 2])"#, json!({"a": 1, "b": 2})),
        (r#"setunion(["b", "a"], ["c", "a"])"#, json!(["a", "b", "c"])),
    ]);
}

#[test]
fn conversion_and_encoding_functions() {
    check(&[
        (r#"tolist(["a", "b"])"#, json!(["a", "b"])),
        (r#"toset(["b", "a", "b"])"#, json!(["a", "b"])),
        (r#"tomap({a = 1})"#, json!({"a": 1})),
        (r#"tostring(12)"#, json!("12")),
        (r#"tostring(true)"#, json!("true")),
        (r#"tonumber("42")"#, json!(42)),
        (r#"tonumber("1.5")"#, json!(1.5)),
        (r#"tobool("true")"#, json!(true)),
        (r#"jsonencode({a = [1, "two", true, null]})"#, json!(r#"{"a":[1,"two",true,null]}"#)),
        (r#"jsondecode("{\"a\": [1, 2]}")"#, json!({"a": [1, 2]})),
        (r#"yamlencode({a = "b"})"#, json!("a: b\n")),
        (r#"yamldecode("a: 1\nb: [x, y]\n")"#, json!({"a": 1, "b": ["x", "y"]})),
        (r#"base64encode("hello")"#, json!("aGVsbG8=")),
        (r#"base64decode("aGVsbG8=")"#, json!("hello")),
        (r#"md5("hello")"#, json!("5d41402abc4b2a76b9719d911017c592")),
        (r#"sha1("hello")"#, json!("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")),
        (r#"sha256("hello")"#, json!("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")),
        (
            r#"sha512("")"#,
            json!(
                "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
            ),
        ),
        (r#"uuidv4()"#, json!("6ba7b810-9dad-41d1-80b4-00c04fd430c8")),
        (r#"uuidv5("dns", "example.com")"#, json!("cfbff0d1-9375-5685-968c-48ce8b15ae17")),
        (
            r#"uuidv5("6ba7b811-9dad-11d1-80b4-00c04fd430c8", "https://example.com")"#,
            json!("4fd35a71-71ef-5a55-a9d9-aa75c889a6d0"),
        ),
    ]);
}

#[test]
fn numeric_functions() {
    check(&[
        (r#"abs(-3)"#, json!(3)),
        (r#"ceil(1.2)"#, json!(2)),
        (r#"floor(1.8)"#, json!(1)),
        (r#"max(3, 7, 5)"#, json!(7)),
        (r#"min(3, 7, 5)"#, json!(3)),
        (r#"max([2, 9]...)"#, json!(9)),
        (r#"parseint("ff", 16)"#, json!(255)),
        (r#"parseint("-101", 2)"#, json!(-5)),
        (r#"pow(2, 10)"#, json!(1024)),
        (r#"signum(-7)"#, json!(-1)),
        (r#"signum(0)"#, json!(0)),
        (r#"1 + 2 * 3 - 4 / 2"#, json!(5)),
        (r#"7 % 3"#, json!(1)),
    ]);
}

#[test]
fn file_path_and_time_functions() {
    check(&[
        (r#"file("/jobs/conf/app.txt")"#, json!("hello file\n")),
        (r#"fileset("/jobs/conf", "*.conf")"#, json!(["a.conf"])),
        (r#"fileset("/jobs/conf", "**/*.conf")"#, json!(["a.conf", "sub/b.conf"])),
        (r#"fileexists("/jobs/conf/c.txt")"#, json!(true)),
        (r#"fileexists("/jobs/conf/nope.txt")"#, json!(false)),
        (r#"abspath("x/../y/z")"#, json!("/work/y/z")),
        (r#"abspath("/a/./b")"#, json!("/a/b")),
        (r#"basename("/a/b/c.txt")"#, json!("c.txt")),
        (r#"dirname("/a/b/c.txt")"#, json!("/a/b")),
        (r#"dirname("c.txt")"#, json!(".")),
        (r#"pathexpand("~/jobs")"#, json!("/home/stead/jobs")),
        (r#"pathexpand("/etc")"#, json!("/etc")),
        (r#"timestamp()"#, json!("2026-11-25T10:30:00Z")),
        (r#"formatdate("YYYY-MM-DD hh:mm:ss", "2026-11-25T10:30:05Z")"#, json!("2026-11-25 10:30:05")),
        (
            r#"formatdate("EEEE, DD MMM YYYY HH:mm aa ZZZ", "2018-01-02T23:12:01Z")"#,
            json!("Tuesday, 02 Jan 2018 11:12 pm UTC"),
        ),
        (r#"formatdate("D/M/YY 'at' h'h' ZZZZZ", "2018-01-02T03:04:05-08:00")"#, json!("2/1/18 at 3h -08:00")),
    ]);
}

#[test]
fn try_and_can() {
    check(&[
        (r#"try(jsondecode("not json"), "fallback")"#, json!("fallback")),
        (r#"try({a = 1}.b, {a = 1}.a)"#, json!(1)),
        (r#"can(tonumber("x"))"#, json!(false)),
        (r#"can(tonumber("1"))"#, json!(true)),
    ]);
}

#[test]
fn expressions_conditionals_for_and_splat() {
    check(&[
        (r#"true ? "a" : "b""#, json!("a")),
        (r#"[for s in ["a", "", "b"] : upper(s) if s != ""]"#, json!(["A", "B"])),
        (r#"{for k, v in {a = 1, b = 2} : v => k}"#, json!({"1": "a", "2": "b"})),
        (r#"{for s in ["aa", "ab", "b"] : substr(s, 0, 1) => s...}"#, json!({"a": ["aa", "ab"], "b": ["b"]})),
        (r#"[for i, v in ["x", "y"] : "${i}:${v}"]"#, json!(["0:x", "1:y"])),
        (r#"[{n = "a"}, {n = "b"}][*].n"#, json!(["a", "b"])),
        (r#"[{n = "a"}, {n = "b"}].*.n"#, json!(["a", "b"])),
        (r#""%{ for x in ["a", "b"] }${x},%{ endfor }""#, json!("a,b,")),
        (r#""%{ if 1 > 2 }yes%{ else }no%{ endif }""#, json!("no")),
        (r#""$${literal} and %%{literal}""#, json!("${literal} and %{literal}")),
        (r#"!false && (1 == 1 || false)"#, json!(true)),
        (r#""1" == 1"#, json!(false)),
        (r#""a ${~ NOMAD_X ~} b""#, json!("a${NOMAD_X}b")),
        (r#""at ${ node.unique.name }""#, json!("at ${ node.unique.name }")),
        (r#"node.datacenter"#, json!("${node.datacenter}")),
        (r#"[for n in ["x"] : "${n}-${NOMAD_ALLOC_INDEX}"]"#, json!(["x-${NOMAD_ALLOC_INDEX}"])),
    ]);
}

#[test]
fn function_errors_say_which_function_and_why() {
    check_err(&[
        (r#"nosuch(1)"#, "there is no function named \"nosuch\""),
        (r#"upper()"#, "upper(): takes 1 argument(s), got 0"),
        (r#"regex("x", "abc")"#, "did not match"),
        (r#"regex("(", "abc")"#, "invalid regular expression"),
        (r#"element([], 0)"#, "empty list"),
        (r#"index(["a"], "z")"#, "item not found"),
        (r#"file("/jobs/missing.txt")"#, "cannot read"),
        (r#"tonumber("abc")"#, "expected a number"),
        (r#"jsondecode("{")"#, "invalid JSON"),
        (r#"base64decode("!!!")"#, "invalid base64"),
        (r#"formatdate("YYYY", "yesterday")"#, "not an RFC 3339 timestamp"),
        (r#"range(0, 1e12)"#, "more than"),
        (r#"1 / 0"#, "division by zero"),
        (r#"{for s in ["a", "a"] : s => s}"#, "duplicate key"),
        (r#"try(nosuch(), upper())"#, "no argument could be evaluated"),
    ]);
}

#[test]
fn every_listed_function_has_a_row_in_these_tests() {
    let source = include_str!("functions.rs");
    let missing: Vec<&str> = stead_jobspec::FUNCTION_NAMES
        .iter()
        .copied()
        .filter(|f| {
            !source.contains(&format!("\"{f}("))
                && !source.contains(&format!("({f}("))
                && !source.contains(&format!(" {f}("))
                && !source.contains(&format!("#\"{f}("))
        })
        .collect();
    assert!(missing.is_empty(), "functions without a test row: {missing:?}");
}
