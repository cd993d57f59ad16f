//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;
use weft_http::{HttpClient, HttpSettings};

/// Settings with short delays so retry tests run fast.
pub fn fast_settings() -> HttpSettings {
    HttpSettings {
        max_attempts: 4,
        max_retry_secs: 30,
        initial_backoff_ms: 10,
        max_backoff_ms: 50,
        min_retry_after_ms: 200,
        connect_timeout_secs: 5,
        request_timeout_secs: 10,
    }
}

/// A client without auth at `uri`.
pub fn client(uri: &str) -> HttpClient {
    HttpClient::builder("test", Url::parse(uri).unwrap())
        .settings(fast_settings())
        .build()
        .unwrap()
}

/// What a raw TCP test server does with one connection.
#[derive(Clone)]
pub enum Raw {
    /// Accept, then close without answering.
    Drop,
    /// Read the request, write these bytes, close.
    Send(Vec<u8>),
}

/// A raw HTTP/1.1 server that handles connection i with `actions[i]` (the
/// last action repeats). Returns its base URI and the connection counter.
pub async fn raw_server(actions: Vec<Raw>) -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(Mutex::new(0usize));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let i = {
                let mut g = c.lock().unwrap();
                *g += 1;
                *g - 1
            };
            let action = actions[i.min(actions.len() - 1)].clone();
            tokio::spawn(async move {
                match action {
                    Raw::Drop => drop(sock),
                    Raw::Send(bytes) => {
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 1024];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let _ = sock.write_all(&bytes).await;
                        let _ = sock.shutdown().await;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

/// A complete JSON response with `Connection: close`.
pub fn http_json(body: &str) -> Vec<u8> {
    http_json_bytes(body.as_bytes())
}

/// A complete response with `Connection: close` whose body is any bytes.
pub fn http_json_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}
