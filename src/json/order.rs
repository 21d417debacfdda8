//! Equality as written and key-order repair, once for both forms a document is edited
//! in: serde_json's `Value` (pointer, patch, write) and jaq's `Val` (`update`).

use std::hash::Hash;

use jaq_json::{Rc, Val};
use serde_json::Value;

use crate::json::layout::{Node, View};

/// A JSON tree as equality and key-order repair see it.
pub trait Tree: Node + 'static {
    type Map: Object<Self>;

    /// The same allocation: an unchanged subtree passed through an edit, so equal, with
    /// nothing to repair. Only jaq's shared values can tell.
    fn shares(&self, _other: &Self) -> bool {
        false
    }
    fn object(&self) -> Option<&Self::Map>;
    /// The object, ready to change (a shared one is copied first).
    fn object_mut(&mut self) -> Option<&mut Self::Map>;
    fn array(&self) -> Option<&[Self]>;
    /// The array, ready to change (a shared one is copied first).
    fn array_mut(&mut self) -> Option<&mut [Self]>;
}

/// An insertion-ordered object (serde_json's `preserve_order` map, jaq's `IndexMap`).
pub trait Object<V: 'static>: Default {
    type Key: Eq + Hash + 'static;
    fn with_capacity(n: usize) -> Self;
    fn len(&self) -> usize;
    fn keys(&self) -> impl Iterator<Item = &Self::Key>;
    fn get(&self, key: &Self::Key) -> Option<&V>;
    fn iter(&self) -> impl Iterator<Item = (&Self::Key, &V)>;
    fn iter_mut(&mut self) -> impl Iterator<Item = (&Self::Key, &mut V)>;
    fn shift_remove_entry(&mut self, key: &Self::Key) -> Option<(Self::Key, V)>;
    fn insert(&mut self, key: Self::Key, value: V);
    fn into_entries(self) -> impl Iterator<Item = (Self::Key, V)>;
}

/// Equal as written: same structure, key order and number text (`1.0` is not `1`):
/// the test for "the result is the input; write nothing".
pub(crate) fn same<N: Tree>(a: &N, b: &N) -> bool {
    if a.shares(b) {
        return true;
    }
    match (a.view(), b.view()) {
        (View::Null, View::Null) => true,
        (View::Bool(x), View::Bool(y)) => x == y,
        (View::Number(x), View::Number(y)) => x == y,
        (View::String(x), View::String(y)) => x == y,
        (View::Array(x), View::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (View::Object(x), View::Object(y)) => {
            x.len() == y.len()
                && x.zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        _ => false,
    }
}

/// Puts object keys back in their old order where an operation removed a key: jaq's
/// `del`, JSON Patch `remove`/`move` and JSON Pointer deletion remove keys by swapping
/// the last key into the hole. Objects that lost no key keep the order the operation
/// gave them (so deliberate reordering in a filter survives); new keys stay after the
/// old ones. Subtrees shared with `old` are untouched and skipped.
pub(crate) fn keep_key_order<N: Tree>(old: &N, new: &mut N) {
    if old.shares(new) {
        return;
    }
    if let (Some(o), Some(n)) = (old.object(), new.object()) {
        let lost_key = o.keys().any(|k| n.get(k).is_none());
        let changed_child = n
            .iter()
            .any(|(k, v)| o.get(k).is_some_and(|ov| !ov.shares(v)));
        if !lost_key && !changed_child {
            return;
        }
        let Some(n) = new.object_mut() else {
            return;
        };
        for (k, v) in n.iter_mut() {
            if let Some(ov) = o.get(k) {
                keep_key_order(ov, v);
            }
        }
        if lost_key {
            let mut taken = std::mem::take(n);
            let mut ordered = N::Map::with_capacity(taken.len());
            for k in o.keys() {
                if let Some((k, v)) = taken.shift_remove_entry(k) {
                    ordered.insert(k, v);
                }
            }
            for (k, v) in taken.into_entries() {
                ordered.insert(k, v);
            }
            *n = ordered;
        }
        return;
    }
    if let (Some(o), Some(n)) = (old.array(), new.array())
        && o.len() == n.len()
    {
        let is_container = |v: &N| v.object().is_some() || v.array().is_some();
        if o.iter()
            .zip(n.iter())
            .all(|(a, b)| a.shares(b) || !is_container(b))
        {
            return;
        }
        if let Some(n) = new.array_mut() {
            for (ov, nv) in o.iter().zip(n.iter_mut()) {
                keep_key_order(ov, nv);
            }
        }
    }
}

impl Tree for Value {
    type Map = serde_json::Map<String, Value>;

    fn object(&self) -> Option<&Self::Map> {
        self.as_object()
    }
    fn object_mut(&mut self) -> Option<&mut Self::Map> {
        self.as_object_mut()
    }
    fn array(&self) -> Option<&[Self]> {
        self.as_array().map(Vec::as_slice)
    }
    fn array_mut(&mut self) -> Option<&mut [Self]> {
        self.as_array_mut().map(Vec::as_mut_slice)
    }
}

impl Object<Value> for serde_json::Map<String, Value> {
    type Key = String;
    fn with_capacity(n: usize) -> Self {
        serde_json::Map::with_capacity(n)
    }
    fn len(&self) -> usize {
        serde_json::Map::len(self)
    }
    fn keys(&self) -> impl Iterator<Item = &String> {
        serde_json::Map::keys(self)
    }
    fn get(&self, key: &String) -> Option<&Value> {
        serde_json::Map::get(self, key)
    }
    fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        serde_json::Map::iter(self)
    }
    fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Value)> {
        serde_json::Map::iter_mut(self)
    }
    fn shift_remove_entry(&mut self, key: &String) -> Option<(String, Value)> {
        serde_json::Map::shift_remove_entry(self, key)
    }
    fn insert(&mut self, key: String, value: Value) {
        serde_json::Map::insert(self, key, value);
    }
    fn into_entries(self) -> impl Iterator<Item = (String, Value)> {
        self.into_iter()
    }
}

impl Tree for Val {
    type Map = jaq_json::Map;

    fn shares(&self, other: &Self) -> bool {
        match (self, other) {
            (Val::Arr(x), Val::Arr(y)) => Rc::ptr_eq(x, y),
            (Val::Obj(x), Val::Obj(y)) => Rc::ptr_eq(x, y),
            _ => false,
        }
    }
    fn object(&self) -> Option<&Self::Map> {
        match self {
            Val::Obj(o) => Some(o),
            _ => None,
        }
    }
    fn object_mut(&mut self) -> Option<&mut Self::Map> {
        match self {
            Val::Obj(o) => Some(Rc::make_mut(o)),
            _ => None,
        }
    }
    fn array(&self) -> Option<&[Self]> {
        match self {
            Val::Arr(a) => Some(a.as_slice()),
            _ => None,
        }
    }
    fn array_mut(&mut self) -> Option<&mut [Self]> {
        match self {
            Val::Arr(a) => Some(Rc::make_mut(a).as_mut_slice()),
            _ => None,
        }
    }
}

impl Object<Val> for jaq_json::Map {
    type Key = Val;
    fn with_capacity(n: usize) -> Self {
        jaq_json::Map::with_capacity_and_hasher(n, Default::default())
    }
    fn len(&self) -> usize {
        jaq_json::Map::len(self)
    }
    fn keys(&self) -> impl Iterator<Item = &Val> {
        jaq_json::Map::keys(self)
    }
    fn get(&self, key: &Val) -> Option<&Val> {
        jaq_json::Map::get(self, key)
    }
    fn iter(&self) -> impl Iterator<Item = (&Val, &Val)> {
        jaq_json::Map::iter(self)
    }
    fn iter_mut(&mut self) -> impl Iterator<Item = (&Val, &mut Val)> {
        jaq_json::Map::iter_mut(self)
    }
    fn shift_remove_entry(&mut self, key: &Val) -> Option<(Val, Val)> {
        jaq_json::Map::shift_remove_entry(self, key)
    }
    fn insert(&mut self, key: Val, value: Val) {
        jaq_json::Map::insert(self, key, value);
    }
    fn into_entries(self) -> impl Iterator<Item = (Val, Val)> {
        self.into_iter()
    }
}
