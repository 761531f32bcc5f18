//! What a request runs: the runtime's [`Objective`], its JSON form, and a request's [`Choice`].
//!
//! The JSON names of objectives and choices (`max_latency_ms`, `max_flops`, `max_params`,
//! `max_memory_bytes`, `slo_p95_ms`, `deadline_ms`) live here and only here.

use std::fmt;

use serde::{Deserialize, Serialize};
use snnet_core::StitchId;
use snnet_core::select::{Budget, CostKind};

use crate::deadline::Deadline;
use crate::error::{Error, Result};

/// What the runtime aims at when a request does not say: a budget, or a latency objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// The most accurate stitch within a budget (FLOPs, params, profiled latency or memory).
    Budget(Budget),
    /// Adaptive mode: keep the p95 of measured latencies at most this many milliseconds.
    SloP95Ms(f64),
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Objective::Budget(b) => write!(f, "{b}"),
            Objective::SloP95Ms(ms) => write!(f, "p95 latency <= {ms} ms"),
        }
    }
}

/// The objective as JSON: exactly one of `{"max_latency_ms": x}`, `{"max_flops": n}`,
/// `{"max_params": n}`, `{"max_memory_bytes": n}` or `{"slo_p95_ms": x}` (the HTTP API's
/// `/v1/budget` body).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveJson {
    /// A latency budget in milliseconds (needs a profile of this setup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<f64>,
    /// A FLOPs budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_flops: Option<u64>,
    /// A parameter budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_params: Option<u64>,
    /// A memory budget in bytes (needs a profile of this setup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<u64>,
    /// A p95 latency objective in milliseconds (adaptive mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_p95_ms: Option<f64>,
}

impl TryFrom<ObjectiveJson> for Objective {
    type Error = Error;

    fn try_from(json: ObjectiveJson) -> Result<Self> {
        let mut found = Vec::new();
        if let Some(ms) = json.max_latency_ms {
            found.push(Objective::Budget(Budget::latency_ms(ms)));
        }
        if let Some(n) = json.max_flops {
            found.push(Objective::Budget(Budget::flops(n)));
        }
        if let Some(n) = json.max_params {
            found.push(Objective::Budget(Budget::params(n)));
        }
        if let Some(n) = json.max_memory_bytes {
            found.push(Objective::Budget(Budget::memory_bytes(n)));
        }
        if let Some(ms) = json.slo_p95_ms {
            found.push(Objective::SloP95Ms(ms));
        }
        match found.as_slice() {
            [one] => Ok(*one),
            _ => Err(Error::Input(
                "give exactly one of max_latency_ms, max_flops, max_params, max_memory_bytes, slo_p95_ms"
                    .to_owned(),
            )),
        }
    }
}

impl Objective {
    /// The objective's JSON key (`max_latency_ms`, `max_flops`, `max_params`,
    /// `max_memory_bytes` or `slo_p95_ms`) and its value: the names [`ObjectiveJson`], the
    /// `/v1/budget` endpoint, the metrics and the CLI's flags use.
    pub fn json_key_value(&self) -> (&'static str, f64) {
        match *self {
            Objective::SloP95Ms(ms) => (SLO_P95_MS, ms),
            Objective::Budget(b) => (budget_key(b.cost), b.max),
        }
    }
}

/// The JSON key of a budget over `cost`: `max_` and the cost's key.
pub fn budget_key(cost: CostKind) -> &'static str {
    match cost {
        CostKind::Flops => "max_flops",
        CostKind::Params => "max_params",
        CostKind::LatencyMs => "max_latency_ms",
        CostKind::MemoryBytes => "max_memory_bytes",
    }
}

/// The JSON key of the adaptive objective.
pub const SLO_P95_MS: &str = "slo_p95_ms";

/// The JSON key of a request's deadline.
pub const DEADLINE_MS: &str = "deadline_ms";

impl From<Objective> for ObjectiveJson {
    fn from(objective: Objective) -> Self {
        let mut json = ObjectiveJson::default();
        match objective {
            Objective::SloP95Ms(ms) => json.slo_p95_ms = Some(ms),
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Objective::Budget(b) => match b.cost {
                CostKind::LatencyMs => json.max_latency_ms = Some(b.max),
                CostKind::Flops => json.max_flops = Some(b.max as u64),
                CostKind::Params => json.max_params = Some(b.max as u64),
                CostKind::MemoryBytes => json.max_memory_bytes = Some(b.max as u64),
            },
        }
        json
    }
}

/// Which stitch a request runs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Choice {
    /// Whatever the runtime's [`Objective`] picks now.
    #[default]
    Default,
    /// The most accurate stitch within this budget.
    Budget(Budget),
    /// This stitch.
    Stitch(StitchId),
    /// The most accurate stitch predicted to answer within this deadline (see
    /// [`crate::deadline`]); needs a latency profile of this setup.
    Deadline(Deadline),
}

impl From<Budget> for Choice {
    fn from(budget: Budget) -> Self {
        Choice::Budget(budget)
    }
}

impl From<Deadline> for Choice {
    fn from(deadline: Deadline) -> Self {
        Choice::Deadline(deadline)
    }
}

impl From<StitchId> for Choice {
    fn from(id: StitchId) -> Self {
        Choice::Stitch(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn objective_json_needs_exactly_one_field() {
        let parse = |s: &str| {
            serde_json::from_str::<ObjectiveJson>(s)
                .map_err(|e| Error::Input(e.to_string()))
                .and_then(Objective::try_from)
        };
        assert_eq!(
            parse(r#"{"max_latency_ms": 5}"#).unwrap(),
            Objective::Budget(Budget::latency_ms(5.0))
        );
        assert_eq!(
            parse(r#"{"max_flops": 1000}"#).unwrap(),
            Objective::Budget(Budget::flops(1000))
        );
        assert_eq!(
            parse(r#"{"slo_p95_ms": 2.5}"#).unwrap(),
            Objective::SloP95Ms(2.5)
        );
        assert!(parse("{}").is_err());
        assert!(parse(r#"{"max_flops": 1, "slo_p95_ms": 2}"#).is_err());
        assert!(parse(r#"{"max_gpus": 1}"#).is_err());
        for o in [
            Objective::SloP95Ms(3.0),
            Objective::Budget(Budget::flops(7)),
            Objective::Budget(Budget::latency_ms(1.5)),
        ] {
            let json = serde_json::to_string(&ObjectiveJson::from(o)).unwrap();
            assert_eq!(parse(&json).unwrap(), o);
        }
    }

    #[test]
    fn json_keys_round_trip() {
        for o in [
            Objective::SloP95Ms(3.0),
            Objective::Budget(Budget::flops(7)),
            Objective::Budget(Budget::params(9)),
            Objective::Budget(Budget::memory_bytes(11)),
            Objective::Budget(Budget::latency_ms(1.5)),
        ] {
            let (key, value) = o.json_key_value();
            let json = serde_json::to_value(ObjectiveJson::from(o)).unwrap_or_default();
            assert_eq!(json[key].as_f64(), Some(value), "{key}");
        }
    }
}
