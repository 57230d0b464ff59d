//! A fault-injecting TCP proxy for HTTP/1.1 services (DynamoDB Local, moto): it forwards
//! each request to the upstream and cuts a chosen share of them, by closing the client's
//! connection either before the request reaches the upstream (a clean fault: nothing
//! happened) or after the upstream has answered (an ambiguous one: the write happened, its
//! answer is lost). Clients keep their connections alive as with a real endpoint; every
//! forwarded request gets a fresh upstream connection, so no stale one is ever reused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Where a cut request is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The request never reaches the upstream.
    BeforeUpstream,
    /// The upstream handles the request; its response is thrown away.
    AfterUpstream,
}

/// What the proxy did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyCounts {
    pub forwarded: u64,
    pub cut: u64,
}

#[derive(Debug)]
struct State {
    upstream: SocketAddr,
    /// The share of requests to cut, in millionths.
    share_ppm: AtomicU64,
    after_upstream: AtomicBool,
    /// Requests to cut next, whatever the share (at `after_upstream`).
    cut_next: AtomicU64,
    seed: u64,
    sequence: AtomicU64,
    forwarded: AtomicU64,
    cut: AtomicU64,
}

impl State {
    /// Whether to cut the next request: a seeded, well-mixed sequence, so a run's share of
    /// cuts is close to the one asked for (and reproducible for one client at a time).
    fn next_cut(&self) -> Option<Cut> {
        let n = self.sequence.fetch_add(1, Ordering::SeqCst);
        let chosen = self.cut_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1)).is_ok();
        if chosen || splitmix64(self.seed.wrapping_add(n)) % 1_000_000 < self.share_ppm.load(Ordering::SeqCst) {
            self.cut.fetch_add(1, Ordering::SeqCst);
            Some(if self.after_upstream.load(Ordering::SeqCst) { Cut::AfterUpstream } else { Cut::BeforeUpstream })
        } else {
            None
        }
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://host:port`), cutting nothing until told to.
    pub async fn start(upstream: &str, seed: u64) -> Self {
        let authority = upstream.trim_start_matches("http://").trim_end_matches('/');
        let upstream = tokio::net::lookup_host(authority)
            .await
            .unwrap_or_else(|e| panic!("resolve {authority}: {e}"))
            .next()
            .expect("an upstream address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            upstream,
            share_ppm: AtomicU64::new(0),
            after_upstream: AtomicBool::new(false),
            cut_next: AtomicU64::new(0),
            seed,
            sequence: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            cut: AtomicU64::new(0),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    // A broken connection only ends itself; the client sees it as a fault.
                    let _ = serve_connection(&state, client).await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// The endpoint URL to give a client instead of the upstream's.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, cut `share` (0.0 to 1.0) of the requests, at `cut`.
    pub fn set_faults(&self, share: f64, cut: Cut) {
        self.state.share_ppm.store((share.clamp(0.0, 1.0) * 1_000_000.0) as u64, Ordering::SeqCst);
        self.state.after_upstream.store(cut == Cut::AfterUpstream, Ordering::SeqCst);
    }

    /// Cuts the next `requests` requests at `cut`, then goes back to the share.
    pub fn cut_next(&self, requests: u64, cut: Cut) {
        self.state.after_upstream.store(cut == Cut::AfterUpstream, Ordering::SeqCst);
        self.state.cut_next.store(requests, Ordering::SeqCst);
    }

    pub fn counts(&self) -> ProxyCounts {
        ProxyCounts {
            forwarded: self.state.forwarded.load(Ordering::SeqCst),
            cut: self.state.cut.load(Ordering::SeqCst),
        }
    }
}

async fn serve_connection(state: &State, client: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = client.into_split();
    let mut client = BufReader::new(read);
    loop {
        let Some(head) = read_head(&mut client).await? else { return Ok(()) };
        let request = head.framing(None);
        let mut bytes = head.raw.clone();
        read_body(&mut client, request, &mut bytes).await?;
        let cut = state.next_cut();
        if cut == Some(Cut::BeforeUpstream) {
            // Dropping both halves closes the connection with no response.
            return Ok(());
        }
        let mut upstream = TcpStream::connect(state.upstream).await?;
        upstream.write_all(&bytes).await?;
        let (response, keep_alive) = read_response(&mut BufReader::new(&mut upstream), &head.method).await?;
        state.forwarded.fetch_add(1, Ordering::SeqCst);
        if cut == Some(Cut::AfterUpstream) {
            return Ok(());
        }
        write.write_all(&response).await?;
        if !keep_alive || head.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            return Ok(());
        }
    }
}

/// A request or response head: its raw bytes and what framing needs.
struct Head {
    raw: Vec<u8>,
    method: String,
    status: u16,
    headers: Vec<(String, String)>,
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body's framing; `request_method` is given for a response.
    fn framing(&self, request_method: Option<&str>) -> Framing {
        if let Some(method) = request_method
            && (method == "HEAD" || self.status / 100 == 1 || self.status == 204 || self.status == 304)
        {
            return Framing::None;
        }
        if self.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            return Framing::Chunked;
        }
        match self.header("content-length").and_then(|v| v.trim().parse().ok()) {
            Some(length) => Framing::Length(length),
            None if request_method.is_some() => Framing::UntilClose,
            None => Framing::None,
        }
    }
}

/// Reads a head up to its blank line; `None` when the peer closed before a new message.
async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Head>> {
    let mut raw = Vec::new();
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return if raw.is_empty() { Ok(None) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) };
        }
        raw.extend_from_slice(&line);
        if raw.len() > 256 * 1024 {
            return Err(std::io::Error::other("head too large"));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        if text.is_empty() {
            break;
        }
        lines.push(text);
    }
    let first = lines.first().cloned().unwrap_or_default();
    let mut words = first.split_whitespace();
    let (one, two) = (words.next().unwrap_or_default().to_owned(), words.next().unwrap_or_default());
    let (method, status) = if one.starts_with("HTTP/") { (String::new(), two.parse().unwrap_or(0)) } else { (one, 0) };
    let headers = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())))
        .collect();
    Ok(Some(Head { raw, method, status, headers }))
}

/// Appends a body, framing included, to `out`.
async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    framing: Framing,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    match framing {
        Framing::None => {}
        Framing::Length(length) => {
            let start = out.len();
            out.resize(start + usize::try_from(length).map_err(std::io::Error::other)?, 0);
            reader.read_exact(&mut out[start..]).await?;
        }
        Framing::UntilClose => {
            reader.read_to_end(out).await?;
        }
        Framing::Chunked => loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            out.extend_from_slice(&line);
            let size_text = String::from_utf8_lossy(&line);
            let size = u64::from_str_radix(size_text.trim().split(';').next().unwrap_or("0").trim(), 16)
                .map_err(std::io::Error::other)?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let mut trailer = Vec::new();
                    if reader.read_until(b'\n', &mut trailer).await? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    out.extend_from_slice(&trailer);
                    if trailer == b"\r\n" || trailer == b"\n" {
                        return Ok(());
                    }
                }
            }
            let start = out.len();
            out.resize(start + usize::try_from(size).map_err(std::io::Error::other)? + 2, 0);
            reader.read_exact(&mut out[start..]).await?;
        },
    }
    Ok(())
}

/// Reads a whole response (interim `1xx` ones included); and whether the connection may be
/// kept for another request.
async fn read_response<R: AsyncBufRead + Unpin>(reader: &mut R, method: &str) -> std::io::Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    loop {
        let head = read_head(reader).await?.ok_or(std::io::ErrorKind::UnexpectedEof)?;
        out.extend_from_slice(&head.raw);
        let framing = head.framing(Some(method));
        read_body(reader, framing, &mut out).await?;
        if head.status / 100 != 1 {
            let close = head.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
            return Ok((out, framing != Framing::UntilClose && !close));
        }
    }
}
