//! Accuracy vs FLOPs of every stitch as an SVG: stitches, anchors and the Pareto frontier.

use std::path::Path;

use plotters::prelude::*;
use snnet_core::select::{CostKind, StitchTable};

use crate::error::{Error, Result};

/// Writes `table` (stitches with `flops` and `acc1`) as an SVG scatter plot of top-1 accuracy
/// against FLOPs (in MFLOPs below one GFLOP, else GFLOPs) to `path`: every stitch as a blue
/// dot, the anchors (`anchors`: their ids) as black triangles, and the Pareto frontier as a red
/// line through ringed points.
///
/// # Errors
/// [`Error::NoSuchRow`] for an anchor id the table has no row for; [`Error::Checkpoint`] when
/// the table lacks FLOPs or the file cannot be written.
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
    if let Some(&id) = anchors.iter().find(|&&id| table.get(id).is_none()) {
        return Err(Error::NoSuchRow { id });
    }
    // The axis unit: MFLOPs below one GFLOP (the Fashion-MNIST family), GFLOPs above.
    let max_flops = table.iter().filter_map(|r| r.flops).max().unwrap_or(0);
    let (scale, unit) = if max_flops < 1_000_000_000 {
        (1e6, "MFLOPs")
    } else {
        (1e9, "GFLOPs")
    };
    let points: Vec<(usize, f64, f64)> = table
        .iter()
        .map(|r| {
            r.flops
                .map(|f| (r.id.index(), f as f64 / scale, r.acc1))
                .ok_or_else(|| error(format!("stitch {} has no FLOPs", r.id)))
        })
        .collect::<Result<_>>()?;
    if points.is_empty() {
        return Err(error("nothing to plot".into()));
    }
    let frontier: Vec<(f64, f64)> = table
        .pareto(CostKind::Flops)
        .map_err(|e| error(e.to_string()))?
        .iter()
        .filter_map(|r| r.flops.map(|f| (f as f64 / scale, r.acc1)))
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
    let pad_x = ((x1 - x0) * 0.05).max(x1.abs() * 0.05).max(1e-6);
    let pad_y = ((y1 - y0) * 0.08).max(0.5);

    // Drawn into memory, then written atomically (snnet-fs).
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
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
            .x_desc(format!("{unit} (fvcore, one image)"))
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
            .draw_series(LineSeries::new(frontier.clone(), RED.stroke_width(2)))
            .map_err(|e| draw(&e))?
            .label("Pareto frontier")
            .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], RED.stroke_width(2)));
        // The frontier's points ringed, so that a one-point frontier shows too.
        chart
            .draw_series(
                frontier
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 7, RED.stroke_width(2))),
            )
            .map_err(|e| draw(&e))?;
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
    }
    snnet_fs::write_atomic(path, svg.as_bytes()).map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_families_plot_in_mflops_with_the_frontier_drawn() -> Result<()> {
        let table: StitchTable = r#"
{"cfg_id": 0, "flops": 1159000, "params": 14634, "acc1": 81.0}
{"cfg_id": 1, "flops": 12009000, "params": 205962, "acc1": 87.0}
{"cfg_id": 2, "flops": 5000000, "params": 90000, "acc1": 84.0}
{"cfg_id": 3, "flops": 6000000, "params": 95000, "acc1": 82.0}
"#
        .parse()?;
        let dir = tempfile::tempdir().map_err(|e| Error::Checkpoint {
            path: "tmp".into(),
            reason: e.to_string(),
        })?;
        let path = dir.path().join("pareto.svg");
        plot_accuracy_vs_flops(&table, &[0, 1], "test", &path)?;
        let svg = std::fs::read_to_string(&path).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        assert!(svg.contains("MFLOPs (fvcore, one image)"));
        assert!(!svg.contains("GFLOPs"));
        // The frontier (0, 2, 1) as one polyline of three points.
        let line = svg
            .split("<polyline")
            .skip(1)
            .find(|p| p.contains("#FF0000") || p.contains("rgb(255,0,0)"))
            .unwrap_or_default();
        let points = line
            .split("points=\"")
            .nth(1)
            .unwrap_or("")
            .split('"')
            .next();
        assert_eq!(
            points.map(|p| p.split_whitespace().count()),
            Some(3),
            "{line}"
        );
        // An anchor id the table lacks is refused, and nothing is written.
        let other = dir.path().join("other.svg");
        assert!(matches!(
            plot_accuracy_vs_flops(&table, &[0, 7], "test", &other),
            Err(Error::NoSuchRow { id: 7 })
        ));
        assert!(!other.exists());
        Ok(())
    }
}
