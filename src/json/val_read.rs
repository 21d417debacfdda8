//! JSON text straight into jaq values, for `update`. Going through `serde_json::Value`
//! first would hold every node twice at some point; here serde_json's parser (its
//! positions and messages unchanged) feeds jaq's tree directly.
//!
//! Object keys, short strings and small arrays of them repeat throughout a large document
//! (`"id"`, `"done"`, `["bug", "ui"]`, `[]`): each is read once and shared (jaq copies
//! a shared value on write), which keeps a 50 MB document's tree below jq's footprint.
//! The tables are bounded, so a document of unique keys costs nothing more than a few
//! thousand entries.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::rc::Rc;

use jaq_json::Val;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::Result;
use crate::json::{self as js, val};

/// The map key under which serde_json (with `arbitrary_precision`) hands over a number
/// it keeps as text: decimals, integers beyond 64 bits and `-0`.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";
/// Distinct strings the table holds at most.
const SHARED_MAX: usize = 4096;
/// Longest object key, and longest string value, that is shared.
const SHARED_KEY_LEN: usize = 64;
const SHARED_VALUE_LEN: usize = 8;
/// Longest array (of short scalars) that is shared.
const SHARED_ARRAY_LEN: usize = 4;

/// Parses `bytes`, the contents of `origin`.
pub(crate) fn from_slice(origin: &str, bytes: &[u8]) -> Result<Val> {
    js::check_start(origin, bytes)?;
    let bytes = js::strip_bom(bytes).0;
    js::check_depth(origin, bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    read(&mut de).map_err(|e| js::json_error(origin, &e))
}

/// Parses the document `reader` yields, without holding its text: for documents too large
/// to keep twice. The caller has checked the start (see [`js::check_start`]).
pub(crate) fn from_reader(origin: &str, path: &Path, reader: impl io::Read) -> Result<Val> {
    let mut de = serde_json::Deserializer::from_reader(js::depth::CheckedRead::new(reader));
    read(&mut de).map_err(|e| js::read_error(origin, path, e))
}

fn read<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
) -> serde_json::Result<Val> {
    let shared = Shared::default();
    // The nesting limit is checked on the text (see `depth`); serde_json's own (128)
    // would refuse less.
    de.disable_recursion_limit();
    let value = ValSeed(&shared).deserialize(&mut *de)?;
    de.end()?;
    Ok(value)
}

/// The strings and small arrays read so far that are worth sharing.
#[derive(Default)]
struct Shared {
    strings: RefCell<HashMap<Box<str>, Val>>,
    arrays: RefCell<HashMap<Vec<Val>, Val>>,
}

impl Shared {
    fn string(&self, s: &str, max_len: usize) -> Val {
        if s.len() > max_len {
            return Val::utf8_str(s.to_string());
        }
        let mut table = self.strings.borrow_mut();
        if let Some(v) = table.get(s) {
            return v.clone();
        }
        let v = Val::utf8_str(s.to_string());
        if table.len() < SHARED_MAX {
            table.insert(s.into(), v.clone());
        }
        v
    }
}

struct ValSeed<'a>(&'a Shared);

impl<'de> DeserializeSeed<'de> for ValSeed<'_> {
    type Value = Val;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValSeed<'_> {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Val, E> {
        Ok(Val::from(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Val, E> {
        Ok(Val::Num(jaq_json::Num::from_integral(n)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Val, E> {
        Ok(Val::Num(jaq_json::Num::from_integral(n)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Val, E> {
        Ok(self.0.string(s, SHARED_VALUE_LEN))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ValSeed(self.0))? {
            items.push(item);
        }
        items.shrink_to_fit();
        if !shareable(&items) {
            return Ok(Val::Arr(Rc::new(items)));
        }
        let mut table = self.0.arrays.borrow_mut();
        if let Some(v) = table.get(&items) {
            return Ok(v.clone());
        }
        let v = Val::Arr(Rc::new(items.clone()));
        if table.len() < SHARED_MAX {
            table.insert(items, v.clone());
        }
        Ok(v)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Val, A::Error> {
        // Later duplicates replace the value and keep the first position, as in
        // serde_json's map.
        let mut map = jaq_json::Map::default();
        while let Some(key) = access.next_key_seed(KeySeed(self.0))? {
            let (key, value) = match key {
                Key::Plain(k) => (k, access.next_value_seed(ValSeed(self.0))?),
                Key::NumberToken => match access.next_value_seed(MarkedSeed(self.0))? {
                    Marked::Number(text) if map.is_empty() => {
                        return match val::number(&text) {
                            Some(num) => Ok(Val::Num(num)),
                            None => Err(de::Error::custom(format!("invalid number {text}"))),
                        };
                    }
                    Marked::Number(text) => (token(), Val::utf8_str(text)),
                    Marked::Value(v) => (token(), v),
                },
            };
            map.insert(key, value);
        }
        map.shrink_to_fit();
        Ok(Val::obj(map))
    }
}

fn token() -> Val {
    Val::utf8_str(NUMBER_TOKEN.to_string())
}

/// The value under [`NUMBER_TOKEN`]: serde_json hands its number text over as an owned
/// `String` (`visit_string`), which it never does for a string in the document (those
/// come borrowed), so a real key that happens to be spelled so stays a key.
enum Marked {
    Number(String),
    Value(Val),
}

struct MarkedSeed<'a>(&'a Shared);

impl<'de> DeserializeSeed<'de> for MarkedSeed<'_> {
    type Value = Marked;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Marked, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MarkedSeed<'_> {
    type Value = Marked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_string<E>(self, s: String) -> Result<Marked, E> {
        Ok(Marked::Number(s))
    }
    fn visit_unit<E>(self) -> Result<Marked, E> {
        Ok(Marked::Value(Val::Null))
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Marked, E> {
        ValSeed(self.0).visit_bool(b).map(Marked::Value)
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Marked, E> {
        ValSeed(self.0).visit_u64(n).map(Marked::Value)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Marked, E> {
        ValSeed(self.0).visit_i64(n).map(Marked::Value)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Marked, E> {
        ValSeed(self.0).visit_str(s).map(Marked::Value)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Marked, A::Error> {
        ValSeed(self.0).visit_seq(seq).map(Marked::Value)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Marked, A::Error> {
        ValSeed(self.0).visit_map(map).map(Marked::Value)
    }
}

/// Whether `items` is a small array of scalars that print as they compare (no floats:
/// `1.0` equals `1` but is written differently), worth sharing between its repeats.
fn shareable(items: &[Val]) -> bool {
    items.len() <= SHARED_ARRAY_LEN
        && items.iter().all(|v| match v {
            Val::Null | Val::Bool(_) | Val::Num(jaq_json::Num::Int(_)) => true,
            Val::TStr(s) => s.len() <= SHARED_VALUE_LEN,
            _ => false,
        })
}

enum Key {
    Plain(Val),
    NumberToken,
}

struct KeySeed<'a>(&'a Shared);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, s: &str) -> Result<Key, E> {
        if s == NUMBER_TOKEN {
            return Ok(Key::NumberToken);
        }
        Ok(Key::Plain(self.0.string(s, SHARED_KEY_LEN)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::layout::Layout;

    fn parse(text: &str) -> Val {
        from_slice("t.json", text.as_bytes()).unwrap()
    }

    fn same_as_serde(text: &str) {
        let via_serde = val::into_val(js::parse("t.json", text.as_bytes()).unwrap());
        let direct = parse(text);
        assert!(
            crate::json::order::same(&via_serde, &direct),
            "{text}: {direct} differs from {via_serde}"
        );
        let mut reader_text = text.as_bytes();
        let streamed = from_reader("t.json", Path::new("t.json"), &mut reader_text).unwrap();
        assert!(
            crate::json::order::same(&direct, &streamed),
            "{text}: reader differs"
        );
    }

    #[test]
    fn reads_what_the_serde_route_reads() {
        for text in [
            r#"{"a": 1, "b": [true, false, null], "c": {"d": "e"}}"#,
            r#"[1.0, 1.5, -0, 0.1, 1e3, 1E+3, 2.5e-7, 12345678901234567890123, -9223372036854775809]"#,
            r#"[2.5e+20, 2.5e20, 1E300, 1e-7, 100.0, 0.30000000000000004]"#,
            r#"{"z": 1, "a": 2, "z": 3}"#,
            r#"[["a", 1], ["a", 1.0], ["a", 1], [], [], {}, {}]"#,
            r#""\u00e9\ud83d\ude00 \"quoted\"""#,
            "[]",
            "{}",
        ] {
            same_as_serde(text);
        }
    }

    #[test]
    fn a_key_spelled_like_serde_jsons_number_marker_stays_a_key() {
        for text in [
            r#"{"$serde_json::private::Number":"5","x":1}"#,
            r#"{"x":1,"$serde_json::private::Number":"5"}"#,
            r#"{"$serde_json::private::Number":{}}"#,
            r#"{"$serde_json::private::Number":"not a number"}"#,
            r#"{"$serde_json::private::Number":"5"}"#,
        ] {
            assert_eq!(Layout::compact().render(&parse(text)), text);
        }
        // Repeated, the last value wins, as for any key.
        let twice = r#"{"$serde_json::private::Number":"5","$serde_json::private::Number":"6"}"#;
        assert_eq!(
            Layout::compact().render(&parse(twice)),
            r#"{"$serde_json::private::Number":"6"}"#
        );
    }

    #[test]
    fn jaq_spells_a_number_read_as_a_float_as_it_spells_the_text() {
        // `tostring` and friends must not change with the float shortcut.
        for text in [
            "2.5e+20", "1E300", "1.5", "0.1", "1.0", "-0", "2.5e20", "1e-7", "3.25",
        ] {
            // What serde_json hands over (it spells exponents `e+`), kept as text.
            let read: serde_json::Number = serde_json::from_str(text).unwrap();
            let as_text = Val::Num(jaq_json::Num::Dec(Rc::new(read.as_str().to_string())));
            assert_eq!(parse(text).to_string(), as_text.to_string(), "{text}");
        }
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = from_slice("t.json", b"{\n  \"a\": 1,\n}").unwrap_err();
        assert!(
            err.to_string().starts_with("t.json:3:1: invalid JSON"),
            "{err}"
        );
        let err = from_slice("t.json", b"{} x").unwrap_err();
        assert!(err.to_string().contains("trailing characters"), "{err}");
    }

    #[test]
    fn repeats_share_their_allocations_and_floats_keep_their_text() {
        let v = parse(
            r#"[{"name": "open", "tags": ["a"]}, {"name": "open", "tags": ["a"]}, [1.0, 1]]"#,
        );
        let Val::Arr(items) = &v else {
            panic!("not an array")
        };
        let parts = |v: &Val| match v {
            Val::Obj(o) => o
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Val::TStr(k) => k.as_ptr(),
                        _ => panic!("key not a string"),
                    };
                    let value = match v {
                        Val::TStr(s) => s.as_ptr(),
                        Val::Arr(a) => Rc::as_ptr(a).cast(),
                        _ => panic!("unexpected value"),
                    };
                    (key, value)
                })
                .collect::<Vec<_>>(),
            _ => panic!("not an object"),
        };
        assert_eq!(parts(&items[0]), parts(&items[1]));
        assert_eq!(
            Layout::compact().render(&v),
            r#"[{"name":"open","tags":["a"]},{"name":"open","tags":["a"]},[1.0,1]]"#
        );
    }
}
