//! `colloquy-bench-load URL KEY CONNECTIONS SECONDS [METHOD BODY]`: keeps CONNECTIONS
//! keep-alive connections busy with one request after another for SECONDS, then prints one
//! JSON line: requests per second, p50/p99/max latency in ms, and how many answers were not
//! 2xx. A stand-in for wrk, which this machine does not have; the client shares the machine's
//! cores with the server, so figures are a floor of what the server alone can do.

use std::time::{Duration, Instant};

use reqwest::{Client, Method};

struct Target {
    url: String,
    key: String,
    method: Method,
    body: Option<String>,
}

async fn worker(client: Client, target: &Target, until: Instant) -> (Vec<Duration>, u64) {
    let mut latencies = Vec::new();
    let mut failures = 0;
    while Instant::now() < until {
        let started = Instant::now();
        let mut request = client.request(target.method.clone(), &target.url).bearer_auth(&target.key);
        if let Some(body) = &target.body {
            request = request.header("content-type", "application/json").body(body.clone());
        }
        match request.send().await {
            Ok(response) => {
                let ok = response.status().is_success();
                if response.bytes().await.is_err() || !ok {
                    failures += 1;
                }
            }
            Err(_) => failures += 1,
        }
        latencies.push(started.elapsed());
    }
    (latencies, failures)
}

/// `connections` workers for `length`, each one's latencies and failures.
async fn run(
    client: &Client,
    target: &std::sync::Arc<Target>,
    connections: usize,
    length: Duration,
) -> Vec<(Vec<Duration>, u64)> {
    let until = Instant::now() + length;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, target) = (client.clone(), target.clone());
            tokio::spawn(async move { worker(client, &target, until).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("a worker"));
    }
    results
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: colloquy-bench-load URL KEY CONNECTIONS SECONDS [METHOD BODY]");
        std::process::exit(2);
    }
    let connections: usize = args[3].parse().expect("CONNECTIONS is a number");
    let seconds: u64 = args[4].parse().expect("SECONDS is a number");
    let method = args.get(5).map_or(Method::GET, |m| m.parse().expect("METHOD is an HTTP method"));
    let target = Target { url: args[1].clone(), key: args[2].clone(), method, body: args.get(6).cloned() };
    let client = Client::builder().pool_max_idle_per_host(connections).build().expect("a client");
    let target = std::sync::Arc::new(target);
    // Warm up: open the connections and the server's caches.
    run(&client, &target, connections, Duration::from_secs(1)).await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for (mut own, failed) in run(&client, &target, connections, Duration::from_secs(seconds)).await {
        latencies.append(&mut own);
        failures += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let summary = serde_json::json!({
        "connections": connections,
        "requests": latencies.len(),
        "rps": (latencies.len() as f64 / elapsed).round(),
        "p50_ms": (percentile(&latencies, 0.50) * 100.0).round() / 100.0,
        "p99_ms": (percentile(&latencies, 0.99) * 100.0).round() / 100.0,
        "max_ms": (percentile(&latencies, 1.0) * 100.0).round() / 100.0,
        "failures": failures,
    });
    println!("{summary}");
}
