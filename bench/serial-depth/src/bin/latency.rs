//! `colloquy-bench-latency URL... [--key KEY] [--method M] [--body JSON] [--runs N]
//! [--warm-ups W] [--count COUNT_URL]...`: sends W untimed and then N timed requests to each
//! URL, one after another on keep-alive connections, taking the URLs in turn (so that a slow
//! spell of a shared machine hits each alike), and prints one JSON line: per URL, p50, p90,
//! mean and max latency in ms and how many answers were not 2xx; with `--count` (a delay
//! proxy's count URL, repeatable), how many requests the proxies forwarded per round of
//! requests.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Parser)]
#[command(about = "Latency of the same request sent again and again, to one or more URLs in turn")]
struct Args {
    /// One or more URLs, requested in turn.
    #[arg(required = true)]
    urls: Vec<Uri>,
    /// Sent as `Authorization: Bearer KEY`.
    #[arg(long)]
    key: Option<String>,
    #[arg(long, default_value = "GET")]
    method: Method,
    /// A JSON body (sent with `Content-Type: application/json`).
    #[arg(long)]
    body: Option<String>,
    #[arg(long, default_value_t = 100)]
    runs: usize,
    #[arg(long, default_value_t = 10)]
    warm_ups: usize,
    /// A delay proxy's count URL, read before and after the timed requests.
    #[arg(long)]
    count: Vec<Uri>,
    /// Count any status as an answer (for a calibration request that the upstream refuses).
    #[arg(long)]
    any_status: bool,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Sends one request and reads its whole answer; whether it was a success.
async fn send(client: &HttpClient, args: &Args, url: &Uri) -> Result<bool, String> {
    let mut request = Request::builder().method(args.method.clone()).uri(url.clone());
    if let Some(key) = &args.key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let body = match &args.body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Full::new(Bytes::from(body.clone()))
        }
        None => Full::new(Bytes::new()),
    };
    let request = request.body(body).map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let ok = args.any_status || response.status().is_success();
    response.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok(ok)
}

/// The sum of the proxies' counts of forwarded requests.
async fn forwarded(client: &HttpClient, counts: &[Uri]) -> u64 {
    let mut total = 0;
    for url in counts {
        let request = Request::get(url.clone()).body(Full::new(Bytes::new())).expect("a count request");
        let response = client.request(request).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let body = response.into_body().collect().await.expect("the count").to_bytes();
        total += std::str::from_utf8(&body).ok().and_then(|s| s.trim().parse::<u64>().ok()).expect("a number");
    }
    total
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// The value at `fraction` of sorted latencies (nearest rank).
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.runs == 0 {
        eprintln!("--runs must be at least 1");
        std::process::exit(2);
    }
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(connector);
    let mut failures = vec![0_usize; args.urls.len()];
    for _ in 0..args.warm_ups {
        for (url, failed) in args.urls.iter().zip(&mut failures) {
            if !send(&client, &args, url).await.unwrap_or_else(|e| panic!("{url}: {e}")) {
                *failed += 1;
            }
        }
    }
    let before = forwarded(&client, &args.count).await;
    let mut latencies = vec![Vec::with_capacity(args.runs); args.urls.len()];
    for _ in 0..args.runs {
        for ((url, failed), times) in args.urls.iter().zip(&mut failures).zip(&mut latencies) {
            let started = Instant::now();
            let ok = send(&client, &args, url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
            times.push(started.elapsed());
            if !ok {
                *failed += 1;
            }
        }
    }
    let after = forwarded(&client, &args.count).await;
    let per_url: Vec<serde_json::Value> = latencies
        .iter_mut()
        .zip(&failures)
        .zip(&args.urls)
        .map(|((times, failed), url)| {
            let mean = times.iter().sum::<Duration>() / args.runs as u32;
            times.sort_unstable();
            serde_json::json!({
                "url": url.to_string(),
                "p50_ms": ms(percentile(times, 0.5)),
                "p90_ms": ms(percentile(times, 0.9)),
                "mean_ms": ms(mean),
                "max_ms": ms(percentile(times, 1.0)),
                "failures": failed,
            })
        })
        .collect();
    let mut summary = serde_json::json!({"runs": args.runs, "urls": per_url});
    if !args.count.is_empty() {
        summary["forwarded_per_round"] = serde_json::json!((after - before) as f64 / args.runs as f64);
    }
    println!("{summary}");
}
