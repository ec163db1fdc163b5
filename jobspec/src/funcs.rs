//! The HCL2 functions Nomad job files may call (cty's standard library subset plus Nomad's
//! file and uuid functions). `try` and `can` live in the evaluator: they need unevaluated
//! arguments. Everything that touches the outside world (files, clock, UUIDs) goes through
//! the caller's [`crate::Env`].

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::Digest as _;

use crate::eval::{COLLECTION_LEN_MAX, Evaluator, vals_equal};
use crate::value::{Ty, Val, convert, num_to_string, to_set};

type R = Result<Val, String>;

fn arity(args: &[Val], min: usize, max: usize) -> Result<(), String> {
    if args.len() < min || args.len() > max {
        if min == max {
            return Err(format!("takes {min} argument(s), got {}", args.len()));
        }
        return Err(format!("takes {min} to {max} arguments, got {}", args.len()));
    }
    Ok(())
}

fn s(v: &Val) -> Result<String, String> {
    v.to_str()
}

fn n(v: &Val) -> Result<f64, String> {
    v.to_num()
}

fn int(v: &Val) -> Result<i64, String> {
    let x = v.to_num()?;
    if x.fract() != 0.0 || !x.is_finite() || x.abs() > 9.0e15 {
        return Err(format!("expected a whole number, found {}", v.describe()));
    }
    Ok(x as i64)
}

fn list(v: &Val) -> Result<Vec<Val>, String> {
    v.to_list()
}

/// Names of all functions, for the table test and "did you mean" messages.
pub const FUNCTION_NAMES: &[&str] = &[
    "abs",
    "abspath",
    "base64decode",
    "base64encode",
    "basename",
    "can",
    "ceil",
    "chomp",
    "coalesce",
    "coalescelist",
    "compact",
    "concat",
    "contains",
    "dirname",
    "distinct",
    "element",
    "file",
    "fileexists",
    "fileset",
    "flatten",
    "floor",
    "format",
    "formatdate",
    "formatlist",
    "index",
    "indent",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lookup",
    "lower",
    "max",
    "md5",
    "merge",
    "min",
    "parseint",
    "pathexpand",
    "pow",
    "range",
    "regex",
    "regexall",
    "replace",
    "reverse",
    "setunion",
    "sha1",
    "sha256",
    "sha512",
    "signum",
    "slice",
    "sort",
    "split",
    "strlen",
    "strrev",
    "substr",
    "timestamp",
    "title",
    "tobool",
    "tolist",
    "tomap",
    "tonumber",
    "toset",
    "tostring",
    "trim",
    "trimprefix",
    "trimspace",
    "trimsuffix",
    "try",
    "upper",
    "urlencode",
    "uuidv4",
    "uuidv5",
    "values",
    "yamldecode",
    "yamlencode",
    "zipmap",
];

pub(crate) fn call(ev: &Evaluator<'_>, name: &str, a: Vec<Val>) -> R {
    match name {
        // strings
        "lower" => {
            arity(&a, 1, 1)?;
            Ok(Val::Str(s(&a[0])?.to_lowercase()))
        }
        "upper" => {
            arity(&a, 1, 1)?;
            Ok(Val::Str(s(&a[0])?.to_uppercase()))
        }
        "title" => {
            arity(&a, 1, 1)?;
            let mut out = String::new();
            let mut prev_letter = false;
            for c in s(&a[0])?.chars() {
                if !prev_letter && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                prev_letter = c.is_alphanumeric();
            }
            Ok(Val::Str(out))
        }
        "trimspace" => {
            arity(&a, 1, 1)?;
            Ok(Val::Str(s(&a[0])?.trim().to_string()))
        }
        "chomp" => {
            arity(&a, 1, 1)?;
            Ok(Val::Str(s(&a[0])?.trim_end_matches(['\r', '\n']).to_string()))
        }
        "trim" => {
            arity(&a, 2, 2)?;
            let cut: Vec<char> = s(&a[1])?.chars().collect();
            Ok(Val::Str(s(&a[0])?.trim_matches(|c| cut.contains(&c)).to_string()))
        }
        "trimprefix" => {
            arity(&a, 2, 2)?;
            let (x, p) = (s(&a[0])?, s(&a[1])?);
            Ok(Val::Str(x.strip_prefix(p.as_str()).unwrap_or(&x).to_string()))
        }
        "trimsuffix" => {
            arity(&a, 2, 2)?;
            let (x, p) = (s(&a[0])?, s(&a[1])?);
            Ok(Val::Str(x.strip_suffix(p.as_str()).unwrap_or(&x).to_string()))
        }
        "strlen" => {
            arity(&a, 1, 1)?;
            Ok(Val::Num(s(&a[0])?.chars().count() as f64))
        }
        "strrev" => {
            arity(&a, 1, 1)?;
            Ok(Val::Str(s(&a[0])?.chars().rev().collect()))
        }
        "indent" => {
            arity(&a, 2, 2)?;
            let pad = " ".repeat(int(&a[0])?.clamp(0, 1024) as usize);
            let text = s(&a[1])?;
            Ok(Val::Str(text.replace('\n', &format!("\n{pad}"))))
        }
        "join" => {
            arity(&a, 2, usize::MAX)?;
            let sep = s(&a[0])?;
            let mut parts = Vec::new();
            for l in &a[1..] {
                for item in list(l)? {
                    parts.push(s(&item)?);
                }
            }
            Ok(Val::Str(parts.join(&sep)))
        }
        "split" => {
            arity(&a, 2, 2)?;
            let (sep, x) = (s(&a[0])?, s(&a[1])?);
            if x.is_empty() {
                return Ok(Val::List(vec![Val::Str(String::new())]));
            }
            let parts: Vec<Val> = if sep.is_empty() {
                x.chars().map(|c| Val::Str(c.to_string())).collect()
            } else {
                x.split(sep.as_str()).map(|p| Val::Str(p.to_string())).collect()
            };
            Ok(Val::List(parts))
        }
        "format" => {
            arity(&a, 1, usize::MAX)?;
            format(&s(&a[0])?, &a[1..]).map(Val::Str)
        }
        "formatlist" => {
            arity(&a, 1, usize::MAX)?;
            let spec = s(&a[0])?;
            let mut len: Option<usize> = None;
            for v in &a[1..] {
                if let Val::List(l) = v {
                    match len {
                        Some(n) if n != l.len() => {
                            return Err("all list arguments must have the same length".into());
                        }
                        _ => len = Some(l.len()),
                    }
                }
            }
            let len = len.unwrap_or(1);
            let mut out = Vec::with_capacity(len);
            for i in 0..len {
                let row: Vec<Val> = a[1..]
                    .iter()
                    .map(|v| match v {
                        Val::List(l) => l[i].clone(),
                        other => other.clone(),
                    })
                    .collect();
                out.push(Val::Str(format(&spec, &row)?));
            }
            Ok(Val::List(out))
        }
        "replace" => {
            arity(&a, 3, 3)?;
            let (x, from, to) = (s(&a[0])?, s(&a[1])?, s(&a[2])?);
            if from.len() >= 2 && from.starts_with('/') && from.ends_with('/') {
                let re = regex(&from[1..from.len() - 1])?;
                Ok(Val::Str(re.replace_all(&x, to.as_str()).into_owned()))
            } else {
                Ok(Val::Str(x.replace(from.as_str(), &to)))
            }
        }
        "regex" => {
            arity(&a, 2, 2)?;
            let re = regex(&s(&a[0])?)?;
            let x = s(&a[1])?;
            match re.captures(&x) {
                Some(c) => Ok(captures_val(&re, &c)),
                None => Err("pattern did not match any part of the given string".into()),
            }
        }
        "regexall" => {
            arity(&a, 2, 2)?;
            let re = regex(&s(&a[0])?)?;
            let x = s(&a[1])?;
            Ok(Val::List(re.captures_iter(&x).map(|c| captures_val(&re, &c)).collect()))
        }
        "substr" => {
            arity(&a, 3, 3)?;
            let chars: Vec<char> = s(&a[0])?.chars().collect();
            let len = chars.len() as i64;
            let mut off = int(&a[1])?;
            let count = int(&a[2])?;
            if off < 0 {
                off += len;
            }
            if off < 0 || off > len {
                return Err("offset is out of range for the string".into());
            }
            let end = if count < 0 { len } else { (off + count).min(len) };
            Ok(Val::Str(chars[off as usize..end.max(off) as usize].iter().collect()))
        }
        "urlencode" => {
            arity(&a, 1, 1)?;
            let mut out = String::new();
            for b in s(&a[0])?.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            Ok(Val::Str(out))
        }
        // collections
        "length" => {
            arity(&a, 1, 1)?;
            Ok(Val::Num(match &a[0] {
                Val::Str(x) => x.chars().count(),
                Val::List(l) => l.len(),
                Val::Obj(o) => o.len(),
                other => return Err(format!("cannot take the length of {}", other.describe())),
            } as f64))
        }
        "concat" => {
            let mut out = Vec::new();
            for l in &a {
                out.extend(list(l)?);
            }
            Ok(Val::List(out))
        }
        "contains" => {
            arity(&a, 2, 2)?;
            Ok(Val::Bool(list(&a[0])?.iter().any(|x| vals_equal(x, &a[1]))))
        }
        "coalesce" => {
            for v in &a {
                match v {
                    Val::Null => {}
                    Val::Str(x) if x.is_empty() => {}
                    other => return Ok(other.clone()),
                }
            }
            Err("no non-null, non-empty-string arguments".into())
        }
        "coalescelist" => {
            for v in &a {
                if !list(v)?.is_empty() {
                    return Ok(v.clone());
                }
            }
            Err("no non-empty list arguments".into())
        }
        "compact" => {
            arity(&a, 1, 1)?;
            Ok(Val::List(
                list(&a[0])?
                    .into_iter()
                    .filter(|v| !matches!(v, Val::Null) && !matches!(v, Val::Str(x) if x.is_empty()))
                    .collect(),
            ))
        }
        "distinct" => {
            arity(&a, 1, 1)?;
            let mut out: Vec<Val> = Vec::new();
            for v in list(&a[0])? {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(Val::List(out))
        }
        "element" => {
            arity(&a, 2, 2)?;
            let l = list(&a[0])?;
            if l.is_empty() {
                return Err("cannot use element() with an empty list".into());
            }
            let i = int(&a[1])?;
            if i < 0 {
                return Err("index must not be negative".into());
            }
            Ok(l[(i as usize) % l.len()].clone())
        }
        "flatten" => {
            arity(&a, 1, 1)?;
            fn flat(v: Vec<Val>, out: &mut Vec<Val>) {
                for x in v {
                    match x {
                        Val::List(inner) => flat(inner, out),
                        other => out.push(other),
                    }
                }
            }
            let mut out = Vec::new();
            flat(list(&a[0])?, &mut out);
            Ok(Val::List(out))
        }
        "index" => {
            arity(&a, 2, 2)?;
            list(&a[0])?
                .iter()
                .position(|x| vals_equal(x, &a[1]))
                .map(|i| Val::Num(i as f64))
                .ok_or_else(|| "item not found".to_string())
        }
        "keys" => {
            arity(&a, 1, 1)?;
            Ok(Val::List(a[0].to_obj()?.into_keys().map(Val::Str).collect()))
        }
        "values" => {
            arity(&a, 1, 1)?;
            Ok(Val::List(a[0].to_obj()?.into_values().collect()))
        }
        "lookup" => {
            arity(&a, 2, 3)?;
            let m = a[0].to_obj()?;
            let k = s(&a[1])?;
            match (m.get(&k), a.get(2)) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => Err(format!("the map has no key {k:?} and no default was given")),
            }
        }
        "merge" => {
            let mut out = BTreeMap::new();
            for v in &a {
                match v {
                    Val::Null => {}
                    other => out.extend(other.to_obj()?),
                }
            }
            Ok(Val::Obj(out))
        }
        "range" => {
            arity(&a, 1, 3)?;
            let (start, limit, step) = match a.len() {
                1 => (0.0, n(&a[0])?, 1.0),
                2 => {
                    let (st, li) = (n(&a[0])?, n(&a[1])?);
                    (st, li, if li >= st { 1.0 } else { -1.0 })
                }
                _ => (n(&a[0])?, n(&a[1])?, n(&a[2])?),
            };
            if step == 0.0 {
                return Err("step must not be zero".into());
            }
            if (limit - start) / step > COLLECTION_LEN_MAX as f64 || !start.is_finite() || !limit.is_finite() {
                return Err(format!("more than {COLLECTION_LEN_MAX} elements"));
            }
            // Counted, not accumulated: past 2^53 `x += 1.0` no longer moves `x`.
            let count = ((limit - start) / step).ceil();
            let count = if count.is_finite() && count > 0.0 { count as usize } else { 0 };
            Ok(Val::List((0..count).map(|i| Val::Num(start + i as f64 * step)).collect()))
        }
        "reverse" => {
            arity(&a, 1, 1)?;
            let mut l = list(&a[0])?;
            l.reverse();
            Ok(Val::List(l))
        }
        "slice" => {
            arity(&a, 3, 3)?;
            let l = list(&a[0])?;
            let (st, en) = (int(&a[1])?, int(&a[2])?);
            if st < 0 || en < st || en as usize > l.len() {
                return Err(format!("indices {st}..{en} are out of range for a list of {}", l.len()));
            }
            Ok(Val::List(l[st as usize..en as usize].to_vec()))
        }
        "sort" => {
            arity(&a, 1, 1)?;
            let mut l: Vec<String> = list(&a[0])?.iter().map(s).collect::<Result<_, _>>()?;
            l.sort();
            Ok(Val::List(l.into_iter().map(Val::Str).collect()))
        }
        "setunion" => {
            let mut all = Vec::new();
            for v in &a {
                all.extend(list(v)?);
            }
            Ok(to_set(all))
        }
        "zipmap" => {
            arity(&a, 2, 2)?;
            let (k, v) = (list(&a[0])?, list(&a[1])?);
            if k.len() != v.len() {
                return Err("the keys and values lists must have the same length".into());
            }
            let mut out = BTreeMap::new();
            for (k, v) in k.iter().zip(v) {
                out.insert(s(k)?, v);
            }
            Ok(Val::Obj(out))
        }
        // conversion
        "tolist" => {
            arity(&a, 1, 1)?;
            convert(&a[0], &Ty::List(Box::new(Ty::Any)))
        }
        "toset" => {
            arity(&a, 1, 1)?;
            convert(&a[0], &Ty::Set(Box::new(Ty::Any)))
        }
        "tomap" => {
            arity(&a, 1, 1)?;
            convert(&a[0], &Ty::Map(Box::new(Ty::Any)))
        }
        "tostring" => {
            arity(&a, 1, 1)?;
            convert(&a[0], &Ty::String)
        }
        "tonumber" => {
            arity(&a, 1, 1)?;
            convert(&a[0], &Ty::Number)
        }
        "tobool" => {
            arity(&a, 1, 1)?;
            convert(&a[0], &Ty::Bool)
        }
        // encoding
        "jsonencode" => {
            arity(&a, 1, 1)?;
            serde_json::to_string(&a[0].to_json()).map(Val::Str).map_err(|e| e.to_string())
        }
        "jsondecode" => {
            arity(&a, 1, 1)?;
            let v: serde_json::Value = serde_json::from_str(&s(&a[0])?).map_err(|e| format!("invalid JSON: {e}"))?;
            Ok(Val::from_json(&v))
        }
        "yamlencode" => {
            arity(&a, 1, 1)?;
            serde_norway::to_string(&a[0].to_json()).map(Val::Str).map_err(|e| e.to_string())
        }
        "yamldecode" => {
            arity(&a, 1, 1)?;
            let v: serde_json::Value = serde_norway::from_str(&s(&a[0])?).map_err(|e| format!("invalid YAML: {e}"))?;
            Ok(Val::from_json(&v))
        }
        "base64encode" => {
            arity(&a, 1, 1)?;
            Ok(Val::Str(base64::engine::general_purpose::STANDARD.encode(s(&a[0])?)))
        }
        "base64decode" => {
            arity(&a, 1, 1)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s(&a[0])?.trim())
                .map_err(|e| format!("invalid base64: {e}"))?;
            String::from_utf8(bytes).map(Val::Str).map_err(|_| "the decoded bytes are not UTF-8".into())
        }
        // hashes and uuids
        "md5" => {
            arity(&a, 1, 1)?;
            Ok(Val::Str(hex(&md5::Md5::digest(s(&a[0])?.as_bytes()))))
        }
        "sha1" => {
            arity(&a, 1, 1)?;
            Ok(Val::Str(hex(&sha1::Sha1::digest(s(&a[0])?.as_bytes()))))
        }
        "sha256" => {
            arity(&a, 1, 1)?;
            Ok(Val::Str(hex(&sha2::Sha256::digest(s(&a[0])?.as_bytes()))))
        }
        "sha512" => {
            arity(&a, 1, 1)?;
            Ok(Val::Str(hex(&sha2::Sha512::digest(s(&a[0])?.as_bytes()))))
        }
        "uuidv4" => {
            arity(&a, 0, 0)?;
            Ok(Val::Str(ev.env.uuid_v4()))
        }
        "uuidv5" => {
            arity(&a, 2, 2)?;
            let ns = match s(&a[0])?.as_str() {
                "dns" => uuid::Uuid::NAMESPACE_DNS,
                "url" => uuid::Uuid::NAMESPACE_URL,
                "oid" => uuid::Uuid::NAMESPACE_OID,
                "x500" => uuid::Uuid::NAMESPACE_X500,
                other => uuid::Uuid::parse_str(other)
                    .map_err(|_| format!("namespace {other:?} is not dns, url, oid, x500 or a UUID"))?,
            };
            Ok(Val::Str(uuid::Uuid::new_v5(&ns, s(&a[1])?.as_bytes()).to_string()))
        }
        // numbers
        "abs" => {
            arity(&a, 1, 1)?;
            Ok(Val::Num(n(&a[0])?.abs()))
        }
        "ceil" => {
            arity(&a, 1, 1)?;
            Ok(Val::Num(n(&a[0])?.ceil()))
        }
        "floor" => {
            arity(&a, 1, 1)?;
            Ok(Val::Num(n(&a[0])?.floor()))
        }
        "signum" => {
            arity(&a, 1, 1)?;
            let x = n(&a[0])?;
            Ok(Val::Num(if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }))
        }
        "pow" => {
            arity(&a, 2, 2)?;
            Ok(Val::Num(n(&a[0])?.powf(n(&a[1])?)))
        }
        "max" | "min" => {
            arity(&a, 1, usize::MAX)?;
            let nums: Vec<f64> = a.iter().map(n).collect::<Result<_, _>>()?;
            let pick = if name == "max" { f64::max } else { f64::min };
            Ok(Val::Num(nums[1..].iter().fold(nums[0], |acc, x| pick(acc, *x))))
        }
        "parseint" => {
            arity(&a, 2, 2)?;
            let base = int(&a[1])?;
            if !(2..=62).contains(&base) {
                return Err("base must be between 2 and 62".into());
            }
            let text = s(&a[0])?;
            let (neg, digits) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text.strip_prefix('+').unwrap_or(&text)),
            };
            if digits.is_empty() {
                return Err(format!("cannot parse {text:?} as a base {base} integer"));
            }
            let mut acc: f64 = 0.0;
            for c in digits.chars() {
                let d = match c {
                    '0'..='9' => c as i64 - '0' as i64,
                    'a'..='z' => c as i64 - 'a' as i64 + 10,
                    'A'..='Z' if base <= 36 => c as i64 - 'A' as i64 + 10,
                    'A'..='Z' => c as i64 - 'A' as i64 + 36,
                    _ => base,
                };
                if d >= base {
                    return Err(format!("cannot parse {text:?} as a base {base} integer"));
                }
                acc = acc * base as f64 + d as f64;
            }
            Ok(Val::Num(if neg { -acc } else { acc }))
        }
        // files and paths
        "file" => {
            arity(&a, 1, 1)?;
            let path = resolve(ev, &s(&a[0])?);
            let bytes = ev.env.read_file(&path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
            String::from_utf8(bytes).map(Val::Str).map_err(|_| format!("{path:?} is not UTF-8 text"))
        }
        "fileexists" => {
            arity(&a, 1, 1)?;
            let path = resolve(ev, &s(&a[0])?);
            Ok(Val::Bool(ev.env.read_file(&path).is_ok()))
        }
        "fileset" => {
            arity(&a, 2, 2)?;
            let dir = resolve(ev, &s(&a[0])?);
            let pattern = glob::Pattern::new(&s(&a[1])?).map_err(|e| format!("invalid pattern: {e}"))?;
            let files = ev.env.list_files(&dir).map_err(|e| format!("cannot list {dir:?}: {e}"))?;
            let opts = glob::MatchOptions { require_literal_separator: true, ..Default::default() };
            Ok(to_set(files.into_iter().filter(|f| pattern.matches_with(f, opts)).map(Val::Str).collect()))
        }
        "abspath" => {
            arity(&a, 1, 1)?;
            let p = s(&a[0])?;
            if p.starts_with('/') {
                return Ok(Val::Str(clean_path(&p)));
            }
            let cwd = ev.env.current_dir().ok_or("the current directory is unknown")?;
            Ok(Val::Str(clean_path(&format!("{cwd}/{p}"))))
        }
        "basename" => {
            arity(&a, 1, 1)?;
            let p = s(&a[0])?;
            let t = p.trim_end_matches('/');
            if t.is_empty() {
                return Ok(Val::Str(if p.is_empty() { ".".into() } else { "/".into() }));
            }
            Ok(Val::Str(t.rsplit('/').next().unwrap_or(t).to_string()))
        }
        "dirname" => {
            arity(&a, 1, 1)?;
            Ok(Val::Str(dirname(&s(&a[0])?)))
        }
        "pathexpand" => {
            arity(&a, 1, 1)?;
            let p = s(&a[0])?;
            if p == "~" || p.starts_with("~/") {
                let home = ev.env.home_dir().ok_or("the home directory is unknown")?;
                return Ok(Val::Str(format!("{home}{}", &p[1..])));
            }
            Ok(Val::Str(p))
        }
        // time
        "timestamp" => {
            arity(&a, 0, 0)?;
            let t =
                time::OffsetDateTime::from_unix_timestamp_nanos(ev.env.now_unix_nanos()).map_err(|e| e.to_string())?;
            let t = t.replace_nanosecond(0).map_err(|e| e.to_string())?;
            t.format(&time::format_description::well_known::Rfc3339).map(Val::Str).map_err(|e| e.to_string())
        }
        "formatdate" => {
            arity(&a, 2, 2)?;
            let ts = s(&a[1])?;
            let t = time::OffsetDateTime::parse(&ts, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("{ts:?} is not an RFC 3339 timestamp: {e}"))?;
            formatdate(&s(&a[0])?, t).map(Val::Str)
        }
        other => {
            let close: Vec<&str> = FUNCTION_NAMES
                .iter()
                .copied()
                .filter(|f| {
                    let prefix: String = other.chars().take(3).collect();
                    f.starts_with(&prefix)
                })
                .collect();
            let hint = if close.is_empty() { String::new() } else { format!("; did you mean {}?", close.join(" or ")) };
            Err(format!("there is no function named {other:?}{hint}"))
        }
    }
}

fn regex(p: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(p).size_limit(1 << 20).build().map_err(|e| format!("invalid regular expression: {e}"))
}

fn captures_val(re: &regex::Regex, c: &regex::Captures<'_>) -> Val {
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    if names.is_empty() {
        return Val::Str(c.get(0).map_or("", |m| m.as_str()).to_string());
    }
    if names.iter().any(Option::is_some) {
        let mut out = BTreeMap::new();
        for name in names.into_iter().flatten() {
            out.insert(name.to_string(), Val::Str(c.name(name).map_or("", |m| m.as_str()).to_string()));
        }
        return Val::Obj(out);
    }
    Val::List((1..c.len()).map(|i| Val::Str(c.get(i).map_or("", |m| m.as_str()).to_string())).collect())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn resolve(ev: &Evaluator<'_>, p: &str) -> String {
    if p.starts_with('/') || ev.base_dir.is_empty() {
        p.to_string()
    } else {
        format!("{}/{p}", ev.base_dir.trim_end_matches('/'))
    }
}

fn dirname(p: &str) -> String {
    match p.trim_end_matches('/').rfind('/') {
        Some(0) => "/".into(),
        Some(i) => clean_path(&p[..i]),
        None => ".".into(),
    }
}

/// Lexical path cleaning as Go's `filepath.Clean`: drops `.` and resolves `..`.
fn clean_path(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go-style `format` verbs as cty implements them: `%v %s %q %d %f %e %g %t %x %X %o %b %%`,
/// with flags `-+ 0#`, width, precision and explicit argument indexes `%[2]s`.
fn format(spec: &str, args: &[Val]) -> Result<String, String> {
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut next_arg = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let (mut minus, mut plus, mut zero, mut space, mut sharp) = (false, false, false, false, false);
        while i < chars.len() && "-+0 #".contains(chars[i]) {
            match chars[i] {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                _ => sharp = true,
            }
            i += 1;
        }
        if i < chars.len() && chars[i] == '[' {
            let close = chars[i..].iter().position(|c| *c == ']').ok_or("unterminated %[n] index")?;
            let idx: String = chars[i + 1..i + close].iter().collect();
            let idx: usize = idx.parse().map_err(|_| format!("invalid argument index [{idx}]"))?;
            if idx == 0 {
                return Err("argument indexes start at 1".into());
            }
            next_arg = idx - 1;
            i += close + 1;
        }
        let mut width = String::new();
        while i < chars.len() && chars[i].is_ascii_digit() {
            width.push(chars[i]);
            i += 1;
        }
        let mut prec: Option<usize> = None;
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            let mut p = String::new();
            while i < chars.len() && chars[i].is_ascii_digit() {
                p.push(chars[i]);
                i += 1;
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(&verb) = chars.get(i) else {
            return Err("format string ends in the middle of a verb".into());
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args.get(next_arg).ok_or_else(|| format!("not enough arguments for verb %{verb}"))?;
        next_arg += 1;
        let sign = |x: f64, body: String| -> String {
            if x >= 0.0 && plus {
                format!("+{body}")
            } else if x >= 0.0 && space {
                format!(" {body}")
            } else {
                body
            }
        };
        let body = match verb {
            'v' => match arg {
                Val::Str(x) => x.clone(),
                Val::Num(x) => num_to_string(*x),
                Val::Bool(b) => b.to_string(),
                Val::Null => "null".into(),
                other => serde_json::to_string(&other.to_json()).unwrap_or_default(),
            },
            's' => {
                let x = arg.to_str()?;
                match prec {
                    Some(p) => x.chars().take(p).collect(),
                    None => x,
                }
            }
            'q' => serde_json::to_string(&arg.to_str()?).unwrap_or_default(),
            't' => arg.to_bool()?.to_string(),
            'd' => {
                let x = arg.to_num()?;
                if x.fract() != 0.0 {
                    return Err(format!("%d needs a whole number, found {}", arg.describe()));
                }
                sign(x, format!("{}", x as i64))
            }
            'f' | 'F' => {
                let x = arg.to_num()?;
                sign(x, format!("{:.*}", prec.unwrap_or(6), x))
            }
            'e' => {
                let x = arg.to_num()?;
                sign(x, go_exp(x, prec.unwrap_or(6)))
            }
            'g' => {
                let x = arg.to_num()?;
                sign(x, num_to_string(x))
            }
            'x' | 'X' | 'o' | 'b' => {
                let x = arg.to_num()?;
                if x.fract() != 0.0 {
                    return Err(format!("%{verb} needs a whole number"));
                }
                let v = x as i64;
                let (neg, u) = (v < 0, v.unsigned_abs());
                let digits = match verb {
                    'x' => format!("{u:x}"),
                    'X' => format!("{u:X}"),
                    'o' => format!("{u:o}"),
                    _ => format!("{u:b}"),
                };
                let prefix = match (sharp, verb) {
                    (true, 'x') => "0x",
                    (true, 'X') => "0X",
                    (true, 'o') => "0",
                    _ => "",
                };
                format!("{}{prefix}{digits}", if neg { "-" } else { "" })
            }
            other => return Err(format!("unsupported format verb %{other}")),
        };
        let w: usize = width.parse().unwrap_or(0).min(1024);
        let len = body.chars().count();
        if len < w {
            let pad = w - len;
            if minus {
                out.push_str(&body);
                out.push_str(&" ".repeat(pad));
            } else if zero && verb != 's' && verb != 'q' && verb != 'v' {
                let (sgn, rest) = match body.strip_prefix(['-', '+']) {
                    Some(rest) => (&body[..1], rest),
                    None => ("", body.as_str()),
                };
                out.push_str(sgn);
                out.push_str(&"0".repeat(pad));
                out.push_str(rest);
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(&body);
            }
        } else {
            out.push_str(&body);
        }
    }
    Ok(out)
}

fn go_exp(x: f64, prec: usize) -> String {
    let s = format!("{x:.prec$e}");
    // Rust prints `1.5e3`; Go prints `1.5e+03`.
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// `formatdate` with Terraform's format specification: `YYYY YY MMMM MMM MM M DD D EEEE EEE
/// hh h HH H mm m ss s AA aa ZZZZZ ZZZZ ZZZ Z` and `'literal'` text.
fn formatdate(spec: &str, t: time::OffsetDateTime) -> Result<String, String> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let rest = &chars[i + 1..];
            if rest.first() == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            let close = rest.iter().position(|c| *c == '\'').ok_or("unterminated quoted literal")?;
            out.extend(&rest[..close]);
            i += close + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let mut run = 1;
        while i + run < chars.len() && chars[i + run] == c {
            run += 1;
        }
        i += run;
        let hour = t.hour();
        let h12 = if hour.is_multiple_of(12) { 12 } else { hour % 12 };
        let off = t.offset();
        let (oh, om) = (off.whole_hours(), off.minutes_past_hour().abs());
        let piece = match (c, run) {
            ('Y', 4) => format!("{:04}", t.year()),
            ('Y', 2) => format!("{:02}", t.year().rem_euclid(100)),
            ('M', 4) => MONTHS[usize::from(u8::from(t.month())) - 1].to_string(),
            ('M', 3) => MONTHS[usize::from(u8::from(t.month())) - 1][..3].to_string(),
            ('M', 2) => format!("{:02}", u8::from(t.month())),
            ('M', 1) => format!("{}", u8::from(t.month())),
            ('D', 2) => format!("{:02}", t.day()),
            ('D', 1) => format!("{}", t.day()),
            ('E', 4) => DAYS[t.weekday().number_days_from_monday() as usize].to_string(),
            ('E', 3) => DAYS[t.weekday().number_days_from_monday() as usize][..3].to_string(),
            ('h', 2) => format!("{hour:02}"),
            ('h', 1) => format!("{hour}"),
            ('H', 2) => format!("{h12:02}"),
            ('H', 1) => format!("{h12}"),
            ('A', 2) => (if hour < 12 { "AM" } else { "PM" }).to_string(),
            ('a', 2) => (if hour < 12 { "am" } else { "pm" }).to_string(),
            ('m', 2) => format!("{:02}", t.minute()),
            ('m', 1) => format!("{}", t.minute()),
            ('s', 2) => format!("{:02}", t.second()),
            ('s', 1) => format!("{}", t.second()),
            ('Z', 5) => format!("{}{:02}:{om:02}", if off.is_negative() { '-' } else { '+' }, oh.abs()),
            ('Z', 4) => format!("{}{:02}{om:02}", if off.is_negative() { '-' } else { '+' }, oh.abs()),
            ('Z', 3) if off.is_utc() => "UTC".to_string(),
            ('Z', 3) => format!("{}{:02}{om:02}", if off.is_negative() { '-' } else { '+' }, oh.abs()),
            ('Z', 1) if off.is_utc() => "Z".to_string(),
            ('Z', 1) => format!("{}{:02}:{om:02}", if off.is_negative() { '-' } else { '+' }, oh.abs()),
            _ => {
                let seq: String = std::iter::repeat_n(c, run).collect();
                return Err(format!("invalid date format verb {seq:?}"));
            }
        };
        out.push_str(&piece);
    }
    Ok(out)
}
