//! The recursion guard of jq filters: every definition (the user's and jq's library's)
//! is entered through the native filter `__lockrun_guard`, which fails once the filter
//! has used its share of the JSON thread's stack (see [`super::stack`]).
//!
//! jaq recurses on the native stack for every call of a definition and offers no
//! depth limit, so without this `def f: [f]; f` ends in SIGSEGV with the lock still
//! on disk. The guard is an identity filter (also in path and update position, so
//! `f |= ...` and `path(f)` keep working); it only measures the stack.

use jaq_core::box_iter::box_once;
use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Def, Pattern, Term};
use jaq_core::path::{Part, Path};
use jaq_core::{DataT, Error, Exn, Native};

use super::stack;

/// The name of the guard; no jq name can start with two underscores and clash by accident.
pub const NAME: &str = "__lockrun_guard";

/// The guard as a native filter for the compiler.
pub fn fun<D: DataT>() -> jaq_core::native::Fun<D> {
    let native = Native::new(|cv| box_once(check().map(|()| cv.1)))
        .with_paths(|cv| box_once(check().map(|()| cv.1)))
        .with_update(|cv, f| match check() {
            Ok(()) => f(cv.1),
            Err(e) => box_once(Err(e)),
        });
    (NAME, Box::new([]), native)
}

fn check<'a, V: From<String>>() -> Result<(), Exn<'a, V>> {
    if stack::over_budget() {
        Err(Exn::from(Error::str(stack::TOO_DEEP)))
    } else {
        Ok(())
    }
}

/// `def name: BODY;` becomes `def name: __lockrun_guard | BODY;`, and so on for every
/// definition nested inside (`g` is [`NAME`] in the term's string type).
pub fn def<S: Copy>(d: &mut Def<S>, g: S) {
    term(&mut d.body, g);
    let body = std::mem::take(&mut d.body);
    d.body = Term::BinOp(
        Box::new(Term::Call(g, Vec::new())),
        BinaryOp::Pipe(None),
        Box::new(body),
    );
}

/// Guards every definition inside `t`.
pub fn term<S: Copy>(t: &mut Term<S>, g: S) {
    match t {
        Term::Id | Term::Recurse | Term::Num(_) | Term::Break(_) | Term::Var(_) => {}
        Term::Str(_, parts) => {
            for p in parts {
                if let StrPart::Term(t) = p {
                    term(t, g);
                }
            }
        }
        Term::Arr(inner) => {
            if let Some(t) = inner {
                term(t, g);
            }
        }
        Term::Obj(pairs) => {
            for (k, v) in pairs {
                term(k, g);
                if let Some(v) = v {
                    term(v, g);
                }
            }
        }
        Term::Neg(t) | Term::Label(_, t) => term(t, g),
        Term::BinOp(l, op, r) => {
            term(l, g);
            if let BinaryOp::Pipe(Some(p)) = op {
                pattern(p, g);
            }
            term(r, g);
        }
        Term::Fold(_, xs, p, args) => {
            term(xs, g);
            pattern(p, g);
            for a in args {
                term(a, g);
            }
        }
        Term::TryCatch(t, c) => {
            term(t, g);
            if let Some(c) = c {
                term(c, g);
            }
        }
        Term::IfThenElse(branches, otherwise) => {
            for (cond, then) in branches {
                term(cond, g);
                term(then, g);
            }
            if let Some(t) = otherwise {
                term(t, g);
            }
        }
        Term::Def(defs, rest) => {
            for d in defs {
                def(d, g);
            }
            term(rest, g);
        }
        Term::Call(_, args) => {
            for a in args {
                term(a, g);
            }
        }
        Term::Path(t, Path(parts)) => {
            term(t, g);
            for (part, _) in parts {
                match part {
                    Part::Index(i) => term(i, g),
                    Part::Range(from, to) => {
                        for t in [from, to].into_iter().flatten() {
                            term(t, g);
                        }
                    }
                }
            }
        }
    }
}

fn pattern<S: Copy>(p: &mut Pattern<S>, g: S) {
    match p {
        Pattern::Var(_) => {}
        Pattern::Arr(ps) => ps.iter_mut().for_each(|p| pattern(p, g)),
        Pattern::Obj(pairs) => {
            for (k, v) in pairs {
                term(k, g);
                pattern(v, g);
            }
        }
    }
}
