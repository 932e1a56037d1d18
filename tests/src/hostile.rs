//! Misbehaving webhook endpoints on 127.0.0.1, written on raw TCP because a well-behaved HTTP
//! server cannot hang, reset or stream forever on purpose. Each counts the connections it got.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Reads the request and never answers, keeping the connection open.
    Hang,
    /// Reads the start of the request, then resets the connection (RST, zero linger).
    Reset,
    /// Answers `status` with `length` bytes of body (endless when `None`), written
    /// `chunk` bytes at a time with `pause` between writes.
    Stream {
        status: u16,
        length: Option<usize>,
        chunk: usize,
        pause: Option<Duration>,
    },
}

pub struct Endpoint {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Endpoint {
    pub async fn hanging() -> Self {
        Self::start(Behaviour::Hang).await
    }

    pub async fn resetting() -> Self {
        Self::start(Behaviour::Reset).await
    }

    /// Answers `status` with a body of exactly `length` bytes, sent as fast as possible.
    pub async fn answering(status: u16, length: usize) -> Self {
        Self::start(Behaviour::Stream {
            status,
            length: Some(length),
            chunk: 64 * 1024,
            pause: None,
        })
        .await
    }

    /// Answers 200 and then sends a body that never ends, `chunk` bytes every `pause`.
    pub async fn endless(chunk: usize, pause: Duration) -> Self {
        Self::start(Behaviour::Stream {
            status: 200,
            length: None,
            chunk,
            pause: Some(pause),
        })
        .await
    }

    async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, behaviour));
            }
        });
        Self {
            addr,
            connections,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, behaviour: Behaviour) {
    match behaviour {
        Behaviour::Hang => {
            let mut sink = [0u8; 4096];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        }
        Behaviour::Reset => {
            let mut first = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut first)).await;
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Behaviour::Stream {
            status,
            length,
            chunk,
            pause,
        } => {
            if !read_request(&mut stream).await {
                return;
            }
            let length_header = length
                .map(|n| format!("content-length: {n}\r\n"))
                .unwrap_or_default();
            let head = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-type: text/plain\r\nconnection: close\r\n{length_header}\r\n"
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'x'; chunk];
            let mut left = length.unwrap_or(usize::MAX);
            while left > 0 {
                let n = chunk.min(left);
                if stream.write_all(&block[..n]).await.is_err() {
                    return;
                }
                left -= n;
                if let Some(p) = pause {
                    tokio::time::sleep(p).await;
                }
            }
            let _ = stream.shutdown().await;
        }
    }
}

/// Reads the request head and its `content-length` body, so that closing the connection
/// afterwards sends FIN rather than RST; false if the peer went away first.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let body_len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = data.len() - head_end;
    while have < body_len {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => have += n,
        }
    }
    true
}
