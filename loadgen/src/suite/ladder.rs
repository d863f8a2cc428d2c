//! Judging a rate ladder: which steps a server sustained, its highest, and
//! the ratio of the two servers' highest (see bench/scenarios/README.md).

use super::format::{flag, get, num};
use super::plan::LadderRule;
use serde_json::Value;

/// Whether a run sustained its step: loadgen passed it, the rate was held,
/// the judged latency has samples and its p99 is within the rule's bound.
pub fn sustained(rule: &LadderRule, report: Option<&Value>) -> bool {
    let Some(r) = report else {
        return false;
    };
    let latency = format!("latency_us.{}", rule.latency);
    let count = num(r, &format!("{latency}.count")).unwrap_or(0.0);
    let p99_us = num(r, &format!("{latency}.p99_us"));
    flag(r, "ok") == Some(true)
        && flag(r, "rate.held") == Some(true)
        && count > 0.0
        && p99_us.is_some_and(|p| p <= rule.p99_ms_max * 1000.0)
}

/// One server's ladder as run: each step's rate and report (`None` for a
/// step skipped or without a report).
pub struct Climb<'a> {
    pub steps: Vec<(f64, Option<&'a Value>)>,
}

/// The highest step a server sustained.
#[derive(Debug, Clone, PartialEq)]
pub struct Highest {
    /// The step's rate (says/s for chat).
    pub rate: f64,
    /// Delivered messages per second at that step.
    pub delivered_per_s: f64,
    /// Whether it is the ladder's top step: the server may go higher.
    pub top: bool,
}

impl Climb<'_> {
    /// The highest sustained step with a delivered rate; `None` when no
    /// step was sustained. `top_rate` is the ladder's highest step.
    pub fn highest(&self, rule: &LadderRule, top_rate: f64) -> Option<Highest> {
        self.steps
            .iter()
            .filter(|(_, r)| sustained(rule, *r))
            .filter_map(|(rate, r)| {
                let delivered = r.and_then(|r| get(r, "throughput.delivered_msgs_per_s"))?;
                Some(Highest {
                    rate: *rate,
                    delivered_per_s: delivered.as_f64()?,
                    top: *rate == top_rate,
                })
            })
            .max_by(|a, b| a.delivered_per_s.total_cmp(&b.delivered_per_s))
    }
}

/// The two servers' highest sustained rates, compared.
#[derive(Debug, Clone, PartialEq)]
pub enum LadderRatio {
    /// Both ceilings are inside the ladder: the ratio is what it says.
    Exact(f64),
    /// mudshard held the top step: its ceiling is higher, the ratio at least this.
    AtLeast(f64),
    /// The baseline held the top step and mudshard did not: at most this.
    AtMost(f64),
    /// The ratio cannot be formed; why.
    Unknown(String),
}

/// mudshard's highest sustained delivered rate over the baseline's.
pub fn ratio(mudshard: Option<&Highest>, baseline: Option<&Highest>) -> LadderRatio {
    match (mudshard, baseline) {
        (_, None) => LadderRatio::Unknown(
            "the baseline sustained no step of the ladder (extend `ladder` downwards)".into(),
        ),
        (None, Some(_)) => LadderRatio::Exact(0.0),
        (Some(_), Some(b)) if b.delivered_per_s <= 0.0 => {
            LadderRatio::Unknown("the baseline's highest step delivered nothing".into())
        }
        (Some(m), Some(b)) => {
            let r = m.delivered_per_s / b.delivered_per_s;
            match (m.top, b.top) {
                (true, true) => LadderRatio::Unknown(
                    "both servers sustained the ladder's top step (extend `ladder`)".into(),
                ),
                (true, false) => LadderRatio::AtLeast(r),
                (false, true) => LadderRatio::AtMost(r),
                (false, false) => LadderRatio::Exact(r),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule() -> LadderRule {
        LadderRule {
            latency: "delivery".into(),
            p99_ms_max: 20.0,
        }
    }

    fn report(ok: bool, held: bool, count: u64, p99_us: u64, delivered: f64) -> Value {
        json!({
            "ok": ok,
            "rate": {"held": held},
            "latency_us": {"delivery": {"count": count, "p99_us": p99_us}},
            "throughput": {"delivered_msgs_per_s": delivered},
        })
    }

    #[test]
    fn a_step_is_sustained_only_when_ok_held_sampled_and_within_p99() {
        assert!(sustained(
            &rule(),
            Some(&report(true, true, 10, 20_000, 1.0))
        ));
        assert!(!sustained(
            &rule(),
            Some(&report(true, true, 10, 20_001, 1.0))
        ));
        assert!(!sustained(&rule(), Some(&report(false, true, 10, 1, 1.0))));
        assert!(!sustained(&rule(), Some(&report(true, false, 10, 1, 1.0))));
        assert!(!sustained(&rule(), Some(&report(true, true, 0, 1, 1.0))));
        assert!(!sustained(&rule(), Some(&json!({"ok": true}))));
        assert!(!sustained(&rule(), None));
    }

    #[test]
    fn the_highest_sustained_step_is_found_and_marked_when_it_is_the_top() {
        let low = report(true, true, 10, 5_000, 25_000.0);
        let mid = report(true, true, 10, 18_000, 50_000.0);
        let high = report(true, true, 10, 90_000, 100_000.0);
        let climb = Climb {
            steps: vec![
                (250.0, Some(&low)),
                (500.0, Some(&mid)),
                (1000.0, Some(&high)),
            ],
        };
        let h = climb.highest(&rule(), 1000.0).expect("sustained some");
        assert_eq!((h.rate, h.delivered_per_s, h.top), (500.0, 50_000.0, false));
        let h = climb.highest(&rule(), 500.0).expect("sustained some");
        assert!(h.top);
        let none = Climb {
            steps: vec![(1000.0, Some(&high)), (2000.0, None)],
        };
        assert_eq!(none.highest(&rule(), 2000.0), None);
    }

    #[test]
    fn the_ratio_says_when_a_ceiling_lies_beyond_the_ladder() {
        let h = |d: f64, top: bool| Highest {
            rate: 0.0,
            delivered_per_s: d,
            top,
        };
        assert_eq!(
            ratio(Some(&h(75.0, false)), Some(&h(50.0, false))),
            LadderRatio::Exact(1.5)
        );
        assert_eq!(
            ratio(Some(&h(100.0, true)), Some(&h(50.0, false))),
            LadderRatio::AtLeast(2.0)
        );
        assert_eq!(
            ratio(Some(&h(50.0, false)), Some(&h(100.0, true))),
            LadderRatio::AtMost(0.5)
        );
        assert!(matches!(
            ratio(Some(&h(1.0, true)), Some(&h(1.0, true))),
            LadderRatio::Unknown(_)
        ));
        assert!(matches!(
            ratio(Some(&h(1.0, false)), None),
            LadderRatio::Unknown(_)
        ));
        assert_eq!(ratio(None, Some(&h(1.0, false))), LadderRatio::Exact(0.0));
    }
}
