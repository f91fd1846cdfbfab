//! A fault-injecting HTTP proxy on loopback, in front of moto.
//!
//! One request per connection (moto closes every connection anyway). For each request, a
//! [`FaultPlan`] decides: forward it to moto, or answer it with a throttling error in the
//! service's own protocol (EC2 `RequestLimitExceeded`, IAM `Throttling`), a bare 503, or by
//! closing the connection. Counts what it did, so tests can show the SDK's retries.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service's throttling error: EC2 `RequestLimitExceeded` (503), IAM `Throttling` (400).
    Throttle,
    /// A bare HTTP 503.
    Unavailable,
    /// Close the connection without answering.
    Drop,
}

/// Decides, per request (numbered from 0, with its operation name), whether to inject a fault.
pub type FaultPlan = Arc<dyn Fn(usize, &str) -> Option<Fault> + Send + Sync>;

pub struct FaultProxy {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
    pub faults: Arc<AtomicUsize>,
    /// When set, every request is dropped: the endpoint is down.
    pub down: Arc<AtomicBool>,
    /// Requests signed for this region are throttled: the region cannot be read.
    pub blocked_region: Arc<Mutex<Option<String>>>,
    plan: Arc<Mutex<FaultPlan>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listen on a free loopback port and forward to `upstream_port` on 127.0.0.1.
    pub async fn start(upstream_port: u16, plan: FaultPlan) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(AtomicUsize::new(0));
        let faults = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let blocked_region = Arc::new(Mutex::new(None));
        let plan = Arc::new(Mutex::new(plan));
        let (r, f, d, p) = (requests.clone(), faults.clone(), down.clone(), plan.clone());
        let b = blocked_region.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (r, f, d, p, b) = (r.clone(), f.clone(), d.clone(), p.clone(), b.clone());
                tokio::spawn(async move {
                    let _ = serve(client, upstream_port, r, f, d, p, b).await;
                });
            }
        });
        Ok(Self {
            port,
            requests,
            faults,
            down,
            blocked_region,
            plan,
            task,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Throttle every request signed for `region` (None: none).
    pub fn block_region(&self, region: Option<&str>) {
        if let Ok(mut blocked) = self.blocked_region.lock() {
            *blocked = region.map(str::to_owned);
        }
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        if let Ok(mut current) = self.plan.lock() {
            *current = plan;
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every `n`th request (1-based) gets `fault`.
pub fn every_nth(n: usize, fault: Fault) -> FaultPlan {
    Arc::new(move |index, _| ((index + 1) % n == 0).then_some(fault))
}

async fn serve(
    mut client: TcpStream,
    upstream_port: u16,
    requests: Arc<AtomicUsize>,
    faults: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    plan: Arc<Mutex<FaultPlan>>,
    blocked_region: Arc<Mutex<Option<String>>>,
) -> std::io::Result<()> {
    let request = read_request(&mut client).await?;
    let index = requests.fetch_add(1, Ordering::SeqCst);
    let text = String::from_utf8_lossy(&request);
    let operation = operation_of(&text);
    // SigV4's credential scope names the region: Credential=<key>/<date>/<region>/<service>/…
    let blocked = blocked_region
        .lock()
        .ok()
        .and_then(|b| b.clone())
        .is_some_and(|region| text.contains(&format!("/{region}/")));
    let fault = if down.load(Ordering::SeqCst) {
        Some(Fault::Drop)
    } else if blocked {
        Some(Fault::Throttle)
    } else {
        plan.lock().ok().and_then(|p| p(index, &operation))
    };
    if let Some(fault) = fault {
        faults.fetch_add(1, Ordering::SeqCst);
        let iam = text.contains("/iam/aws4_request");
        let response = match fault {
            Fault::Drop => return Ok(()),
            Fault::Unavailable => http(503, "text/plain", "Service Unavailable"),
            Fault::Throttle if iam => http(
                400,
                "text/xml",
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault</RequestId></ErrorResponse>",
            ),
            Fault::Throttle => http(
                503,
                "text/xml",
                "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault</RequestID></Response>",
            ),
        };
        client.write_all(response.as_bytes()).await?;
        return client.shutdown().await;
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port)).await?;
    upstream.write_all(&request).await?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer).await?;
    client.write_all(&answer).await?;
    client.shutdown().await
}

fn http(status: u16, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} Fault\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The request's operation: `Action=` for the query protocols, `X-Amz-Target` for JSON ones.
fn operation_of(request: &str) -> String {
    if let Some(action) = request
        .split(['&', '\n', '?'])
        .find_map(|p| p.trim().strip_prefix("Action="))
    {
        return action.to_owned();
    }
    request
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-amz-target:")
                .then(|| l[13..].trim().to_owned())
        })
        .unwrap_or_default()
}

/// Read one HTTP/1.1 request: the head, then `content-length` bytes of body (also used by the
/// benchmark's stand-in endpoint).
pub async fn read_request(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before a request",
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(buffer)
}
