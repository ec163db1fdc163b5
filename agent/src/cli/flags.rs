//! Nomad-style command-line flags: single-dash long names (`-dev`, `-data-dir DIR`,
//! `-data-dir=DIR`), double dashes accepted too, repeatable value flags (`-var a=1 -var
//! b=2`), and positional arguments after the flags (`-` is a positional: standard input).

use std::collections::BTreeMap;

use anyhow::{Context, bail};

/// What a command accepts.
pub struct Spec {
    pub bools: &'static [&'static str],
    pub values: &'static [&'static str],
}

/// Parsed flags: booleans set, values by name, every value flag in command-line order
/// (where precedence depends on it, as for `-var` and `-var-file`), positionals.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub bools: Vec<String>,
    /// Booleans set false explicitly (`-diff=false`), for flags that default to true.
    pub unset: Vec<String>,
    pub values: BTreeMap<String, Vec<String>>,
    pub in_order: Vec<(String, String)>,
    pub positionals: Vec<String>,
}

impl Parsed {
    pub fn flag(&self, name: &str) -> bool {
        self.bools.iter().any(|b| b == name)
    }

    /// A boolean that is `default` unless given (`-name`, `-name=true`, `-name=false`).
    pub fn flag_or(&self, name: &str, default: bool) -> bool {
        if self.flag(name) {
            true
        } else if self.unset.iter().any(|b| b == name) {
            false
        } else {
            default
        }
    }

    /// The last value given for `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value given for `name`, in order.
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }
}

pub fn parse(command: &str, spec: &Spec, args: &[String]) -> anyhow::Result<Parsed> {
    parse_with(command, &[spec], args)
}

/// Like [`parse`], for a command that accepts the flags of several specs (its own and the
/// global ones of the server commands).
pub fn parse_with(command: &str, specs: &[&Spec], args: &[String]) -> anyhow::Result<Parsed> {
    let is_bool = |name: &str| specs.iter().any(|s| s.bools.contains(&name));
    let is_value = |name: &str| specs.iter().any(|s| s.values.contains(&name));
    let mut parsed = Parsed::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "-" || !arg.starts_with('-') {
            parsed.positionals.push(arg.clone());
            parsed.positionals.extend(it.by_ref().cloned());
            break;
        }
        if arg == "--" {
            parsed.positionals.extend(it.by_ref().cloned());
            break;
        }
        let flag = arg.trim_start_matches('-');
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if is_bool(name) {
            match inline.as_deref() {
                None | Some("true") => {
                    parsed.unset.retain(|b| b != name);
                    parsed.bools.push(name.to_string())
                }
                Some("false") => {
                    parsed.bools.retain(|b| b != name);
                    parsed.unset.push(name.to_string())
                }
                Some(other) => bail!("{command}: -{name} takes true or false, not {other:?}"),
            }
        } else if is_value(name) {
            let value = match inline {
                Some(v) => v,
                None => it.next().cloned().with_context(|| format!("{command}: -{name} needs a value"))?,
            };
            parsed.values.entry(name.to_string()).or_default().push(value.clone());
            parsed.in_order.push((name.to_string(), value));
        } else {
            bail!("{command}: unknown flag {arg:?}");
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec { bools: &["dev", "output"], values: &["data-dir", "var"] };

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn single_and_double_dash_inline_and_repeated_values_parse() {
        let p = parse("t", &SPEC, &args("-dev --data-dir=/d -var a=1 -var b=2 job.hcl extra")).unwrap();
        assert!(p.flag("dev") && !p.flag("output"));
        assert_eq!(p.value("data-dir"), Some("/d"));
        assert_eq!(p.all("var"), ["a=1", "b=2"]);
        assert_eq!(p.positionals, ["job.hcl", "extra"]);
        assert_eq!(parse("t", &SPEC, &args("-output -")).unwrap().positionals, ["-"]);
        assert!(!parse("t", &SPEC, &args("-dev=false")).unwrap().flag("dev"));
        assert!(!parse("t", &SPEC, &args("-dev=false")).unwrap().flag_or("dev", true));
        assert!(parse("t", &SPEC, &args("")).unwrap().flag_or("dev", true));
        assert!(parse("t", &SPEC, &args("-dev=false -dev")).unwrap().flag_or("dev", false));
    }

    #[test]
    fn unknown_flags_and_missing_values_are_errors_that_name_them() {
        assert!(parse("t", &SPEC, &args("-bogus")).unwrap_err().to_string().contains("unknown flag \"-bogus\""));
        assert!(parse("t", &SPEC, &args("-var")).unwrap_err().to_string().contains("-var needs a value"));
        assert!(parse("t", &SPEC, &args("-dev=maybe")).unwrap_err().to_string().contains("true or false"));
    }
}
