//! Positions of the produced JSON values (`parse_hcl_with_positions`), so problems found after
//! parsing (`Job::validate()`) can name file:line:column.

mod common;

use common::FakeEnv;
use serde_json::Value;
use stead_jobspec::{SourceMap, VarInputs, parse_hcl, parse_hcl_with_positions};
use stead_model::{self as model, Job};

/// 1-based line and column of the `nth` (0-based) occurrence of `needle` in `src`.
fn pos_of_nth(src: &str, needle: &str, nth: usize) -> (usize, usize) {
    let offset = src
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} occurs fewer than {} times", nth + 1))
        .0;
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn pos_of(src: &str, needle: &str) -> (usize, usize) {
    pos_of_nth(src, needle, 0)
}

fn parse(src: &str) -> (Value, SourceMap) {
    parse_hcl_with_positions(src, "web.nomad.hcl", &VarInputs::new(), &FakeEnv::new()).unwrap_or_else(|e| panic!("{e}"))
}

const WEB: &str = r#"# The web job.
job "web" {
  datacenters = ["dc1"]
  meta {
    team = "core"
  }

  update {
    max_parallel = 1
    canary       = 2
  }

  group "api" {
    count = 3

    network {
      port "http" {
        static = 8080
      }
      port "metrics" {}
    }

    task "init" {
      driver = "exec"
      lifecycle {
        hook = "prestart"
      }
    }

    task "server" {
      driver = "docker"
      config {
        image = "app:1"
      }
      resources {
        cpu = 500
      }
    }
  }
}
"#;

#[test]
fn the_json_is_what_parse_hcl_returns() {
    let (json, positions) = parse(WEB);
    let plain = parse_hcl(WEB, "web.nomad.hcl", &VarInputs::new(), &FakeEnv::new()).unwrap();
    assert_eq!(json, plain);
    assert_eq!(positions.filename(), "web.nomad.hcl");
    assert!(!positions.is_empty());
}

#[test]
fn blocks_and_arguments_have_their_positions() {
    let (_, p) = parse(WEB);
    let at = |needle: &str| Some(pos_of(WEB, needle));
    assert_eq!(p.get(""), at("job \"web\""));
    assert_eq!(p.get("ID"), at("job \"web\""));
    assert_eq!(p.get("Datacenters"), at("datacenters"));
    assert_eq!(p.get("Meta"), at("meta {"));
    assert_eq!(p.get("Meta[team]"), at("team"));
    assert_eq!(p.get("Update.Canary"), at("canary"));
    assert_eq!(p.get("TaskGroups"), at("group \"api\""));
    assert_eq!(p.get("TaskGroups[0]"), at("group \"api\""));
    assert_eq!(p.get("TaskGroups[0].Name"), at("group \"api\""));
    // A group's count.
    assert_eq!(p.get("TaskGroups[0].Count"), at("count = 3"));
    // A task's lifecycle hook.
    assert_eq!(p.get("TaskGroups[0].Tasks[0].Lifecycle"), at("lifecycle"));
    assert_eq!(p.get("TaskGroups[0].Tasks[0].Lifecycle.Hook"), at("hook"));
    assert_eq!(p.get("TaskGroups[0].Tasks[1]"), at("task \"server\""));
    assert_eq!(p.get("TaskGroups[0].Tasks[1].Name"), at("task \"server\""));
    assert_eq!(p.get("TaskGroups[0].Tasks[1].Config[image]"), at("image"));
    assert_eq!(p.get("TaskGroups[0].Tasks[1].Resources.CPU"), at("cpu = 500"));
    // Port labels: static ports are ReservedPorts, the others DynamicPorts.
    assert_eq!(p.get("TaskGroups[0].Networks[0].ReservedPorts[0].Label"), at("port \"http\""));
    assert_eq!(p.get("TaskGroups[0].Networks[0].ReservedPorts[0].Value"), at("static"));
    assert_eq!(p.get("TaskGroups[0].Networks[0].DynamicPorts[0].Label"), at("port \"metrics\""));
}

#[test]
fn a_value_the_file_does_not_set_is_found_at_its_enclosing_block() {
    let (_, p) = parse(WEB);
    let at = |needle: &str| Some(pos_of(WEB, needle));
    // Defaulted fields.
    assert_eq!(p.get("TaskGroups[0].Tasks[1].Resources.MemoryMB"), None);
    assert_eq!(p.locate("TaskGroups[0].Tasks[1].Resources.MemoryMB"), at("resources {"));
    assert_eq!(p.locate("TaskGroups[0].Tasks[1].KillTimeout"), at("task \"server\""));
    assert_eq!(p.locate("TaskGroups[0].Networks[0].DynamicPorts[0].To"), at("port \"metrics\""));
    assert_eq!(p.locate("TaskGroups[0].EphemeralDisk.SizeMB"), at("group \"api\""));
    assert_eq!(p.locate("Region"), at("job \"web\""));
    // Inside an argument's value.
    assert_eq!(p.locate("Datacenters[0]"), at("datacenters"));
    // What is set is found exactly.
    assert_eq!(p.locate("TaskGroups[0].Count"), at("count = 3"));
    // The job-level update block is merged into each group by canonicalization.
    assert_eq!(p.locate("TaskGroups[0].Update.Canary"), at("canary"));
    assert_eq!(p.locate("TaskGroups[0].Update.Stagger"), at("update {"));
}

#[test]
fn dynamic_blocks_are_found_at_the_dynamic_block() {
    let src = r#"job "d" {
  group "g" {
    task "t" {
      driver = "exec"
      dynamic "template" {
        for_each = ["a", "b"]
        content {
          destination = "local/${template.value}"
        }
      }
    }
  }
}
"#;
    let (_, p) = parse(src);
    assert_eq!(p.get("TaskGroups[0].Tasks[0].Templates[1]"), Some(pos_of(src, "dynamic")));
    assert_eq!(p.get("TaskGroups[0].Tasks[0].Templates[1].DestPath"), Some(pos_of(src, "destination")));
}

#[test]
fn vault_copied_into_tasks_points_at_the_vault_block() {
    let src = r#"job "v" {
  vault {
    policies = ["read"]
  }
  group "g" {
    task "a" {
      driver = "exec"
    }
    task "b" {
      driver = "exec"
      vault {
        role = "b"
      }
    }
  }
}
"#;
    let (json, p) = parse(src);
    assert!(json["Job"].get("Vault").is_none());
    assert_eq!(p.get("Vault"), None);
    assert_eq!(p.get("TaskGroups[0].Tasks[0].Vault"), Some(pos_of(src, "vault")));
    assert_eq!(p.get("TaskGroups[0].Tasks[0].Vault.Policies"), Some(pos_of(src, "policies")));
    assert_eq!(p.get("TaskGroups[0].Tasks[1].Vault"), Some(pos_of_nth(src, "vault", 1)));
    assert_eq!(p.get("TaskGroups[0].Tasks[1].Vault.Policies"), None);
}

/// The value at a path in the format of `Job::validate()`, if there is one.
fn lookup<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut v = root;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let key = &r[..end];
            v = match v {
                Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
                Value::Object(o) => o.get(key)?,
                _ => return None,
            };
            rest = &r[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            v = v.as_object()?.get(&r[..end])?;
            rest = &r[end..];
        }
    }
    Some(v)
}

/// Paths that exist only once the job is canonicalized (copied from the job or group level).
fn inherited(path: &str) -> bool {
    let Some(in_group) = path.strip_prefix("TaskGroups[").and_then(|r| r.split_once("].")).map(|(_, r)| r) else {
        return false;
    };
    ["Update", "Migrate", "ReschedulePolicy", "Count"]
        .iter()
        .any(|f| in_group == *f || in_group.starts_with(&format!("{f}.")))
        || in_group.contains(".RestartPolicy")
}

#[test]
fn every_recorded_path_names_a_value_of_the_json() {
    let env = FakeEnv::new().file("fixtures/files/app.conf", "x").file("fixtures/app.conf", "x");
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".nomad.hcl"))
        .collect();
    names.sort();
    for name in names {
        let (path, src) = common::fixture(&name);
        let Ok((json, positions)) = parse_hcl_with_positions(&src, &path, &VarInputs::new(), &env) else {
            continue;
        };
        let job = &json["Job"];
        for (p, (line, column)) in positions.iter() {
            assert!(line >= 1 && column >= 1, "{name}: {p}");
            assert!(lookup(job, p).is_some() || inherited(p), "{name}: {p} ({line}:{column}) is not in the JSON");
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} fixtures parsed");
}

/// Parses, decodes, canonicalizes and validates; the validation errors as
/// `(path, line, column)` and as displayed.
fn validation_errors(src: &str) -> (Vec<(String, usize, usize)>, Vec<String>) {
    let (mut json, positions) = parse(src);
    let mut job: Job = model::from_api_value(json["Job"].take()).unwrap_or_else(|e| panic!("{e}"));
    job.canonicalize();
    let errs = job.validate().expect_err("the job is invalid");
    let located = errs
        .iter()
        .map(|e| {
            let (line, column) = positions.locate(&e.path).expect("a position");
            (e.path.clone(), line, column)
        })
        .collect();
    let shown = errs.iter().map(|e| positions.validation_error(e).to_string()).collect();
    (located, shown)
}

#[test]
fn validation_errors_are_located_in_the_file() {
    let src = r#"job "shop" {
  update {
    max_parallel = 0
    canary       = 1
  }

  group "api" {
    count = -1

    network {
      port "http" {}
    }
    network {
      port "http" {}
    }

    task "migrate" {
      driver = "exec"
      lifecycle {
        hook = "prestrat"
      }
    }

    task "server" {
      driver = "docker"
      resources {
        cpu = 0
      }
    }
  }
}
"#;
    let (located, shown) = validation_errors(src);
    let expect = |path: &str, needle: &str, nth: usize| {
        let (line, column) = pos_of_nth(src, needle, nth);
        assert!(
            located.contains(&(path.to_string(), line, column)),
            "{path} at {line}:{column} not among {located:#?}"
        );
    };
    expect("TaskGroups[0].Count", "count = -1", 0);
    expect("TaskGroups[0].Tasks[0].Lifecycle.Hook", "hook", 0);
    expect("TaskGroups[0].Networks[1].DynamicPorts[0].Label", "port \"http\"", 1);
    // From the job-level update block, checked at the job and again in the group it is merged
    // into.
    expect("Update.Canary", "canary", 0);
    expect("TaskGroups[0].Update.Canary", "canary", 0);
    let (line, column) = pos_of(src, "count = -1");
    let count = format!("web.nomad.hcl:{line}:{column}: TaskGroups[0].Count: ");
    assert!(shown.iter().any(|s| s.starts_with(&count)), "no {count:?} in {shown:#?}");
    // Every error has a position inside the file.
    let lines = src.lines().count();
    for (path, line, column) in &located {
        assert!(*line >= 1 && *line <= lines && *column >= 1, "{path}");
    }
}

#[test]
fn a_defaulted_field_error_points_at_the_enclosing_block() {
    // No hook: the error is about a value the file does not set.
    let src = r#"job "j" {
  group "g" {
    task "side" {
      driver = "exec"
      lifecycle {
        sidecar = true
      }
    }
    task "main" {
      driver = "exec"
    }
  }
}
"#;
    let (located, _) = validation_errors(src);
    let (line, column) = pos_of(src, "lifecycle");
    assert!(located.contains(&("TaskGroups[0].Tasks[0].Lifecycle.Hook".to_string(), line, column)), "{located:#?}");
}

#[test]
fn duplicate_task_names_are_rejected_by_the_parser_at_the_second_task() {
    // Job::validate() also checks task names, but a job file cannot reach it with duplicates.
    let src = r#"job "j" {
  group "g" {
    task "t" {
      driver = "exec"
    }
    task "t" {
      driver = "exec"
    }
  }
}
"#;
    let err = parse_hcl_with_positions(src, "j.nomad.hcl", &VarInputs::new(), &FakeEnv::new())
        .expect_err("duplicate task names");
    let (line, column) = pos_of_nth(src, "task \"t\"", 1);
    assert_eq!(err.errors.len(), 1, "{err}");
    assert_eq!((err.errors[0].line, err.errors[0].column), (line, column));
    assert!(err.errors[0].message.contains("defined more than once"), "{err}");
}
