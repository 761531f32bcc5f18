//! A load generator against `snnet serve`: ramps the request rate up and down and writes an SVG
//! of latency, stitch and throughput over time.
//!
//! ```sh
//! snnet serve --snnet snnet.safetensors --table profile.jsonl --slo-p95-ms 40 &
//! cargo run --release -p load-generator -- \
//!     --url http://127.0.0.1:8080 --peak-rps 60 --seconds 30 --output load.svg
//! ```
//!
//! The rate follows a triangle from 1 request/s up to `--peak-rps` and back over `--seconds`;
//! each request is sent at its scheduled time on a thread of its own (open loop), so a slow
//! server sees its queue grow, as it would in production.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plotters::prelude::*;

/// One answered (or failed) request.
#[derive(Debug, Clone, Copy)]
struct Sample {
    sent_s: f64,
    done_s: f64,
    latency_ms: f64,
    stitch: Option<u64>,
}

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(224, 224, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut bytes = Vec::new();
    let _ = image::DynamicImage::ImageRgb8(img).write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    );
    bytes
}

/// Runs the load and writes the plot, with the command line's arguments `args` (without the
/// program name): `--url`, `--peak-rps`, `--seconds`, `--output`.
///
/// # Errors
/// Unknown or malformed arguments, and the plot's errors.
pub fn run(args: impl IntoIterator<Item = String>) -> Result<(), Box<dyn std::error::Error>> {
    let (mut url, mut peak, mut seconds, mut output) = (
        "http://127.0.0.1:8080".to_owned(),
        40.0f64,
        20.0f64,
        "load.svg".to_owned(),
    );
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => url = value()?,
            "--peak-rps" => peak = value()?.parse()?,
            "--seconds" => seconds = value()?.parse()?,
            "--output" => output = value()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let body = Arc::new(png());
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let start = Instant::now();
    // The schedule: a triangle of rates, integrated into send times.
    let rate = |t: f64| 1.0 + (peak - 1.0) * (1.0 - (2.0 * t / seconds - 1.0).abs());
    let mut t = 0.0;
    let mut threads = Vec::new();
    while t < seconds {
        let wait = Duration::from_secs_f64(t).saturating_sub(start.elapsed());
        std::thread::sleep(wait);
        let (agent, body, samples, url) =
            (agent.clone(), body.clone(), samples.clone(), url.clone());
        threads.push(std::thread::spawn(move || {
            let sent = start.elapsed().as_secs_f64();
            let response = agent
                .post(format!("{url}/v1/classify"))
                .header("content-type", "image/png")
                .send(&body[..]);
            let done = start.elapsed().as_secs_f64();
            let stitch = response.ok().and_then(|mut r| {
                let text = r.body_mut().read_to_string().ok()?;
                let json: serde_json::Value = serde_json::from_str(&text).ok()?;
                json["stitch"].as_u64()
            });
            if let Ok(mut s) = samples.lock() {
                s.push(Sample {
                    sent_s: sent,
                    done_s: done,
                    latency_ms: (done - sent) * 1e3,
                    stitch,
                });
            }
        }));
        t += 1.0 / rate(t);
    }
    for thread in threads {
        let _ = thread.join();
    }
    let mut samples = samples.lock().map_err(|_| "poisoned")?.clone();
    samples.sort_by(|a, b| a.sent_s.total_cmp(&b.sent_s));
    let ok = samples.iter().filter(|s| s.stitch.is_some()).count();
    println!("{} requests, {ok} answered", samples.len());
    plot(&samples, seconds, peak, &output)?;
    println!("wrote {output}");
    Ok(())
}

fn plot(
    samples: &[Sample],
    seconds: f64,
    peak: f64,
    path: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let end = samples.iter().map(|s| s.done_s).fold(seconds, f64::max);
    let root = SVGBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let max_ms = samples.iter().map(|s| s.latency_ms).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("latency of each request (by send time)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..max_ms * 1.05)?;
    chart.configure_mesh().x_desc("s").y_desc("ms").draw()?;
    chart.draw_series(
        samples
            .iter()
            .map(|s| Circle::new((s.sent_s, s.latency_ms), 2, BLUE.mix(0.6).filled())),
    )?;
    let max_stitch = samples.iter().filter_map(|s| s.stitch).max().unwrap_or(1) as f64;
    let mut chart = ChartBuilder::on(&panels[1])
        .caption("stitch served", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, -0.5..max_stitch + 0.5)?;
    chart
        .configure_mesh()
        .x_desc("s")
        .y_desc("stitch id")
        .draw()?;
    chart.draw_series(samples.iter().filter_map(|s| {
        s.stitch
            .map(|id| Circle::new((s.sent_s, id as f64), 2, RED.mix(0.7).filled()))
    }))?;
    // Throughput: answers completed per one-second bin, and the offered rate.
    let bins = end.ceil() as usize;
    let mut done = vec![0u32; bins.max(1)];
    for s in samples.iter().filter(|s| s.stitch.is_some()) {
        if let Some(b) = done.get_mut(s.done_s as usize) {
            *b += 1;
        }
    }
    let max_rate = done.iter().copied().max().unwrap_or(1).max(peak as u32) as f64;
    let mut chart = ChartBuilder::on(&panels[2])
        .caption(
            "throughput (answers/s) and offered rate",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..max_rate * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("s")
        .y_desc("requests/s")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            done.iter()
                .enumerate()
                .map(|(i, &n)| (i as f64 + 0.5, f64::from(n))),
            BLACK.stroke_width(2),
        ))?
        .label("answered")
        .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], BLACK.stroke_width(2)));
    let offered = |t: f64| 1.0 + (peak - 1.0) * (1.0 - (2.0 * t / seconds - 1.0).abs());
    chart
        .draw_series(LineSeries::new(
            (0..=100).map(|i| {
                let t = seconds * f64::from(i) / 100.0;
                (t, offered(t))
            }),
            GREEN.stroke_width(1),
        ))?
        .label("offered")
        .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], GREEN.stroke_width(1)));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn refuses_unknown_and_incomplete_arguments() {
        let err = |list: &[&str]| run(args(list)).err().map(|e| e.to_string());
        assert_eq!(err(&["--peak"]).as_deref(), Some("unknown argument --peak"));
        assert_eq!(
            err(&["--seconds"]).as_deref(),
            Some("--seconds needs a value")
        );
        assert!(err(&["--peak-rps", "many"]).is_some());
    }

    #[test]
    fn the_request_body_is_a_224_png() -> Result<(), Box<dyn std::error::Error>> {
        let img = image::load_from_memory_with_format(&png(), image::ImageFormat::Png)?;
        assert_eq!((img.width(), img.height()), (224, 224));
        Ok(())
    }
}
