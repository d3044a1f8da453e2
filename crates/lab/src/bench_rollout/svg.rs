//! A run's timeline as an SVG picture: above, Ready pods (the Kubernetes view) and healthy targets
//! (the load balancer's view) over time; below, requests per half second, failed ones in red; the
//! change, the end of the rollout and a controller restart marked. Plain SVG text, no fonts needed.

use std::fmt::Write;

use super::report::series;
use super::{RolloutOptions, Run};

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 780.0;
const COUNTS_TOP: f64 = 50.0;
const COUNTS_BOTTOM: f64 = 210.0;
const REQUESTS_TOP: f64 = 250.0;
const REQUESTS_BOTTOM: f64 = 380.0;
const HEIGHT: f64 = 420.0;
const BIN: f64 = 0.5;

pub fn timeline(run: &Run, options: &RolloutOptions) -> String {
    let relative = |t: f64| t - run.triggered;
    let from = run
        .samples
        .first()
        .map(|s| relative(s.at))
        .unwrap_or(-2.0)
        .floor();
    let to = run
        .samples
        .last()
        .map(|s| relative(s.at))
        .unwrap_or(run.settled_seconds)
        .max(from + 1.0)
        .ceil();
    let x = |t: f64| LEFT + (t - from) / (to - from) * (RIGHT - LEFT);
    let counts = series(run, from, to, 0.1);
    let count_max = (options.replicas + options.max_surge + 1) as f64;
    let count_y = |n: usize| COUNTS_BOTTOM - n as f64 / count_max * (COUNTS_BOTTOM - COUNTS_TOP);

    // Requests per bin: (succeeded, failed).
    let bins = ((to - from) / BIN).ceil() as usize + 1;
    let mut per_bin = vec![(0usize, 0usize); bins];
    for sample in &run.samples {
        let index = ((relative(sample.at) - from) / BIN).floor().max(0.0) as usize;
        if let Some(bin) = per_bin.get_mut(index) {
            if sample.outcome.is_failure() {
                bin.1 += 1;
            } else {
                bin.0 += 1;
            }
        }
    }
    let bin_max = per_bin
        .iter()
        .map(|(ok, failed)| ok + failed)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let request_y = |n: f64| REQUESTS_BOTTOM - n / bin_max * (REQUESTS_BOTTOM - REQUESTS_TOP);
    let failed: usize = per_bin.iter().map(|b| b.1).sum();

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="20" font-size="14" font-weight="bold">Scenario {} ({}), run {}: {failed} failed of {} requests</text>"#,
        run.scenario.number(),
        run.scenario.description(),
        run.repetition,
        run.samples.len()
    );

    // Restart band and markers first, so the data is drawn over them.
    if let Some(restart) = run.restart {
        let start = x(relative(restart.at));
        let width = (x(relative(restart.at) + restart.seconds.max(0.1)) - start).max(2.0);
        let _ = writeln!(
            svg,
            r##"<rect x="{start:.1}" y="{COUNTS_TOP}" width="{width:.1}" height="{:.1}" fill="#f5a623" opacity="0.35"/><text x="{start:.1}" y="{:.1}" fill="#b36b00">controller restart</text>"##,
            REQUESTS_BOTTOM - COUNTS_TOP,
            COUNTS_TOP - 5.0
        );
    }
    for (t, label) in [(0.0, "change"), (run.rollout_seconds, "rollout complete")] {
        // Labels near the right edge go left of their line, clear of the legend.
        let (label_x, anchor) = if x(t) > RIGHT - 120.0 {
            (x(t) - 3.0, "end")
        } else {
            (x(t) + 3.0, "start")
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{COUNTS_TOP}" y2="{REQUESTS_BOTTOM}" stroke="#555" stroke-dasharray="4 3"/><text x="{label_x:.1}" y="{1:.1}" fill="#555" text-anchor="{anchor}">{label}</text>"##,
            x(t),
            COUNTS_TOP + 12.0
        );
    }

    // Axes and grid.
    for (top, bottom) in [(COUNTS_TOP, COUNTS_BOTTOM), (REQUESTS_TOP, REQUESTS_BOTTOM)] {
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{top}" width="{:.1}" height="{:.1}" fill="none" stroke="#999"/>"##,
            RIGHT - LEFT,
            bottom - top
        );
    }
    let tick = if to - from > 90.0 { 10.0 } else { 5.0 };
    let mut t = (from / tick).ceil() * tick;
    while t <= to {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{REQUESTS_BOTTOM}" y2="{1:.1}" stroke="#999"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{3:.0}</text>"##,
            x(t),
            REQUESTS_BOTTOM + 4.0,
            REQUESTS_BOTTOM + 17.0,
            t + 0.0 // no "-0"
        );
        t += tick;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds since the change</text>"#,
        (LEFT + RIGHT) / 2.0,
        HEIGHT - 8.0
    );
    for n in 0..=count_max as usize {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{n}</text><line x1="{LEFT}" x2="{RIGHT}" y1="{2:.1}" y2="{2:.1}" stroke="#eee"/>"##,
            LEFT - 6.0,
            count_y(n) + 4.0,
            count_y(n)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{bin_max:.0}</text><text x="{:.1}" y="{:.1}" text-anchor="end">0</text><text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">per {BIN} s</text>"#,
        LEFT - 6.0,
        REQUESTS_TOP + 4.0,
        LEFT - 6.0,
        REQUESTS_BOTTOM + 4.0,
        (REQUESTS_TOP + REQUESTS_BOTTOM) / 2.0,
        (REQUESTS_TOP + REQUESTS_BOTTOM) / 2.0,
    );

    // Requests: succeeded grey, failed red stacked on top.
    let bar = (x(from + BIN) - x(from)).max(1.0);
    for (index, (ok, bad)) in per_bin.iter().enumerate() {
        let left = x(from + index as f64 * BIN);
        let ok_top = request_y(*ok as f64);
        if *ok > 0 {
            let _ = writeln!(
                svg,
                r##"<rect x="{left:.1}" y="{ok_top:.1}" width="{bar:.1}" height="{:.1}" fill="#c8c8c8"/>"##,
                REQUESTS_BOTTOM - ok_top
            );
        }
        if *bad > 0 {
            let bad_top = request_y((*ok + *bad) as f64);
            let _ = writeln!(
                svg,
                r##"<rect x="{left:.1}" y="{bad_top:.1}" width="{bar:.1}" height="{:.1}" fill="#d0021b"/>"##,
                ok_top - bad_top
            );
        }
    }

    // Ready pods and healthy targets as step lines.
    for (values, colour, offset) in [
        (&counts.ready_pods, "#1f6fd1", 0.0),
        (&counts.healthy_targets, "#2e9e44", 2.0),
    ] {
        let mut points = String::new();
        let mut previous: Option<f64> = None;
        for (t, n) in counts.at.iter().zip(values.iter()) {
            let y = count_y(*n) + offset;
            if let Some(previous) = previous {
                let _ = write!(points, "{:.1},{previous:.1} ", x(*t));
            }
            let _ = write!(points, "{:.1},{y:.1} ", x(*t));
            previous = Some(y);
        }
        let _ = writeln!(
            svg,
            r#"<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>"#
        );
    }

    // Legend.
    let legend = [
        ("#1f6fd1", "pods Ready (Kubernetes)"),
        ("#2e9e44", "targets healthy (ALB)"),
        ("#c8c8c8", "requests answered"),
        ("#d0021b", "requests failed"),
    ];
    for (index, (colour, label)) in legend.iter().enumerate() {
        let y = COUNTS_TOP + 10.0 + index as f64 * 20.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="14" height="10" fill="{colour}"/><text x="{:.1}" y="{:.1}">{label}</text>"#,
            RIGHT + 15.0,
            y - 9.0,
            RIGHT + 35.0,
            y
        );
    }
    svg.push_str("</svg>\n");
    svg
}
