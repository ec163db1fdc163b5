//! Bad job files: every error names file:line:column and what was expected.

mod common;

use common::FakeEnv;
use stead_jobspec::{VarInputs, parse_hcl};

fn errors(src: &str) -> Vec<String> {
    match parse_hcl(src, "bad.nomad.hcl", &VarInputs::new(), &FakeEnv::new()) {
        Ok(v) => panic!("expected errors, got {v}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn syntax_error_has_line_and_column() {
    let e = errors("job \"x\" {\n  group \"g\" {\n    count = \n  }\n}\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("bad.nomad.hcl:3:13: invalid HCL: invalid expression"), "{e:?}");
}

#[test]
fn several_problems_are_reported_together_in_source_order() {
    let src = r#"job "x" {
  group "g" {
    count = "many"
    task "t" {
      driver  = "docker"
      memmory = 256
      kill_timeout = "5 sec"
      resources {
        cpu = upper()
      }
      bogus_block {}
    }
  }
}
"#;
    let e = errors(src);
    assert_eq!(e.len(), 5, "{e:#?}");
    assert!(e[0].starts_with("bad.nomad.hcl:3:13: count: expected a number, found the string \"many\""), "{}", e[0]);
    assert!(
        e[1].starts_with("bad.nomad.hcl:6:7: unsupported argument \"memmory\" in a task block; expected one of:"),
        "{}",
        e[1]
    );
    assert!(e[2].starts_with("bad.nomad.hcl:7:22: kill_timeout: invalid duration \"5 sec\""), "{}", e[2]);
    assert!(e[3].starts_with("bad.nomad.hcl:9:15: upper(): takes 1 argument(s), got 0"), "{}", e[3]);
    assert!(e[4].starts_with("bad.nomad.hcl:11:7: unsupported block \"bogus_block\" in a task block"), "{}", e[4]);
}

#[test]
fn missing_job_block_and_extra_job_blocks() {
    assert_eq!(
        errors("variable \"a\" { default = 1 }\n"),
        vec!["bad.nomad.hcl:1:1: no job block found; a job file needs one job \"<id>\" { ... } block"]
    );
    let two = "job \"a\" {\n  group \"g\" {}\n}\njob \"b\" {\n  group \"g\" {}\n}\n";
    assert_eq!(errors(two), vec!["bad.nomad.hcl:4:1: only one job block is allowed per file"]);
}

#[test]
fn job_without_label_or_groups() {
    let e = errors("job {\n  type = \"batch\"\n}\n");
    assert!(e.iter().any(|m| m.contains("1:1: a job block needs exactly one label")), "{e:?}");
    assert!(e.iter().any(|m| m.contains("needs at least one group block")), "{e:?}");
}

#[test]
fn duplicate_group_and_repeated_single_block() {
    let src = "job \"x\" {\n  group \"g\" {}\n  group \"g\" {\n    restart {}\n    restart {}\n  }\n}\n";
    let e = errors(src);
    assert!(e.contains(&"bad.nomad.hcl:3:3: group \"g\" is defined more than once".to_string()), "{e:?}");
    assert!(e.contains(&"bad.nomad.hcl:5:5: only one restart block is allowed here".to_string()), "{e:?}");
}

#[test]
fn dynamic_block_inside_task_config_is_rejected() {
    let src = r#"job "x" {
  group "g" {
    task "t" {
      driver = "docker"
      config {
        dynamic "mount" {
          for_each = ["a"]
          content {
            target = mount.value
          }
        }
      }
    }
  }
}
"#;
    let e = errors(src);
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("bad.nomad.hcl:6:9: dynamic blocks are not supported inside task config"), "{e:?}");
}

#[test]
fn dynamic_block_without_for_each_or_content() {
    let src = "job \"x\" {\n  group \"g\" {\n    dynamic \"task\" {\n      labels = [\"a\"]\n    }\n  }\n}\n";
    let e = errors(src);
    assert!(e[0].starts_with("bad.nomad.hcl:3:5: dynamic \"task\" needs a for_each argument"), "{e:?}");
}

#[test]
fn unexpected_top_level_items() {
    let e = errors("foo = 1\nresource \"x\" {}\njob \"j\" {\n  group \"g\" {}\n}\n");
    assert_eq!(e[0], "bad.nomad.hcl:1:1: unexpected top-level argument \"foo\"; arguments belong inside the job block");
    assert!(e[1].starts_with("bad.nomad.hcl:2:1: unsupported top-level block \"resource\""), "{e:?}");
}

#[test]
fn templates_with_lists_or_null_explain_the_fix() {
    let e = errors("job \"x\" {\n  name = \"a-${[1, 2]}\"\n  group \"g\" {}\n}\n");
    assert!(
        e[0].starts_with("bad.nomad.hcl:2:15: cannot include a list in a string template; use jsonencode() or join()"),
        "{e:?}"
    );
}

#[test]
fn duplicate_attribute_is_rejected() {
    let e = errors("job \"x\" {\n  type = \"batch\"\n  type = \"service\"\n  group \"g\" {}\n}\n");
    assert!(
        e[0].starts_with("bad.nomad.hcl:3:3: invalid HCL: invalid attribute; expected unique attribute key"),
        "{e:?}"
    );
}

#[test]
fn misspelt_argument_gets_a_suggestion() {
    let e = errors(
        "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"exec\"\n      kill_timout = \"5s\"\n    }\n  }\n}\n",
    );
    assert_eq!(
        e,
        vec!["bad.nomad.hcl:5:7: unsupported argument \"kill_timout\" in a task block; did you mean \"kill_timeout\"?"]
    );
}
