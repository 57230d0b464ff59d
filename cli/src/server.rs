//! Serves [`colloquy_core::api`] over HTTP/1.1 with hyper, defensively: a request's route, key and
//! declared size are checked before its body is read (by `colloquy_core::api::handle_incoming`),
//! bodies arrive as streams with a time-out between pieces, headers must arrive within a
//! time-out, idle keep-alive connections are closed, and both connections and requests in
//! flight are capped. One log line per request; graceful shutdown.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use colloquy_core::api::error::ApiError;
use colloquy_core::api::{
    ApiRequest, ApiResponse, BodyError, BodyStream, IncomingBody, ResponseBody, Services, handle_incoming,
};
use futures_util::{Stream, StreamExt};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

/// How the server protects itself from slow, idle and numerous clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Time a client has to send a request's headers once it started (or its connection opened).
    pub header_timeout: Duration,
    /// Longest wait for the next piece of a request body; 408 after it.
    pub body_timeout: Duration,
    /// How long a connection with no request in flight and nothing sent stays open.
    pub idle_timeout: Duration,
    /// Open connections at most; beyond it the oldest idle one is closed for a new one.
    pub max_connections: usize,
    /// Requests in flight at most; beyond it requests are answered 503 with `Retry-After`.
    pub max_in_flight: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self::from_settings(&colloquy_core::settings::Settings::defaults().server, None)
    }
}

/// Serves with the default limits until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    services: Services,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, services, ServerLimits::default(), shutdown).await
}

/// The API's OpenAPI 3.1 document (the repository's `openapi.yaml`).
pub const OPENAPI: &str = include_str!("../../openapi.yaml");

/// What every connection task shares.
struct Server {
    services: Services,
    limits: ServerLimits,
    in_flight: Arc<Semaphore>,
    connections: Registry,
    started: Instant,
}

impl Server {
    fn millis(&self) -> u64 {
        millis_since(self.started)
    }
}

/// Serves until `shutdown` completes, then stops accepting, lets requests in flight finish and
/// returns once every connection has closed.
pub async fn serve_with(
    listener: TcpListener,
    services: Services,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server = Arc::new(Server {
        services,
        limits,
        in_flight: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
        connections: Registry::default(),
        started: Instant::now(),
    });
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => accept(&server, stream, stopping.clone()),
                Err(error) => {
                    // Out of file descriptors (or a transient network error): make room, pause.
                    tracing::warn!(%error, "accept failed");
                    server.connections.evict_oldest_idle();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    let _ = stop.send(true);
    server.connections.wait_empty().await;
    Ok(())
}

/// Registers a new connection (closing the oldest idle one when at the cap) and serves it.
fn accept(server: &Arc<Server>, stream: TcpStream, stopping: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let state = Arc::new(ConnState::new(server.millis()));
    let Some(id) = server.connections.admit(&state, server.limits.max_connections) else {
        // Every connection is busy with a request: refuse this one politely.
        tokio::spawn(refuse(stream));
        return;
    };
    let server = server.clone();
    tokio::spawn(async move {
        serve_connection(&server, stream, &state, stopping).await;
        server.connections.remove(id);
    });
}

/// A raw 503 for a connection the server has no room for.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str =
        r#"{"code":"service_unavailable","message":"The server is busy. Please try again later.","status":503}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(response.as_bytes())).await;
}

async fn serve_connection(
    server: &Arc<Server>,
    stream: TcpStream,
    state: &Arc<ConnState>,
    mut stopping: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched { inner: stream, state: state.clone() });
    let service = {
        let server = server.clone();
        let state = state.clone();
        service_fn(move |request| {
            let server = server.clone();
            let state = state.clone();
            // Boxed: hyper keeps room for one request future in every connection, and ours
            // (the whole API's state machine) is large; idle connections should cost little.
            Box::pin(async move { Ok::<_, Infallible>(respond(&server, state, request).await) })
                as Pin<Box<dyn Future<Output = Result<Response<Outgoing>, Infallible>> + Send>>
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(server.limits.header_timeout)
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let mut shutting_down = *stopping.borrow();
    if shutting_down {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = connection.as_mut() => break,
            // Dropping the connection closes it.
            () = state.evict.notified() => break,
            changed = stopping.changed(), if !shutting_down => {
                shutting_down = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep(server.limits.idle_timeout) => {
                if state.idle_for(server.millis()) >= server.limits.idle_timeout {
                    break;
                }
            }
        }
    }
}

async fn respond(server: &Server, state: Arc<ConnState>, request: Request<Incoming>) -> Response<Outgoing> {
    let started = Instant::now();
    state.begin();
    let done = Done { state, started: server.started };
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let response = if colloquy_core::console::is_console(&path) {
        (colloquy_core::console::respond(&method, &path), None)
    } else if path == "/openapi.yaml" && matches!(method, Method::GET | Method::HEAD) {
        let mut headers = http::HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(OPENAPI.len()));
        let body = if method == Method::HEAD { Bytes::new() } else { Bytes::from_static(OPENAPI.as_bytes()) };
        (ApiResponse { status: StatusCode::OK, headers, body: ResponseBody::Full(body) }, None)
    } else {
        match server.in_flight.clone().try_acquire_owned() {
            Ok(permit) => {
                let request = ApiRequest {
                    method: parts.method,
                    path: path.clone(),
                    query: parts.uri.query().unwrap_or("").to_owned(),
                    headers: parts.headers,
                    body: Bytes::new(),
                };
                let body = IncomingBody::Stream(timed(body, server.limits.body_timeout));
                (handle_incoming(&server.services, request, body).await, Some(permit))
            }
            Err(_) => (ApiError::Overloaded { retry_after: 1 }.into_response(), None),
        }
    };
    let (response, permit) = response;
    tracing::info!(
        %method,
        %path,
        status = response.status.as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    into_hyper(response, Guards { _done: done, _permit: permit })
}

/// A request body as a stream of chunks, failing when the next piece takes longer than `gap`.
fn timed(body: Incoming, gap: Duration) -> BodyStream {
    Box::pin(futures_util::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout(gap, body.frame()).await {
            Err(_) => Some((Err(BodyError::TimedOut), None)),
            Ok(None) => None,
            Ok(Some(Err(error))) => {
                let detail = if error.is_incomplete_message() {
                    "the connection closed before the body was complete"
                } else {
                    "invalid body framing"
                };
                tracing::debug!(%error, "request body failed");
                Some((Err(BodyError::Malformed(detail.into())), None))
            }
            // Trailers carry no body bytes.
            Ok(Some(Ok(frame))) => Some((Ok(frame.into_data().unwrap_or_default()), Some(body))),
        }
    }))
}

fn into_hyper(response: ApiResponse, guards: Guards) -> Response<Outgoing> {
    let kind = match response.body {
        ResponseBody::Full(bytes) => Kind::Full(Some(bytes)),
        ResponseBody::Stream(stream) => Kind::Stream(stream),
    };
    let mut out = Response::new(Outgoing { kind, _guards: guards });
    *out.status_mut() = response.status;
    *out.headers_mut() = response.headers;
    out
}

/// What a request holds until its response has been sent (or abandoned).
struct Guards {
    _done: Done,
    _permit: Option<OwnedSemaphorePermit>,
}

/// A response body that releases the request's slot when hyper is finished with it.
pub struct Outgoing {
    kind: Kind,
    _guards: Guards,
}

enum Kind {
    Full(Option<Bytes>),
    Stream(Pin<Box<dyn Stream<Item = Bytes> + Send>>),
}

impl Body for Outgoing {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b)))),
            Kind::Stream(stream) => stream.poll_next_unpin(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.kind, Kind::Full(bytes) if bytes.as_ref().is_none_or(Bytes::is_empty))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

/// What the server knows of one connection, for idle time-outs and eviction.
struct ConnState {
    /// Requests of this connection whose responses are not finished.
    in_flight: AtomicUsize,
    /// Bytes arrived since the last response finished (a request is on its way).
    reading: AtomicBool,
    /// When the last response finished (or the connection opened), in server milliseconds.
    last_done: AtomicU64,
    evict: Notify,
}

impl ConnState {
    fn new(now: u64) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            reading: AtomicBool::new(false),
            last_done: AtomicU64::new(now),
            evict: Notify::new(),
        }
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    fn end(&self, now: u64) {
        self.last_done.store(now, Ordering::SeqCst);
        self.reading.store(false, Ordering::SeqCst);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// No request in flight (whatever has been sent of the next one): may be closed for room.
    fn evictable(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }

    /// How long the connection has been idle: no request in flight and nothing received.
    fn idle_for(&self, now: u64) -> Duration {
        if !self.evictable() || self.reading.load(Ordering::SeqCst) {
            return Duration::ZERO;
        }
        Duration::from_millis(now.saturating_sub(self.last_done.load(Ordering::SeqCst)))
    }
}

/// Marks the end of a request when dropped (with its response body).
struct Done {
    state: Arc<ConnState>,
    /// The server's start, which connection times count from.
    started: Instant,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.state.end(millis_since(self.started));
    }
}

fn millis_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The open connections, oldest first.
#[derive(Default)]
struct Registry {
    open: Mutex<(u64, BTreeMap<u64, Arc<ConnState>>)>,
    emptied: Notify,
}

impl Registry {
    /// Adds a connection; at the cap, closes the oldest idle one first. `None` when every
    /// open connection has a request in flight.
    fn admit(&self, state: &Arc<ConnState>, cap: usize) -> Option<u64> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if open.1.len() >= cap.max(1) && !Self::evict_from(&mut open.1) {
            return None;
        }
        open.0 += 1;
        let id = open.0;
        open.1.insert(id, state.clone());
        Some(id)
    }

    fn evict_oldest_idle(&self) {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Self::evict_from(&mut open.1);
    }

    /// Closes the oldest connection without a request in flight; false when there is none.
    fn evict_from(open: &mut BTreeMap<u64, Arc<ConnState>>) -> bool {
        let Some(id) = open.iter().find(|(_, c)| c.evictable()).map(|(id, _)| *id) else { return false };
        if let Some(victim) = open.remove(&id) {
            victim.evict.notify_one();
        }
        true
    }

    fn remove(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.1.remove(&id);
        if open.1.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    fn is_empty(&self) -> bool {
        self.open.lock().map(|open| open.1.is_empty()).unwrap_or(true)
    }

    async fn wait_empty(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.is_empty() {
                return;
            }
            // Evicted connections leave the map before their tasks end; poll as a fallback.
            let _ = tokio::time::timeout(Duration::from_millis(100), emptied).await;
        }
    }
}

/// A connection's socket that notes when bytes arrive.
struct Watched {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.state.reading.store(true, Ordering::SeqCst);
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Binds a listener with a deep accept queue (4,096, as far as the kernel allows), so a burst
/// of new connections does not make clients wait for a SYN retransmission.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Raises this process's open-file limit to its hard limit and returns the soft limit now in
/// force (each connection is a file descriptor).
pub fn raise_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // `rlim_t` is not `u64` on every target
    let current = limit.rlim_cur as u64;
    Some(current)
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
