//! The ramp plot: forwarded packets/s (left axis), loss % and server CPU % (right axis)
//! against subscribers, as an SVG.

use std::path::Path;

use plotters::prelude::*;

use crate::scenario::ramp::RampReport;

pub fn ramp_svg(report: &RampReport, path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    let pts: Vec<(f64, f64, f64, f64, f64)> = report
        .steps
        .iter()
        .map(|s| {
            (
                s.subscribers as f64,
                s.window.forwarded_packets_per_s,
                s.window.loss_pct,
                s.window.server_cpu_pct.unwrap_or(0.0),
                s.window.delivery_shortfall_pct.max(0.0),
            )
        })
        .collect();
    let max_x = pts.iter().map(|p| p.0).fold(1.0, f64::max);
    let max_pps = pts.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let max_pct = pts
        .iter()
        .map(|p| p.2.max(p.3))
        .fold(100.0, f64::max)
        .min(400.0);

    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let title = format!(
        "huddle ramp: 1 publisher → N viewers ({:.1} Mbit/s video + Opus){}",
        report.media.video_bitrate_bps as f64 / 1e6,
        report
            .knee_subscribers
            .map(|k| format!(", knee {k}"))
            .unwrap_or_default()
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x * 1.05, 0.0..max_pps)
        .map_err(|e| err(&e))?
        .set_secondary_coord(0.0..max_x * 1.05, 0.0..max_pct);
    chart
        .configure_mesh()
        .x_desc("subscribers")
        .y_desc("forwarded packets/s")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .configure_secondary_axes()
        .y_desc("% (loss; server CPU of one core)")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            pts.iter().map(|p| (p.0, p.1)),
            BLUE.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label("forwarded packets/s")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_secondary_series(LineSeries::new(
            pts.iter().map(|p| (p.0, p.3)),
            RED.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label("server CPU %")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_secondary_series(LineSeries::new(
            pts.iter().map(|p| (p.0, p.2)),
            GREEN.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label("loss % (RTP sequence gaps)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    chart
        .draw_secondary_series(LineSeries::new(
            pts.iter().map(|p| (p.0, p.4)),
            MAGENTA.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label("received shortfall % (vs sent × viewers)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], MAGENTA));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
