//! The scale benchmark's plot: whole-process time (with the endpoint's latency) and peak RSS
//! against the fleet size, one line per region count and job, for the smallest user count.

use std::path::Path;

use plotters::prelude::*;

use crate::measure::Measured;
use crate::scale::Row;

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

pub fn write(
    path: &Path,
    rows: &[Row],
    latency_ms: u128,
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let Some(users) = rows.iter().map(|r| r.users).min() else {
        return Err("nothing was measured".into());
    };
    let rows: Vec<&Row> = rows.iter().filter(|r| r.users == users).collect();
    let mut regions: Vec<usize> = rows.iter().map(|r| r.regions).collect();
    regions.dedup();
    let x_max = rows.iter().map(|r| r.instances).max().unwrap_or(1) as f64;
    let x_min = rows.iter().map(|r| r.instances).min().unwrap_or(1) as f64;
    type Pick = fn(&Row) -> &Measured;
    let jobs: [(&str, Pick); 2] = [
        ("reconcile", |r| &r.reconcile_slow),
        ("sweep", |r| &r.sweep_slow),
    ];

    let root = SVGBackend::new(path, (1100, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);
    type Value = fn(&Measured) -> f64;
    let panels: [(_, &str, Value); 2] = [
        (left, "whole-process time (s)", |m| m.wall.as_secs_f64()),
        (right, "peak RSS (MiB)", |m| m.peak_kib as f64 / 1024.0),
    ];
    for (area, label, value) in panels {
        let y_max = rows
            .iter()
            .flat_map(|r| jobs.iter().map(move |(_, pick)| value(pick(r))))
            .fold(0.0, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(&area)
            .caption(
                format!("{label}, {users} users, {latency_ms} ms per EC2 call"),
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((x_min * 0.8..x_max * 1.25).log_scale(), 0.0..y_max.max(1.0))?;
        chart
            .configure_mesh()
            .x_desc("instances in the account")
            .y_desc(label)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()?;
        let mut colour = 0;
        for &count in &regions {
            for (job, pick) in jobs {
                let style = COLOURS[colour % COLOURS.len()];
                colour += 1;
                let points: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|r| r.regions == count)
                    .map(|r| (r.instances as f64, value(pick(r))))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), style.stroke_width(2)))?
                    .label(format!("{job}, {count} region(s)"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], style.stroke_width(2))
                    });
                chart.draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, style.filled())),
                )?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
