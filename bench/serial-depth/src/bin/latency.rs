//! `colloquy-bench-latency URL [--key KEY] [--method M] [--body JSON] [--runs N] [--warm-ups W]
//! [--count COUNT_URL]...`: sends W untimed and then N timed requests one after another on one
//! keep-alive connection and prints one JSON line: p50, p90, mean and max latency in ms, how
//! many answers were not 2xx, and — with `--count` (a delay proxy's count URL, repeatable) —
//! how many requests the proxies forwarded per timed request.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Parser)]
#[command(about = "Latency of one request sent again and again on one connection")]
struct Args {
    url: Uri,
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
async fn send(client: &HttpClient, args: &Args) -> Result<bool, String> {
    let mut request = Request::builder().method(args.method.clone()).uri(args.url.clone());
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
    let mut failures = 0_usize;
    for _ in 0..args.warm_ups {
        if !send(&client, &args).await.unwrap_or_else(|e| panic!("{}: {e}", args.url)) {
            failures += 1;
        }
    }
    let before = forwarded(&client, &args.count).await;
    let mut latencies = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let started = Instant::now();
        let ok = send(&client, &args).await.unwrap_or_else(|e| panic!("{}: {e}", args.url));
        latencies.push(started.elapsed());
        if !ok {
            failures += 1;
        }
    }
    let after = forwarded(&client, &args.count).await;
    let mean = latencies.iter().sum::<Duration>() / args.runs as u32;
    latencies.sort_unstable();
    let mut summary = serde_json::json!({
        "runs": args.runs,
        "p50_ms": ms(percentile(&latencies, 0.5)),
        "p90_ms": ms(percentile(&latencies, 0.9)),
        "mean_ms": ms(mean),
        "max_ms": ms(percentile(&latencies, 1.0)),
        "failures": failures,
    });
    if !args.count.is_empty() {
        summary["forwarded_per_request"] = serde_json::json!((after - before) as f64 / args.runs as f64);
    }
    println!("{summary}");
}
