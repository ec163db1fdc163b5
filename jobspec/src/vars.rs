//! `variable`, `variables` and `locals`: declarations, values from defaults, the environment,
//! var files and `-var` flags, type conversion, validation, and locals in dependency order
//! (evaluated on demand, so order in the file does not matter and cycles are reported).

use std::collections::BTreeMap;
use std::ops::Range;

use hcl::edit::Span;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Body, Structure};

use crate::eval::{EvalError, Evaluator, LocalState, Scope};
use crate::value::{Ty, Val, convert};
use crate::{Env, JobspecError, Locator, VarInputs, VarSource};

pub(crate) struct Decl<'a> {
    pub name: String,
    pub ty: Ty,
    pub default: Option<Val>,
    pub span: Option<Range<usize>>,
    pub validations: Vec<(&'a Expression, Option<&'a Expression>)>,
}

pub(crate) fn declarations<'a>(
    ev: &Evaluator<'_>,
    body: &'a Body,
    loc: &Locator<'_>,
    errors: &mut Vec<JobspecError>,
) -> Vec<Decl<'a>> {
    let mut decls: Vec<Decl<'a>> = Vec::new();
    let push = |d: Decl<'a>, errors: &mut Vec<JobspecError>, decls: &mut Vec<Decl<'a>>| {
        if decls.iter().any(|x| x.name == d.name) {
            errors.push(loc.error(&d.span, format!("variable {:?} is declared more than once", d.name)));
        } else {
            decls.push(d);
        }
    };
    for st in body.iter() {
        let Structure::Block(b) = st else { continue };
        match b.ident.value().as_str() {
            "variable" => {
                let name = match b.labels.as_slice() {
                    [l] => l.as_str().to_string(),
                    _ => {
                        errors.push(loc.error(
                            &b.span(),
                            "a variable block needs exactly one label, its name, as in variable \"image\" { ... }",
                        ));
                        continue;
                    }
                };
                let mut d =
                    Decl { name: name.clone(), ty: Ty::Any, default: None, span: b.span(), validations: Vec::new() };
                for inner in b.body.iter() {
                    match inner {
                        Structure::Attribute(a) => match a.key.value().as_str() {
                            "type" => match parse_type(&a.value) {
                                Ok(t) => d.ty = t,
                                Err((span, m)) => errors.push(loc.error(&span, m)),
                            },
                            "default" => match ev.eval(&a.value, &mut Scope::new()) {
                                Ok(v) => d.default = Some(v),
                                Err(e) => errors.push(loc.error(&e.span, format!("default of variable {name:?}: {}", e.msg))),
                            },
                            "description" | "sensitive" | "nullable" => {}
                            other => errors.push(loc.error(&a.span(), format!("unsupported argument {other:?} in a variable block; expected type, default, description or a validation block"))),
                        },
                        Structure::Block(vb) if vb.ident.value().as_str() == "validation" => {
                            let cond = vb.body.get_attribute("condition").map(|a| &a.value);
                            let msg = vb.body.get_attribute("error_message").map(|a| &a.value);
                            match cond {
                                Some(c) => d.validations.push((c, msg)),
                                None => errors.push(loc.error(&vb.span(), "a validation block needs a condition")),
                            }
                        }
                        Structure::Block(other) => errors.push(loc.error(
                            &other.span(),
                            format!("unsupported block {:?} in a variable block; expected validation", other.ident.value().as_str()),
                        )),
                    }
                }
                if let Some(def) = &d.default {
                    match convert(def, &d.ty) {
                        Ok(v) => d.default = Some(v),
                        Err(m) => errors.push(loc.error(
                            &d.span,
                            format!("the default of variable {name:?} does not fit its type {}: {m}", d.ty.name()),
                        )),
                    }
                }
                push(d, errors, &mut decls);
            }
            "variables" => {
                for inner in b.body.iter() {
                    match inner {
                        Structure::Attribute(a) => {
                            let name = a.key.value().as_str().to_string();
                            let default = match ev.eval(&a.value, &mut Scope::new()) {
                                Ok(v) => Some(v),
                                Err(e) => {
                                    errors.push(loc.error(&e.span, e.msg));
                                    None
                                }
                            };
                            push(
                                Decl { name, ty: Ty::Any, default, span: a.span(), validations: Vec::new() },
                                errors,
                                &mut decls,
                            );
                        }
                        Structure::Block(other) => errors
                            .push(loc.error(&other.span(), "a variables block holds only name = default arguments")),
                    }
                }
            }
            _ => {}
        }
    }
    decls
}

/// Reads a type constraint expression (`string`, `list(string)`, `object({a = number})`).
pub(crate) fn parse_type(e: &Expression) -> Result<Ty, (Option<Range<usize>>, String)> {
    let bad = |e: &Expression, what: &str| {
        (
            e.span(),
            format!(
                "invalid type {what}; expected string, number, bool, any, list(T), set(T), map(T), object({{...}}) or tuple([...])"
            ),
        )
    };
    match e {
        Expression::Variable(v) => match v.value().as_str() {
            "string" => Ok(Ty::String),
            "number" => Ok(Ty::Number),
            "bool" => Ok(Ty::Bool),
            "any" => Ok(Ty::Any),
            "list" | "set" | "map" => Err((
                e.span(),
                format!("{} needs an element type, as in {}(string)", v.value().as_str(), v.value().as_str()),
            )),
            other => Err(bad(e, &format!("{other:?}"))),
        },
        Expression::Parenthesis(p) => parse_type(p.inner()),
        Expression::FuncCall(f) => {
            let name = f.name.name.value().as_str();
            let args: Vec<&Expression> = f.args.iter().collect();
            if args.len() != 1 {
                return Err((e.span(), format!("{name}(...) takes exactly one argument")));
            }
            match name {
                "list" => Ok(Ty::List(Box::new(parse_type(args[0])?))),
                "set" => Ok(Ty::Set(Box::new(parse_type(args[0])?))),
                "map" => Ok(Ty::Map(Box::new(parse_type(args[0])?))),
                "optional" => parse_type(args[0]),
                "object" => match args[0] {
                    Expression::Object(o) => {
                        let mut fields = BTreeMap::new();
                        for (k, v) in o.iter() {
                            let key = match k {
                                hcl::edit::expr::ObjectKey::Ident(id) => id.value().as_str().to_string(),
                                hcl::edit::expr::ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                                hcl::edit::expr::ObjectKey::Expression(other) => {
                                    return Err(bad(other, "attribute name"));
                                }
                            };
                            fields.insert(key, parse_type(v.expr())?);
                        }
                        Ok(Ty::Object(fields))
                    }
                    other => Err((
                        other.span(),
                        "object(...) takes an object of attribute types, as in object({ name = string })".into(),
                    )),
                },
                "tuple" => match args[0] {
                    Expression::Array(a) => Ok(Ty::Tuple(a.iter().map(parse_type).collect::<Result<_, _>>()?)),
                    other => {
                        Err((other.span(), "tuple(...) takes a list of types, as in tuple([string, number])".into()))
                    }
                },
                other => Err(bad(e, &format!("{other}(...)"))),
            }
        }
        other => Err(bad(other, "expression")),
    }
}

/// A value given as text (`-var`, `NOMAD_VAR_`): a string for string/any variables, else an
/// HCL expression.
fn text_value(text: &str, ty: &Ty, env: &dyn Env) -> Result<Val, String> {
    if ty.is_primitive_string_or_any() {
        return Ok(Val::Str(text.to_string()));
    }
    let expr = hcl::edit::parser::parse_expr(text)
        .map_err(|e| format!("cannot read {text:?} as a {}: {}", ty.name(), e.message()))?;
    let ev = Evaluator::new(text, env, String::new());
    ev.eval(&expr, &mut Scope::new()).map_err(|e| e.msg)
}

pub(crate) fn resolve(
    decls: &[Decl<'_>],
    inputs: &VarInputs,
    env: &dyn Env,
    loc: &Locator<'_>,
    errors: &mut Vec<JobspecError>,
) -> BTreeMap<String, Val> {
    let mut values: BTreeMap<String, Val> = BTreeMap::new();
    let decl = |name: &str| decls.iter().find(|d| d.name == name);
    for d in decls {
        if let Some(v) = &d.default {
            values.insert(d.name.clone(), v.clone());
        }
    }
    let mut set =
        |name: &str, v: Val, ty: &Ty, origin: &dyn Fn(String) -> JobspecError, errors: &mut Vec<JobspecError>| {
            match convert(&v, ty) {
                Ok(v) => {
                    values.insert(name.to_string(), v);
                }
                Err(m) => errors.push(origin(format!("invalid value for variable {name:?} (type {}): {m}", ty.name()))),
            }
        };
    for d in decls {
        let key = format!("NOMAD_VAR_{}", d.name);
        if let Some(text) = env.env_var(&key) {
            let origin =
                |m: String| JobspecError { file: format!("environment {key}"), line: 0, column: 0, message: m };
            match text_value(&text, &d.ty, env) {
                Ok(v) => set(&d.name, v, &d.ty, &origin, errors),
                Err(m) => errors.push(origin(m)),
            }
        }
    }
    for src in &inputs.sources {
        match src {
            VarSource::Flag { name, value } => {
                let origin = |m: String| JobspecError { file: format!("-var {name}"), line: 0, column: 0, message: m };
                match decl(name) {
                    None => errors.push(origin(format!("variable {name:?} is set with -var but not declared in {}; add a variable \"{name}\" {{}} block", loc.file))),
                    Some(d) => match text_value(value, &d.ty, env) {
                        Ok(v) => set(name, v, &d.ty, &origin, errors),
                        Err(m) => errors.push(origin(m)),
                    },
                }
            }
            VarSource::File { path, contents } => {
                let floc = Locator { file: path, src: contents };
                for (name, v, span) in var_file(path, contents, env, &floc, errors) {
                    let origin = |m: String| floc.error(&span, m);
                    match decl(&name) {
                        None => errors.push(origin(format!("variable {name:?} is set in this var file but not declared in {}; add a variable \"{name}\" {{}} block", loc.file))),
                        Some(d) => set(&name, v, &d.ty, &origin, errors),
                    }
                }
            }
        }
    }
    for d in decls {
        if !values.contains_key(&d.name) {
            let at = loc.error(&d.span, "");
            errors.push(loc.error(
                &d.span,
                format!(
                    "variable {:?} (declared at {}:{}:{}) needs a value: give it a default, or set it with -var {}=..., a -var-file, or the NOMAD_VAR_{} environment variable",
                    d.name, at.file, at.line, at.column, d.name, d.name
                ),
            ));
        }
    }
    values
}

type Setting = (String, Val, Option<Range<usize>>);

fn var_file(
    path: &str,
    contents: &str,
    env: &dyn Env,
    floc: &Locator<'_>,
    errors: &mut Vec<JobspecError>,
) -> Vec<Setting> {
    if path.ends_with(".json") {
        return match serde_json::from_str::<serde_json::Value>(contents) {
            Ok(serde_json::Value::Object(o)) => o.iter().map(|(k, v)| (k.clone(), Val::from_json(v), None)).collect(),
            Ok(_) => {
                errors.push(floc.error(&Some(0..0), "a JSON var file must hold one object of name: value pairs"));
                vec![]
            }
            Err(e) => {
                errors.push(JobspecError {
                    file: path.into(),
                    line: e.line(),
                    column: e.column(),
                    message: format!("invalid JSON: {e}"),
                });
                vec![]
            }
        };
    }
    let body = match hcl::edit::parser::parse_body(contents) {
        Ok(b) => b,
        Err(e) => {
            errors.push(JobspecError {
                file: path.into(),
                line: e.location().line(),
                column: e.location().column(),
                message: format!("invalid HCL: {}", e.message()),
            });
            return vec![];
        }
    };
    let ev = Evaluator::new(contents, env, String::new());
    let mut out = Vec::new();
    for st in body.iter() {
        match st {
            Structure::Attribute(a) => match ev.eval(&a.value, &mut Scope::new()) {
                Ok(v) => out.push((a.key.value().as_str().to_string(), v, a.span())),
                Err(e) => errors.push(floc.error(&e.span, e.msg)),
            },
            Structure::Block(b) => errors.push(floc.error(&b.span(), "a var file holds only name = value arguments")),
        }
    }
    out
}

pub(crate) fn validate(ev: &Evaluator<'_>, decls: &[Decl<'_>], loc: &Locator<'_>, errors: &mut Vec<JobspecError>) {
    for d in decls {
        if !ev.vars.contains_key(&d.name) {
            continue;
        }
        for (cond, msg) in &d.validations {
            let mut scope = Scope::new();
            match ev.eval(cond, &mut scope).and_then(|v| {
                v.to_bool().map_err(|m| {
                    EvalError::new(cond.span(), format!("a validation condition must be true or false: {m}"))
                })
            }) {
                Ok(true) => {}
                Ok(false) => {
                    let text = match msg.map(|m| ev.eval(m, &mut scope)) {
                        Some(Ok(v)) => v.to_str().unwrap_or_else(|_| "validation failed".into()),
                        Some(Err(e)) => format!("validation failed (and its error_message failed too: {})", e.msg),
                        None => "validation failed".into(),
                    };
                    errors.push(loc.error(&cond.span(), format!("invalid value for variable {:?}: {text}", d.name)));
                }
                Err(e) => errors.push(loc.error(&e.span, e.msg)),
            }
        }
    }
}

pub(crate) fn register_locals<'a>(
    ev: &Evaluator<'a>,
    body: &'a Body,
    loc: &Locator<'_>,
    errors: &mut Vec<JobspecError>,
) {
    let mut locals = ev.locals.borrow_mut();
    for st in body.iter() {
        let Structure::Block(b) = st else { continue };
        if b.ident.value().as_str() != "locals" {
            continue;
        }
        for inner in b.body.iter() {
            match inner {
                Structure::Attribute(a) => {
                    let name = a.key.value().as_str().to_string();
                    match locals.entry(name) {
                        std::collections::btree_map::Entry::Occupied(o) => {
                            errors.push(
                                loc.error(&a.span(), format!("local value {:?} is defined more than once", o.key())),
                            );
                        }
                        std::collections::btree_map::Entry::Vacant(v) => {
                            v.insert(LocalState::Pending(&a.value));
                        }
                    }
                }
                Structure::Block(other) => {
                    errors.push(loc.error(&other.span(), "a locals block holds only name = expression arguments"))
                }
            }
        }
    }
}

/// Collects the locals an expression refers to (`local.x`; a bare `local` refers to all).
struct LocalRefs<'n> {
    names: &'n [String],
    found: Vec<String>,
}

impl hcl::edit::visit::Visit for LocalRefs<'_> {
    fn visit_expr(&mut self, expr: &Expression) {
        match expr {
            Expression::Variable(v) if v.value().as_str() == "local" => {
                self.found.extend(self.names.iter().cloned());
            }
            Expression::Traversal(t) if matches!(&t.expr, Expression::Variable(v) if v.value().as_str() == "local") => {
                match t.operators.first().map(|o| o.value()) {
                    Some(hcl::edit::expr::TraversalOperator::GetAttr(id)) => {
                        self.found.push(id.value().as_str().to_string())
                    }
                    _ => self.found.extend(self.names.iter().cloned()),
                }
                for op in &t.operators {
                    if let hcl::edit::expr::TraversalOperator::Index(e) = op.value() {
                        self.visit_expr(e);
                    }
                }
            }
            other => hcl::edit::visit::visit_expr(self, other),
        }
    }
}

/// Evaluates every local once, dependencies first, so evaluation never recurses through
/// chains of locals; members of a cycle are reported once per cycle.
pub(crate) fn evaluate_locals(ev: &Evaluator<'_>, loc: &Locator<'_>, errors: &mut Vec<JobspecError>) {
    use hcl::edit::visit::Visit as _;
    let names: Vec<String> = ev.locals.borrow().keys().cloned().collect();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut exprs: BTreeMap<String, Option<Range<usize>>> = BTreeMap::new();
    for (name, state) in ev.locals.borrow().iter() {
        if let LocalState::Pending(e) = state {
            let mut v = LocalRefs { names: &names, found: Vec::new() };
            v.visit_expr(e);
            let mut found: Vec<String> = v.found.into_iter().filter(|n| names.contains(n)).collect();
            found.sort();
            found.dedup();
            deps.insert(name.clone(), found);
            exprs.insert(name.clone(), e.span());
        }
    }
    // Kahn's algorithm: repeatedly take the locals whose dependencies are all done.
    let mut done: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    loop {
        let ready: Vec<String> = deps
            .iter()
            .filter(|(n, d)| !done.contains(*n) && d.iter().all(|x| done.contains(x)))
            .map(|(n, _)| n.clone())
            .collect();
        if ready.is_empty() {
            break;
        }
        for n in ready {
            let _ = ev.local(&n, None);
            done.insert(n);
        }
    }
    // What is left is in a cycle or depends on one.
    let mut reported: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let left: Vec<String> = deps.keys().filter(|n| !done.contains(*n)).cloned().collect();
    for start in &left {
        if reported.contains(start) {
            continue;
        }
        let mut path: Vec<String> = vec![start.clone()];
        let mut cur = start.clone();
        let cycle = loop {
            let Some(next) = deps.get(&cur).and_then(|d| d.iter().find(|x| !done.contains(*x))).cloned() else {
                break None;
            };
            if let Some(pos) = path.iter().position(|p| *p == next) {
                break Some(path[pos..].to_vec());
            }
            if reported.contains(&next) {
                break None;
            }
            path.push(next.clone());
            cur = next;
        };
        if let Some(members) = cycle {
            let mut chain: Vec<String> = members.iter().map(|m| format!("local.{m}")).collect();
            chain.push(format!("local.{}", members[0]));
            errors.push(loc.error(
                &exprs.get(&members[0]).cloned().flatten(),
                format!("locals refer to each other in a cycle: {}", chain.join(" -> ")),
            ));
            reported.extend(members);
        }
        reported.extend(path);
    }
    {
        let mut locals = ev.locals.borrow_mut();
        for n in &left {
            locals.insert(n.clone(), LocalState::Failed);
        }
    }
    for e in ev.local_errors.borrow().iter() {
        errors.push(loc.error(&e.span, e.msg.clone()));
    }
}
