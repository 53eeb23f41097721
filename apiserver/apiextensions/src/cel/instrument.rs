//! Rewrites a rule's AST so that evaluating it charges cel-go's runtime cost to the meter of
//! [`crate::cel::runtime_cost`]: fixed costs are summed per region evaluated together and
//! charged by `@k8s_cost(value, n)` at the regions' boundaries (the rule, each branch of `&&`,
//! `||`, `?:`, each comprehension iteration), size-dependent calls bind their operands and call
//! `@k8s_cost_sized(result, kind, operands...)`. The shapes the interpreter's `all`/`exists`
//! error handling and `map`/`filter` fast path recognise are kept.

use crate::cel::comprehensions;
use crate::cel::runtime_cost::{SIZED, Sized, TICK};
use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, ListExpr, LiteralValue,
};

/// Which operands of a call a sized cost reads.
enum Operand {
    Target,
    Arg(usize),
}

fn numeric_literal(e: &IdedExpr) -> bool {
    matches!(
        e.expr,
        Expr::Literal(LiteralValue::Int(_) | LiteralValue::UInt(_) | LiteralValue::Double(_))
    )
}

/// The sized cost of a call, if its cost depends on its operands.
fn sized_kind(c: &CallExpr, accus: &[String]) -> Option<(Sized, Vec<Operand>)> {
    use Operand::{Arg, Target};
    let member = c.target.is_some();
    let n = c.args.len();
    let kind = match (c.func_name.as_str(), member, n) {
        ("_==_" | "_!=_", false, 2) => (Sized::Equals, vec![Arg(0), Arg(1)]),
        ("_<_" | "_<=_" | "_>_" | "_>=_", false, 2) => (Sized::Compare, vec![Arg(0), Arg(1)]),
        ("_+_", false, 2) => {
            let appends_to_accu = matches!(&c.args[0].expr, Expr::Ident(i) if accus.contains(i))
                && matches!(c.args[1].expr, Expr::List(_));
            if appends_to_accu || c.args.iter().any(numeric_literal) {
                return None;
            }
            (Sized::Add, vec![Arg(0), Arg(1)])
        }
        ("startsWith" | "endsWith", true, 1) => (Sized::Prefix, vec![Target]),
        ("@in", false, 2) => (Sized::In, vec![Arg(1)]),
        ("matches" | "find" | "findAll", true, 1 | 2) => (Sized::Regex, vec![Target, Arg(0)]),
        ("contains", true, 1) => (Sized::Contains, vec![Target, Arg(0)]),
        ("isSorted" | "sum" | "min" | "max" | "indexOf" | "lastIndexOf", true, _) => {
            (Sized::Traversal, vec![Target])
        }
        ("lowerAscii" | "upperAscii" | "substring" | "trim" | "format", true, _) => {
            (Sized::String1, vec![Target])
        }
        (
            "url" | "quantity" | "isQuantity" | "semver" | "isSemver" | "cidr" | "isIP" | "isCIDR"
            | "ip" | "strings.quote" | "string" | "bytes",
            false,
            1,
        ) => (Sized::String1, vec![Arg(0)]),
        ("replace" | "split", true, _) => (Sized::String2, vec![Target]),
        ("join", true, _) => (Sized::Join, vec![]),
        _ => return None,
    };
    Some(kind)
}

struct Inst {
    next_id: u64,
    binds: usize,
    accus: Vec<String>,
}

fn max_id(e: &IdedExpr) -> u64 {
    let mut m = e.id;
    visit(e, &mut |x| m = m.max(x.id));
    m
}

fn visit(e: &IdedExpr, f: &mut impl FnMut(&IdedExpr)) {
    f(e);
    match &e.expr {
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                visit(t, f);
            }
            c.args.iter().for_each(|a| visit(a, f));
        }
        Expr::Select(s) => visit(&s.operand, f),
        Expr::List(l) => l.elements.iter().for_each(|a| visit(a, f)),
        Expr::Map(m) => m.entries.iter().for_each(|en| match &en.expr {
            EntryExpr::MapEntry(me) => {
                visit(&me.key, f);
                visit(&me.value, f);
            }
            EntryExpr::StructField(sf) => visit(&sf.value, f),
        }),
        Expr::Struct(s) => s.entries.iter().for_each(|en| {
            if let EntryExpr::StructField(sf) = &en.expr {
                visit(&sf.value, f);
            }
        }),
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                visit(x, f);
            }
        }
        Expr::Literal(_) | Expr::Ident(_) | Expr::Unspecified => {}
    }
}

/// The rule's AST rewritten to charge its runtime cost to the meter (see the module docs).
pub fn instrument(expr: &IdedExpr) -> IdedExpr {
    let mut i = Inst {
        next_id: max_id(expr) + 1,
        binds: 0,
        accus: Vec::new(),
    };
    let (e, k) = i.walk(expr);
    i.tick(e, k)
}

impl Inst {
    fn node(&mut self, expr: Expr) -> IdedExpr {
        self.next_id += 1;
        IdedExpr {
            id: self.next_id,
            expr,
        }
    }

    fn call(&mut self, name: &str, args: Vec<IdedExpr>) -> IdedExpr {
        self.node(Expr::Call(CallExpr {
            func_name: name.to_string(),
            target: None,
            args,
        }))
    }

    fn int(&mut self, n: u64) -> IdedExpr {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.node(Expr::Literal(LiteralValue::Int(n.into())))
    }

    fn tick(&mut self, e: IdedExpr, k: u64) -> IdedExpr {
        if k == 0 {
            return e;
        }
        let n = self.int(k);
        self.call(TICK, vec![e, n])
    }

    /// `cel.bind(var, init, result)`: a comprehension over nothing.
    fn bind(&mut self, var: String, init: IdedExpr, result: IdedExpr) -> IdedExpr {
        let range = self.node(Expr::List(ListExpr::new(Vec::new())));
        let cond = self.node(Expr::Literal(LiteralValue::Boolean(false.into())));
        let step = self.node(Expr::Ident(var.clone()));
        self.node(Expr::Comprehension(Box::new(ComprehensionExpr {
            iter_range: range,
            iter_var: "@k8s_unused".to_string(),
            iter_var2: None,
            accu_var: var,
            accu_init: init,
            loop_cond: cond,
            loop_step: step,
            result,
        })))
    }

    /// Charges `k` once per evaluation of a comprehension's step, keeping the shapes the
    /// interpreter's `map`/`filter` fast path recognises.
    fn tick_step(&mut self, step: IdedExpr, k: u64) -> IdedExpr {
        if k == 0 {
            return step;
        }
        let IdedExpr { id, expr } = step;
        match expr {
            Expr::Call(mut c) if c.func_name == "_?_:_" && c.args.len() == 3 => {
                let cond = std::mem::take(&mut c.args[0]);
                c.args[0] = self.tick(cond, k);
                IdedExpr {
                    id,
                    expr: Expr::Call(c),
                }
            }
            Expr::Call(mut c)
                if c.func_name == "_+_"
                    && c.args.len() == 2
                    && matches!(&c.args[1].expr, Expr::List(l) if !l.elements.is_empty()) =>
            {
                if let Expr::List(l) = &mut c.args[1].expr {
                    let el = std::mem::take(&mut l.elements[0]);
                    l.elements[0] = self.tick(el, k);
                }
                IdedExpr {
                    id,
                    expr: Expr::Call(c),
                }
            }
            expr => self.tick(IdedExpr { id, expr }, k),
        }
    }

    fn walk(&mut self, e: &IdedExpr) -> (IdedExpr, u64) {
        let id = e.id;
        let mk = |expr| IdedExpr { id, expr };
        match &e.expr {
            Expr::Literal(_) | Expr::Unspecified => (e.clone(), 0),
            Expr::Ident(_) => (e.clone(), 1),
            Expr::Select(s) => {
                let (operand, k) = self.walk(&s.operand);
                let mut s = s.clone();
                s.operand = Box::new(operand);
                let own = u64::from(!s.test);
                (mk(Expr::Select(s)), k + own)
            }
            Expr::List(l) => {
                let mut l = l.clone();
                let mut k = 10;
                for el in &mut l.elements {
                    let (x, kx) = self.walk(el);
                    *el = x;
                    k += kx;
                }
                (mk(Expr::List(l)), k)
            }
            Expr::Map(m) => {
                let mut m = m.clone();
                let mut k = 30;
                for en in &mut m.entries {
                    match &mut en.expr {
                        EntryExpr::MapEntry(me) => {
                            let (key, kk) = self.walk(&me.key);
                            let (val, kv) = self.walk(&me.value);
                            me.key = key;
                            me.value = val;
                            k += kk + kv;
                        }
                        EntryExpr::StructField(sf) => {
                            let (val, kv) = self.walk(&sf.value);
                            sf.value = val;
                            k += kv;
                        }
                    }
                }
                (mk(Expr::Map(m)), k)
            }
            Expr::Struct(s) => {
                let mut s = s.clone();
                let mut k = 40;
                for en in &mut s.entries {
                    if let EntryExpr::StructField(sf) = &mut en.expr {
                        let (val, kv) = self.walk(&sf.value);
                        sf.value = val;
                        k += kv;
                    }
                }
                (mk(Expr::Struct(s)), k)
            }
            Expr::Comprehension(c) => self.comprehension(id, c),
            Expr::Call(c) => self.walk_call(id, c),
        }
    }

    fn comprehension(&mut self, id: u64, c: &ComprehensionExpr) -> (IdedExpr, u64) {
        if comprehensions::is_bind(c) {
            // a macro's bind costs its value (nothing for a two-variable element) and result
            let (init, ki) = self.walk(&c.accu_init);
            let ki = if comprehensions::is_element(&c.accu_init) {
                0
            } else {
                ki
            };
            let (result, kres) = self.walk(&c.result);
            let mut out = c.clone();
            out.accu_init = init;
            out.result = result;
            return (
                IdedExpr {
                    id,
                    expr: Expr::Comprehension(Box::new(out)),
                },
                ki + kres,
            );
        }
        let (range, kr) = self.walk(&c.iter_range);
        let (init, ki) = self.walk(&c.accu_init);
        self.accus.push(c.accu_var.clone());
        let (cond, kc) = self.walk(&c.loop_cond);
        let (step, ks) = self.walk(&c.loop_step);
        let (result, kres) = self.walk(&c.result);
        self.accus.pop();
        let (cond, step) = if matches!(cond.expr, Expr::Literal(_)) {
            (cond, self.tick_step(step, kc + ks))
        } else {
            (self.tick(cond, kc + ks), step)
        };
        let out = ComprehensionExpr {
            iter_range: range,
            iter_var: c.iter_var.clone(),
            iter_var2: c.iter_var2.clone(),
            accu_var: c.accu_var.clone(),
            accu_init: init,
            loop_cond: cond,
            loop_step: step,
            result,
        };
        (
            IdedExpr {
                id,
                expr: Expr::Comprehension(Box::new(out)),
            },
            kr + ki + kres,
        )
    }

    fn walk_call(&mut self, id: u64, c: &CallExpr) -> (IdedExpr, u64) {
        let name = c.func_name.as_str();
        let mk = |c: CallExpr| IdedExpr {
            id,
            expr: Expr::Call(c),
        };
        if (name == "_&&_" || name == "_||_") && c.args.len() == 2 {
            let (a0, k0) = self.walk(&c.args[0]);
            let (a1, k1) = self.walk(&c.args[1]);
            let a1 = self.tick(a1, k1);
            let mut out = c.clone();
            out.args = vec![a0, a1];
            return (mk(out), k0);
        }
        if name == "_?_:_" && c.args.len() == 3 {
            let (cond, kc) = self.walk(&c.args[0]);
            let (t, kt) = self.walk(&c.args[1]);
            let (f, kf) = self.walk(&c.args[2]);
            let t = self.tick(t, kt);
            let f = self.tick(f, kf);
            let mut out = c.clone();
            out.args = vec![cond, t, f];
            return (mk(out), kc);
        }
        let mut out = c.clone();
        let mut k = 0;
        if let Some(t) = &c.target {
            let (t, kt) = self.walk(t);
            out.target = Some(Box::new(t));
            k += kt;
        }
        for (slot, a) in out.args.iter_mut().zip(&c.args) {
            let (x, kx) = self.walk(a);
            *slot = x;
            k += kx;
        }
        let Some((kind, operands)) = sized_kind(c, &self.accus) else {
            return (mk(out), k + 1);
        };
        let mut binds = Vec::new();
        let mut idents = Vec::new();
        for op in operands {
            let var = format!("@k8s_rt{}", self.binds);
            self.binds += 1;
            let ident = self.node(Expr::Ident(var.clone()));
            let slot = match op {
                Operand::Target => out.target.as_deref_mut(),
                Operand::Arg(i) => out.args.get_mut(i),
            };
            if let Some(slot) = slot {
                binds.push((var.clone(), std::mem::replace(slot, ident)));
                idents.push(self.node(Expr::Ident(var)));
            }
        }
        let kind_lit = self.int(kind as i64 as u64);
        let mut args = vec![mk(out), kind_lit];
        args.extend(idents);
        let mut wrapped = self.call(SIZED, args);
        for (var, init) in binds.into_iter().rev() {
            wrapped = self.bind(var, init, wrapped);
        }
        (wrapped, k)
    }
}
