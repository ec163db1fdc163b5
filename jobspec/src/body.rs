//! First stage of conversion: an HCL body evaluated into a tree of attributes (values) and
//! blocks, with `dynamic` blocks expanded. The tree keeps byte spans so the Nomad mapping
//! (`job.rs`) can point at the attribute or block it rejects.

use std::ops::Range;

use hcl::edit::Span;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Body, Structure};

use crate::eval::{EvalError, Evaluator, Scope};
use crate::value::Val;

#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub attrs: Vec<Attr>,
    pub blocks: Vec<BlockNode>,
}

#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub name: String,
    pub val: Val,
    /// The value's span (conversion errors point here).
    pub span: Option<Range<usize>>,
    /// The name's span (unknown-argument errors point here).
    pub key_span: Option<Range<usize>>,
}

#[derive(Debug, Clone)]
pub(crate) struct BlockNode {
    pub ty: String,
    pub labels: Vec<String>,
    pub body: Node,
    pub span: Option<Range<usize>>,
}

/// Bound on how many blocks one `dynamic` block may generate.
const DYNAMIC_BLOCKS_MAX: usize = 10_000;

/// Blocks whose content Nomad hands on without interpreting it; HCL2 `dynamic` blocks are not
/// expanded inside them (Nomad documents the same restriction).
fn is_opaque(ty: &str) -> bool {
    matches!(ty, "config" | "policy")
}

pub(crate) fn build(
    ev: &Evaluator<'_>,
    body: &Body,
    scope: &mut Scope,
    errs: &mut Vec<EvalError>,
    opaque: bool,
) -> Node {
    let mut node = Node::default();
    for st in body.iter() {
        match st {
            Structure::Attribute(a) => {
                let name = a.key.value().as_str().to_string();
                if node.attrs.iter().any(|x| x.name == name) {
                    errs.push(EvalError::new(a.span(), format!("the argument {name:?} was already set in this block")));
                    continue;
                }
                match ev.eval(&a.value, scope) {
                    Ok(val) => node.attrs.push(Attr { name, val, span: a.value.span(), key_span: a.key.span() }),
                    Err(e) => errs.push(e),
                }
            }
            Structure::Block(b) => {
                let ty = b.ident.value().as_str().to_string();
                if ty == "dynamic" {
                    if opaque {
                        errs.push(EvalError::new(
                            b.span(),
                            "dynamic blocks are not supported inside task config or scaling policy blocks (Nomad passes these through uninterpreted); write the blocks out",
                        ));
                        continue;
                    }
                    expand_dynamic(ev, b, scope, errs, &mut node);
                    continue;
                }
                let labels = b.labels.iter().map(|l| l.as_str().to_string()).collect();
                let child = build(ev, &b.body, scope, errs, opaque || is_opaque(&ty));
                node.blocks.push(BlockNode { ty, labels, body: child, span: b.span() });
            }
        }
    }
    node
}

fn expand_dynamic(
    ev: &Evaluator<'_>,
    b: &hcl::edit::structure::Block,
    scope: &mut Scope,
    errs: &mut Vec<EvalError>,
    node: &mut Node,
) {
    let Some(ty) = b.labels.first().map(|l| l.as_str().to_string()) else {
        errs.push(EvalError::new(
            b.span(),
            "a dynamic block needs a label naming the block type to generate, as in dynamic \"port\" { ... }",
        ));
        return;
    };
    let mut for_each: Option<&Expression> = None;
    let mut iterator = ty.clone();
    let mut labels_expr: Option<&Expression> = None;
    let mut content = None;
    for st in b.body.iter() {
        match st {
            Structure::Attribute(a) => match a.key.value().as_str() {
                "for_each" => for_each = Some(&a.value),
                "iterator" => match &a.value {
                    Expression::Variable(v) => iterator = v.value().as_str().to_string(),
                    other => errs.push(EvalError::new(other.span(), "iterator must be a bare name, as in iterator = item")),
                },
                "labels" => labels_expr = Some(&a.value),
                other => errs.push(EvalError::new(
                    a.span(),
                    format!("unexpected argument {other:?} in a dynamic block; expected for_each, iterator, labels and a content block"),
                )),
            },
            Structure::Block(c) if c.ident.value().as_str() == "content" => content = Some(c),
            Structure::Block(c) => errs.push(EvalError::new(
                c.span(),
                format!("unexpected block {:?} in a dynamic block; put the generated block's body in a content block", c.ident.value().as_str()),
            )),
        }
    }
    let Some(for_each) = for_each else {
        errs.push(EvalError::new(b.span(), format!("dynamic {ty:?} needs a for_each argument")));
        return;
    };
    let Some(content) = content else {
        errs.push(EvalError::new(b.span(), format!("dynamic {ty:?} needs a content block")));
        return;
    };
    let coll = match ev.eval(for_each, scope) {
        Ok(v) => v,
        Err(e) => {
            errs.push(e);
            return;
        }
    };
    let pairs: Vec<(Val, Val)> = match coll {
        Val::List(l) => l.into_iter().enumerate().map(|(i, v)| (Val::Num(i as f64), v)).collect(),
        Val::Obj(o) => o.into_iter().map(|(k, v)| (Val::Str(k), v)).collect(),
        Val::Null => vec![],
        other => {
            errs.push(EvalError::new(
                for_each.span(),
                format!("for_each needs a list, set or map, found {}", other.describe()),
            ));
            return;
        }
    };
    if pairs.len() > DYNAMIC_BLOCKS_MAX {
        errs.push(EvalError::new(
            for_each.span(),
            format!("dynamic {ty:?} would generate {} blocks; the limit is {DYNAMIC_BLOCKS_MAX}", pairs.len()),
        ));
        return;
    }
    for (k, v) in pairs {
        let mut it = std::collections::BTreeMap::new();
        it.insert("key".to_string(), k);
        it.insert("value".to_string(), v);
        scope.push((iterator.clone(), Val::Obj(it)));
        let mut labels = Vec::new();
        if let Some(le) = labels_expr {
            match ev.eval(le, scope) {
                Ok(Val::List(l)) => {
                    for item in l {
                        match item.to_str() {
                            Ok(s) => labels.push(s),
                            Err(m) => errs.push(EvalError::new(le.span(), format!("invalid label: {m}"))),
                        }
                    }
                }
                Ok(other) => errs.push(EvalError::new(
                    le.span(),
                    format!("labels must be a list of strings, found {}", other.describe()),
                )),
                Err(e) => errs.push(e),
            }
        }
        let child = build(ev, &content.body, scope, errs, is_opaque(&ty));
        scope.pop();
        node.blocks.push(BlockNode { ty: ty.clone(), labels, body: child, span: b.span() });
    }
}
