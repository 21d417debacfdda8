//! Converting between serde_json's `Value` and jaq's `Val`, and a number's JSON text.
//!
//! The conversion keeps a number's text for every number a filter does not compute:
//! integers become jaq integers (printed back identically), every other number (`1.0`,
//! `1e5`, `-0`, `0.10`) becomes jaq's decimal-string number, which jaq carries
//! unchanged until arithmetic touches it.

use std::borrow::Cow;

use jaq_json::{Num, Rc, Val};
use serde_json::{Map, Number, Value};

use crate::json::layout::{Node, View};

/// serde_json value to jaq value, consuming it: strings move rather than copy, and the
/// serde tree is freed while the jaq tree grows (a large document is not held twice).
pub(crate) fn into_val(v: Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::from(b),
        Value::Number(n) => Val::Num(
            number(n.as_str()).unwrap_or_else(|| Num::Dec(Rc::new(n.as_str().to_string()))),
        ),
        Value::String(s) => Val::utf8_str(s),
        Value::Array(a) => a.into_iter().map(into_val).collect(),
        Value::Object(o) => {
            let mut map = jaq_json::Map::with_capacity_and_hasher(o.len(), Default::default());
            for (k, v) in o {
                map.insert(Val::utf8_str(k), into_val(v));
            }
            Val::obj(map)
        }
    }
}

/// A number's JSON text: as read where the filter did not compute it.
pub(crate) fn num_text(n: &Num) -> Cow<'_, str> {
    match n {
        Num::Dec(text) if is_json_number(text) => Cow::Borrowed(text.as_str()),
        Num::Int(i) => Cow::Owned(i.to_string()),
        other => Cow::Owned(
            json_number(other).map_or_else(|_| "null".to_string(), |num| num.to_string()),
        ),
    }
}

/// RFC 8259 number syntax: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(text: &str) -> bool {
    fn digits(b: &[u8]) -> usize {
        b.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    match digits(&b[i..]) {
        0 => return false,
        n if n > 1 && b[i] == b'0' => return false,
        n => i += n,
    }
    if b.get(i) == Some(&b'.') {
        match digits(&b[i + 1..]) {
            0 => return false,
            n => i += 1 + n,
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        match digits(&b[i..]) {
            0 => return false,
            n => i += n,
        }
    }
    i == b.len()
}

fn text_of(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

impl Node for Val {
    /// Only for values `filter::check_json` passed: NaN, byte strings and non-string keys
    /// never reach the writer.
    fn view(&self) -> View<'_, Self> {
        match self {
            Val::Null => View::Null,
            Val::Bool(b) => View::Bool(*b),
            Val::Num(n) => View::Number(num_text(n)),
            Val::TStr(b) | Val::BStr(b) => View::String(text_of(b)),
            Val::Arr(a) => View::Array(a.as_slice()),
            Val::Obj(o) => View::Object(Box::new(o.iter().map(|(k, v)| {
                let key = match k {
                    Val::TStr(b) | Val::BStr(b) => text_of(b),
                    other => Cow::Owned(other.to_string()),
                };
                (key, v)
            }))),
        }
    }
}

/// The longest integer text (sign included) that becomes a jaq (big) integer; longer
/// ones keep their text (see [`number`]). 100 digits hold every integer type
/// programs use (u128 has 39) with room to spare.
const BIG_INT_DIGITS: usize = 100;

/// The jaq number for JSON number text; `None` when `text` is not JSON number syntax.
/// Integers become integers; a decimal becomes a float when the float is written back
/// exactly as `text` (no allocation, the same arithmetic), else it keeps its text.
pub(crate) fn number(text: &str) -> Option<Num> {
    if !is_json_number(text) {
        return None;
    }
    let integral = !text.contains(['.', 'e', 'E']) && text != "-0";
    // A longer integer keeps its text, as a decimal does: turning decimal digits into a
    // big integer and back costs the square of their count (a 1 MB number took seconds
    // under the lock), and jq 1.7 keeps such a literal's text too.
    if integral
        && text.len() <= BIG_INT_DIGITS
        && let Some(n) = Num::from_str_radix(text, 10)
    {
        return Some(n);
    }
    // Both spellings must match: ours (written to the file) and jaq's (`tostring`).
    if let Ok(f) = text.parse::<f64>() {
        let float = Num::Float(f);
        if num_text(&float) == text && float.to_string() == text {
            return Some(float);
        }
    }
    Some(Num::Dec(Rc::new(text.to_string())))
}

/// jaq value back to serde_json; fails on what JSON cannot hold.
pub(crate) fn from_val(v: &Val) -> std::result::Result<Value, String> {
    Ok(match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => Value::Number(json_number(n)?),
        Val::TStr(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Val::BStr(_) => return Err("a byte string".into()),
        Val::Arr(a) => Value::Array(
            a.iter()
                .map(from_val)
                .collect::<std::result::Result<_, _>>()?,
        ),
        Val::Obj(o) => {
            let mut map = Map::with_capacity(o.len());
            for (k, v) in o.iter() {
                let key = match k {
                    Val::TStr(b) => String::from_utf8_lossy(b).into_owned(),
                    other => return Err(format!("an object key that is not a string ({other})")),
                };
                map.insert(key, from_val(v)?);
            }
            Value::Object(map)
        }
    })
}

pub(crate) fn json_number(n: &Num) -> std::result::Result<Number, String> {
    match n {
        Num::Int(i) => Ok(Number::from(*i as i64)),
        Num::Float(f) => float_number(*f),
        Num::BigInt(_) | Num::Dec(_) => {
            let text = n.to_string();
            match serde_json::from_str::<Number>(&text) {
                Ok(num) => Ok(num),
                Err(_) => float_number(text.parse::<f64>().unwrap_or(f64::NAN)),
            }
        }
    }
}

/// A computed float: NaN and infinities are refused; integral values print as integers
/// (as jq prints them), others in shortest round-trip form.
fn float_number(f: f64) -> std::result::Result<Number, String> {
    if !f.is_finite() {
        return Err(format!(
            "{} (JSON has no such number)",
            if f.is_nan() { "NaN" } else { "Infinity" }
        ));
    }
    if f.fract() == 0.0 && f.abs() < 1e17 {
        return Ok(Number::from(f as i64));
    }
    Number::from_f64(f).ok_or_else(|| format!("{f} is not a JSON number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_number_syntax() {
        for ok in [
            "0",
            "-0",
            "1.50",
            "1E5",
            "1e+5",
            "-2.5e-3",
            "123456789012345678901234567890",
        ] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in [
            "", "-", "+1", "01", "1.", ".5", "1e", "1e+", "0x10", "1.5.2", "NaN", "1 ",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }
}
