//! Static worst-case cost of a checked rule (mirrors cel-go checker/cost.go with the Kubernetes
//! library estimates of apiserver pkg/cel/library/cost.go): sizes come from the schema bounds
//! the checker attached to types (`maxItems`/`maxLength`/`maxProperties`, or what fits in a
//! request), comprehensions cost their range size times the loop body, strings cost a tenth of
//! a unit per character.

use crate::cel::check::Checked;
use crate::cel::comprehensions;
use crate::cel::decl::{Kind, Ty};
use crate::cel::est::{Est, UNKNOWN, min_size_cost, replace_size};
pub use crate::cel::est::{REGEX_FACTOR, STRING_FACTOR};
use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use std::collections::HashMap;

/// Sizes of a container literal's entries.
#[derive(Clone, Copy)]
struct Entry {
    key: Est,
    val: Est,
}

impl Entry {
    fn union(a: Option<Entry>, b: Option<Entry>) -> Option<Entry> {
        let (a, b) = (a?, b?);
        Some(Entry {
            key: a.key.union(b.key),
            val: a.val.union(b.val),
        })
    }
}

struct Var {
    name: String,
    size: Option<Est>,
    entry: Option<Entry>,
}

struct Coster<'a> {
    checked: &'a Checked,
    sizes: HashMap<u64, Est>,
    entries: HashMap<u64, Entry>,
    vars: Vec<Var>,
}

/// The estimated `[min, max]` cost of evaluating `expr`.
pub fn estimate(expr: &IdedExpr, checked: &Checked) -> Est {
    let mut c = Coster {
        checked,
        sizes: HashMap::new(),
        entries: HashMap::new(),
        vars: Vec::new(),
    };
    c.cost(expr)
}

fn is_scalar(t: &Ty) -> bool {
    match &t.kind {
        Kind::Bool | Kind::Double | Kind::Duration | Kind::Int | Kind::Timestamp | Kind::Uint => {
            true
        }
        Kind::Optional(t) => is_scalar(t),
        _ => false,
    }
}

/// The size of values of a type: its schema bound, 1 for scalars.
fn type_size(t: &Ty) -> Option<Est> {
    match t.max {
        Some(m) => Some(Est { min: 0, max: m }),
        None if is_scalar(t) => Some(Est::fixed(1)),
        None => None,
    }
}

fn literal_size(e: &IdedExpr) -> Option<Est> {
    let n = match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => s.chars().count() as u64,
        Expr::Literal(LiteralValue::Bytes(b)) => b.len() as u64,
        Expr::Literal(_) => 1,
        Expr::List(l) => l.elements.len() as u64,
        Expr::Map(m) => m.entries.len() as u64,
        _ => return None,
    };
    Some(Est::fixed(n))
}

impl Coster<'_> {
    fn ty(&self, e: &IdedExpr) -> std::rc::Rc<Ty> {
        self.checked.type_of(e.id)
    }

    fn var(&self, e: &IdedExpr) -> Option<&Var> {
        match &e.expr {
            Expr::Ident(n) => self.vars.iter().rev().find(|v| &v.name == n),
            _ => None,
        }
    }

    fn size(&self, e: &IdedExpr) -> Option<Est> {
        if let Some(s) = self.sizes.get(&e.id) {
            return Some(*s);
        }
        if let Some(s) = literal_size(e) {
            return Some(s);
        }
        if let Some(s) = type_size(&self.ty(e)) {
            return Some(s);
        }
        self.var(e).and_then(|v| v.size)
    }

    fn size_or_unknown(&self, e: &IdedExpr) -> Est {
        self.size(e).unwrap_or(UNKNOWN)
    }

    fn entry(&self, e: &IdedExpr) -> Option<Entry> {
        self.entries
            .get(&e.id)
            .copied()
            .or_else(|| self.var(e).and_then(|v| v.entry))
    }

    fn set_size(&mut self, e: &IdedExpr, s: Option<Est>) {
        if let Some(s) = s {
            self.sizes.insert(e.id, s);
        }
    }

    fn cost(&mut self, e: &IdedExpr) -> Est {
        match &e.expr {
            Expr::Literal(_) | Expr::Unspecified => Est::fixed(0),
            Expr::Ident(_) => Est::fixed(1),
            Expr::Select(s) => {
                let operand = self.cost(&s.operand);
                if s.test {
                    // presence tests cost nothing in Kubernetes (PresenceTestHasCost(false))
                    return operand;
                }
                match self.ty(&s.operand).kind {
                    Kind::Map(..) | Kind::Object(_) => operand.plus(Est::fixed(1)),
                    _ => operand,
                }
            }
            Expr::Call(c) => self.call(e, c),
            Expr::List(l) => {
                let mut sum = Est::fixed(0);
                let mut val = if l.elements.is_empty() {
                    Est::fixed(0)
                } else {
                    Est {
                        min: u64::MAX,
                        max: 0,
                    }
                };
                for el in &l.elements {
                    sum = sum.plus(self.cost(el));
                    val = val.union(self.size_or_unknown(el));
                }
                self.entries.insert(
                    e.id,
                    Entry {
                        key: Est::fixed(1),
                        val,
                    },
                );
                sum.plus(Est::fixed(10))
            }
            Expr::Map(m) => {
                let mut sum = Est::fixed(0);
                for entry in &m.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(me) => {
                            sum = sum.plus(self.cost(&me.key)).plus(self.cost(&me.value));
                        }
                        EntryExpr::StructField(f) => sum = sum.plus(self.cost(&f.value)),
                    }
                }
                sum.plus(Est::fixed(30))
            }
            Expr::Struct(s) => {
                let mut sum = Est::fixed(0);
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        sum = sum.plus(self.cost(&f.value));
                    }
                }
                sum.plus(Est::fixed(40))
            }
            Expr::Comprehension(c) => self.comprehension(e, c),
        }
    }

    /// A bind of the macros: its value and result, the value free when it is a two-variable
    /// comprehension's element (which upstream reads without a call).
    fn bind(&mut self, e: &IdedExpr, c: &ComprehensionExpr) -> Est {
        let init = if comprehensions::is_element(&c.accu_init) {
            Est::fixed(0)
        } else {
            self.cost(&c.accu_init)
        };
        let depth = self.vars.len();
        self.vars.push(Var {
            name: c.accu_var.clone(),
            size: self.size(&c.accu_init),
            entry: self.entry(&c.accu_init),
        });
        let result = self.cost(&c.result);
        let size = self.size(&c.result);
        let entry = self.entry(&c.result);
        self.vars.truncate(depth);
        self.set_size(e, size);
        if let Some(en) = entry {
            self.entries.insert(e.id, en);
        }
        init.plus(result)
    }

    fn comprehension(&mut self, e: &IdedExpr, c: &ComprehensionExpr) -> Est {
        if comprehensions::is_bind(c) {
            return self.bind(e, c);
        }
        let mut sum = self.cost(&c.iter_range).plus(self.cost(&c.accu_init));
        let depth = self.vars.len();
        self.vars.push(Var {
            name: c.accu_var.clone(),
            size: self.size(&c.accu_init),
            entry: self.entry(&c.accu_init),
        });
        let range_entry = self.entry(&c.iter_range);
        let is_list = matches!(self.ty(&c.iter_range).kind, Kind::List(_));
        let (first, second) = match (range_entry, is_list, &c.iter_var2) {
            (Some(en), true, None) => (Some(en.val), None),
            (Some(en), _, Some(_)) => (Some(en.key), Some(en.val)),
            (Some(en), false, None) => (Some(en.key), None),
            (None, ..) => (None, None),
        };
        self.vars.push(Var {
            name: c.iter_var.clone(),
            size: first,
            entry: None,
        });
        if let Some(v2) = &c.iter_var2 {
            self.vars.push(Var {
                name: v2.clone(),
                size: second,
                entry: None,
            });
        }
        let loop_cost = self.cost(&c.loop_cond);
        let step_cost = self.cost(&c.loop_step);
        self.vars.truncate(depth + 1);
        sum = sum.plus(self.cost(&c.result));
        self.vars.truncate(depth);
        let range = self.size_or_unknown(&c.iter_range);
        sum = sum.plus(range.times(step_cost.plus(loop_cost)));
        match &c.accu_init.expr {
            Expr::Literal(_) => {
                let s = self.size(&c.accu_init);
                self.set_size(e, s);
            }
            Expr::List(_) | Expr::Map(_) => {
                self.sizes.insert(e.id, range);
                if let Some(en) = self.entry(&c.loop_step) {
                    self.entries.insert(e.id, en);
                }
            }
            _ => {}
        }
        sum
    }

    fn call(&mut self, e: &IdedExpr, c: &CallExpr) -> Est {
        let name = c.func_name.as_str();
        if name == "dyn" && c.args.len() == 1 {
            let arg = self.cost(&c.args[0]);
            let s = self.size(&c.args[0]);
            self.set_size(e, s);
            if let Some(en) = self.entry(&c.args[0]) {
                self.entries.insert(e.id, en);
            }
            return arg.plus(Est::fixed(1));
        }
        let arg_costs: Vec<Est> = c.args.iter().map(|a| self.cost(a)).collect();
        let arg_sum = arg_costs.iter().fold(Est::fixed(0), |a, b| a.plus(*b));
        // a target the checker left untyped is a namespace (`sets.contains`), not a receiver
        let target = c
            .target
            .as_deref()
            .filter(|t| self.checked.types.contains_key(&t.id));
        let mut sum = Est::fixed(0);
        if let Some(t) = target {
            sum = sum.plus(self.cost(t));
        }
        let (fn_cost, result) = self.function(e, name, target, &c.args, &arg_costs, arg_sum);
        let result = match name {
            "_[_]" | "_[?_]" => c
                .args
                .first()
                .and_then(|a| self.entry(a))
                .map(|en| en.val)
                .or(result),
            _ => result,
        };
        self.set_size(e, result);
        sum.plus(fn_cost)
    }

    fn both(&self, args: &[IdedExpr], k: fn(&Kind) -> bool) -> bool {
        args.len() == 2 && k(&self.ty(&args[0]).kind) && k(&self.ty(&args[1]).kind)
    }

    fn elem_size(&self, list: &IdedExpr) -> Option<(Est, bool)> {
        match &self.ty(list).kind {
            Kind::List(elem) => {
                let textual = matches!(elem.kind, Kind::String | Kind::Bytes);
                let size = type_size(elem)
                    .or_else(|| self.entry(list).map(|en| en.val))
                    .unwrap_or(UNKNOWN);
                Some((size, textual))
            }
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn function(
        &mut self,
        e: &IdedExpr,
        name: &str,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
        arg_costs: &[Est],
        arg_sum: Est,
    ) -> (Est, Option<Est>) {
        let one = Est::fixed(1);
        match (name, target) {
            // Kubernetes list library: one traversal of the list
            ("isSorted" | "sum" | "max" | "min" | "indexOf" | "lastIndexOf", Some(t)) => {
                let cost = match self.elem_size(t) {
                    Some((elem, textual)) => {
                        let el = if textual {
                            one.plus(elem.factor(STRING_FACTOR))
                        } else {
                            one
                        };
                        self.size_or_unknown(t).times(el)
                    }
                    None => self.size_or_unknown(t).factor(STRING_FACTOR),
                };
                (cost.plus(arg_sum), None)
            }
            (
                comprehensions::KEYS | comprehensions::PAIRS_TO_MAP | comprehensions::MERGE_MAPS,
                None,
            ) if args.len() == 1 => {
                let s = self.size_or_unknown(&args[0]);
                (one.plus(arg_sum), Some(s))
            }
            ("url", None) if args.len() == 1 => {
                let s = self.size_or_unknown(&args[0]);
                (s.factor(STRING_FACTOR).plus(arg_sum), Some(s))
            }
            ("lowerAscii" | "upperAscii" | "substring" | "trim", Some(t)) => {
                let s = self.size_or_unknown(t);
                (s.factor(STRING_FACTOR).plus(arg_sum), Some(s))
            }
            ("replace", Some(t)) if args.len() >= 2 => {
                let s = self.size_or_unknown(t);
                let result = replace_size(
                    s,
                    self.size_or_unknown(&args[0]),
                    self.size_or_unknown(&args[1]),
                );
                (s.factor(2.0 * STRING_FACTOR).plus(arg_sum), Some(result))
            }
            ("split", Some(t)) => {
                let s = self.size_or_unknown(t);
                let max = match args.get(1).map(|a| &a.expr) {
                    Some(Expr::Literal(LiteralValue::Int(n))) => {
                        u64::try_from(*n.inner()).unwrap_or(s.max)
                    }
                    _ => s.max,
                };
                (
                    s.factor(2.0 * STRING_FACTOR).plus(arg_sum),
                    Some(Est { min: 0, max }),
                )
            }
            ("join", Some(t)) => {
                let list = self.size_or_unknown(t);
                let mut size = match self.elem_size(t) {
                    Some((elem, _)) => list.times(elem),
                    None => Est::fixed(0),
                };
                if let Some(sep) = args.first() {
                    let seps = Est {
                        min: list.min.saturating_sub(1),
                        max: list.max.saturating_sub(1),
                    };
                    size = size.plus(self.size_or_unknown(sep).times(seps));
                }
                (size.factor(STRING_FACTOR).plus(arg_sum), Some(size))
            }
            ("find" | "findAll", Some(t)) if !args.is_empty() => {
                let s = self.size_or_unknown(t);
                let str_cost = s.plus(one).factor(STRING_FACTOR);
                let re_cost = self.size_or_unknown(&args[0]).factor(REGEX_FACTOR);
                (
                    str_cost.times(re_cost).plus(arg_sum),
                    Some(Est { min: 0, max: s.max }),
                )
            }
            (
                "cidr" | "isIP" | "isCIDR" | "ip" | "quantity" | "isQuantity" | "semver"
                | "isSemver",
                None,
            ) if !args.is_empty() => (
                self.size_or_unknown(&args[0])
                    .factor(STRING_FACTOR)
                    .plus(arg_sum),
                None,
            ),
            // cel-go's own O(n) and O(n*m) functions
            ("format", Some(t)) => (
                self.size_or_unknown(t).factor(STRING_FACTOR).plus(arg_sum),
                None,
            ),
            ("bytes", None)
                if args.len() == 1 && matches!(self.ty(&args[0]).kind, Kind::String) =>
            {
                let s = self.size_or_unknown(&args[0]);
                (
                    s.factor(STRING_FACTOR).plus(arg_sum),
                    Some(Est {
                        min: s.min,
                        max: s.max.saturating_mul(4),
                    }),
                )
            }
            ("string", None)
                if args.len() == 1 && matches!(self.ty(&args[0]).kind, Kind::Bytes) =>
            {
                let s = self.size_or_unknown(&args[0]);
                (
                    s.factor(STRING_FACTOR).plus(arg_sum),
                    Some(Est {
                        min: s.min / 4,
                        max: s.max,
                    }),
                )
            }
            ("strings.quote", None) if args.len() == 1 => {
                let s = self.size_or_unknown(&args[0]);
                (
                    s.factor(STRING_FACTOR).plus(arg_sum),
                    Some(Est {
                        min: s.min.saturating_add(2),
                        max: s.max.saturating_mul(2).saturating_add(2),
                    }),
                )
            }
            ("startsWith" | "endsWith", Some(_)) if args.len() == 1 => (
                self.size_or_unknown(&args[0])
                    .factor(STRING_FACTOR)
                    .plus(arg_sum),
                None,
            ),
            ("@in", None) if args.len() == 2 && matches!(self.ty(&args[1]).kind, Kind::List(_)) => {
                (self.size_or_unknown(&args[1]).plus(arg_sum), None)
            }
            ("matches", Some(t)) if args.len() == 1 => {
                let str_cost = self.size_or_unknown(t).plus(one).factor(STRING_FACTOR);
                let re_cost = self.size_or_unknown(&args[0]).factor(REGEX_FACTOR);
                (str_cost.times(re_cost).plus(arg_sum), None)
            }
            ("contains", Some(t)) if args.len() == 1 && matches!(self.ty(t).kind, Kind::String) => {
                let a = self.size_or_unknown(t).factor(STRING_FACTOR);
                let b = self.size_or_unknown(&args[0]).factor(STRING_FACTOR);
                (a.times(b).plus(arg_sum), None)
            }
            ("_&&_" | "_||_", None) if arg_costs.len() == 2 => {
                let (l, r) = (arg_costs[0], arg_costs[1]);
                (
                    Est {
                        min: l.min,
                        max: l.max.saturating_add(r.max),
                    },
                    None,
                )
            }
            ("_?_:_", None) if arg_costs.len() == 3 => {
                let size = self
                    .size_or_unknown(&args[1])
                    .union(self.size_or_unknown(&args[2]));
                if let Some(en) = Entry::union(self.entry(&args[1]), self.entry(&args[2])) {
                    self.entries.insert(e.id, en);
                }
                (
                    arg_costs[0].plus(arg_costs[1].union(arg_costs[2])),
                    Some(size),
                )
            }
            ("_+_", None) if self.both(args, textual) || self.both(args, is_list) => {
                let size = self
                    .size_or_unknown(&args[0])
                    .plus(self.size_or_unknown(&args[1]));
                if let Some(en) = Entry::union(self.entry(&args[0]), self.entry(&args[1])) {
                    self.entries.insert(e.id, en);
                }
                if matches!(self.ty(&args[0]).kind, Kind::List(_)) {
                    (one.plus(arg_sum), Some(size))
                } else {
                    (size.factor(STRING_FACTOR).plus(arg_sum), Some(size))
                }
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", None) if self.both(args, textual) => (
                min_size_cost(
                    self.size_or_unknown(&args[0]),
                    self.size_or_unknown(&args[1]),
                )
                .plus(arg_sum),
                None,
            ),
            ("_==_" | "_!=_", None) if args.len() == 2 => (
                min_size_cost(
                    self.size_or_unknown(&args[0]),
                    self.size_or_unknown(&args[1]),
                )
                .plus(arg_sum),
                None,
            ),
            _ => (one.plus(arg_sum), None),
        }
    }
}

fn textual(k: &Kind) -> bool {
    matches!(k, Kind::String | Kind::Bytes)
}

fn is_list(k: &Kind) -> bool {
    matches!(k, Kind::List(_))
}
