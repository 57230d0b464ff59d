//! Resource probes of the local server (`colloquy serve`), the way an attacker would try it:
//! large bodies that are declared and stalled, large bodies without a key, thousands of slow
//! connections, and one large legitimate upload. Reports the server's resident memory (peak
//! per phase, from /proc) and a normal client's latency while it is under attack.
//!
//! Usage: `probe SERVER_BINARY` (bench/probe.sh builds both and runs this). `probe hold ADDR N`
//! is the helper mode: holds N slow connections open (reopening them when closed).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: u64 = 1024 * 1024;

/// The server under test and what it printed at start.
struct Server {
    child: Child,
    addr: String,
    key: String,
    _data: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(binary: &str) -> Server {
        let port = free_port();
        let data = std::env::temp_dir().join(format!("colloquy-probe-{}-{port}", std::process::id()));
        let addr = format!("127.0.0.1:{port}");
        let mut child = Command::new(binary)
            .args(["serve", "--addr", &addr, "--data-dir"])
            .arg(&data)
            .env("COLLOQUY_LOG", "warn")
            .env("COLLOQUY_TTS", "none")
            .env("COLLOQUY_STT", "none")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut key = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("server output");
            if let Some(found) = line.split("(shown once): ").nth(1) {
                key = found.trim().to_owned();
                break;
            }
        }
        assert!(key.starts_with("app-"), "the server printed its default key");
        let server = Server { child, addr, key, _data: TempDir(data) };
        for _ in 0..200 {
            if std::net::TcpStream::connect(&server.addr).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the server did not start listening");
    }

    fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }

    fn rss(&self) -> u64 {
        self.status("VmRSS:")
    }

    fn peak(&self) -> u64 {
        self.status("VmHWM:")
    }

    /// Starts a new peak measurement (Linux: writing 5 to clear_refs resets VmHWM).
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / MIB as f64)
}

/// Sends the head of a POST declaring `length` bytes, then up to `send` bytes of body as fast
/// as the server takes them, then stalls (holds the connection) for `hold`.
async fn stalled_post(addr: String, path: &str, key: Option<String>, length: u64, send: u64, hold: Duration) -> u64 {
    let Ok(mut stream) = TcpStream::connect(&addr).await else { return 0 };
    let auth = key.map(|k| format!("authorization: Bearer {k}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: probe\r\n{auth}content-type: multipart/form-data; boundary=XyZ\r\ncontent-length: {length}\r\n\r\n--XyZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\ncontent-type: video/mp4\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return 0;
    }
    let chunk = vec![b'v'; 64 * 1024];
    let mut sent = 0u64;
    let deadline = Instant::now() + hold;
    while sent < send {
        let n = chunk.len().min((send - sent) as usize);
        match tokio::time::timeout_at(deadline.into(), stream.write_all(&chunk[..n])).await {
            Ok(Ok(())) => sent += n as u64,
            _ => break,
        }
    }
    // Stall: keep the connection until the hold ends (or the server closes it).
    hold_until_closed(&mut stream, deadline).await;
    sent
}

/// Keeps a connection open, reading whatever arrives, until `deadline` or until the server
/// closes it.
async fn hold_until_closed(stream: &mut TcpStream, deadline: Instant) {
    let mut buffer = [0u8; 1024];
    let _ = tokio::time::timeout_at(deadline.into(), async {
        while let Ok(n) = stream.read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// A complete multipart upload of `size` bytes of video; the server's answer status.
async fn upload(addr: &str, key: &str, size: u64) -> u16 {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let opening = "--XyZ\r\ncontent-disposition: form-data; name=\"user\"\r\n\r\nprobe\r\n--XyZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\ncontent-type: video/mp4\r\n\r\n";
    let closing = "\r\n--XyZ--\r\n";
    let length = opening.len() as u64 + size + closing.len() as u64;
    let head = format!(
        "POST /v1/files/upload HTTP/1.1\r\nhost: probe\r\nauthorization: Bearer {key}\r\ncontent-type: multipart/form-data; boundary=XyZ\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n{opening}"
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let chunk = vec![b'v'; 256 * 1024];
    let mut sent = 0u64;
    while sent < size {
        let n = chunk.len().min((size - sent) as usize);
        stream.write_all(&chunk[..n]).await.expect("send");
        sent += n as u64;
    }
    stream.write_all(closing.as_bytes()).await.expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// One `GET /v1/info` on a fresh connection: (status, time taken).
async fn normal_request(addr: &str, key: &str) -> (u16, Duration) {
    let started = Instant::now();
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request =
            format!("GET /v1/info HTTP/1.1\r\nhost: probe\r\nauthorization: Bearer {key}\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.ok()?;
        answer.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok())
    };
    let status = tokio::time::timeout(Duration::from_secs(5), attempt).await.ok().flatten().unwrap_or(0);
    (status, started.elapsed())
}

/// Helper mode: holds `count` slow connections (partial headers, nothing more), reopening
/// each one the server closes, for `seconds`.
async fn hold(addr: String, count: usize, seconds: u64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for i in 0..count {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            // Spread the opening over the first seconds.
            tokio::time::sleep(Duration::from_micros((i as u64) * 150)).await;
            let mut opened = 0u32;
            while Instant::now() < deadline {
                let Ok(mut stream) = TcpStream::connect(&addr).await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                opened += 1;
                let _ = stream.write_all(b"GET /v1/info HTTP/1.1\r\nhost: probe\r\nx-slow: ").await;
                hold_until_closed(&mut stream, deadline).await;
                // Closed by the server: pause a little before trying again.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            opened
        }));
    }
    let mut opened = 0u32;
    for task in tasks {
        opened += task.await.unwrap_or(0);
    }
    println!("{opened}");
}

fn raise_file_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            limit = raised;
        }
    }
    #[allow(clippy::unnecessary_cast)] // `rlim_t` is not `u64` on every target
    let current = limit.rlim_cur as u64;
    current
}

#[tokio::main]
async fn main() {
    raise_file_limit();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("hold") {
        hold(args[2].clone(), args[3].parse().unwrap(), args[4].parse().unwrap()).await;
        return;
    }
    let binary = args.get(1).expect("usage: probe SERVER_BINARY");
    let mut results = Vec::new();

    // 1. One 99 MiB upload, on a fresh server.
    let server = Server::start(binary);
    let _ = normal_request(&server.addr, &server.key).await;
    server.reset_peak();
    let idle = server.rss();
    let started = Instant::now();
    let status = upload(&server.addr, &server.key, 99 * MIB).await;
    let peak = server.peak();
    results.push(format!(
        "one 99 MiB upload: status {status} in {:.2} s | idle {} | peak {} (target < 2 × idle + 16 MB = {})",
        started.elapsed().as_secs_f64(),
        mb(idle),
        mb(peak),
        mb(2 * idle + 16 * MIB)
    ));
    println!("{}", results.last().unwrap());
    drop(server);

    // 2. Bodies without a key: 20 stalled 95 MiB uploads, then 10 concurrent 200 MB bodies.
    let server = Server::start(binary);
    let _ = normal_request(&server.addr, &server.key).await;
    let idle = server.rss();
    server.reset_peak();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        stalled.push(tokio::spawn(stalled_post(
            server.addr.clone(),
            "/v1/files/upload",
            None,
            95 * MIB,
            95 * MIB,
            Duration::from_secs(15),
        )));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut floods = Vec::new();
    for i in 0..10 {
        let path = if i % 2 == 0 { "/v1/files/upload" } else { "/v1/no-such-route" };
        floods.push(tokio::spawn(stalled_post(
            server.addr.clone(),
            path,
            None,
            200 * 1000 * 1000,
            200 * 1000 * 1000,
            Duration::from_secs(10),
        )));
    }
    let mut accepted = 0u64;
    for task in floods.into_iter().chain(stalled) {
        accepted += task.await.unwrap_or(0);
    }
    let peak = server.peak();
    results.push(format!(
        "no key: 20 stalled 95 MiB uploads + 10 × 200 MB bodies | idle {} | peak {} (target < 64 MB) | after {} | body bytes the server let in: {}",
        mb(idle),
        mb(peak),
        mb(server.rss()),
        mb(accepted)
    ));
    println!("{}", results.last().unwrap());

    // 3. With the key: 20 stalled 95 MiB uploads stream to disk, never held in memory.
    server.reset_peak();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        stalled.push(tokio::spawn(stalled_post(
            server.addr.clone(),
            "/v1/files/upload",
            Some(server.key.clone()),
            95 * MIB,
            60 * MIB,
            Duration::from_secs(12),
        )));
    }
    let mut sent = 0u64;
    for task in stalled {
        sent += task.await.unwrap_or(0);
    }
    results.push(format!(
        "with key: 20 uploads of 95 MiB that stall after 60 MiB | sent {} | peak {} | after {}",
        mb(sent),
        mb(server.peak()),
        mb(server.rss())
    ));
    println!("{}", results.last().unwrap());

    drop(server);

    // 4. 21,000 slow connections (three helper processes, 7,000 each), and a normal client.
    let server = Server::start(binary);
    let _ = normal_request(&server.addr, &server.key).await;
    server.reset_peak();
    let seconds = 25;
    let me = std::env::current_exe().unwrap();
    let holders: Vec<Child> = (0..3)
        .map(|_| {
            Command::new(&me)
                .args(["hold", &server.addr, "7000", &seconds.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a holder")
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut worst = Duration::ZERO;
    let mut failures = 0;
    let mut served = 0;
    let until = Instant::now() + Duration::from_secs(seconds - 5);
    while Instant::now() < until {
        let (status, took) = normal_request(&server.addr, &server.key).await;
        if status == 200 {
            served += 1;
            worst = worst.max(took);
        } else {
            failures += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut opened = 0u64;
    for holder in holders {
        let output = holder.wait_with_output().expect("holder output");
        opened += String::from_utf8_lossy(&output.stdout).trim().parse::<u64>().unwrap_or(0);
    }
    results.push(format!(
        "21,000 slow connections ({opened} opened in all): normal client served {served}, failed {failures}, slowest {:.0} ms (target < 1000 ms) | server peak {}",
        worst.as_secs_f64() * 1000.0,
        mb(server.peak())
    ));
    println!("{}", results.last().unwrap());
}
