//! A small, conservative type checker for rule ASTs (the part of cel-go's `checker` that
//! `x-kubernetes-validations` depend on): types `self`/`oldSelf` from the schema, resolves field
//! selection (`self.x`, `has(self.x)`) on objects and maps, follows list and map element types
//! through comprehensions and common functions, and reports cel-go's errors (`undefined field
//! 'z'`, `undeclared reference to 'x' (in container '')`). Anything it cannot type is `dyn` and
//! accepted, so it never rejects a rule cel-go would accept.

use crate::cel::comprehensions;
use crate::cel::decl::{Kind, Ty};
use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use std::collections::HashMap;
use std::rc::Rc;

/// The types of every checked node, by expression id, and the errors found (node id, message).
#[derive(Default)]
pub struct Checked {
    pub types: HashMap<u64, Rc<Ty>>,
    pub errors: Vec<(u64, String)>,
}

impl Checked {
    /// The type of a node, `dyn` when unknown.
    pub fn type_of(&self, id: u64) -> Rc<Ty> {
        self.types.get(&id).cloned().unwrap_or_else(Ty::dyn_)
    }
}

/// Identifiers that name types in cel-go's standard environment.
const TYPE_NAMES: [&str; 14] = [
    "bool",
    "bytes",
    "double",
    "duration",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "optional_type",
    "string",
    "timestamp",
    "type",
    "uint",
];

/// Macros whose first two arguments name variables (cel-go's two-variable comprehensions).
const TWO_VAR_MACROS: [&str; 7] = [
    "all",
    "exists",
    "existsOne",
    "exists_one",
    "transformList",
    "transformMap",
    "transformMapEntry",
];

/// Checks `expr` with the given variables in scope.
pub fn check(expr: &IdedExpr, vars: &[(&str, Rc<Ty>)]) -> Checked {
    let mut c = Checker {
        out: Checked::default(),
        scope: vars
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect(),
    };
    c.expr(expr);
    c.out
}

struct Checker {
    out: Checked,
    scope: Vec<(String, Rc<Ty>)>,
}

fn scalar(kind: Kind) -> Rc<Ty> {
    Ty::of(kind)
}

/// The type without its schema size bound (the result of an operation on it).
fn unbounded(t: &Rc<Ty>) -> Rc<Ty> {
    Ty::of(t.kind.clone())
}

impl Checker {
    fn lookup(&self, name: &str) -> Option<Rc<Ty>> {
        self.scope
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
    }

    /// Whether `e` is a (qualified) name whose root is not a variable: a namespace such as
    /// `sets` in `sets.contains(...)` or a type name such as `google.protobuf.Duration`.
    fn is_namespace(&self, e: &IdedExpr) -> bool {
        let mut cur = e;
        loop {
            match &cur.expr {
                Expr::Ident(n) => return self.lookup(n).is_none(),
                Expr::Select(s) if !s.test => cur = &s.operand,
                _ => return false,
            }
        }
    }

    fn expr(&mut self, e: &IdedExpr) -> Rc<Ty> {
        let t = self.infer(e);
        self.out.types.insert(e.id, t.clone());
        t
    }

    fn error(&mut self, id: u64, msg: String) {
        self.out.errors.push((id, msg));
    }

    fn infer(&mut self, e: &IdedExpr) -> Rc<Ty> {
        match &e.expr {
            Expr::Literal(l) => scalar(match l {
                LiteralValue::Boolean(_) => Kind::Bool,
                LiteralValue::Bytes(_) => Kind::Bytes,
                LiteralValue::Double(_) => Kind::Double,
                LiteralValue::Int(_) => Kind::Int,
                LiteralValue::Null => Kind::Null,
                LiteralValue::String(_) => Kind::String,
                LiteralValue::UInt(_) => Kind::Uint,
            }),
            Expr::Ident(n) => match self.lookup(n) {
                Some(t) => t,
                None if TYPE_NAMES.contains(&n.as_str()) => scalar(Kind::Type),
                None => {
                    self.error(
                        e.id,
                        format!("undeclared reference to '{n}' (in container '')"),
                    );
                    Ty::dyn_()
                }
            },
            Expr::Select(s) => {
                if !s.test && self.is_namespace(&s.operand) {
                    return Ty::dyn_();
                }
                let operand = self.expr(&s.operand);
                let t = self.select(e.id, &operand, &s.field);
                if s.test { scalar(Kind::Bool) } else { t }
            }
            Expr::Call(c) => self.call(e.id, c),
            Expr::List(l) => {
                let elems: Vec<Rc<Ty>> = l.elements.iter().map(|x| self.expr(x)).collect();
                Ty::of(Kind::List(common(&elems)))
            }
            Expr::Map(m) => {
                let mut keys = Vec::new();
                let mut vals = Vec::new();
                for entry in &m.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(me) => {
                            keys.push(self.expr(&me.key));
                            vals.push(self.expr(&me.value));
                        }
                        EntryExpr::StructField(f) => {
                            self.expr(&f.value);
                        }
                    }
                }
                Ty::of(Kind::Map(common(&keys), common(&vals)))
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    match &entry.expr {
                        EntryExpr::StructField(f) => {
                            self.expr(&f.value);
                        }
                        EntryExpr::MapEntry(me) => {
                            self.expr(&me.key);
                            self.expr(&me.value);
                        }
                    }
                }
                Ty::dyn_()
            }
            Expr::Comprehension(c) => self.comprehension(c),
            Expr::Unspecified => Ty::dyn_(),
        }
    }

    fn select(&mut self, id: u64, operand: &Rc<Ty>, field: &str) -> Rc<Ty> {
        match &operand.kind {
            Kind::Object(o) => match o.fields.get(field) {
                Some(t) => t.clone(),
                None => {
                    if !o.open {
                        self.error(id, format!("undefined field '{field}'"));
                    }
                    Ty::dyn_()
                }
            },
            Kind::Map(_, v) => v.clone(),
            Kind::Bool
            | Kind::Int
            | Kind::Uint
            | Kind::Double
            | Kind::String
            | Kind::Bytes
            | Kind::Duration
            | Kind::Timestamp
            | Kind::List(_)
                if operand.max.is_some() =>
            {
                self.error(
                    id,
                    format!("type '{operand}' does not support field selection"),
                );
                Ty::dyn_()
            }
            _ => Ty::dyn_(),
        }
    }

    fn call(&mut self, _id: u64, c: &CallExpr) -> Rc<Ty> {
        let name = c.func_name.as_str();
        let target = match &c.target {
            Some(t) if !self.is_namespace(t) => Some(self.expr(t)),
            _ => None,
        };
        if TWO_VAR_MACROS.contains(&name)
            && c.args.len() >= 3
            && let (Expr::Ident(k), Expr::Ident(v)) = (&c.args[0].expr, &c.args[1].expr)
        {
            // variables the interpreter does not expand: accept them, typed `dyn`
            let depth = self.scope.len();
            self.scope.push((k.clone(), Ty::dyn_()));
            self.scope.push((v.clone(), Ty::dyn_()));
            c.args[2..].iter().for_each(|a| {
                self.expr(a);
            });
            self.scope.truncate(depth);
            return Ty::dyn_();
        }
        let args: Vec<Rc<Ty>> = c.args.iter().map(|a| self.expr(a)).collect();
        let arg = |i: usize| args.get(i).cloned().unwrap_or_else(Ty::dyn_);
        let recv = target.clone().unwrap_or_else(|| arg(0));
        match name {
            "_&&_"
            | "_||_"
            | "!_"
            | "_==_"
            | "_!=_"
            | "_<_"
            | "_<=_"
            | "_>_"
            | "_>=_"
            | "@in"
            | "@not_strictly_false"
            | "matches"
            | "contains"
            | "startsWith"
            | "endsWith"
            | "isSorted"
            | "hasValue"
            | "isURL"
            | "isQuantity"
            | "isIP"
            | "isCIDR"
            | "isSemver" => scalar(Kind::Bool),
            "_?_:_" => {
                let (a, b) = (arg(1), arg(2));
                if a.same_kind(&b) && !matches!(a.kind, Kind::Null) {
                    a
                } else {
                    Ty::dyn_()
                }
            }
            "_+_" => add_type(&arg(0), &arg(1)),
            "_-_" => match (&arg(0).kind, &arg(1).kind) {
                (Kind::Timestamp, Kind::Timestamp) => scalar(Kind::Duration),
                (Kind::Timestamp, Kind::Duration) => scalar(Kind::Timestamp),
                _ => numeric(&arg(0), &arg(1)),
            },
            "_*_" | "_/_" | "_%_" => numeric(&arg(0), &arg(1)),
            "-_" => match arg(0).kind {
                Kind::Int | Kind::Double | Kind::Duration => unbounded(&arg(0)),
                _ => Ty::dyn_(),
            },
            "_[_]" => match &arg(0).kind {
                Kind::List(e) => e.clone(),
                Kind::Map(_, v) => v.clone(),
                _ => Ty::dyn_(),
            },
            "size" | "int" | "indexOf" | "lastIndexOf" | "getFullYear" | "getMonth" | "getDate"
            | "getDayOfMonth" | "getDayOfWeek" | "getDayOfYear" | "getHours" | "getMinutes"
            | "getSeconds" | "getMilliseconds" => scalar(Kind::Int),
            "uint" => scalar(Kind::Uint),
            "double" => scalar(Kind::Double),
            "string" | "charAt" | "lowerAscii" | "upperAscii" | "trim" | "replace"
            | "substring" | "join" | "strings.quote" | "format" | "find" => scalar(Kind::String),
            "reverse" if matches!(recv.kind, Kind::String) => scalar(Kind::String),
            "bytes" => scalar(Kind::Bytes),
            "bool" => scalar(Kind::Bool),
            "type" => scalar(Kind::Type),
            "duration" => scalar(Kind::Duration),
            "timestamp" => scalar(Kind::Timestamp),
            "dyn" => std::rc::Rc::new(Ty {
                kind: Kind::Dyn,
                max: arg(0).max,
                min_size: 0,
            }),
            "split" | "findAll" => Ty::of(Kind::List(scalar(Kind::String))),
            "sum" | "min" | "max" if target.is_some() => match &recv.kind {
                Kind::List(e) => unbounded(e),
                _ => Ty::dyn_(),
            },
            "value" | "orValue" if target.is_some() => match &recv.kind {
                Kind::Optional(t) => t.clone(),
                _ => Ty::dyn_(),
            },
            "optional.of" | "optional.ofNonZeroValue" => Ty::of(Kind::Optional(arg(0))),
            "optional.none" | "_?._" | "_[?_]" => Ty::of(Kind::Optional(Ty::dyn_())),
            "sets.contains" | "sets.equivalent" | "sets.intersects" => scalar(Kind::Bool),
            comprehensions::KEYS => match &arg(0).kind {
                Kind::List(_) => Ty::of(Kind::List(scalar(Kind::Int))),
                Kind::Map(k, _) => Ty::of(Kind::List(k.clone())),
                _ => Ty::of(Kind::List(Ty::dyn_())),
            },
            comprehensions::PAIRS_TO_MAP | comprehensions::MERGE_MAPS => {
                Ty::of(Kind::Map(Ty::dyn_(), Ty::dyn_()))
            }
            _ => Ty::dyn_(),
        }
    }

    fn comprehension(&mut self, c: &ComprehensionExpr) -> Rc<Ty> {
        let range = self.expr(&c.iter_range);
        let (first, second) = match &range.kind {
            Kind::List(e) if c.iter_var2.is_some() => (scalar(Kind::Int), e.clone()),
            Kind::List(e) => (e.clone(), Ty::dyn_()),
            Kind::Map(k, v) => (k.clone(), v.clone()),
            _ => (Ty::dyn_(), Ty::dyn_()),
        };
        let init = self.expr(&c.accu_init);
        let depth = self.scope.len();
        self.scope.push((c.accu_var.clone(), init.clone()));
        self.scope.push((c.iter_var.clone(), first));
        if let Some(v2) = &c.iter_var2 {
            self.scope.push((v2.clone(), second));
        }
        self.expr(&c.loop_cond);
        let step = self.expr(&c.loop_step);
        self.scope.truncate(depth);
        // map/filter accumulate a list whose element type the step reveals
        let accu = match (&init.kind, &step.kind) {
            (Kind::List(e), Kind::List(s)) if e.is_dyn() && !s.is_dyn() => step,
            _ => init,
        };
        self.scope.push((c.accu_var.clone(), accu));
        let result = self.expr(&c.result);
        self.scope.truncate(depth);
        result
    }
}

/// The element type of a literal: the elements' type if they agree, else `dyn`.
fn common(elems: &[Rc<Ty>]) -> Rc<Ty> {
    match elems.split_first() {
        Some((first, rest)) if rest.iter().all(|t| t.same_kind(first)) && !first.is_dyn() => {
            first.clone()
        }
        _ => Ty::dyn_(),
    }
}

fn numeric(a: &Rc<Ty>, b: &Rc<Ty>) -> Rc<Ty> {
    match (&a.kind, &b.kind) {
        (Kind::Int, Kind::Int) | (Kind::Uint, Kind::Uint) | (Kind::Double, Kind::Double) => {
            unbounded(a)
        }
        (Kind::Duration, Kind::Duration) => scalar(Kind::Duration),
        _ => Ty::dyn_(),
    }
}

fn add_type(a: &Rc<Ty>, b: &Rc<Ty>) -> Rc<Ty> {
    match (&a.kind, &b.kind) {
        (Kind::String, Kind::String) => scalar(Kind::String),
        (Kind::Bytes, Kind::Bytes) => scalar(Kind::Bytes),
        (Kind::List(x), Kind::List(y)) => {
            Ty::of(Kind::List(if x.is_dyn() { y.clone() } else { x.clone() }))
        }
        (Kind::Timestamp, Kind::Duration) | (Kind::Duration, Kind::Timestamp) => {
            scalar(Kind::Timestamp)
        }
        _ => numeric(a, b),
    }
}

/// Whether a rule of this output type can never evaluate to a bool.
pub fn definitely_not(t: &Ty, want: &Kind) -> bool {
    !t.is_dyn() && std::mem::discriminant(&t.kind) != std::mem::discriminant(want)
}
