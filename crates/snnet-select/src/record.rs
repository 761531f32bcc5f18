//! One stitch's evaluation record.

use std::fmt;

use derive_setters::Setters;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_with::skip_serializing_none;

use snnet_space::StitchId;

use crate::cost::CostKind;
use crate::error::{Error, Result};
use crate::limits::{MAX_ACCURACY, MAX_STITCH_ID, MIN_ACCURACY};

/// Keys a record reads into its own fields; none of them may appear in
/// [`StitchRecord::extra`].
pub(crate) const RESERVED_KEYS: [&str; 8] = [
    "cfg_id",
    "id",
    "flops",
    "params",
    "acc1",
    "acc5",
    "latency_ms",
    "memory_bytes",
];

/// The evaluation of one stitch: its id, its costs and its accuracy.
///
/// This is one line of the reference implementation's evaluation files, which read unchanged:
///
/// ```json
/// {"cfg_id": 0, "flops": 1258411200, "params": 5717416, "acc1": 70.56400227203369}
/// ```
///
/// The id is written under `cfg_id` (`id` is accepted on read). Absent optional fields are left
/// out on write, and every key the record does not know (such as `loss`) is kept in
/// [`extra`](StitchRecord::extra), so a read/write round trip loses nothing. Integer costs
/// also read from integral JSON floats such as `1.2e9`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_", strip_option)]
pub struct StitchRecord {
    /// The stitch id, `0..n` in the reference implementation.
    #[serde(rename = "cfg_id", alias = "id")]
    #[setters(skip)]
    pub id: StitchId,
    /// Floating-point operations of one forward pass.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub flops: Option<u64>,
    /// Number of parameters.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub params: Option<u64>,
    /// Top-1 accuracy in percent.
    #[setters(skip)]
    pub acc1: f64,
    /// Top-5 accuracy in percent.
    #[serde(default)]
    pub acc5: Option<f64>,
    /// Measured latency in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Memory footprint in bytes.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub memory_bytes: Option<u64>,
    /// Every other key of the record, kept as is.
    #[serde(flatten)]
    #[setters(skip)]
    pub extra: Map<String, Value>,
}

impl StitchRecord {
    /// A record with the given id (a [`StitchId`] or its index) and top-1 accuracy and nothing
    /// else.
    pub fn new(id: impl Into<StitchId>, acc1: f64) -> Self {
        StitchRecord {
            id: id.into(),
            flops: None,
            params: None,
            acc1,
            acc5: None,
            latency_ms: None,
            memory_bytes: None,
            extra: Map::new(),
        }
    }

    /// The record's value of `cost` as a float, or `None` when the record lacks it.
    ///
    /// Integer costs convert exactly up to 2<sup>53</sup>.
    pub fn cost(&self, cost: CostKind) -> Option<f64> {
        match cost {
            CostKind::Flops => self.flops.map(|v| v as f64),
            CostKind::Params => self.params.map(|v| v as f64),
            CostKind::LatencyMs => self.latency_ms,
            CostKind::MemoryBytes => self.memory_bytes.map(|v| v as f64),
        }
    }

    /// Like [`cost`](StitchRecord::cost), but a missing value is an error.
    ///
    /// # Errors
    ///
    /// [`Error::MissingCost`] when the record lacks `cost`.
    pub fn require_cost(&self, cost: CostKind) -> Result<f64> {
        self.cost(cost).ok_or(Error::MissingCost {
            id: self.id.index(),
            cost,
        })
    }

    /// Checks that the record can live in a [`StitchTable`](crate::StitchTable): its id at most
    /// [`MAX_STITCH_ID`], its accuracies finite and within [[`MIN_ACCURACY`],
    /// [`MAX_ACCURACY`]] percent, its latency finite and non-negative, and no extra key naming
    /// one of its fields. (The integer costs are non-negative by type.)
    ///
    /// # Errors
    ///
    /// [`Error::LimitExceeded`] for an id over [`MAX_STITCH_ID`]; [`Error::NotFinite`] when
    /// `acc1`, `acc5` or `latency_ms` is NaN or infinite; [`Error::OutOfRange`] when an
    /// accuracy is outside [0, 100] or the latency is negative; [`Error::ReservedKey`] when
    /// [`extra`](StitchRecord::extra) holds a key that names one of the record's fields.
    pub fn validate(&self) -> Result<()> {
        let id = self.id.index();
        if id > MAX_STITCH_ID {
            return Err(Error::limit(
                "stitch id",
                id as u64,
                MAX_STITCH_ID,
                "MAX_STITCH_ID",
            ));
        }
        const PERCENT: &str = "[0, 100] (an accuracy in percent)";
        const NON_NEGATIVE: &str = "[0, ∞) (a latency in milliseconds)";
        let floats = [
            ("acc1", Some(self.acc1), MIN_ACCURACY, MAX_ACCURACY, PERCENT),
            ("acc5", self.acc5, MIN_ACCURACY, MAX_ACCURACY, PERCENT),
            (
                "latency_ms",
                self.latency_ms,
                0.0,
                f64::INFINITY,
                NON_NEGATIVE,
            ),
        ];
        for (field, value, min, max, expected) in floats {
            let Some(value) = value else { continue };
            if !value.is_finite() {
                return Err(Error::NotFinite {
                    id,
                    field,
                    line: None,
                });
            }
            if !(min..=max).contains(&value) {
                return Err(Error::OutOfRange {
                    id,
                    field,
                    value,
                    expected,
                    line: None,
                });
            }
        }
        if let Some(key) = self
            .extra
            .keys()
            .find(|k| RESERVED_KEYS.contains(&k.as_str()))
        {
            return Err(Error::ReservedKey {
                id,
                key: key.clone(),
            });
        }
        Ok(())
    }
}

/// Deserializes an optional non-negative integer that may be written as an integral float.
fn lenient_u64<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<u64>, D::Error> {
    struct LenientU64;

    impl<'de> Visitor<'de> for LenientU64 {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer or null")
        }

        fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> std::result::Result<Self::Value, D::Error> {
            deserializer.deserialize_any(self)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
            // 2^64 is exactly representable; every integral float below it converts exactly.
            const LIMIT: f64 = 18_446_744_073_709_551_616.0;
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < LIMIT {
                Ok(Some(v as u64))
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
    }

    deserializer.deserialize_option(LenientU64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_reference_line() {
        let line =
            r#"{"cfg_id": 0, "flops": 1258411200, "params": 5717416, "acc1": 70.56400227203369}"#;
        let r: StitchRecord = serde_json::from_str(line).unwrap();
        assert_eq!(r.id, 0);
        assert_eq!(r.flops, Some(1_258_411_200));
        assert_eq!(r.params, Some(5_717_416));
        assert_eq!(r.acc1, 70.56400227203369);
        assert_eq!(r.acc5, None);
        assert!(r.extra.is_empty());
    }

    #[test]
    fn keeps_unknown_keys_and_round_trips() {
        let line = r#"{"loss": 0.8239520951762966, "acc1": 79.63800263183593, "acc5": 94.53000249023438, "cfg_id": 0, "flops": 661663808, "tag": {"a": [1, 2]}}"#;
        let r: StitchRecord = serde_json::from_str(line).unwrap();
        assert_eq!(r.extra.len(), 2);
        assert_eq!(r.extra["loss"], serde_json::json!(0.8239520951762966));
        let written = serde_json::to_string(&r).unwrap();
        assert!(written.starts_with(r#"{"cfg_id":0,"flops":661663808,"acc1":"#));
        assert!(!written.contains("params"));
        let back: StitchRecord = serde_json::from_str(&written).unwrap();
        assert_eq!(back, r);
        // Same JSON value as the input, key order aside.
        let a: Value = serde_json::from_str(line).unwrap();
        let b: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn accepts_id_alias_and_writes_cfg_id() {
        let r: StitchRecord = serde_json::from_str(r#"{"id": 7, "acc1": 50}"#).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.acc1, 50.0);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"cfg_id":7,"acc1":50.0}"#
        );
    }

    #[test]
    fn integer_costs_read_from_integral_floats_and_null() {
        let r: StitchRecord = serde_json::from_str(
            r#"{"cfg_id": 1, "acc1": 1, "flops": 1.5e9, "params": null, "memory_bytes": 12}"#,
        )
        .unwrap();
        assert_eq!(r.flops, Some(1_500_000_000));
        assert_eq!(r.params, None);
        assert_eq!(r.memory_bytes, Some(12));
        for bad in [r#"1.5"#, r#"-3"#, r#""x""#, r#"-1.0"#, r#"1e30"#] {
            let json = format!(r#"{{"cfg_id": 1, "acc1": 1, "flops": {bad}}}"#);
            assert!(
                serde_json::from_str::<StitchRecord>(&json).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn acc1_and_id_are_required() {
        assert!(serde_json::from_str::<StitchRecord>(r#"{"cfg_id": 1}"#).is_err());
        assert!(serde_json::from_str::<StitchRecord>(r#"{"acc1": 1.0}"#).is_err());
    }

    #[test]
    fn cost_accessor() {
        let r = StitchRecord::new(3, 70.0)
            .with_flops(10)
            .with_params(20)
            .with_latency_ms(1.5)
            .with_memory_bytes(40)
            .with_acc5(90.0);
        assert_eq!(r.cost(CostKind::Flops), Some(10.0));
        assert_eq!(r.cost(CostKind::Params), Some(20.0));
        assert_eq!(r.cost(CostKind::LatencyMs), Some(1.5));
        assert_eq!(r.cost(CostKind::MemoryBytes), Some(40.0));
        assert_eq!(r.acc5, Some(90.0));
        let bare = StitchRecord::new(4, 1.0);
        for cost in CostKind::ALL {
            assert_eq!(bare.cost(cost), None);
            assert!(matches!(
                bare.require_cost(cost),
                Err(Error::MissingCost { id: 4, cost: c }) if c == cost
            ));
        }
        assert_eq!(r.require_cost(CostKind::Flops).unwrap(), 10.0);
    }

    #[test]
    fn validate_rejects_out_of_range_values_and_ids() {
        for ok in [0.0, -0.0, 100.0, 1e-300, 70.564] {
            StitchRecord::new(0, ok).with_acc5(ok).validate().unwrap();
        }
        StitchRecord::new(crate::limits::MAX_STITCH_ID, 1.0)
            .with_latency_ms(0.0)
            .validate()
            .unwrap();
        let cases = [
            (StitchRecord::new(1, -5000.0), "acc1", -5000.0),
            (StitchRecord::new(1, 1e300), "acc1", 1e300),
            (StitchRecord::new(1, 100.000_001), "acc1", 100.000_001),
            (StitchRecord::new(1, 1.0).with_acc5(-0.5), "acc5", -0.5),
            (
                StitchRecord::new(1, 1.0).with_latency_ms(-1.0),
                "latency_ms",
                -1.0,
            ),
            (
                StitchRecord::new(1, 1.0).with_latency_ms(-1e-9),
                "latency_ms",
                -1e-9,
            ),
        ];
        for (record, expected, bad) in cases {
            let err = record.validate().unwrap_err();
            assert!(
                matches!(err, Error::OutOfRange { id: 1, field, value, line: None, .. }
                    if field == expected && value == bad),
                "{err}"
            );
            assert!(err.to_string().contains(expected), "{err}");
        }
        let err = StitchRecord::new(usize::MAX, 1.0).validate().unwrap_err();
        assert!(
            matches!(
                err,
                Error::LimitExceeded {
                    constant: "MAX_STITCH_ID",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn validate_rejects_non_finite_and_reserved_keys() {
        assert!(StitchRecord::new(0, 1.0).validate().is_ok());
        let cases = [
            (StitchRecord::new(1, f64::NAN), "acc1"),
            (StitchRecord::new(1, f64::INFINITY), "acc1"),
            (
                StitchRecord::new(1, 1.0).with_acc5(f64::NEG_INFINITY),
                "acc5",
            ),
            (
                StitchRecord::new(1, 1.0).with_latency_ms(f64::NAN),
                "latency_ms",
            ),
        ];
        for (record, expected) in cases {
            let err = record.validate().unwrap_err();
            assert!(
                matches!(err, Error::NotFinite { id: 1, field, line: None } if field == expected),
                "{err}"
            );
        }
        let mut r = StitchRecord::new(2, 1.0);
        r.extra.insert("extra".into(), Value::from(1));
        r.extra.insert("loss".into(), Value::from(0.5));
        assert!(r.validate().is_ok());
        let back: StitchRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        r.extra.insert("acc1".into(), Value::from(3.0));
        let err = r.validate().unwrap_err();
        assert!(matches!(&err, Error::ReservedKey { id: 2, key } if key == "acc1"));
        assert!(err.to_string().contains("acc1"));
        let mut r = StitchRecord::new(2, 1.0);
        r.extra.insert("id".into(), Value::from(3));
        assert!(matches!(r.validate(), Err(Error::ReservedKey { key, .. }) if key == "id"));
    }
}
