//! The values HCL expressions evaluate to, HCL type constraints, and conversions between them.
//!
//! Objects are kept in key order (a `BTreeMap`), as cty does: `keys()` and `values()` return
//! them sorted, and that order is what users see. Sets are sorted, de-duplicated lists.

use std::collections::BTreeMap;

/// An evaluated HCL value. Runtime interpolations (`${node.unique.id}`) are plain strings
/// holding the text as written; they are resolved later by the server or the client.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Val>),
    Obj(BTreeMap<String, Val>),
}

impl Val {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "bool",
            Val::Num(_) => "number",
            Val::Str(_) => "string",
            Val::List(_) => "list",
            Val::Obj(_) => "object",
        }
    }

    /// The string form of a primitive value, as HCL's automatic conversion to string does it.
    pub(crate) fn to_str(&self) -> Result<String, String> {
        match self {
            Val::Str(s) => Ok(s.clone()),
            Val::Num(n) => Ok(num_to_string(*n)),
            Val::Bool(b) => Ok(b.to_string()),
            Val::Null => Err("expected a string, found null".into()),
            other => Err(format!("expected a string, found a {}", other.type_name())),
        }
    }

    pub(crate) fn to_num(&self) -> Result<f64, String> {
        match self {
            Val::Num(n) => Ok(*n),
            Val::Str(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| format!("expected a number, found the string {s:?}")),
            other => Err(format!("expected a number, found a {}", other.type_name())),
        }
    }

    pub(crate) fn to_bool(&self) -> Result<bool, String> {
        match self {
            Val::Bool(b) => Ok(*b),
            Val::Str(s) if s == "true" => Ok(true),
            Val::Str(s) if s == "false" => Ok(false),
            other => Err(format!("expected a bool, found {}", other.describe())),
        }
    }

    pub(crate) fn to_list(&self) -> Result<Vec<Val>, String> {
        match self {
            Val::List(l) => Ok(l.clone()),
            other => Err(format!("expected a list, found {}", other.describe())),
        }
    }

    pub(crate) fn to_obj(&self) -> Result<BTreeMap<String, Val>, String> {
        match self {
            Val::Obj(o) => Ok(o.clone()),
            other => Err(format!("expected a map or object, found {}", other.describe())),
        }
    }

    /// A short description for error messages: the type, and the value when it is small.
    pub(crate) fn describe(&self) -> String {
        match self {
            Val::Null => "null".into(),
            Val::Bool(b) => format!("the bool {b}"),
            Val::Num(n) => format!("the number {}", num_to_string(*n)),
            Val::Str(s) if s.len() <= 40 => format!("the string {s:?}"),
            Val::Str(_) => "a string".into(),
            Val::List(_) => "a list".into(),
            Val::Obj(_) => "an object".into(),
        }
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Bool(b) => serde_json::Value::Bool(*b),
            Val::Num(n) => num_to_json(*n),
            Val::Str(s) => serde_json::Value::String(s.clone()),
            Val::List(l) => serde_json::Value::Array(l.iter().map(Val::to_json).collect()),
            Val::Obj(o) => serde_json::Value::Object(o.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    pub(crate) fn from_json(v: &serde_json::Value) -> Val {
        match v {
            serde_json::Value::Null => Val::Null,
            serde_json::Value::Bool(b) => Val::Bool(*b),
            serde_json::Value::Number(n) => Val::Num(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Val::Str(s.clone()),
            serde_json::Value::Array(a) => Val::List(a.iter().map(Val::from_json).collect()),
            serde_json::Value::Object(o) => Val::Obj(o.iter().map(|(k, v)| (k.clone(), Val::from_json(v))).collect()),
        }
    }
}

/// Whole numbers print without a fraction, as cty does.
pub(crate) fn num_to_string(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e17 { format!("{}", n as i64) } else { format!("{n}") }
}

pub(crate) fn num_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// A variable's type constraint, read from its `type = ...` expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ty {
    Any,
    String,
    Number,
    Bool,
    List(Box<Ty>),
    Set(Box<Ty>),
    Map(Box<Ty>),
    Object(BTreeMap<String, Ty>),
    Tuple(Vec<Ty>),
}

impl Ty {
    pub(crate) fn is_primitive_string_or_any(&self) -> bool {
        matches!(self, Ty::String | Ty::Any)
    }

    pub(crate) fn name(&self) -> String {
        match self {
            Ty::Any => "any".into(),
            Ty::String => "string".into(),
            Ty::Number => "number".into(),
            Ty::Bool => "bool".into(),
            Ty::List(t) => format!("list({})", t.name()),
            Ty::Set(t) => format!("set({})", t.name()),
            Ty::Map(t) => format!("map({})", t.name()),
            Ty::Object(fields) => {
                let inner: Vec<String> = fields.iter().map(|(k, t)| format!("{k} = {}", t.name())).collect();
                format!("object({{{}}})", inner.join(", "))
            }
            Ty::Tuple(items) => {
                let inner: Vec<String> = items.iter().map(Ty::name).collect();
                format!("tuple([{}])", inner.join(", "))
            }
        }
    }
}

/// Converts a value to a type, as cty's conversion does for variable values: primitives convert
/// between each other through their string forms, collections convert element-wise, objects
/// must have every attribute of the object type (extra attributes are dropped). `null` stays
/// `null` for every type.
pub(crate) fn convert(v: &Val, ty: &Ty) -> Result<Val, String> {
    if matches!(v, Val::Null) {
        return Ok(Val::Null);
    }
    match ty {
        Ty::Any => Ok(v.clone()),
        Ty::String => v.to_str().map(Val::Str),
        Ty::Number => v.to_num().map(Val::Num),
        Ty::Bool => v.to_bool().map(Val::Bool),
        Ty::List(elem) => {
            let items = match v {
                Val::List(l) => l,
                other => {
                    return Err(format!("expected a {}, found {}", ty.name(), other.describe()));
                }
            };
            let out = items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(item, elem).map_err(|e| format!("element {i}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Val::List(out))
        }
        Ty::Set(elem) => {
            let list = convert(v, &Ty::List(elem.clone()))?;
            Ok(to_set(list.to_list()?))
        }
        Ty::Map(elem) => {
            let obj = match v {
                Val::Obj(o) => o,
                other => {
                    return Err(format!("expected a {}, found {}", ty.name(), other.describe()));
                }
            };
            let out = obj
                .iter()
                .map(|(k, item)| convert(item, elem).map(|c| (k.clone(), c)).map_err(|e| format!("key {k:?}: {e}")))
                .collect::<Result<BTreeMap<_, _>, String>>()?;
            Ok(Val::Obj(out))
        }
        Ty::Object(fields) => {
            let obj = match v {
                Val::Obj(o) => o,
                other => {
                    return Err(format!("expected an {}, found {}", ty.name(), other.describe()));
                }
            };
            let mut out = BTreeMap::new();
            for (k, fty) in fields {
                match obj.get(k) {
                    Some(item) => {
                        out.insert(k.clone(), convert(item, fty).map_err(|e| format!("attribute {k:?}: {e}"))?);
                    }
                    None => return Err(format!("attribute {k:?} is required")),
                }
            }
            Ok(Val::Obj(out))
        }
        Ty::Tuple(items) => {
            let list = match v {
                Val::List(l) => l,
                other => {
                    return Err(format!("expected a {}, found {}", ty.name(), other.describe()));
                }
            };
            if list.len() != items.len() {
                return Err(format!("expected a tuple of {} elements, found {}", items.len(), list.len()));
            }
            let out = list
                .iter()
                .zip(items)
                .enumerate()
                .map(|(i, (item, t))| convert(item, t).map_err(|e| format!("element {i}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Val::List(out))
        }
    }
}

/// A set: sorted (strings lexically, numbers numerically) and de-duplicated.
pub(crate) fn to_set(mut items: Vec<Val>) -> Val {
    items.sort_by(cmp_vals);
    items.dedup();
    Val::List(items)
}

pub(crate) fn cmp_vals(a: &Val, b: &Val) -> std::cmp::Ordering {
    match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
        (Val::Str(x), Val::Str(y)) => x.cmp(y),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        _ => a.type_name().cmp(b.type_name()).then_with(|| {
            serde_json::to_string(&a.to_json())
                .unwrap_or_default()
                .cmp(&serde_json::to_string(&b.to_json()).unwrap_or_default())
        }),
    }
}
