//! Cost arithmetic of the estimator (mirrors cel-go checker/cost.go `SizeEstimate`/
//! `CostEstimate`, and the size rules of a few calls from apiserver pkg/cel/library/cost.go).

/// A `[min, max]` range of sizes or costs, saturating at `u64::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Est {
    pub min: u64,
    pub max: u64,
}

pub const UNKNOWN: Est = Est {
    min: 0,
    max: u64::MAX,
};
/// cel-go `StringTraversalCostFactor`.
pub const STRING_FACTOR: f64 = 0.1;
/// cel-go `RegexStringLengthCostFactor`.
pub const REGEX_FACTOR: f64 = 0.25;

fn factor(x: u64, f: f64) -> u64 {
    let v = (x as f64 * f).ceil();
    if v >= 18_446_744_073_709_551_615.0 {
        u64::MAX
    } else {
        v as u64
    }
}

impl Est {
    pub const fn fixed(n: u64) -> Est {
        Est { min: n, max: n }
    }
    pub fn plus(self, o: Est) -> Est {
        Est {
            min: self.min.saturating_add(o.min),
            max: self.max.saturating_add(o.max),
        }
    }
    pub fn times(self, o: Est) -> Est {
        Est {
            min: self.min.saturating_mul(o.min),
            max: self.max.saturating_mul(o.max),
        }
    }
    pub fn factor(self, f: f64) -> Est {
        Est {
            min: factor(self.min, f),
            max: factor(self.max, f),
        }
    }
    pub fn union(self, o: Est) -> Est {
        Est {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }
}

/// Comparing two values costs a traversal of the smaller one.
pub fn min_size_cost(l: Est, r: Est) -> Est {
    let smallest_max = l.max.min(r.max);
    Est {
        min: u64::from(smallest_max > 0),
        max: smallest_max,
    }
    .factor(STRING_FACTOR)
}

/// The result size of `s.replace(old, new)` (Kubernetes library estimate).
pub fn replace_size(s: Est, old: Est, new: Est) -> Est {
    let mut count = Est::fixed(0);
    let mut retained = Est::fixed(0);
    if old.min == 0 {
        count.max = s.max.saturating_add(1);
        retained.max = s.max;
    } else if new.max <= old.min {
        retained.max = s.max;
    } else {
        count.max = s.max.div_ceil(old.min);
    }
    if old.max == 0 {
        count.min = s.min.saturating_add(1);
        retained.min = s.min;
    } else if old.max <= new.min {
        retained.min = s.min;
    } else {
        count.min = s.min.div_ceil(old.max);
    }
    count.times(new).plus(retained)
}
