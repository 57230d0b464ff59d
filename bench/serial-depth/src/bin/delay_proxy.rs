//! `colloquy-delay-proxy --listen ADDR --upstream URL --delay-ms MS`: an HTTP/1.1 forwarder
//! that holds every request for MS milliseconds (from when its head arrived) before passing
//! it on to the upstream, then streams the answer back; a stand-in for the network between a
//! function and an AWS endpoint in the same region, in front of DynamoDB Local or moto.
//!
//! The delay applies per request, not per connection: hyper parses request boundaries on the
//! clients' keep-alive connections, and every request waits on its own. Requests are passed
//! on unchanged (method, path, headers — the `Host` the SDK signed included — and body) over
//! pooled keep-alive connections to the upstream.
//!
//! `GET /__delay-proxy/count` is answered by the proxy itself: the number of requests it has
//! forwarded so far (no AWS API uses that path; S3 bucket names cannot contain `_`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// The path the proxy answers itself with its count of forwarded requests.
const COUNT_PATH: &str = "/__delay-proxy/count";

#[derive(Parser)]
#[command(about = "Forwards HTTP/1.1 requests to an upstream, each held for a fixed delay first")]
struct Args {
    /// Where to listen, e.g. 127.0.0.1:8001.
    #[arg(long)]
    listen: SocketAddr,
    /// The upstream's base URL, e.g. http://127.0.0.1:8000 (plain HTTP).
    #[arg(long)]
    upstream: Uri,
    /// How long each request is held before it is forwarded.
    #[arg(long, default_value_t = 5)]
    delay_ms: u64,
}

struct Proxy {
    authority: Authority,
    delay: Duration,
    client: Client<HttpConnector, Incoming>,
    forwarded: AtomicU64,
}

type Body = Either<Incoming, Full<Bytes>>;

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(text))));
    *response.status_mut() = status;
    response
}

/// Waits until `deadline` with the operating system's timer: tokio's timer wheel counts whole
/// milliseconds and rounds up, which would add up to a millisecond to every request.
async fn hold_until(deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        tokio::task::spawn_blocking(move || std::thread::sleep(left)).await.expect("the sleeping thread");
    }
}

impl Proxy {
    async fn forward(self: Arc<Self>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let arrived = Instant::now();
        if request.uri().path() == COUNT_PATH {
            return Ok(plain(StatusCode::OK, self.forwarded.load(Ordering::SeqCst).to_string()));
        }
        let (mut parts, body) = request.into_parts();
        let mut uri = parts.uri.into_parts();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(self.authority.clone());
        if uri.path_and_query.is_none() {
            uri.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        parts.uri = match Uri::from_parts(uri) {
            Ok(uri) => uri,
            Err(e) => return Ok(plain(StatusCode::BAD_REQUEST, format!("bad request target: {e}"))),
        };
        hold_until(arrived + self.delay).await;
        self.forwarded.fetch_add(1, Ordering::SeqCst);
        Ok(match self.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => response.map(Either::Left),
            Err(e) => plain(StatusCode::BAD_GATEWAY, format!("upstream: {e}")),
        })
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let authority = match (args.upstream.scheme(), args.upstream.authority()) {
        (Some(scheme), Some(authority)) if *scheme == Scheme::HTTP => authority.clone(),
        _ => {
            eprintln!("--upstream must be an http:// URL with a host, got {}", args.upstream);
            std::process::exit(2);
        }
    };
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    // The `Host` header is passed on as the client sent it (SigV4 signed it).
    let client = Client::builder(TokioExecutor::new()).set_host(false).build(connector);
    let proxy = Arc::new(Proxy {
        authority,
        delay: Duration::from_millis(args.delay_ms),
        client,
        forwarded: AtomicU64::new(0),
    });
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    eprintln!("delaying requests to {} by {} ms on {}", args.upstream, args.delay_ms, args.listen);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| proxy.clone().forward(request));
            // A client that goes away mid-request is no concern of the measurement.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
