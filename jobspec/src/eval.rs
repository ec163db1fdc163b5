//! The selective evaluator: HCL2 expressions over `var.*`, `local.*`, iterator variables and
//! functions. Any other reference (`node.unique.id`, `attr.kernel.name`, `NOMAD_ALLOC_DIR`,
//! `env["X"]`, ...) is a runtime interpolation: it evaluates to the text `${...}` exactly as it
//! was written, as Nomad's own HCL2 parser does, and is resolved later by the server or client.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::Range;

use hcl::edit::Span;
use hcl::edit::expr::{BinaryOperator, Expression, TraversalOperator, UnaryOperator};
use hcl::edit::template::{Directive, Element, Template};

use crate::Env;
use crate::value::{Val, num_to_string};

/// An evaluation failure, located by the byte range of the offending expression.
#[derive(Debug, Clone)]
pub(crate) struct EvalError {
    pub span: Option<Range<usize>>,
    pub msg: String,
}

impl EvalError {
    pub(crate) fn new(span: Option<Range<usize>>, msg: impl Into<String>) -> Self {
        EvalError { span, msg: msg.into() }
    }
}

pub(crate) type EvalResult = Result<Val, EvalError>;

/// Iterator and for-expression variables in scope, innermost last.
pub(crate) type Scope = Vec<(String, Val)>;

/// Bound on expression nesting while evaluating (function calls, for-expressions, locals that
/// refer to locals). Past it evaluation fails with an error instead of exhausting the stack.
const EVAL_DEPTH_MAX: usize = 200;

/// Bound on the elements a single `range()` or for-expression may produce, so a typo such as
/// `range(1e12)` fails clearly instead of exhausting memory.
pub(crate) const COLLECTION_LEN_MAX: usize = 1_000_000;

/// Bound on the length of any string an expression produces (templates that double a local
/// through a chain of locals would otherwise exhaust memory).
const STRING_LEN_MAX: usize = 64 << 20;

/// Bound on expression evaluations in one parse, so nested for-expressions over large ranges
/// fail with an error instead of running for hours.
const EVAL_STEPS_MAX: u64 = 10_000_000;

pub(crate) enum LocalState<'a> {
    Pending(&'a Expression),
    InProgress,
    Done(Val),
    Failed,
}

pub(crate) struct Evaluator<'a> {
    pub src: &'a str,
    pub vars: BTreeMap<String, Val>,
    pub locals: RefCell<BTreeMap<String, LocalState<'a>>>,
    /// Errors met while evaluating locals on demand; reported once, at the local.
    pub local_errors: RefCell<Vec<EvalError>>,
    pub env: &'a dyn Env,
    /// Locals being evaluated, outermost first, to name the members of a cycle.
    local_stack: RefCell<Vec<String>>,
    /// Directory of the job file: `file()` and `fileset()` resolve relative paths against it.
    pub base_dir: String,
    depth: Cell<usize>,
    steps: Cell<u64>,
}

fn span_of<T: Span>(t: &T) -> Option<Range<usize>> {
    t.span()
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(src: &'a str, env: &'a dyn Env, base_dir: String) -> Self {
        Evaluator {
            src,
            vars: BTreeMap::new(),
            locals: RefCell::new(BTreeMap::new()),
            local_errors: RefCell::new(Vec::new()),
            env,
            local_stack: RefCell::new(Vec::new()),
            base_dir,
            depth: Cell::new(0),
            steps: Cell::new(0),
        }
    }

    pub(crate) fn text(&self, span: &Option<Range<usize>>) -> Option<&'a str> {
        span.as_ref().and_then(|r| self.src.get(r.clone()))
    }

    pub(crate) fn eval(&self, e: &Expression, scope: &mut Scope) -> EvalResult {
        let depth = self.depth.get();
        if depth >= EVAL_DEPTH_MAX {
            return Err(EvalError::new(span_of(e), format!("expression nests deeper than {EVAL_DEPTH_MAX} levels")));
        }
        let steps = self.steps.get() + 1;
        if steps > EVAL_STEPS_MAX {
            return Err(EvalError::new(
                span_of(e),
                format!("evaluation takes more than {EVAL_STEPS_MAX} steps; is a for expression or range() too large?"),
            ));
        }
        self.steps.set(steps);
        self.depth.set(depth + 1);
        let result = self.eval_inner(e, scope);
        self.depth.set(depth);
        match &result {
            Ok(Val::Str(s)) if s.len() > STRING_LEN_MAX => {
                Err(EvalError::new(span_of(e), format!("this string is longer than {STRING_LEN_MAX} bytes")))
            }
            Ok(Val::List(l)) if l.len() > COLLECTION_LEN_MAX => {
                Err(EvalError::new(span_of(e), format!("this list has more than {COLLECTION_LEN_MAX} elements")))
            }
            _ => result,
        }
    }

    fn eval_inner(&self, e: &Expression, scope: &mut Scope) -> EvalResult {
        match e {
            Expression::Null(_) => Ok(Val::Null),
            Expression::Bool(b) => Ok(Val::Bool(*b.value())),
            Expression::Number(n) => Ok(Val::Num(n.value().as_f64().unwrap_or(0.0))),
            Expression::String(s) => Ok(Val::Str(s.value().clone())),
            Expression::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for item in a.iter() {
                    out.push(self.eval(item, scope)?);
                }
                Ok(Val::List(out))
            }
            Expression::Object(o) => {
                let mut out = BTreeMap::new();
                for (k, v) in o.iter() {
                    let key = match k {
                        hcl::edit::expr::ObjectKey::Ident(id) => id.value().as_str().to_string(),
                        hcl::edit::expr::ObjectKey::Expression(ke) => {
                            let kv = self.eval(ke, scope)?;
                            kv.to_str().map_err(|m| EvalError::new(span_of(ke), format!("invalid object key: {m}")))?
                        }
                    };
                    out.insert(key, self.eval(v.expr(), scope)?);
                }
                Ok(Val::Obj(out))
            }
            Expression::StringTemplate(t) => {
                let mut out = String::new();
                let mut st = TplState::default();
                self.eval_template(t, scope, &mut out, &mut st, false)?;
                Ok(Val::Str(out))
            }
            Expression::HeredocTemplate(h) => {
                let mut out = String::new();
                let mut st = TplState { dedent: h.indent(), line_start: true, ..TplState::default() };
                self.eval_template(&h.template, scope, &mut out, &mut st, false)?;
                Ok(Val::Str(out))
            }
            Expression::Parenthesis(p) => self.eval(p.inner(), scope),
            Expression::Variable(v) => {
                let name = v.value().as_str();
                self.lookup_root(name, e, scope)
            }
            Expression::Conditional(c) => {
                let cond = self.eval(&c.cond_expr, scope)?;
                let cond = cond
                    .to_bool()
                    .map_err(|m| EvalError::new(span_of(&c.cond_expr), format!("invalid condition: {m}")))?;
                if cond { self.eval(&c.true_expr, scope) } else { self.eval(&c.false_expr, scope) }
            }
            Expression::FuncCall(f) => self.eval_call(f, scope),
            Expression::Traversal(t) => self.eval_traversal(t, e, scope),
            Expression::UnaryOp(u) => {
                let v = self.eval(&u.expr, scope)?;
                let at = |m: String| EvalError::new(span_of(&u.expr), m);
                match u.operator.value() {
                    UnaryOperator::Neg => Ok(Val::Num(-v.to_num().map_err(at)?)),
                    UnaryOperator::Not => Ok(Val::Bool(!v.to_bool().map_err(at)?)),
                }
            }
            Expression::BinaryOp(b) => self.eval_binary(b, scope),
            Expression::ForExpr(f) => self.eval_for(f, scope),
        }
    }

    /// A bare name: an iterator variable in scope, or a runtime reference kept as text.
    fn lookup_root(&self, name: &str, whole: &Expression, scope: &Scope) -> EvalResult {
        if let Some((_, v)) = scope.iter().rev().find(|(n, _)| n == name) {
            return Ok(v.clone());
        }
        match name {
            "var" => Ok(Val::Obj(self.vars.clone())),
            "local" => {
                let names: Vec<String> = self.locals.borrow().keys().cloned().collect();
                let mut out = BTreeMap::new();
                for n in names {
                    out.insert(n.clone(), self.local(&n, span_of(whole))?);
                }
                Ok(Val::Obj(out))
            }
            _ => Ok(self.runtime_text(whole)),
        }
    }

    fn runtime_text(&self, e: &Expression) -> Val {
        match self.text(&span_of(e)) {
            Some(t) => Val::Str(format!("${{{}}}", t.trim())),
            None => Val::Str(String::new()),
        }
    }

    /// True when the expression is a reference Nomad resolves at run time (not var/local/an
    /// iterator in scope): such an interpolation is copied through as written.
    pub(crate) fn is_runtime_ref(&self, e: &Expression, scope: &Scope) -> bool {
        let root = match e {
            Expression::Variable(v) => v.value().as_str(),
            Expression::Traversal(t) => match &t.expr {
                Expression::Variable(v) => v.value().as_str(),
                _ => return false,
            },
            _ => return false,
        };
        root != "var" && root != "local" && !scope.iter().any(|(n, _)| n == root)
    }

    pub(crate) fn local(&self, name: &str, at: Option<Range<usize>>) -> EvalResult {
        let state = {
            let mut locals = self.locals.borrow_mut();
            match locals.get_mut(name) {
                None => {
                    return Err(EvalError::new(at, format!("reference to undeclared local value {name:?}")));
                }
                Some(LocalState::Done(v)) => return Ok(v.clone()),
                Some(LocalState::Failed) => {
                    return Err(EvalError::new(
                        at,
                        format!(
                            "local.{name} could not be evaluated (see the error reported at it or at the locals it uses)"
                        ),
                    ));
                }
                Some(LocalState::InProgress) => {
                    let stack = self.local_stack.borrow();
                    let start = stack.iter().position(|n| n == name).unwrap_or(0);
                    let mut chain: Vec<String> = stack[start..].iter().map(|n| format!("local.{n}")).collect();
                    chain.push(format!("local.{name}"));
                    return Err(EvalError::new(
                        at,
                        format!("locals refer to each other in a cycle: {}", chain.join(" -> ")),
                    ));
                }
                Some(st @ LocalState::Pending(_)) => std::mem::replace(st, LocalState::InProgress),
            }
        };
        let LocalState::Pending(expr) = state else {
            return Err(EvalError::new(at, "internal: local in unexpected state"));
        };
        let mut scope = Scope::new();
        self.local_stack.borrow_mut().push(name.to_string());
        let result = self.eval(expr, &mut scope);
        self.local_stack.borrow_mut().pop();
        match result {
            Ok(v) => {
                self.locals.borrow_mut().insert(name.to_string(), LocalState::Done(v.clone()));
                Ok(v)
            }
            Err(e) => {
                self.locals.borrow_mut().insert(name.to_string(), LocalState::Failed);
                // An error inside another local was already reported there.
                if !e.msg.contains("could not be evaluated (see the error reported") {
                    self.local_errors.borrow_mut().push(e);
                }
                Err(EvalError::new(
                    at,
                    format!(
                        "local.{name} could not be evaluated (see the error reported at it or at the locals it uses)"
                    ),
                ))
            }
        }
    }

    fn eval_traversal(&self, t: &hcl::edit::expr::Traversal, whole: &Expression, scope: &mut Scope) -> EvalResult {
        let mut ops: &[hcl::edit::Decorated<TraversalOperator>] = &t.operators;
        let mut cur = match &t.expr {
            Expression::Variable(v) => {
                let name = v.value().as_str();
                let in_scope = scope.iter().any(|(n, _)| n == name);
                if !in_scope && (name == "var" || name == "local") {
                    let Some(first) = ops.first() else {
                        return Err(EvalError::new(span_of(whole), format!("{name} needs an attribute")));
                    };
                    let attr = match first.value() {
                        TraversalOperator::GetAttr(id) => id.value().as_str().to_string(),
                        TraversalOperator::Index(ie) => {
                            self.eval(ie, scope)?.to_str().map_err(|m| EvalError::new(span_of(ie), m))?
                        }
                        _ => {
                            return Err(EvalError::new(
                                span_of(whole),
                                format!("{name} must be followed by a name, as in {name}.example"),
                            ));
                        }
                    };
                    ops = &ops[1..];
                    if name == "var" {
                        match self.vars.get(&attr) {
                            Some(v) => v.clone(),
                            None => {
                                return Err(EvalError::new(
                                    span_of(whole),
                                    format!(
                                        "reference to undeclared input variable {attr:?}; declare it with a variable \"{attr}\" block"
                                    ),
                                ));
                            }
                        }
                    } else {
                        self.local(&attr, span_of(whole))?
                    }
                } else if !in_scope {
                    return Ok(self.runtime_text(whole));
                } else {
                    self.lookup_root(name, &t.expr, scope)?
                }
            }
            other => self.eval(other, scope)?,
        };
        let mut i = 0;
        while i < ops.len() {
            let op = &ops[i];
            match op.value() {
                TraversalOperator::GetAttr(id) => {
                    cur = get_attr(&cur, id.value().as_str()).map_err(|m| EvalError::new(span_of(whole), m))?;
                }
                TraversalOperator::LegacyIndex(n) => {
                    cur = index(&cur, &Val::Num(*n.value() as f64)).map_err(|m| EvalError::new(span_of(whole), m))?;
                }
                TraversalOperator::Index(ie) => {
                    let key = self.eval(ie, scope)?;
                    cur = index(&cur, &key).map_err(|m| EvalError::new(span_of(ie), m))?;
                }
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    let items = match cur {
                        Val::Null => vec![],
                        Val::List(l) => l,
                        other => vec![other],
                    };
                    let rest = &ops[i + 1..];
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        let mut v = item;
                        for op in rest {
                            v = match op.value() {
                                TraversalOperator::GetAttr(id) => get_attr(&v, id.value().as_str()),
                                TraversalOperator::LegacyIndex(n) => index(&v, &Val::Num(*n.value() as f64)),
                                TraversalOperator::Index(ie) => {
                                    let key = self.eval(ie, scope)?;
                                    index(&v, &key)
                                }
                                _ => Err("nested splat operators are not supported".to_string()),
                            }
                            .map_err(|m| EvalError::new(span_of(whole), m))?;
                        }
                        out.push(v);
                    }
                    return Ok(Val::List(out));
                }
            }
            i += 1;
        }
        Ok(cur)
    }

    fn eval_binary(&self, b: &hcl::edit::expr::BinaryOp, scope: &mut Scope) -> EvalResult {
        use BinaryOperator as Op;
        let op = *b.operator.value();
        let lhs = self.eval(&b.lhs_expr, scope)?;
        let lnum = |v: &Val| v.to_num().map_err(|m| EvalError::new(span_of(&b.lhs_expr), m));
        let rnum = |v: &Val| v.to_num().map_err(|m| EvalError::new(span_of(&b.rhs_expr), m));
        match op {
            Op::And | Op::Or => {
                let l = lhs.to_bool().map_err(|m| EvalError::new(span_of(&b.lhs_expr), m))?;
                if (op == Op::And && !l) || (op == Op::Or && l) {
                    return Ok(Val::Bool(l));
                }
                let rhs = self.eval(&b.rhs_expr, scope)?;
                let r = rhs.to_bool().map_err(|m| EvalError::new(span_of(&b.rhs_expr), m))?;
                Ok(Val::Bool(r))
            }
            _ => {
                let rhs = self.eval(&b.rhs_expr, scope)?;
                Ok(match op {
                    Op::Eq => Val::Bool(vals_equal(&lhs, &rhs)),
                    Op::NotEq => Val::Bool(!vals_equal(&lhs, &rhs)),
                    Op::Less => Val::Bool(lnum(&lhs)? < rnum(&rhs)?),
                    Op::LessEq => Val::Bool(lnum(&lhs)? <= rnum(&rhs)?),
                    Op::Greater => Val::Bool(lnum(&lhs)? > rnum(&rhs)?),
                    Op::GreaterEq => Val::Bool(lnum(&lhs)? >= rnum(&rhs)?),
                    Op::Plus => Val::Num(lnum(&lhs)? + rnum(&rhs)?),
                    Op::Minus => Val::Num(lnum(&lhs)? - rnum(&rhs)?),
                    Op::Mul => Val::Num(lnum(&lhs)? * rnum(&rhs)?),
                    Op::Div => {
                        let r = rnum(&rhs)?;
                        if r == 0.0 {
                            return Err(EvalError::new(span_of(&b.rhs_expr), "division by zero"));
                        }
                        Val::Num(lnum(&lhs)? / r)
                    }
                    Op::Mod => {
                        let r = rnum(&rhs)?;
                        if r == 0.0 {
                            return Err(EvalError::new(span_of(&b.rhs_expr), "modulo by zero"));
                        }
                        Val::Num(lnum(&lhs)? % r)
                    }
                    Op::And | Op::Or => Val::Null,
                })
            }
        }
    }

    fn eval_for(&self, f: &hcl::edit::expr::ForExpr, scope: &mut Scope) -> EvalResult {
        let coll = self.eval(&f.intro.collection_expr, scope)?;
        let pairs: Vec<(Val, Val)> = match coll {
            Val::List(l) => l.into_iter().enumerate().map(|(i, v)| (Val::Num(i as f64), v)).collect(),
            Val::Obj(o) => o.into_iter().map(|(k, v)| (Val::Str(k), v)).collect(),
            other => {
                return Err(EvalError::new(
                    span_of(&f.intro.collection_expr),
                    format!("a for expression needs a list, set, map or object, found {}", other.describe()),
                ));
            }
        };
        let key_var = f.intro.key_var.as_ref().map(|k| k.value().as_str().to_string());
        let value_var = f.intro.value_var.value().as_str().to_string();
        let mut list_out = Vec::new();
        let mut obj_out: BTreeMap<String, Val> = BTreeMap::new();
        let mut grouped: BTreeMap<String, Vec<Val>> = BTreeMap::new();
        let base = scope.len();
        for (k, v) in pairs {
            if let Some(kv) = &key_var {
                scope.push((kv.clone(), k));
            }
            scope.push((value_var.clone(), v));
            let result = self.for_step(f, scope, &mut list_out, &mut obj_out, &mut grouped);
            scope.truncate(base);
            result?;
        }
        if f.key_expr.is_some() {
            if f.grouping {
                Ok(Val::Obj(grouped.into_iter().map(|(k, v)| (k, Val::List(v))).collect()))
            } else {
                Ok(Val::Obj(obj_out))
            }
        } else {
            Ok(Val::List(list_out))
        }
    }

    fn for_step(
        &self,
        f: &hcl::edit::expr::ForExpr,
        scope: &mut Scope,
        list_out: &mut Vec<Val>,
        obj_out: &mut BTreeMap<String, Val>,
        grouped: &mut BTreeMap<String, Vec<Val>>,
    ) -> Result<(), EvalError> {
        if let Some(cond) = &f.cond {
            let c = self.eval(&cond.expr, scope)?;
            if !c.to_bool().map_err(|m| EvalError::new(span_of(&cond.expr), m))? {
                return Ok(());
            }
        }
        if list_out.len() + obj_out.len() + grouped.len() >= COLLECTION_LEN_MAX {
            return Err(EvalError::new(
                span_of(&f.value_expr),
                format!("for expression produces more than {COLLECTION_LEN_MAX} elements"),
            ));
        }
        let value = self.eval(&f.value_expr, scope)?;
        match &f.key_expr {
            None => list_out.push(value),
            Some(ke) => {
                let key = self.eval(ke, scope)?.to_str().map_err(|m| EvalError::new(span_of(ke), m))?;
                if f.grouping {
                    grouped.entry(key).or_default().push(value);
                } else {
                    match obj_out.entry(key) {
                        std::collections::btree_map::Entry::Occupied(o) => {
                            return Err(EvalError::new(
                                span_of(ke),
                                format!(
                                    "duplicate key {:?} in for expression; add `...` after the value to group values by key",
                                    o.key()
                                ),
                            ));
                        }
                        std::collections::btree_map::Entry::Vacant(v) => {
                            v.insert(value);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn eval_call(&self, f: &hcl::edit::expr::FuncCall, scope: &mut Scope) -> EvalResult {
        let name = f.name.name.value().as_str();
        let at = span_of(f);
        if f.name.is_namespaced() {
            return Err(EvalError::new(at, format!("call to unknown namespaced function {name:?}")));
        }
        let args: Vec<&Expression> = f.args.iter().collect();
        match name {
            "try" => {
                let mut last = None;
                for a in &args {
                    match self.eval(a, scope) {
                        Ok(v) => return Ok(v),
                        Err(e) => last = Some(e),
                    }
                }
                return Err(match last {
                    Some(e) => EvalError::new(
                        at,
                        format!("try(): no argument could be evaluated; the last error was: {}", e.msg),
                    ),
                    None => EvalError::new(at, "try() needs at least one argument"),
                });
            }
            "can" => {
                if args.len() != 1 {
                    return Err(EvalError::new(at, "can() takes exactly one argument"));
                }
                return Ok(Val::Bool(self.eval(args[0], scope).is_ok()));
            }
            _ => {}
        }
        let mut vals = Vec::with_capacity(args.len());
        for a in &args {
            vals.push(self.eval(a, scope)?);
        }
        if f.args.expand_final() {
            match vals.pop() {
                Some(Val::List(l)) => vals.extend(l),
                Some(other) => {
                    return Err(EvalError::new(
                        args.last().and_then(|a| span_of(*a)),
                        format!("the argument expanded with `...` must be a list, found {}", other.describe()),
                    ));
                }
                None => {}
            }
        }
        crate::funcs::call(self, name, vals).map_err(|m| EvalError::new(at, format!("{name}(): {m}")))
    }

    /// Renders a template into `out`. `nested` is true inside `%{if}`/`%{for}` bodies, whose
    /// literals hcl-edit does not dedent for `<<-` heredocs (it dedents only the top level), so
    /// they are dedented here by the same amount.
    fn eval_template(
        &self,
        t: &Template,
        scope: &mut Scope,
        out: &mut String,
        st: &mut TplState,
        nested: bool,
    ) -> Result<(), EvalError> {
        for el in t.iter() {
            let strip_next = &mut st.strip_next;
            match el {
                Element::Literal(l) => {
                    let raw: &str = l.value();
                    let dedented;
                    let s: &str = match (nested, st.dedent) {
                        (true, Some(n)) => {
                            dedented = dedent_literal(raw, n, st.line_start);
                            &dedented
                        }
                        _ => raw,
                    };
                    if *strip_next {
                        out.push_str(s.trim_start());
                    } else {
                        out.push_str(s);
                    }
                    *strip_next = false;
                    st.line_start = raw.ends_with('\n');
                }
                Element::Interpolation(i) => {
                    if i.strip.strip_start() {
                        trim_end_in_place(out);
                    }
                    if self.is_runtime_ref(&i.expr, scope) {
                        // Copied as written; `~` strip markers are HCL's, not the runtime's, so
                        // an interpolation carrying them is re-emitted without them.
                        let whole =
                            if i.strip == hcl::edit::template::Strip::None { self.text(&span_of(i)) } else { None };
                        match whole {
                            Some(t) => out.push_str(t),
                            None => {
                                if let Val::Str(s) = self.runtime_text(&i.expr) {
                                    out.push_str(&s)
                                }
                            }
                        }
                    } else {
                        let v = self.eval(&i.expr, scope)?;
                        let s = match v {
                            Val::Null => {
                                return Err(EvalError::new(
                                    span_of(&i.expr),
                                    "cannot include a null value in a string template",
                                ));
                            }
                            Val::List(_) | Val::Obj(_) => {
                                return Err(EvalError::new(
                                    span_of(&i.expr),
                                    format!(
                                        "cannot include {} in a string template; use jsonencode() or join()",
                                        v.describe()
                                    ),
                                ));
                            }
                            Val::Num(n) => num_to_string(n),
                            Val::Bool(b) => b.to_string(),
                            Val::Str(s) => s,
                        };
                        out.push_str(&s);
                    }
                    *strip_next = i.strip.strip_end();
                    st.line_start = false;
                }
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(ifd) => {
                        if ifd.if_expr.strip.strip_start() {
                            trim_end_in_place(out);
                        }
                        let c = self.eval(&ifd.if_expr.cond_expr, scope)?;
                        let c = c.to_bool().map_err(|m| {
                            EvalError::new(span_of(&ifd.if_expr.cond_expr), format!("invalid %{{if}} condition: {m}"))
                        })?;
                        *strip_next = ifd.if_expr.strip.strip_end();
                        st.line_start = false;
                        if c {
                            self.eval_template(&ifd.if_expr.template, scope, out, st, true)?;
                            if ifd.else_expr.as_ref().is_some_and(|e| e.strip.strip_start()) {
                                trim_end_in_place(out);
                            }
                        } else if let Some(e) = &ifd.else_expr {
                            st.strip_next = e.strip.strip_end();
                            st.line_start = false;
                            self.eval_template(&e.template, scope, out, st, true)?;
                        }
                        if ifd.endif_expr.strip.strip_start() {
                            trim_end_in_place(out);
                        }
                        st.strip_next = ifd.endif_expr.strip.strip_end();
                        st.line_start = false;
                    }
                    Directive::For(ford) => {
                        let fe = &ford.for_expr;
                        if fe.strip.strip_start() {
                            trim_end_in_place(out);
                        }
                        let coll = self.eval(&fe.collection_expr, scope)?;
                        let pairs: Vec<(Val, Val)> = match coll {
                            Val::List(l) => l.into_iter().enumerate().map(|(i, v)| (Val::Num(i as f64), v)).collect(),
                            Val::Obj(o) => o.into_iter().map(|(k, v)| (Val::Str(k), v)).collect(),
                            other => {
                                return Err(EvalError::new(
                                    span_of(&fe.collection_expr),
                                    format!("%{{for}} needs a list or map, found {}", other.describe()),
                                ));
                            }
                        };
                        let base = scope.len();
                        for (k, v) in pairs {
                            st.strip_next = fe.strip.strip_end();
                            st.line_start = false;
                            if let Some(kv) = &fe.key_var {
                                scope.push((kv.value().as_str().to_string(), k));
                            }
                            scope.push((fe.value_var.value().as_str().to_string(), v));
                            let r = self.eval_template(&fe.template, scope, out, st, true);
                            scope.truncate(base);
                            r?;
                            if ford.endfor_expr.strip.strip_start() {
                                trim_end_in_place(out);
                            }
                        }
                        st.strip_next = ford.endfor_expr.strip.strip_end();
                        st.line_start = false;
                    }
                },
            }
        }
        Ok(())
    }
}

/// Template rendering state carried across elements and into directive bodies.
#[derive(Default)]
struct TplState {
    /// The previous element ended with a `~` strip marker: trim the next literal's start.
    strip_next: bool,
    /// The next literal starts at the beginning of a source line.
    line_start: bool,
    /// Spaces to remove from each line of a `<<-` heredoc.
    dedent: Option<usize>,
}

/// Removes up to `n` leading spaces from each line; the first line only when it starts a line.
fn dedent_literal(s: &str, n: usize, first_at_line_start: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.split_inclusive('\n').enumerate() {
        if i == 0 && !first_at_line_start {
            out.push_str(line);
            continue;
        }
        let spaces = line.bytes().take(n).take_while(|b| *b == b' ' || *b == b'\t').count();
        out.push_str(&line[spaces..]);
    }
    out
}

fn trim_end_in_place(s: &mut String) {
    let len = s.trim_end().len();
    s.truncate(len);
}

/// HCL equality: same type and same value (the number 1 is not the string "1").
pub(crate) fn vals_equal(a: &Val, b: &Val) -> bool {
    a == b
}

pub(crate) fn get_attr(v: &Val, name: &str) -> Result<Val, String> {
    match v {
        Val::Obj(o) => o.get(name).cloned().ok_or_else(|| format!("this object has no attribute {name:?}")),
        Val::Null => Err(format!("attempt to get attribute {name:?} from a null value")),
        other => Err(format!("cannot get attribute {name:?} of {}", other.describe())),
    }
}

pub(crate) fn index(v: &Val, key: &Val) -> Result<Val, String> {
    match v {
        Val::List(l) => {
            let n = key.to_num()?;
            if n < 0.0 || n.fract() != 0.0 || n as usize >= l.len() {
                return Err(format!("index {} out of range for a list of {} elements", num_to_string(n), l.len()));
            }
            Ok(l[n as usize].clone())
        }
        Val::Obj(o) => {
            let k = key.to_str()?;
            o.get(&k).cloned().ok_or_else(|| format!("this map has no key {k:?}"))
        }
        other => Err(format!("cannot index into {}", other.describe())),
    }
}
