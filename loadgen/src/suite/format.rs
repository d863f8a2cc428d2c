//! How the report writes a figure: one rule for every table, so that a
//! number reads the same wherever it appears (thousands separated, three
//! significant digits or so below that, `—` for a figure that is missing).

use serde_json::Value;

/// A figure of a loadgen or floor JSON report, by dotted path
/// (`latency_us.reply.p99_us`); `None` when any step is missing.
pub fn get<'a>(report: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(report, |cur, part| cur.as_object()?.get(part))
}

/// A numeric figure by dotted path.
pub fn num(report: &Value, path: &str) -> Option<f64> {
    get(report, path)?.as_f64()
}

/// A yes/no figure by dotted path.
pub fn flag(report: &Value, path: &str) -> Option<bool> {
    get(report, path)?.as_bool()
}

/// A table cell for a JSON figure: numbers through [`number`], yes/no for
/// flags (a "no" in bold: it is always worth a look), `—` when missing.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".into(),
        Some(Value::Bool(true)) => "yes".into(),
        Some(Value::Bool(false)) => "**no**".into(),
        Some(Value::Number(n)) => n.as_f64().map_or_else(|| n.to_string(), number),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A count or setting as it is (`10`, not `10.0`): what a table shows of
/// a run's configuration.
pub fn raw(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => n.to_string(),
        other => cell(other),
    }
}

/// A number as the report writes it: `1,234` from a thousand up, `123`,
/// `12.3`, `7` for whole numbers below ten, else `1.23`.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        return "—".into();
    }
    if a >= 1000.0 {
        return thousands(v);
    }
    if a >= 100.0 {
        return format!("{v:.0}");
    }
    if a >= 10.0 {
        return format!("{v:.1}");
    }
    if a == a.trunc() {
        return format!("{}", v as i64);
    }
    format!("{v:.2}")
}

/// A count of things (connections, threads): whole, thousands separated.
pub fn count(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    thousands(v.round())
}

/// An optional number: `—` when missing.
pub fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), number)
}

/// µs to ms.
pub fn ms(us: Option<f64>) -> Option<f64> {
    us.map(|us| us / 1000.0)
}

/// `a / b` as a ratio cell (`1.23×`); `—` when either is missing or `b` is 0.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}×", a / b),
        _ => "—".into(),
    }
}

/// The ratio column of a mudshard-vs-baseline row: empty for yes/no
/// figures, `—` when it cannot be formed.
pub fn ratio_cell(a: Option<&Value>, b: Option<&Value>) -> String {
    if matches!(a, Some(Value::Bool(_))) || matches!(b, Some(Value::Bool(_))) {
        return String::new();
    }
    ratio(a.and_then(Value::as_f64), b.and_then(Value::as_f64))
}

/// A rate step as written in run names and flags: `1000`, or `2.5`.
pub fn step(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn thousands(v: f64) -> String {
    let whole = format!("{:.0}", v.abs());
    let mut out = String::with_capacity(whole.len() + whole.len() / 3 + 1);
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_read_as_the_reports_have_always_written_them() {
        assert_eq!(number(495_000.0), "495,000");
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(1000.0), "1,000");
        assert_eq!(number(150.4), "150");
        assert_eq!(number(16.74), "16.7");
        assert_eq!(number(7.0), "7");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1.944), "1.94");
        assert_eq!(number(-2500.0), "-2,500");
    }

    #[test]
    fn counts_are_whole_and_thousands_separated() {
        assert_eq!(count(20.0), "20");
        assert_eq!(count(8_000.0), "8,000");
        assert_eq!(count(f64::NAN), "—");
    }

    #[test]
    fn cells_say_yes_no_and_dash() {
        assert_eq!(cell(Some(&json!(true))), "yes");
        assert_eq!(cell(Some(&json!(false))), "**no**");
        assert_eq!(cell(None), "—");
        assert_eq!(cell(Some(&json!(null))), "—");
        assert_eq!(cell(Some(&json!(3052))), "3,052");
        assert_eq!(cell(Some(&json!(10))), "10.0");
        assert_eq!(raw(Some(&json!(10))), "10");
    }

    #[test]
    fn ratios_need_both_figures_and_a_nonzero_divisor() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50×");
        assert_eq!(ratio(Some(3.0), Some(0.0)), "—");
        assert_eq!(ratio(None, Some(2.0)), "—");
        assert_eq!(ratio_cell(Some(&json!(true)), Some(&json!(true))), "");
    }

    #[test]
    fn dotted_paths_reach_nested_figures() {
        let r = json!({"latency_us": {"reply": {"p99_us": 1860}}, "ok": true});
        assert_eq!(num(&r, "latency_us.reply.p99_us"), Some(1860.0));
        assert_eq!(num(&r, "latency_us.delivery.p99_us"), None);
        assert_eq!(num(&r, "ok.x"), None);
        assert_eq!(flag(&r, "ok"), Some(true));
    }

    #[test]
    fn steps_are_written_without_a_needless_fraction() {
        assert_eq!(step(1000.0), "1000");
        assert_eq!(step(2.5), "2.5");
    }
}
