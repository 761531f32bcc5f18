//! Accuracy vs FLOPs of every stitch as an SVG: stitches, anchors and the Pareto frontier.

use std::path::Path;

use plotters::prelude::*;
use snnet_core::select::{Cost, StitchTable};

use crate::error::{Error, Result};

/// Writes `table` (stitches with `flops` and `acc1`) as an SVG scatter plot of top-1 accuracy
/// against GFLOPs to `path`: every stitch, the anchors (`anchors`: their ids) highlighted, and
/// the Pareto frontier as a line.
///
/// # Errors
/// [`Error::Checkpoint`] when the table lacks FLOPs or the file cannot be written.
pub fn plot_accuracy_vs_flops(
    table: &StitchTable,
    anchors: &[usize],
    title: &str,
    path: &Path,
) -> Result<()> {
    let error = |reason: String| Error::Checkpoint {
        path: path.to_owned(),
        reason,
    };
    let points: Vec<(usize, f64, f64)> = table
        .iter()
        .map(|r| {
            r.flops
                .map(|f| (r.id, f as f64 / 1e9, r.acc1))
                .ok_or_else(|| error(format!("stitch {} has no FLOPs", r.id)))
        })
        .collect::<Result<_>>()?;
    if points.is_empty() {
        return Err(error("nothing to plot".into()));
    }
    let frontier: Vec<(f64, f64)> = table
        .pareto(Cost::Flops)
        .map_err(|e| error(e.to_string()))?
        .iter()
        .filter_map(|r| r.flops.map(|f| (f as f64 / 1e9, r.acc1)))
        .collect();
    let (x0, x1) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let (y0, y1) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.2), b.max(p.2))
        });
    let pad_x = ((x1 - x0) * 0.05).max(1e-6);
    let pad_y = ((y1 - y0) * 0.08).max(0.5);

    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    let draw = |e: &dyn std::fmt::Display| error(e.to_string());
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x0 - pad_x)..(x1 + pad_x), (y0 - pad_y)..(y1 + pad_y))
        .map_err(|e| draw(&e))?;
    chart
        .configure_mesh()
        .x_desc("GFLOPs (fvcore, one image)")
        .y_desc("top-1 accuracy (%)")
        .draw()
        .map_err(|e| draw(&e))?;
    let blue = RGBColor(70, 110, 200);
    chart
        .draw_series(
            points
                .iter()
                .filter(|p| !anchors.contains(&p.0))
                .map(|p| Circle::new((p.1, p.2), 4, blue.mix(0.6).filled())),
        )
        .map_err(|e| draw(&e))?
        .label("stitches")
        .legend(move |(x, y)| Circle::new((x, y), 4, blue.filled()));
    chart
        .draw_series(LineSeries::new(frontier, RED.stroke_width(2)))
        .map_err(|e| draw(&e))?
        .label("Pareto frontier")
        .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], RED.stroke_width(2)));
    chart
        .draw_series(
            points
                .iter()
                .filter(|p| anchors.contains(&p.0))
                .map(|p| TriangleMarker::new((p.1, p.2), 9, BLACK.filled())),
        )
        .map_err(|e| draw(&e))?
        .label("anchors")
        .legend(|(x, y)| TriangleMarker::new((x, y), 7, BLACK.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|e| draw(&e))?;
    root.present().map_err(|e| draw(&e))?;
    Ok(())
}
