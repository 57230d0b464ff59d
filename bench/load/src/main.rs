//! `colloquy-bench-load URL KEY CONNECTIONS SECONDS [METHOD BODY]`: keeps CONNECTIONS
//! keep-alive connections busy with one request after another for SECONDS, then prints one
//! JSON line: requests per second, p50/p99/max latency in ms, and how many answers were not
//! 2xx. A stand-in for wrk, which this machine does not have: each worker owns one HTTP/1.1
//! connection (hyper's, without a pool) and sends the same prepared request again and again.
//! The client shares the machine's cores with the server, so figures are a floor of what the
//! server alone can do. With
//! `COLLOQUY_BENCH_SERVER_PID` set, it also reports the CPU time the server and the client
//! itself spent per request over the measured run (user + system, from `/proc`): a figure that
//! other work on a shared machine disturbs far less than requests per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

struct Target {
    uri: Uri,
    authority: String,
    authorization: String,
    method: Method,
    body: Option<Bytes>,
}

impl Target {
    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(self.uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(HOST, &self.authority)
            .header(AUTHORIZATION, &self.authorization);
        if self.body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        request.body(Full::new(self.body.clone().unwrap_or_default())).expect("a valid request")
    }
}

/// One connection's requests until `until`: their latencies and how many failed (not 2xx, or
/// the connection broke; a broken connection is opened again).
async fn worker(target: &Target, until: Instant) -> (Vec<Duration>, u64) {
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut sender = None;
    while Instant::now() < until {
        let started = Instant::now();
        if sender.is_none() {
            sender = connect(&target.authority).await;
        }
        let Some(connection) = sender.as_mut() else {
            failures += 1;
            latencies.push(started.elapsed());
            continue;
        };
        let answered = match connection.send_request(target.request()).await {
            Ok(response) => {
                let ok = response.status().is_success();
                response.into_body().collect().await.is_ok() && ok
            }
            Err(_) => false,
        };
        if !answered {
            failures += 1;
            if connection.is_closed() {
                sender = None;
            }
        }
        latencies.push(started.elapsed());
    }
    (latencies, failures)
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(authority: &str) -> Option<Sender> {
    let stream = TcpStream::connect(authority).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// `connections` workers for `length`, each one's latencies and failures.
async fn run(target: &Arc<Target>, connections: usize, length: Duration) -> Vec<(Vec<Duration>, u64)> {
    let until = Instant::now() + length;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move { worker(&target, until).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("a worker"));
    }
    results
}

/// CPU time (user + system) a process has used so far, in microseconds; `None` off Linux.
fn cpu_micros(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks * 1e6 / per_second as f64)
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
    let uri: Uri = args[1].parse().expect("URL is a URL");
    assert_eq!(uri.scheme_str(), Some("http"), "URL is a plain http:// URL");
    let authority = uri.authority().expect("URL has a host and port").to_string();
    let authorization = format!("Bearer {}", args[2]);
    let body = args.get(6).map(|b| Bytes::from(b.clone()));
    let target = Arc::new(Target { uri, authority, authorization, method, body });
    // Warm up: open the connections and the server's caches.
    run(&target, connections, Duration::from_secs(1)).await;
    let server = std::env::var("COLLOQUY_BENCH_SERVER_PID").ok();
    let cpu_before = (server.as_deref().and_then(cpu_micros), cpu_micros("self"));
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for (mut own, failed) in run(&target, connections, Duration::from_secs(seconds)).await {
        latencies.append(&mut own);
        failures += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = (server.as_deref().and_then(cpu_micros), cpu_micros("self"));
    let per_request = |before: Option<f64>, after: Option<f64>| match (before, after) {
        (Some(before), Some(after)) if !latencies.is_empty() => {
            serde_json::json!(((after - before) / latencies.len() as f64).round())
        }
        _ => serde_json::Value::Null,
    };
    let server_cpu = per_request(cpu_before.0, cpu_after.0);
    let client_cpu = per_request(cpu_before.1, cpu_after.1);
    latencies.sort_unstable();
    let summary = serde_json::json!({
        "connections": connections,
        "requests": latencies.len(),
        "rps": (latencies.len() as f64 / elapsed).round(),
        "p50_ms": (percentile(&latencies, 0.50) * 100.0).round() / 100.0,
        "p99_ms": (percentile(&latencies, 0.99) * 100.0).round() / 100.0,
        "max_ms": (percentile(&latencies, 1.0) * 100.0).round() / 100.0,
        "failures": failures,
        "server_cpu_us_per_request": server_cpu,
        "client_cpu_us_per_request": client_cpu,
    });
    println!("{summary}");
}
