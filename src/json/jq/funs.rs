//! Native filters with jq 1.7.1's behaviour, for what jq-language definitions cannot
//! express or would make slow. They come before jaq's natives, so a name here wins.

use jaq_core::box_iter::box_once;
use jaq_core::native::{Filter, Fun, bome, run, unary, v};
use jaq_core::{RunPtr, data};
use jaq_json::{Num, Rc, Val};

use super::value::{Error, Jv, ValR, as_f64, described, err, get, kind, write_json};

pub(crate) type Data = data::JustLut<Jv>;

/// The native filters, to be offered to the compiler before jaq's.
pub(crate) fn funs() -> impl Iterator<Item = Fun<Data>> {
    natives().into_vec().into_iter().map(run::<Data>)
}

/// Name and arity of every native filter here (for `builtins`).
pub(crate) fn signatures() -> impl Iterator<Item = (&'static str, usize)> {
    natives()
        .into_vec()
        .into_iter()
        .map(|(name, args, _)| (name, args.len()))
}

fn natives() -> Box<[Filter<RunPtr<Data>>]> {
    Box::new([
        ("tojson", v(0), |cv| {
            let mut s = String::new();
            write_json(&mut s, &cv.1.0);
            bome(Ok(Jv(Val::from(s))))
        }),
        ("fromjson", v(0), |cv| bome(fromjson(&cv.1.0))),
        ("type", v(0), |cv| {
            bome(Ok(Jv(Val::from(kind(&cv.1.0).to_string()))))
        }),
        ("length", v(0), |cv| bome(length(&cv.1.0))),
        ("utf8bytelength", v(0), |cv| {
            bome(match &cv.1.0 {
                Val::TStr(b) | Val::BStr(b) => Ok(Jv(Val::from(b.len()))),
                other => Err(err(format!(
                    "{} only strings have UTF-8 byte length",
                    described(other)
                ))),
            })
        }),
        ("contains", v(1), |cv| {
            unary(cv, |x, y| contains(&x.0, &y.0).map(|b| Jv(Val::from(b))))
        }),
        ("has", v(1), |cv| unary(cv, |x, k| has(&x.0, &k.0))),
        ("indices", v(1), |cv| unary(cv, |x, y| indices(&x.0, &y.0))),
        ("delpaths", v(1), |cv| {
            unary(cv, |x, ps| delpaths(x.0, &ps.0).map(Jv))
        }),
        ("_lr_nan", v(0), |_| bome(Ok(Jv(Val::from(f64::NAN))))),
        ("_lr_infinite", v(0), |_| {
            bome(Ok(Jv(Val::from(f64::INFINITY))))
        }),
        ("_lr_csv", v(0), |cv| bome(csv_tsv(&cv.1.0, true))),
        ("_lr_tsv", v(0), |cv| bome(csv_tsv(&cv.1.0, false))),
        ("_lr_base32", v(0), |cv| bome(base32(&cv.1.0))),
        ("_lr_base32d", v(0), |cv| bome(base32d(&cv.1.0))),
        ("bsearch", v(1), |cv| {
            unary(cv, |a, x| match &a.0 {
                Val::Arr(a) => Ok(Jv(Val::from(match a.binary_search(&x.0) {
                    Ok(i) => i as isize,
                    Err(i) => -1 - i as isize,
                }))),
                other => Err(err(format!("{} cannot be searched from", described(other)))),
            })
        }),
        ("implode", v(0), |cv| bome(implode(&cv.1.0))),
        // What cannot be trimmed (not a string, or no such prefix) is left alone.
        ("ltrimstr", v(1), |cv| {
            unary(cv, |x, p| {
                Ok(match (&x.0, &p.0) {
                    (Val::TStr(s), Val::TStr(p)) if s.starts_with(p) => {
                        Jv(Val::utf8_str(s.slice(p.len()..)))
                    }
                    _ => x,
                })
            })
        }),
        ("rtrimstr", v(1), |cv| {
            unary(cv, |x, p| {
                Ok(match (&x.0, &p.0) {
                    (Val::TStr(s), Val::TStr(p)) if s.ends_with(p) && s.len() >= p.len() => {
                        Jv(Val::utf8_str(s.slice(..s.len() - p.len())))
                    }
                    _ => x,
                })
            })
        }),
        ("builtins", v(0), |_| {
            let list: Vec<Val> = super::builtin_names().into_iter().map(Val::from).collect();
            box_once(Ok(Jv(Val::Arr(Rc::new(list)))))
        }),
    ])
}

fn fromjson(v: &Val) -> ValR {
    let Val::TStr(b) = v else {
        return Err(err(format!("{} cannot be parsed as JSON", described(v))));
    };
    let text = String::from_utf8_lossy(b);
    let t = text.trim();
    // jq 1.7.1 reads `nan` (with anything after it) as NaN.
    if t.starts_with("nan") || t.starts_with("NaN") {
        return Ok(Jv(Val::from(f64::NAN)));
    }
    match serde_json::from_str::<serde_json::Value>(t) {
        Ok(value) => Ok(Jv(crate::json::val::into_val(value))),
        Err(e) => Err(err(format!("{e} (while parsing '{text}')"))),
    }
}

fn length(v: &Val) -> ValR {
    Ok(Jv(match v {
        Val::Null => Val::from(0usize),
        Val::Bool(_) => return Err(err(format!("{} has no length", described(v)))),
        Val::Num(n) => match n {
            Num::Int(i) => Val::from(i.unsigned_abs()),
            n => Val::from(as_f64(n).abs()),
        },
        Val::TStr(b) | Val::BStr(b) => Val::from(String::from_utf8_lossy(b).chars().count()),
        Val::Arr(a) => Val::from(a.len()),
        Val::Obj(o) => Val::from(o.len()),
    }))
}

fn contains(a: &Val, b: &Val) -> Result<bool, Error> {
    Ok(match (a, b) {
        (Val::Obj(x), Val::Obj(y)) => {
            for (k, yv) in y.iter() {
                match x.get(k) {
                    Some(xv) if contains(xv, yv)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        (Val::Arr(x), Val::Arr(y)) => {
            for yv in y.iter() {
                let mut found = false;
                for xv in x.iter() {
                    if contains(xv, yv)? {
                        found = true;
                        break;
                    }
                }
                if !found {
                    return Ok(false);
                }
            }
            true
        }
        (Val::TStr(x), Val::TStr(y)) => y.is_empty() || x.windows(y.len()).any(|w| w == &y[..]),
        _ if kind(a) == kind(b) => a == b,
        _ => {
            return Err(err(format!(
                "{} and {} cannot have their containment checked",
                described(a),
                described(b)
            )));
        }
    })
}

fn has(t: &Val, k: &Val) -> ValR {
    let b = match (t, k) {
        (Val::Null, _) => false,
        (Val::Obj(o), Val::TStr(_)) => o.contains_key(k),
        (Val::Arr(a), Val::Num(n)) => {
            let f = as_f64(n);
            !f.is_nan() && f >= 0.0 && (f as usize) < a.len()
        }
        _ => {
            return Err(err(format!(
                "Cannot check whether {} has a {} key",
                kind(t),
                kind(k)
            )));
        }
    };
    Ok(Jv(Val::from(b)))
}

/// Where `needle` starts in `hay`, overlaps included; nowhere for an empty needle.
fn offsets<T: PartialEq>(hay: &[T], needle: &[T]) -> Vec<usize> {
    if needle.is_empty() {
        return Vec::new();
    }
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// jq 1.7.1's `indices`: byte offsets in a string, element offsets in an array.
fn indices(x: &Val, y: &Val) -> ValR {
    let found: Vec<usize> = match (x, y) {
        (Val::Null, _) | (_, Val::Null) => return Ok(Jv(Val::Null)),
        (Val::TStr(x), Val::TStr(y)) => offsets(&x[..], &y[..]),
        (Val::Arr(x), Val::Arr(y)) => offsets(&x[..], &y[..]),
        (Val::Arr(x), y) => x
            .iter()
            .enumerate()
            .filter(|(_, v)| *v == y)
            .map(|(i, _)| i)
            .collect(),
        _ => return get(x, y).map(Jv),
    };
    Ok(Jv(found.into_iter().map(Val::from).collect()))
}

/// jq's `delpaths`: every path is deleted from the value as it was, which is done
/// by deleting the paths in sorted order from the last one back.
pub(crate) fn delpaths(v: Val, paths: &Val) -> Result<Val, Error> {
    let Val::Arr(ps) = paths else {
        return Err(err("Paths must be specified as an array"));
    };
    let mut list: Vec<&[Val]> = Vec::with_capacity(ps.len());
    for p in ps.iter() {
        match p {
            Val::Arr(a) => list.push(a.as_slice()),
            _ => return Err(err("Path must be specified as an array")),
        }
    }
    if list.is_empty() {
        return Ok(v);
    }
    list.sort();
    if list[0].is_empty() {
        return Ok(Val::Null);
    }
    del_sorted(v, &list)
}

/// Deletes `paths` (sorted, none empty) from `v`.
fn del_sorted(mut v: Val, paths: &[&[Val]]) -> Result<Val, Error> {
    let mut whole: Vec<&Val> = Vec::new();
    let mut i = 0;
    while i < paths.len() {
        let key = &paths[i][0];
        let mut j = i;
        while j < paths.len() && paths[j][0] == *key {
            j += 1;
        }
        if paths[i..j].iter().any(|p| p.len() == 1) {
            whole.push(key);
        } else {
            let child = get(&v, key)?;
            if !matches!(child, Val::Null) {
                let rest: Vec<&[Val]> = paths[i..j].iter().map(|p| &p[1..]).collect();
                let new = del_sorted(child, &rest)?;
                v = set(v, key, new)?;
            }
        }
        i = j;
    }
    del_keys(v, &whole)
}

fn set(t: Val, k: &Val, new: Val) -> Result<Val, Error> {
    use jaq_core::ValT;
    let once = move |_| std::iter::once(Ok(Jv(new.clone())));
    Jv(t)
        .map_index(&Jv(k.clone()), jaq_core::path::Opt::Essential, once)
        .map(|j| j.0)
        .map_err(|e| match e.get_err() {
            Ok(e) => e,
            Err(_) => err("cannot delete here"),
        })
}

fn del_keys(v: Val, keys: &[&Val]) -> Result<Val, Error> {
    if keys.is_empty() {
        return Ok(v);
    }
    match v {
        Val::Null => Ok(Val::Null),
        Val::Arr(mut a) => {
            let len = a.len();
            let mut gone = vec![false; len];
            for k in keys {
                match k {
                    Val::Num(n) => {
                        let f = as_f64(n);
                        if f.is_nan() {
                            continue;
                        }
                        let mut i = f.clamp(i32::MIN as f64, i32::MAX as f64) as isize;
                        if i < 0 {
                            i += len as isize;
                        }
                        if let Ok(i) = usize::try_from(i)
                            && i < len
                        {
                            gone[i] = true;
                        }
                    }
                    Val::Obj(o) => {
                        let s = o.get(&Val::utf8_str("start"));
                        let e = o.get(&Val::utf8_str("end"));
                        let (s, e) = super::value::slice_bounds(len, s, e)?;
                        for g in gone.iter_mut().take(e).skip(s) {
                            *g = true;
                        }
                    }
                    other => {
                        return Err(err(format!(
                            "Cannot delete {} element of array",
                            kind(other)
                        )));
                    }
                }
            }
            let mut it = gone.iter();
            Rc::make_mut(&mut a).retain(|_| !it.next().copied().unwrap_or(false));
            Ok(Val::Arr(a))
        }
        Val::Obj(mut o) => {
            let m = Rc::make_mut(&mut o);
            for k in keys {
                match k {
                    Val::TStr(_) => {
                        m.shift_remove(*k);
                    }
                    other => {
                        return Err(err(format!(
                            "Cannot delete field at index of {}",
                            kind(other)
                        )));
                    }
                }
            }
            Ok(Val::Obj(o))
        }
        other => Err(err(format!("Cannot delete fields from {}", kind(&other)))),
    }
}

fn csv_tsv(v: &Val, csv: bool) -> ValR {
    let name = if csv { "csv" } else { "tsv" };
    let Val::Arr(a) = v else {
        return Err(err(format!(
            "{} cannot be {name}-formatted, only an array can be",
            described(v)
        )));
    };
    let mut out = String::new();
    for (i, x) in a.iter().enumerate() {
        if i > 0 {
            out.push(if csv { ',' } else { '\t' });
        }
        match x {
            Val::Null => {}
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Num(n) => super::value::fmt_num(&mut out, n),
            Val::TStr(s) | Val::BStr(s) => {
                let s = String::from_utf8_lossy(s);
                if csv {
                    out.push('"');
                    out.push_str(&s.replace('"', "\"\""));
                    out.push('"');
                } else {
                    for c in s.chars() {
                        match c {
                            '\\' => out.push_str("\\\\"),
                            '\t' => out.push_str("\\t"),
                            '\n' => out.push_str("\\n"),
                            '\r' => out.push_str("\\r"),
                            c => out.push(c),
                        }
                    }
                }
            }
            other => {
                return Err(err(format!(
                    "{} is not valid in a {name} row",
                    described(other)
                )));
            }
        }
    }
    Ok(Jv(Val::from(out)))
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn text_of(v: &Val) -> Vec<u8> {
    match v {
        Val::TStr(b) | Val::BStr(b) => b.to_vec(),
        other => {
            let mut s = String::new();
            write_json(&mut s, other);
            s.into_bytes()
        }
    }
}

fn base32(v: &Val) -> ValR {
    let bytes = text_of(v);
    let mut out = String::new();
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(B32[((bits >> (35 - 5 * i)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    Ok(Jv(Val::from(out)))
}

fn base32d(v: &Val) -> ValR {
    let bytes = text_of(v);
    let mut out = Vec::new();
    let (mut acc, mut nbits) = (0u64, 0u32);
    for c in bytes {
        if c == b'=' {
            break;
        }
        let Some(d) = B32.iter().position(|x| *x == c.to_ascii_uppercase()) else {
            return Err(err(format!("{} is not valid base32 data", described(v))));
        };
        acc = (acc << 5) | d as u64;
        nbits += 5;
        if nbits >= 8 {
            nbits -= 8;
            out.push((acc >> nbits) as u8);
            acc &= (1 << nbits) - 1;
        }
    }
    Ok(Jv(Val::from(String::from_utf8_lossy(&out).into_owned())))
}

/// jq 1.7.1's `implode`: a code point out of range or a surrogate becomes U+FFFD.
fn implode(v: &Val) -> ValR {
    let Val::Arr(a) = v else {
        return Err(err("implode input must be an array"));
    };
    let mut s = String::with_capacity(a.len());
    for x in a.iter() {
        let Val::Num(n) = x else {
            return Err(err(format!(
                "{} can't be imploded, unicode codepoint needs to be numeric",
                described(x)
            )));
        };
        let f = as_f64(n);
        let c = if f.is_nan() || f < 0.0 || f > u32::MAX as f64 {
            None
        } else {
            char::from_u32(f as u32)
        };
        s.push(c.unwrap_or('\u{fffd}'));
    }
    Ok(Jv(Val::from(s)))
}
