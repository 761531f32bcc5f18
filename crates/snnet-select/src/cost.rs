//! Cost kinds (the axis a budget or a frontier is on) and budgets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A resource a stitch consumes, by which stitches are ranked and budgets are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CostKind {
    /// Floating-point operations of one forward pass (the record's `flops`).
    Flops,
    /// Number of parameters (the record's `params`).
    Params,
    /// Measured latency in milliseconds (the record's `latency_ms`).
    #[serde(alias = "latency_ms")]
    LatencyMs,
    /// Memory footprint in bytes (the record's `memory_bytes`).
    #[serde(alias = "memory_bytes")]
    MemoryBytes,
}

impl CostKind {
    /// Every cost kind, in declaration order.
    pub const ALL: [CostKind; 4] = [
        CostKind::Flops,
        CostKind::Params,
        CostKind::LatencyMs,
        CostKind::MemoryBytes,
    ];

    /// The cost's name as accepted by [`FromStr`] and printed by [`Display`](fmt::Display):
    /// `flops`, `params`, `latency-ms` or `memory-bytes`.
    pub const fn name(self) -> &'static str {
        match self {
            CostKind::Flops => "flops",
            CostKind::Params => "params",
            CostKind::LatencyMs => "latency-ms",
            CostKind::MemoryBytes => "memory-bytes",
        }
    }

    /// The JSON key under which a [`StitchRecord`](crate::StitchRecord) stores this cost:
    /// `flops`, `params`, `latency_ms` or `memory_bytes`.
    pub const fn json_key(self) -> &'static str {
        match self {
            CostKind::Flops => "flops",
            CostKind::Params => "params",
            CostKind::LatencyMs => "latency_ms",
            CostKind::MemoryBytes => "memory_bytes",
        }
    }
}

impl fmt::Display for CostKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CostKind {
    type Err = Error;

    /// Parses `flops`, `params`, `latency-ms` or `memory-bytes`; the JSON keys `latency_ms`
    /// and `memory_bytes` are accepted too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flops" => Ok(CostKind::Flops),
            "params" => Ok(CostKind::Params),
            "latency-ms" | "latency_ms" => Ok(CostKind::LatencyMs),
            "memory-bytes" | "memory_bytes" => Ok(CostKind::MemoryBytes),
            other => Err(Error::UnknownCost {
                name: other.to_owned(),
            }),
        }
    }
}

/// An upper bound on one cost: a stitch fits when its cost is at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The cost the bound is on.
    pub cost: CostKind,
    /// The largest admissible cost, inclusive, in the cost's own unit.
    pub max: f64,
}

impl Budget {
    /// A budget of `max` in the given cost.
    pub const fn new(cost: CostKind, max: f64) -> Self {
        Budget { cost, max }
    }

    /// A budget of at most `max` FLOPs.
    pub const fn flops(max: u64) -> Self {
        Budget::new(CostKind::Flops, max as f64)
    }

    /// A budget of at most `max` parameters.
    pub const fn params(max: u64) -> Self {
        Budget::new(CostKind::Params, max as f64)
    }

    /// A budget of at most `max` milliseconds of latency.
    pub const fn latency_ms(max: f64) -> Self {
        Budget::new(CostKind::LatencyMs, max)
    }

    /// A budget of at most `max` bytes of memory.
    pub const fn memory_bytes(max: u64) -> Self {
        Budget::new(CostKind::MemoryBytes, max as f64)
    }

    /// Whether the budget is usable: its maximum is not NaN and not negative (positive
    /// infinity is allowed and admits every stitch).
    pub fn is_valid(&self) -> bool {
        !self.max.is_nan() && self.max >= 0.0
    }

    /// Returns the budget unchanged when it is [valid](Budget::is_valid).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBudget`] when the maximum is NaN or negative.
    pub(crate) fn validated(self) -> Result<Self, Error> {
        if self.is_valid() {
            Ok(self)
        } else {
            Err(Error::InvalidBudget { budget: self })
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <= {}", self.cost, self.max)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_and_from_str() {
        for cost in CostKind::ALL {
            assert_eq!(cost.to_string().parse::<CostKind>().unwrap(), cost);
            assert_eq!(cost.json_key().parse::<CostKind>().unwrap(), cost);
        }
        assert_eq!(CostKind::LatencyMs.to_string(), "latency-ms");
        assert_eq!(CostKind::MemoryBytes.to_string(), "memory-bytes");
    }

    #[test]
    fn unknown_cost_is_an_error() {
        let err = "macs".parse::<CostKind>().unwrap_err();
        assert!(matches!(&err, Error::UnknownCost { name } if name == "macs"));
        assert!(err.to_string().contains("macs"));
        assert!("FLOPS".parse::<CostKind>().is_err());
    }

    #[test]
    fn cost_serde_uses_kebab_case() {
        assert_eq!(
            serde_json::to_string(&CostKind::LatencyMs).unwrap(),
            "\"latency-ms\""
        );
        assert_eq!(
            serde_json::to_string(&CostKind::Flops).unwrap(),
            "\"flops\""
        );
        for cost in CostKind::ALL {
            let json = serde_json::to_string(&cost).unwrap();
            assert_eq!(serde_json::from_str::<CostKind>(&json).unwrap(), cost);
        }
        assert_eq!(
            serde_json::from_str::<CostKind>("\"memory_bytes\"").unwrap(),
            CostKind::MemoryBytes
        );
    }

    #[test]
    fn budget_constructors() {
        assert_eq!(
            Budget::flops(5),
            Budget {
                cost: CostKind::Flops,
                max: 5.0
            }
        );
        assert_eq!(Budget::params(7).cost, CostKind::Params);
        assert_eq!(Budget::latency_ms(1.5).max, 1.5);
        assert_eq!(Budget::memory_bytes(9).cost, CostKind::MemoryBytes);
        assert_eq!(
            Budget::flops(5_000_000_000).to_string(),
            "flops <= 5000000000"
        );
    }

    #[test]
    fn budget_validity() {
        assert!(Budget::latency_ms(0.0).is_valid());
        assert!(Budget::latency_ms(f64::INFINITY).is_valid());
        assert!(!Budget::latency_ms(f64::NAN).is_valid());
        assert!(!Budget::latency_ms(-1.0).is_valid());
        assert!(!Budget::latency_ms(f64::NEG_INFINITY).is_valid());
        assert!(matches!(
            Budget::latency_ms(-1.0).validated(),
            Err(Error::InvalidBudget { .. })
        ));
    }
}
