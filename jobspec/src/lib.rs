//! Nomad job files into stead's job records: HCL2 (with variables, locals, functions and
//! Nomad's runtime interpolations left as written) and Nomad's API JSON.
//!
//! Pure: no store, no tokio, no clock except through what the caller passes in. Depends on
//! `stead-model` only, for the record types.
//!
//! Start reading at [`parse_hcl`]: it parses with `hcl-edit` (which keeps byte spans, so every
//! error can name `file:line:column`), resolves `variable`/`locals` (`vars.rs`), evaluates the
//! `job` block selectively (`eval.rs`, `funcs.rs`: only `var.*`, `local.*`, iterators and
//! functions are evaluated; `${node.*}`, `${attr.*}`, `${NOMAD_*}` and every other reference
//! stay as written), expands `dynamic` blocks (`body.rs`) and maps the result onto Nomad's API
//! JSON names (`job.rs`). The output is a `serde_json::Value` of the shape
//! `{"Job": {"ID": .., "TaskGroups": [..], ..}}`; only what the file sets is present (plus
//! `ID` and `Name`): defaults are applied where the job is canonicalized, not here.
//! [`parse_hcl_with_positions`] also returns a [`SourceMap`]: where in the file each JSON value
//! came from, by the path `Job::validate()` errors use (`source_map.rs`).
//!
//! hcl-rs's own evaluator is not used: it stops at the first unknown variable and at type
//! expressions (see shared/DESIGN.md, "Pitfalls").
//!
//! Decisions worth knowing:
//! * Unknown arguments and blocks inside the blocks Nomad types (job, group, task, resources,
//!   service, check, update, ...) are errors listing the accepted names, as in Nomad; inside
//!   blocks Nomad passes through (task `config`, `meta`, `env`, scaling `policy`) everything is
//!   kept as written; Consul Connect, `ui`, `multiregion`, `csi_plugin` are kept with
//!   PascalCase names (see `job.rs`).
//! * Variable precedence follows Nomad's documentation: default < `NOMAD_VAR_<name>` <
//!   `-var-file`/`-var` in command-line order. Setting an undeclared variable with `-var` or a
//!   var file is an error; undeclared `NOMAD_VAR_*` are ignored.
//! * Runtime references are copied as written, spaces included (`${ node.unique.id }`); a
//!   runtime reference inside a function call is the text `${...}` passed to the function.
//! * Durations become integer nanoseconds (a bare number is taken as nanoseconds); MB fields
//!   take numbers, numeric strings or sizes with units ("1GiB").
//! * Evaluation is bounded (expression depth, steps, string and list lengths, `dynamic` block
//!   count), so hostile input yields an error, not a hang or a crash.

mod body;
mod eval;
mod funcs;
mod job;
mod source_map;
mod value;
mod vars;

use std::fmt;

pub use funcs::FUNCTION_NAMES;
pub use source_map::SourceMap;

/// Values for `variable` blocks from the command line, applied in the order given (the last
/// value for a name wins), after `NOMAD_VAR_<name>` environment values and declared defaults.
#[derive(Debug, Clone, Default)]
pub struct VarInputs {
    pub sources: Vec<VarSource>,
}

#[derive(Debug, Clone)]
pub enum VarSource {
    /// `-var name=value`. The value is a string for `string`/`any` variables and is read as an
    /// HCL expression for other types (`-var 'ports=[80, 443]'`).
    Flag { name: String, value: String },
    /// `-var-file=path` content: HCL attributes (`name = value`), or a JSON object when the
    /// path ends in `.json`. `path` is used in error messages.
    File { path: String, contents: String },
}

impl VarInputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a `-var name=value` flag.
    pub fn flag(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.sources.push(VarSource::Flag { name: name.into(), value: value.into() });
        self
    }

    /// Parses one `-var` argument of the form `name=value`.
    pub fn flag_arg(self, arg: &str) -> Result<Self, JobspecErrors> {
        match arg.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok(self.flag(k.trim(), v)),
            _ => Err(JobspecErrors::single(JobspecError {
                file: "-var".into(),
                line: 0,
                column: 0,
                message: format!("invalid -var {arg:?}: expected name=value"),
            })),
        }
    }

    /// Adds the content of a `-var-file`.
    pub fn file(mut self, path: impl Into<String>, contents: impl Into<String>) -> Self {
        self.sources.push(VarSource::File { path: path.into(), contents: contents.into() });
        self
    }
}

/// What the parser needs from the outside world, passed in so the core stays pure.
pub trait Env {
    /// An environment variable (used for `NOMAD_VAR_<name>`).
    fn env_var(&self, key: &str) -> Option<String>;
    /// Now, as Unix nanoseconds, for `timestamp()`.
    fn now_unix_nanos(&self) -> i128;
    /// The bytes of a file, for `file()`; the path is already resolved against the job file's
    /// directory.
    fn read_file(&self, path: &str) -> Result<Vec<u8>, String>;
    /// Every regular file below `dir`, as paths relative to `dir` with `/` separators, for
    /// `fileset()`.
    fn list_files(&self, dir: &str) -> Result<Vec<String>, String>;
    /// A random (version 4) UUID in its hyphenated form, for `uuidv4()`.
    fn uuid_v4(&self) -> String;
    /// The user's home directory, for `pathexpand()`.
    fn home_dir(&self) -> Option<String>;
    /// The working directory, for `abspath()`.
    fn current_dir(&self) -> Option<String>;
}

/// The real environment: process environment, system clock, the local file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEnv;

/// Bound on the files `fileset()` walks, so pointing it at `/` fails instead of hanging.
const FILESET_FILES_MAX: usize = 100_000;

impl Env for OsEnv {
    fn env_var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }

    fn now_unix_nanos(&self) -> i128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(path).map_err(|e| e.to_string())
    }

    fn list_files(&self, dir: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let mut stack = vec![(std::path::PathBuf::from(dir), String::new())];
        while let Some((path, rel)) = stack.pop() {
            for entry in std::fs::read_dir(&path).map_err(|e| e.to_string())? {
                let entry = entry.map_err(|e| e.to_string())?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let child_rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
                let ft = entry.file_type().map_err(|e| e.to_string())?;
                if ft.is_dir() {
                    stack.push((entry.path(), child_rel));
                } else if ft.is_file() {
                    out.push(child_rel);
                }
                if out.len() > FILESET_FILES_MAX {
                    return Err(format!("more than {FILESET_FILES_MAX} files below {dir}"));
                }
            }
        }
        Ok(out)
    }

    /// Not cryptographic: hashes the clock, the process ID and a counter. Job files use
    /// `uuidv4()` for unique-enough names, and this keeps the crate free of an OS random
    /// source (which does not build deterministically under madsim).
    fn uuid_v4(&self) -> String {
        use sha2::Digest as _;
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = format!("{}-{}-{n}", self.now_unix_nanos(), std::process::id());
        let digest = sha2::Sha256::digest(seed.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
    }

    fn home_dir(&self) -> Option<String> {
        std::env::var("HOME").ok()
    }

    fn current_dir(&self) -> Option<String> {
        std::env::current_dir().ok().map(|p| p.to_string_lossy().into_owned())
    }
}

/// One problem in a job file, with its position (1-based line and column; 0 when the problem
/// has no position, such as a `-var` flag naming an undeclared variable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobspecError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for JobspecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        }
    }
}

/// Every problem found in one parse, in source order where positions are known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct JobspecErrors {
    pub errors: Vec<JobspecError>,
}

impl JobspecErrors {
    fn single(e: JobspecError) -> Self {
        JobspecErrors { errors: vec![e] }
    }
}

impl fmt::Display for JobspecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Positions for byte offsets of one source text.
pub(crate) struct Locator<'a> {
    pub file: &'a str,
    pub src: &'a str,
}

impl Locator<'_> {
    pub(crate) fn error(&self, span: &Option<std::ops::Range<usize>>, message: impl Into<String>) -> JobspecError {
        let (line, column) = match span {
            Some(r) => line_col(self.src, r.start),
            None => (0, 0),
        };
        JobspecError { file: self.file.to_string(), line, column, message: message.into() }
    }
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Parses an HCL2 Nomad job file into Nomad's API JSON, `{"Job": {...}}`.
///
/// `filename` names the file in errors, and its directory is where `file()` and `fileset()`
/// look. Variables take, lowest first: `default`, `NOMAD_VAR_<name>` from `env`, then `vars`
/// in order (Nomad's documented precedence: the environment is lowest, then `-var-file` and
/// `-var` in command-line order).
pub fn parse_hcl(
    source: &str,
    filename: &str,
    vars: &VarInputs,
    env: &dyn Env,
) -> Result<serde_json::Value, JobspecErrors> {
    parse_hcl_with_positions(source, filename, vars, env).map(|(json, _)| json)
}

/// [`parse_hcl`], also returning where in the file each value of the job came from, keyed by
/// its path relative to the job in the format of `stead_model::Job::validate()`'s
/// errors, so those errors can name `file:line:column`:
///
/// ```
/// use stead_jobspec::{OsEnv, VarInputs, parse_hcl_with_positions};
/// use stead_model::{self, Job};
///
/// let src = "job \"web\" {\n  group \"api\" {\n    count = -1\n    task \"t\" {\n      driver = \"exec\"\n    }\n  }\n}\n";
/// let (mut json, positions) =
///     parse_hcl_with_positions(src, "web.nomad.hcl", &VarInputs::new(), &OsEnv).unwrap();
/// let mut job: Job = model::from_api_value(json["Job"].take()).unwrap();
/// job.canonicalize();
/// let errors = job.validate().unwrap_err();
/// assert_eq!(errors[0].path, "TaskGroups[0].Count");
/// assert_eq!(positions.locate(&errors[0].path), Some((3, 5)));
/// assert_eq!(
///     positions.validation_error(&errors[0]).to_string(),
///     "web.nomad.hcl:3:5: TaskGroups[0].Count: count must be 0 or more (got -1)"
/// );
/// ```
pub fn parse_hcl_with_positions(
    source: &str,
    filename: &str,
    vars: &VarInputs,
    env: &dyn Env,
) -> Result<(serde_json::Value, SourceMap), JobspecErrors> {
    let loc = Locator { file: filename, src: source };
    let body = match hcl::edit::parser::parse_body(source) {
        Ok(b) => b,
        Err(e) => {
            return Err(JobspecErrors::single(JobspecError {
                file: filename.to_string(),
                line: e.location().line(),
                column: e.location().column(),
                message: format!("invalid HCL: {}\n{}", e.message(), e.line()),
            }));
        }
    };
    let base_dir = match filename.rfind('/') {
        Some(i) => filename[..i].to_string(),
        None => String::new(),
    };
    let mut ev = eval::Evaluator::new(source, env, base_dir);
    let mut errors: Vec<JobspecError> = Vec::new();

    let decls = vars::declarations(&ev, &body, &loc, &mut errors);
    let values = vars::resolve(&decls, vars, env, &loc, &mut errors);
    ev.vars = values;
    vars::validate(&ev, &decls, &loc, &mut errors);
    vars::register_locals(&ev, &body, &loc, &mut errors);
    if !errors.is_empty() {
        return Err(JobspecErrors { errors });
    }
    vars::evaluate_locals(&ev, &loc, &mut errors);

    let mut jobs = Vec::new();
    for st in body.iter() {
        if let hcl::edit::structure::Structure::Block(b) = st {
            match b.ident.value().as_str() {
                "job" => jobs.push(b),
                "variable" | "variables" | "locals" => {}
                other => {
                    use hcl::edit::Span as _;
                    errors.push(loc.error(&b.span(), format!("unsupported top-level block {other:?}; a job file holds one job block plus variable, variables and locals blocks")));
                }
            }
        } else if let hcl::edit::structure::Structure::Attribute(a) = st {
            use hcl::edit::Span as _;
            errors.push(loc.error(
                &a.span(),
                format!(
                    "unexpected top-level argument {:?}; arguments belong inside the job block",
                    a.key.value().as_str()
                ),
            ));
        }
    }
    let job_block = match jobs.as_slice() {
        [one] => *one,
        [] => {
            errors.push(JobspecError {
                file: filename.into(),
                line: 1,
                column: 1,
                message: "no job block found; a job file needs one job \"<id>\" { ... } block".into(),
            });
            return Err(JobspecErrors { errors });
        }
        [_, second, ..] => {
            use hcl::edit::Span as _;
            errors.push(loc.error(&second.span(), "only one job block is allowed per file"));
            return Err(JobspecErrors { errors });
        }
    };

    let mut eval_errs = Vec::new();
    let mut scope = eval::Scope::new();
    let body_node = body::build(&ev, &job_block.body, &mut scope, &mut eval_errs, false);
    errors.extend(eval_errs.into_iter().map(|e| loc.error(&e.span, e.msg)));
    let node = body::BlockNode {
        ty: "job".into(),
        labels: job_block.labels.iter().map(|l| l.as_str().to_string()).collect(),
        body: body_node,
        span: hcl::edit::Span::span(job_block),
    };
    let mut problems = Vec::new();
    let mut origins = job::Origins::default();
    let out = job::convert_job(&node, &mut problems, &mut origins);
    errors.extend(problems.into_iter().map(|p| loc.error(&p.span, p.msg)));
    if errors.is_empty() {
        let positions = SourceMap::new(filename, source, origins.map);
        Ok((out, positions))
    } else {
        errors.sort_by_key(|e| (e.line, e.column));
        errors.dedup();
        Err(JobspecErrors { errors })
    }
}

/// Evaluates one HCL expression that uses only literals and functions (no `var.*` or
/// `local.*`), returning its value as JSON. Runtime references evaluate to their `${...}`
/// text, as in job files. Meant for tooling and tests of the function library.
pub fn eval_expr(source: &str, env: &dyn Env) -> Result<serde_json::Value, JobspecErrors> {
    let loc = Locator { file: "<expression>", src: source };
    let expr = hcl::edit::parser::parse_expr(source).map_err(|e| {
        JobspecErrors::single(JobspecError {
            file: "<expression>".into(),
            line: e.location().line(),
            column: e.location().column(),
            message: format!("invalid HCL expression: {}", e.message()),
        })
    })?;
    let ev = eval::Evaluator::new(source, env, String::new());
    ev.eval(&expr, &mut eval::Scope::new())
        .map(|v| v.to_json())
        .map_err(|e| JobspecErrors::single(loc.error(&e.span, e.msg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_env_uuid_v4_is_well_formed_and_differs_per_call() {
        let a = OsEnv.uuid_v4();
        let b = OsEnv.uuid_v4();
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).expect("hyphenated UUID");
        assert_eq!(parsed.get_version_num(), 4);
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        assert_eq!(line_col("ab\nçd", 5), (2, 2));
        assert_eq!(line_col("x", 99), (1, 2));
    }
}
