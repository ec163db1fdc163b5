//! No input may panic the parser: arbitrary bytes, and valid job files mutated at random.

mod common;

use common::FakeEnv;
use proptest::prelude::*;
use stead_jobspec::{VarInputs, eval_expr, parse_hcl};

const FIXTURES: &[&str] = &[
    include_str!("fixtures/every_block.nomad.hcl"),
    include_str!("fixtures/dynamic.nomad.hcl"),
    include_str!("fixtures/env_select.nomad.hcl"),
    include_str!("fixtures/heredoc.nomad.hcl"),
    include_str!("fixtures/runtime_interp.nomad.hcl"),
    include_str!("fixtures/lifecycle.nomad.hcl"),
];

/// Characters that matter to HCL's grammar, so mutations reach past the first token.
const HCL_CHARS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    "$",
    "${",
    "%{",
    "~",
    "=",
    "<<EOF\n",
    "<<-EOT\n",
    "\nEOF\n",
    "\n",
    "...",
    "?",
    ":",
    "*",
    ".",
    ",",
    "=>",
    "for x in ",
    "if ",
    "var.",
    "local.",
    "dynamic ",
    "-",
    "1e308",
    "0",
    "\\",
    "é",
    "#",
    "/*",
    "*/",
    "//",
    "%",
    "!",
    "&&",
    "||",
];

/// Argument values that probe edge cases of the function library.
const ARGS: &[&str] = &[
    "\"\"",
    "\"é\"",
    "\"héllo wörld\"",
    "-1",
    "0",
    "1",
    "3",
    "-0.5",
    "1e308",
    "-1e308",
    "[]",
    "[1, \"a\"]",
    "[[\"x\"], []]",
    "{a = 1, b = \"c\"}",
    "{}",
    "null",
    "true",
    "\"%\"",
    "\"%[0]d\"",
    "\"%[9]s\"",
    "\"%-05.3q\"",
    "\"%d %s %v\"",
    "\"YYYY'\"",
    "\"'\"",
    "\"ZZZZZ hh aa EEE\"",
    "\"/(/\"",
    "\"/a/\"",
    "\"(?P<x>a)\"",
    "\"2018-01-02T23:12:01Z\"",
    "\"a,b\"",
    "\",\"",
    "\"~/x\"",
    "\"../..\"",
    "\"/\"",
    "\"ff\"",
    "62",
    "63",
    "\"- a\\n-\"",
    "\"{\\\"a\\\": [1]}\"",
    "\"dns\"",
    "\"**\"",
    "\"[\"",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, piece: usize },
    Duplicate { at: usize, len: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 0..HCL_CHARS.len()).prop_map(|(at, piece)| Mutation::Insert { at, piece }),
        (any::<usize>(), 1usize..80).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(src: &str, muts: &[Mutation]) -> String {
    let mut s = src.to_string();
    for m in muts {
        let len = s.len().max(1);
        match *m {
            Mutation::Delete { at, len: n } => {
                let a = floor_boundary(&s, at % len);
                let b = floor_boundary(&s, a + n);
                s.replace_range(a..b, "");
            }
            Mutation::Insert { at, piece } => {
                let a = floor_boundary(&s, at % len);
                s.insert_str(a, HCL_CHARS[piece]);
            }
            Mutation::Duplicate { at, len: n } => {
                let a = floor_boundary(&s, at % len);
                let b = floor_boundary(&s, a + n);
                let piece = s[a..b].to_string();
                s.insert_str(b, &piece);
            }
            Mutation::Truncate { at } => {
                let a = floor_boundary(&s, at % len);
                s.truncate(a);
            }
        }
    }
    s
}

fn parse_never_panics(src: &str) {
    let env = FakeEnv::new().var("NOMAD_VAR_image_tag", "1");
    let vars = VarInputs::new().flag("environment", "prod");
    // Ok or Err are both fine; a panic fails the property.
    let _ = parse_hcl(src, "fuzz.nomad.hcl", &vars, &env);
    let _ = parse_hcl(src, "fuzz.nomad.hcl", &VarInputs::new(), &env);
}

proptest! {
    // 256 cases keep the suite fast; set PROPTEST_CASES for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let src = String::from_utf8_lossy(&bytes);
        parse_never_panics(&src);
        let _ = eval_expr(&src, &FakeEnv::new());
    }

    #[test]
    fn mutated_job_files_never_panic(which in 0..FIXTURES.len(), muts in proptest::collection::vec(mutation(), 1..6)) {
        let src = apply(FIXTURES[which], &muts);
        parse_never_panics(&src);
    }

    #[test]
    fn functions_with_odd_arguments_never_panic(f in 0..stead_jobspec::FUNCTION_NAMES.len(), args in proptest::collection::vec(0..ARGS.len(), 0..4), expand in any::<bool>()) {
        let list: Vec<&str> = args.iter().map(|i| ARGS[*i]).collect();
        let dots = if expand && !list.is_empty() { "..." } else { "" };
        let src = format!("{}({}{dots})", stead_jobspec::FUNCTION_NAMES[f], list.join(", "));
        let _ = eval_expr(&src, &FakeEnv::new().file("/x", "é"));
    }

    #[test]
    fn hcl_token_soup_never_panics(pieces in proptest::collection::vec(0..HCL_CHARS.len(), 0..60)) {
        let body: String = pieces.iter().map(|i| HCL_CHARS[*i]).collect();
        parse_never_panics(&format!("job \"j\" {{\n  group \"g\" {{\n    x = {body}\n  }}\n}}\n"));
        let _ = eval_expr(&body, &FakeEnv::new());
    }
}

/// Found by the mutation property: the "did you mean" hint sliced a name inside a character.
#[test]
fn unknown_function_with_multibyte_name_is_an_error() {
    let e = eval_expr("loéwer(\"x\")", &FakeEnv::new()).unwrap_err();
    assert!(e.to_string().contains("there is no function named \"loéwer\""), "{e}");
}

#[test]
fn range_beyond_float_precision_terminates() {
    let v = eval_expr("length(range(1e16, 1e16 + 8))", &FakeEnv::new()).expect("range evaluates");
    assert_eq!(v, serde_json::json!(8));
}

#[test]
fn pathological_inputs_fail_cleanly() {
    let deep = format!("job \"j\" {{ name = {}1{} }}", "[".repeat(5000), "]".repeat(5000));
    assert!(parse_hcl(&deep, "d.hcl", &VarInputs::new(), &FakeEnv::new()).is_err());
    let huge = "locals { x = [for a in range(100000) : [for b in range(100000) : a * b]] }\njob \"j\" {\n  group \"g\" {}\n}\n";
    let e = parse_hcl(huge, "h.hcl", &VarInputs::new(), &FakeEnv::new()).unwrap_err();
    assert!(e.to_string().contains("more than"), "{e}");
    let doubling: String = (0..40).map(|i| format!("  d{} = \"${{local.d{i}}}${{local.d{i}}}\"\n", i + 1)).collect();
    let src = format!("locals {{\n  d0 = \"xxxxxxxxxxxxxxxx\"\n{doubling}}}\njob \"j\" {{\n  group \"g\" {{}}\n}}\n");
    let e = parse_hcl(&src, "d.hcl", &VarInputs::new(), &FakeEnv::new()).unwrap_err();
    assert!(e.to_string().contains("longer than"), "{e}");
    let chain: String = (0..500).map(|i| format!("  l{i} = local.l{}\n", i + 1)).collect();
    let src = format!(
        "locals {{\n{chain}  l500 = 1\n}}\njob \"j\" {{\n  name = tostring(local.l0)\n  group \"g\" {{}}\n}}\n"
    );
    let _ = parse_hcl(&src, "c.hcl", &VarInputs::new(), &FakeEnv::new());
}
