//! The latency chart: percentile curves (latency against percentile on a
//! "nines" axis, as HdrHistogram plots them), one curve per latency kind.
//! SVG so that no system fonts are needed.

use crate::stats::Latency;
use plotters::prelude::*;
use std::path::Path;

/// The deepest percentile drawn, in nines (5 = 99.999%).
const NINES_MAX: f64 = 5.0;

/// Points per curve.
const CURVE_POINTS: usize = 400;

/// Chart size in pixels.
const CHART_SIZE_PX: (u32, u32) = (960, 540);

/// Writes the chart of `curves` (name, histogram) to `path` (SVG).
pub fn write_chart(path: &Path, title: &str, curves: &[(&str, &Latency)]) -> Result<(), String> {
    let curves: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .filter(|(_, l)| l.count() > 0)
        .map(|(name, l)| (*name, percentile_curve(l)))
        .collect();
    let y_max_ms = curves
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .fold(0.001f64, f64::max)
        * 1.1;
    let x_max = curves
        .iter()
        .flat_map(|(_, pts)| pts.last().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let root = SVGBackend::new(path, CHART_SIZE_PX).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("chart {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max_ms)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_labels(x_max.ceil() as usize + 1)
        .x_label_formatter(&|nines| nines_label(*nines))
        .draw()
        .map_err(|e| err(&e))?;
    // As many colours as `Stats::curves` has curves.
    let palette = [
        BLUE,
        RED,
        GREEN,
        MAGENTA,
        CYAN,
        BLACK,
        RGBColor(230, 140, 0),
        RGBColor(120, 60, 20),
    ];
    for (i, (name, points)) in curves.into_iter().enumerate() {
        let color = palette[i % palette.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// Points (nines, ms) from the median... to the deepest percentile the
/// sample supports (no 99.99% out of 100 values).
fn percentile_curve(latency: &Latency) -> Vec<(f64, f64)> {
    let h = latency.histogram();
    let nines_max = (h.len() as f64).log10().clamp(1.0, NINES_MAX);
    (0..=CURVE_POINTS)
        .map(|i| {
            let nines = nines_max * i as f64 / CURVE_POINTS as f64;
            let q = 1.0 - 10f64.powf(-nines);
            (nines, h.value_at_quantile(q) as f64 / 1000.0)
        })
        .collect()
}

/// "0%", "90%", "99%", "99.9%", … for whole nines.
fn nines_label(nines: f64) -> String {
    let q = (1.0 - 10f64.powf(-nines)) * 100.0;
    let decimals = (nines.round() as usize).saturating_sub(2);
    format!("{q:.decimals$}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_are_labelled_as_percentiles() {
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(4.0), "99.99%");
    }

    #[test]
    fn a_chart_is_written_as_svg() {
        let mut l = Latency::default();
        for us in 1..2000u64 {
            l.record_span(0, us * 1000);
        }
        let path = std::env::temp_dir().join(format!("loadgen-chart-{}.svg", std::process::id()));
        write_chart(&path, "test", &[("reply", &l)]).expect("chart");
        let svg = std::fs::read_to_string(&path).expect("svg");
        let _ = std::fs::remove_file(&path);
        assert!(svg.contains("<svg") && svg.contains("99.9%"));
    }
}
