//! The value type filters run on: jaq-json's `Val` with jq 1.7.1's semantics where
//! jaq's differ and a user of jq would notice.
//!
//! The wrapper is one word around the root only (children stay `Val`), so moving a
//! document in and out costs nothing, and untouched subtrees stay shared with the
//! input (the no-op test and the key-order repair rely on that). What changes:
//! - paths: updating below a missing key or index creates it (`null | .a.b = 1`),
//!   setting past the end of an array pads it with nulls, an index or slice bound
//!   may be fractional or NaN, deleting a key keeps the order of the others;
//! - numbers: arithmetic is done in doubles as jq does, so an integer beyond 2^53
//!   is rounded exactly as jq rounds it; division by zero is an error; `%` works on
//!   the integer parts;
//! - error messages: the ones a `try ... catch .` commonly shows use jq's words.

use core::fmt;
use core::ops::{Add, Div, Mul, Neg, Rem, Sub};
use std::borrow::Cow;

use jaq_core::box_iter::box_once;
use jaq_core::path::Opt;
use jaq_core::{Exn, ValR as JValR, ValX as JValX, val};
use jaq_json::{Map, Num, Rc, Val};

/// A value with jq's semantics; see the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Jv(pub(crate) Val);

pub(crate) type Error = jaq_core::Error<Jv>;
pub(crate) type ValR = JValR<Jv>;
pub(crate) type ValX<'a> = JValX<'a, Jv>;

/// An error whose value (what `catch` sees) is the string `msg`.
pub(crate) fn err(msg: impl Into<String>) -> Error {
    Error::new(Jv(Val::from(msg.into())))
}

/// jq's name for the kind of a value.
pub(crate) fn kind(v: &Val) -> &'static str {
    match v {
        Val::Null => "null",
        Val::Bool(_) => "boolean",
        Val::Num(_) => "number",
        Val::TStr(_) | Val::BStr(_) => "string",
        Val::Arr(_) => "array",
        Val::Obj(_) => "object",
    }
}

/// The value as jq shows it inside an error message: its JSON text, cut to 11 bytes
/// and "..." when longer than 14.
pub(crate) fn trunc(v: &Val) -> String {
    let mut s = String::new();
    write_json(&mut s, v);
    if s.len() > 14 {
        let mut end = 11;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// `kind (value)`, as jq's messages name a value.
pub(crate) fn described(v: &Val) -> String {
    format!("{} ({})", kind(v), trunc(v))
}

fn arith_err(l: &Val, r: &Val, what: &str) -> Error {
    err(format!("{} and {} {what}", described(l), described(r)))
}

pub(crate) fn as_f64(n: &Num) -> f64 {
    match n {
        Num::Int(i) => *i as f64,
        Num::Float(f) => *f,
        Num::BigInt(_) | Num::Dec(_) => n.to_string().parse().unwrap_or(f64::NAN),
    }
}

fn num_of(v: &Val) -> Option<&Num> {
    match v {
        Val::Num(n) => Some(n),
        _ => None,
    }
}

/// 2^53: integers up to this size are exact in a double, so integer arithmetic
/// below it gives what jq's double arithmetic gives.
const EXACT: isize = 1 << 53;

fn small(n: &Num) -> Option<isize> {
    match n {
        Num::Int(i) if (-EXACT..=EXACT).contains(i) => Some(*i),
        _ => None,
    }
}

/// `l op r` as jq computes it: in doubles (exact integers stay integers).
fn num_op(
    l: &Num,
    r: &Num,
    int: fn(isize, isize) -> Option<isize>,
    float: fn(f64, f64) -> f64,
) -> Num {
    if let (Some(a), Some(b)) = (small(l), small(r))
        && let Some(c) = int(a, b)
        && (-EXACT..=EXACT).contains(&c)
    {
        return Num::Int(c);
    }
    Num::Float(float(as_f64(l), as_f64(r)))
}

/// A number index as jq uses it: the double, clamped to `i32`, cut toward zero.
fn int_index(f: f64) -> isize {
    f.clamp(i32::MIN as f64, i32::MAX as f64) as isize
}

/// jq's `parse_slice`: `[start, end)` of a slice of something `len` long; a start is
/// rounded down and an end up.
pub(crate) fn slice_bounds(
    len: usize,
    start: Option<&Val>,
    end: Option<&Val>,
) -> Result<(usize, usize), Error> {
    let bound = |b: Option<&Val>| -> Result<Option<f64>, Error> {
        match b {
            None | Some(Val::Null) => Ok(None),
            Some(Val::Num(n)) => Ok(Some(as_f64(n))),
            Some(_) => Err(err(
                "Start and end indices of an array slice must be numbers",
            )),
        }
    };
    let lenf = len as f64;
    let mut s = bound(start)?.unwrap_or(0.0);
    let mut e = bound(end)?.unwrap_or(lenf);
    if s.is_nan() {
        s = 0.0;
    }
    if s < 0.0 {
        s += lenf;
    }
    let s = s.clamp(0.0, lenf) as usize;
    if e.is_nan() {
        e = lenf;
    }
    if e < 0.0 {
        e += lenf;
    }
    let mut end = if e < 0.0 { s } else { e.min(lenf) as usize };
    if end < len && (end as f64) < e {
        end += 1;
    }
    Ok((s, end.max(s)))
}

fn str_bytes(v: &Val) -> Option<&[u8]> {
    match v {
        Val::TStr(b) | Val::BStr(b) => Some(b),
        _ => None,
    }
}

/// Byte offsets of the characters `[s, e)` of `text`.
fn char_span(text: &[u8], s: usize, e: usize) -> (usize, usize) {
    let txt = String::from_utf8_lossy(text);
    if let Cow::Owned(_) = txt {
        // Not UTF-8: count bytes.
        return (s.min(text.len()), e.min(text.len()));
    }
    let mut offsets = txt
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()));
    let a = offsets.clone().nth(s).unwrap_or(text.len());
    let b = offsets.nth(e).unwrap_or(text.len());
    (a, b)
}

fn char_count(text: &[u8]) -> usize {
    String::from_utf8_lossy(text).chars().count()
}

fn index_err(t: &Val, k: &Val) -> Error {
    match k {
        Val::TStr(s) if s.len() < 30 => err(format!(
            "Cannot index {} with string \"{}\"",
            kind(t),
            String::from_utf8_lossy(s)
        )),
        _ => err(format!("Cannot index {} with {}", kind(t), kind(k))),
    }
}

fn iter_err(v: &Val) -> Error {
    match v {
        Val::Null => err("Cannot iterate over null"),
        _ => err(format!("Cannot iterate over {}", described(v))),
    }
}

fn slice_obj(o: &Map<Val, Val>) -> (Option<&Val>, Option<&Val>) {
    (o.get(&Val::utf8_str("start")), o.get(&Val::utf8_str("end")))
}

/// jq's `jv_get`.
pub(crate) fn get(t: &Val, k: &Val) -> Result<Val, Error> {
    Ok(match (t, k) {
        (Val::Obj(o), Val::TStr(_) | Val::BStr(_)) => o.get(k).cloned().unwrap_or(Val::Null),
        (Val::Arr(a), Val::Num(n)) => {
            let f = as_f64(n);
            if f.is_nan() {
                return Ok(Val::Null);
            }
            let mut i = int_index(f);
            if i < 0 {
                i += a.len() as isize;
            }
            usize::try_from(i)
                .ok()
                .and_then(|i| a.get(i))
                .cloned()
                .unwrap_or(Val::Null)
        }
        (Val::Arr(a), Val::Obj(o)) => {
            let (s, e) = slice_obj(o);
            let (s, e) = slice_bounds(a.len(), s, e)?;
            a[s..e].iter().cloned().collect()
        }
        (Val::TStr(b), Val::Obj(o)) => {
            let (s, e) = slice_obj(o);
            let (s, e) = slice_bounds(char_count(b), s, e)?;
            let (a, z) = char_span(b, s, e);
            Val::utf8_str(b.slice(a..z))
        }
        (Val::Arr(_), Val::Arr(_)) => {
            use jaq_core::ValT;
            return t.clone().index(k).map_err(|e| err(e.to_string()));
        }
        (Val::Null, Val::TStr(_) | Val::BStr(_) | Val::Num(_) | Val::Obj(_)) => Val::Null,
        _ => return Err(index_err(t, k)),
    })
}

fn set_err(t: &Val, k: &Val) -> Error {
    err(format!(
        "Cannot update field at {} index of {}",
        kind(k),
        kind(t)
    ))
}

/// Array index `k` of something `len` long for setting, as jq's `jv_array_set`.
fn set_index(len: usize, k: &Num) -> Result<usize, Error> {
    let f = as_f64(k);
    if f.is_nan() {
        return Err(err("Cannot set array element at NaN index"));
    }
    let mut i = int_index(f);
    if i < 0 {
        i += len as isize;
    }
    usize::try_from(i).map_err(|_| err("Out of bounds negative array index"))
}

/// Replaces `a[s..e]` with the elements of `y` (which must be an array).
fn splice(a: &mut Vec<Val>, s: usize, e: usize, y: Val) -> Result<(), Error> {
    match y {
        Val::Arr(y) => {
            a.splice(s..e, y.iter().cloned());
            Ok(())
        }
        _ => Err(err(
            "A slice of an array can only be assigned another array",
        )),
    }
}

impl Jv {
    fn map_slice<'a, I: Iterator<Item = ValX<'a>>>(
        self,
        start: Option<&Val>,
        end: Option<&Val>,
        opt: Opt,
        f: impl Fn(Jv) -> I,
    ) -> ValX<'a> {
        match self.0 {
            Val::Null => {
                // jq reads a slice of null as null and sets it in an empty array.
                match f(Jv(Val::Null)).next().transpose()? {
                    None => Ok(Jv(Val::Null)),
                    Some(y) => {
                        let (s, e) = slice_bounds(0, start, end)?;
                        let mut a = Vec::new();
                        splice(&mut a, s, e, y.0)?;
                        Ok(Jv(Val::Arr(Rc::new(a))))
                    }
                }
            }
            Val::Arr(mut a) => {
                let (s, e) = slice_bounds(a.len(), start, end)?;
                let sub: Val = a[s..e].iter().cloned().collect();
                let v = Rc::make_mut(&mut a);
                match f(Jv(sub)).next().transpose()? {
                    None => {
                        v.drain(s..e);
                    }
                    Some(y) => splice(v, s, e, y.0)?,
                }
                Ok(Jv(Val::Arr(a)))
            }
            Val::TStr(_) | Val::BStr(_) => Err(err("Cannot update string slices").into()),
            other => opt.fail(Jv(other), |v| {
                Exn::from(err(format!("Cannot index {} with object", kind(&v.0))))
            }),
        }
    }
}

impl jaq_core::ValT for Jv {
    fn from_num(n: &str) -> ValR {
        Val::from_num(n).map(Jv).map_err(|e| err(e.to_string()))
    }

    fn from_map<I: IntoIterator<Item = (Self, Self)>>(iter: I) -> ValR {
        let mut m = Map::default();
        for (k, v) in iter {
            match k.0 {
                Val::TStr(_) | Val::BStr(_) => {
                    m.insert(k.0, v.0);
                }
                other => {
                    return Err(err(format!(
                        "Cannot use {} as object key",
                        described(&other)
                    )));
                }
            }
        }
        Ok(Jv(Val::obj(m)))
    }

    fn key_values(self) -> Box<dyn Iterator<Item = Result<(Jv, Jv), Error>>> {
        match self.0 {
            Val::Arr(_) | Val::Obj(_) => Box::new(self.0.key_values().map(|r| {
                r.map(|(k, v)| (Jv(k), Jv(v)))
                    .map_err(|e| err(e.to_string()))
            })),
            v => box_once(Err(iter_err(&v))),
        }
    }

    fn values(self) -> Box<dyn Iterator<Item = ValR>> {
        match self.0 {
            Val::Arr(_) | Val::Obj(_) => Box::new(
                self.0
                    .values()
                    .map(|r| r.map(Jv).map_err(|e| err(e.to_string()))),
            ),
            v => box_once(Err(iter_err(&v))),
        }
    }

    fn index(self, index: &Self) -> ValR {
        get(&self.0, &index.0).map(Jv)
    }

    fn range(self, range: val::Range<&Self>) -> ValR {
        let (s, e) = (range.start.map(|v| &v.0), range.end.map(|v| &v.0));
        match &self.0 {
            Val::Null => Ok(Jv(Val::Null)),
            Val::Arr(a) => {
                let (s, e) = slice_bounds(a.len(), s, e)?;
                Ok(Jv(a[s..e].iter().cloned().collect()))
            }
            Val::TStr(b) | Val::BStr(b) => {
                let (s, e) = slice_bounds(char_count(b), s, e)?;
                let (x, y) = char_span(b, s, e);
                Ok(Jv(Val::utf8_str(b.slice(x..y))))
            }
            v => Err(err(format!("Cannot index {} with object", kind(v)))),
        }
    }

    fn map_values<'a, I: Iterator<Item = ValX<'a>>>(
        self,
        opt: Opt,
        f: impl Fn(Self) -> I,
    ) -> ValX<'a> {
        match self.0 {
            Val::Arr(a) => {
                let a = Rc::try_unwrap(a).unwrap_or_else(|a| (*a).clone());
                let mut out = Vec::with_capacity(a.len());
                for x in a {
                    for y in f(Jv(x)) {
                        out.push(y?.0);
                    }
                }
                Ok(Jv(Val::Arr(Rc::new(out))))
            }
            Val::Obj(o) => {
                let o = Rc::try_unwrap(o).unwrap_or_else(|o| (*o).clone());
                let mut out = Map::with_capacity_and_hasher(o.len(), Default::default());
                for (k, v) in o {
                    if let Some(y) = f(Jv(v)).next() {
                        out.insert(k, y?.0);
                    }
                }
                Ok(Jv(Val::obj(out)))
            }
            v => opt.fail(Jv(v), |v| Exn::from(iter_err(&v.0))),
        }
    }

    fn map_index<'a, I: Iterator<Item = ValX<'a>>>(
        self,
        index: &Self,
        opt: Opt,
        f: impl Fn(Self) -> I,
    ) -> ValX<'a> {
        let k = &index.0;
        match (self.0, k) {
            (t @ (Val::Null | Val::Arr(_) | Val::TStr(_) | Val::BStr(_)), Val::Obj(o)) => {
                let (s, e) = slice_obj(o);
                Jv(t).map_slice(s, e, opt, f)
            }
            (Val::Obj(mut o), Val::TStr(_) | Val::BStr(_)) => {
                let m = Rc::make_mut(&mut o);
                match m.get_index_of(k) {
                    Some(i) => {
                        let old = core::mem::take(&mut m[i]);
                        match f(Jv(old)).next().transpose()? {
                            Some(y) => m[i] = y.0,
                            None => {
                                m.shift_remove_index(i);
                            }
                        }
                    }
                    None => {
                        if let Some(y) = f(Jv(Val::Null)).next().transpose()? {
                            m.insert(k.clone(), y.0);
                        }
                    }
                }
                Ok(Jv(Val::Obj(o)))
            }
            (Val::Null, Val::TStr(_) | Val::BStr(_)) => {
                match f(Jv(Val::Null)).next().transpose()? {
                    Some(y) => {
                        let mut m = Map::default();
                        m.insert(k.clone(), y.0);
                        Ok(Jv(Val::obj(m)))
                    }
                    None => Ok(Jv(Val::Null)),
                }
            }
            (Val::Null, Val::Num(n)) => match f(Jv(Val::Null)).next().transpose()? {
                Some(y) => {
                    let i = set_index(0, n)?;
                    let mut a = vec![Val::Null; i];
                    a.push(y.0);
                    Ok(Jv(Val::Arr(Rc::new(a))))
                }
                None => Ok(Jv(Val::Null)),
            },
            (Val::Arr(mut a), Val::Num(n)) => {
                let f64i = as_f64(n);
                let at = if f64i.is_nan() {
                    None
                } else {
                    let mut i = int_index(f64i);
                    if i < 0 {
                        i += a.len() as isize;
                    }
                    usize::try_from(i).ok().filter(|i| *i < a.len())
                };
                match at {
                    Some(i) => {
                        let v = Rc::make_mut(&mut a);
                        let old = core::mem::take(&mut v[i]);
                        match f(Jv(old)).next().transpose()? {
                            Some(y) => v[i] = y.0,
                            None => {
                                v.remove(i);
                            }
                        }
                    }
                    None => {
                        if let Some(y) = f(Jv(Val::Null)).next().transpose()? {
                            let i = set_index(a.len(), n)?;
                            let v = Rc::make_mut(&mut a);
                            if i >= v.len() {
                                v.resize(i, Val::Null);
                                v.push(y.0);
                            } else {
                                v[i] = y.0;
                            }
                        }
                    }
                }
                Ok(Jv(Val::Arr(a)))
            }
            (t, k) => {
                let e = match (&t, k) {
                    (Val::Obj(_) | Val::Arr(_) | Val::Null, _) => index_err(&t, k),
                    _ => match get(&t, k) {
                        Err(e) => e,
                        Ok(_) => set_err(&t, k),
                    },
                };
                opt.fail(Jv(t), |_| Exn::from(e))
            }
        }
    }

    fn map_range<'a, I: Iterator<Item = ValX<'a>>>(
        self,
        range: val::Range<&Self>,
        opt: Opt,
        f: impl Fn(Self) -> I,
    ) -> ValX<'a> {
        self.map_slice(range.start.map(|v| &v.0), range.end.map(|v| &v.0), opt, f)
    }

    fn as_bool(&self) -> bool {
        !matches!(self.0, Val::Null | Val::Bool(false))
    }

    fn into_string(self) -> Self {
        match self.0 {
            Val::TStr(_) => self,
            Val::BStr(b) => Jv(Val::TStr(b)),
            v => {
                let mut s = String::new();
                write_json(&mut s, &v);
                Jv(Val::from(s))
            }
        }
    }
}

impl jaq_std::ValT for Jv {
    fn into_seq<S: FromIterator<Self>>(self) -> Result<S, Self> {
        match self.0 {
            Val::Arr(a) => Ok(match Rc::try_unwrap(a) {
                Ok(a) => a.into_iter().map(Jv).collect(),
                Err(a) => a.iter().cloned().map(Jv).collect(),
            }),
            v => Err(Jv(v)),
        }
    }

    fn is_int(&self) -> bool {
        self.0.is_int()
    }

    fn as_isize(&self) -> Option<isize> {
        match &self.0 {
            Val::Num(n @ (Num::Dec(_) | Num::Float(_))) => {
                let f = as_f64(n);
                (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as isize)
            }
            v => v.as_isize(),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        num_of(&self.0).map(as_f64)
    }

    fn is_utf8_str(&self) -> bool {
        self.0.is_utf8_str()
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        str_bytes(&self.0)
    }

    fn as_sub_str(&self, sub: &[u8]) -> Self {
        Jv(self.0.as_sub_str(sub))
    }

    fn from_utf8_bytes(b: impl AsRef<[u8]> + Send + 'static) -> Self {
        Jv(Val::from_utf8_bytes(b))
    }
}

/// `From<T> for Jv` for each `T` that a `Val` is made from.
macro_rules! jv_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Jv {
            fn from(x: $t) -> Self {
                Jv(Val::from(x))
            }
        }
    )*};
}
jv_from!(bool, isize, usize, f64, String);
impl From<val::Range<Jv>> for Jv {
    fn from(r: val::Range<Jv>) -> Self {
        Jv(Val::from(r.start.map(|v| v.0)..r.end.map(|v| v.0)))
    }
}
impl FromIterator<Jv> for Jv {
    fn from_iter<T: IntoIterator<Item = Jv>>(iter: T) -> Self {
        Jv(iter.into_iter().map(|v| v.0).collect())
    }
}

impl Add for Jv {
    type Output = ValR;
    fn add(self, rhs: Self) -> ValR {
        match (self.0, rhs.0) {
            (Val::Num(a), Val::Num(b)) => {
                Ok(Jv(Val::Num(num_op(&a, &b, isize::checked_add, |x, y| {
                    x + y
                }))))
            }
            (l @ (Val::Null | Val::TStr(_) | Val::BStr(_) | Val::Arr(_) | Val::Obj(_)), r)
                if matches!(l, Val::Null) || matches!(r, Val::Null) || kind(&l) == kind(&r) =>
            {
                (l + r).map(Jv).map_err(|e| err(e.to_string()))
            }
            (l, Val::Null) => Ok(Jv(l)),
            (l, r) => Err(arith_err(&l, &r, "cannot be added")),
        }
    }
}

impl Sub for Jv {
    type Output = ValR;
    fn sub(self, rhs: Self) -> ValR {
        match (self.0, rhs.0) {
            (Val::Num(a), Val::Num(b)) => {
                Ok(Jv(Val::Num(num_op(&a, &b, isize::checked_sub, |x, y| {
                    x - y
                }))))
            }
            (l @ Val::Arr(_), r @ Val::Arr(_)) => (l - r).map(Jv).map_err(|e| err(e.to_string())),
            (l, r) => Err(arith_err(&l, &r, "cannot be subtracted")),
        }
    }
}

fn repeat(s: &[u8], n: &Num) -> Val {
    let f = as_f64(n);
    if f.is_nan() || f < 0.0 {
        return Val::Null;
    }
    let times = f.min(u32::MAX as f64) as usize;
    Val::utf8_str(s.repeat(times))
}

impl Mul for Jv {
    type Output = ValR;
    fn mul(self, rhs: Self) -> ValR {
        match (self.0, rhs.0) {
            (Val::Num(a), Val::Num(b)) => {
                Ok(Jv(Val::Num(num_op(&a, &b, isize::checked_mul, |x, y| {
                    x * y
                }))))
            }
            (Val::TStr(s), Val::Num(n)) | (Val::Num(n), Val::TStr(s)) => Ok(Jv(repeat(&s, &n))),
            (l @ Val::Obj(_), r @ Val::Obj(_)) => (l * r).map(Jv).map_err(|e| err(e.to_string())),
            (l, r) => Err(arith_err(&l, &r, "cannot be multiplied")),
        }
    }
}

impl Div for Jv {
    type Output = ValR;
    fn div(self, rhs: Self) -> ValR {
        match (self.0, rhs.0) {
            (Val::Num(a), Val::Num(b)) => {
                if as_f64(&b) == 0.0 {
                    return Err(arith_err(
                        &Val::Num(a),
                        &Val::Num(b),
                        "cannot be divided because the divisor is zero",
                    ));
                }
                Ok(Jv(Val::Num(Num::Float(as_f64(&a) / as_f64(&b)))))
            }
            (l @ Val::TStr(_), r @ Val::TStr(_)) => {
                if let (Val::TStr(x), Val::TStr(_)) = (&l, &r)
                    && x.is_empty()
                {
                    return Ok(Jv(Val::Arr(Rc::new(Vec::new()))));
                }
                (l / r).map(Jv).map_err(|e| err(e.to_string()))
            }
            (l, r) => Err(arith_err(&l, &r, "cannot be divided")),
        }
    }
}

impl Rem for Jv {
    type Output = ValR;
    fn rem(self, rhs: Self) -> ValR {
        match (self.0, rhs.0) {
            (Val::Num(a), Val::Num(b)) => {
                let (x, y) = (as_f64(&a), as_f64(&b));
                if x.is_nan() || y.is_nan() {
                    return Ok(Jv(Val::Num(Num::Float(f64::NAN))));
                }
                let (xi, yi) = (x as i64, y as i64);
                if yi == 0 {
                    return Err(arith_err(
                        &Val::Num(a),
                        &Val::Num(b),
                        "cannot be divided (remainder) because the divisor is zero",
                    ));
                }
                let r = xi.checked_rem(yi).unwrap_or(0);
                Ok(Jv(Val::Num(Num::from_integral(r))))
            }
            (l, r) => Err(arith_err(&l, &r, "cannot be divided")),
        }
    }
}

impl Neg for Jv {
    type Output = ValR;
    fn neg(self) -> ValR {
        match self.0 {
            Val::Num(Num::Int(i)) if (-EXACT..=EXACT).contains(&i) => {
                Ok(Jv(Val::Num(Num::Int(-i))))
            }
            Val::Num(n @ Num::Dec(_)) => Ok(Jv(Val::Num(-n))),
            Val::Num(n) => Ok(Jv(Val::Num(Num::Float(-as_f64(&n))))),
            v => Err(err(format!("{} cannot be negated", described(&v)))),
        }
    }
}

impl fmt::Display for Jv {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut s = String::new();
        write_json(&mut s, &self.0);
        f.write_str(&s)
    }
}

/// A number as jq 1.7.1 prints it: a number read from text keeps its text; a computed
/// one is the shortest text that reads back as the same double, with an exponent
/// when the decimal point would be more than 15 places past the digits or when the
/// number is below 1e-4 (`1e+17`, `1e-05`); NaN prints as null and infinities as the
/// largest double.
pub(crate) fn fmt_num(out: &mut String, n: &Num) {
    use fmt::Write;
    match n {
        Num::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Num::BigInt(i) => {
            let _ = write!(out, "{i}");
        }
        Num::Dec(s) => out.push_str(s),
        Num::Float(f) => fmt_f64(out, *f),
    }
}

pub(crate) fn fmt_f64(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("null");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 {
            "1.7976931348623157e+308"
        } else {
            "-1.7976931348623157e+308"
        });
        return;
    }
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let decpt = exp + 1;
    let nd = digits.len() as i32;
    if f < 0.0 {
        out.push('-');
    }
    if decpt <= -4 || decpt > nd + 15 {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        let e = decpt - 1;
        out.push(if e < 0 { '-' } else { '+' });
        let _ = fmt::Write::write_fmt(out, format_args!("{:02}", e.abs()));
    } else if decpt <= 0 {
        out.push_str("0.");
        for _ in decpt..0 {
            out.push('0');
        }
        out.push_str(&digits);
    } else if decpt >= nd {
        out.push_str(&digits);
        for _ in nd..decpt {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
}

/// A string as jq writes it in JSON.
pub(crate) fn write_str(out: &mut String, b: &[u8]) {
    use fmt::Write;
    out.push('"');
    for c in String::from_utf8_lossy(b).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Compact JSON as jq's `tojson` writes it.
pub(crate) fn write_json(out: &mut String, v: &Val) {
    match v {
        Val::Null => out.push_str("null"),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Num(n) => fmt_num(out, n),
        Val::TStr(b) | Val::BStr(b) => write_str(out, b),
        Val::Arr(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, x);
            }
            out.push(']');
        }
        Val::Obj(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    Val::TStr(b) | Val::BStr(b) => write_str(out, b),
                    other => {
                        let mut s = String::new();
                        write_json(&mut s, other);
                        write_str(out, s.as_bytes());
                    }
                }
                out.push(':');
                write_json(out, x);
            }
            out.push('}');
        }
    }
}
