//! A scripted OpenAI-compatible chat server on 127.0.0.1, for testing how frontdesk copes with a
//! model provider that is slow, rate limiting, failing, or cutting streams short.
//!
//! It speaks just enough HTTP/1.1: each connection carries one request (every response says
//! `Connection: close`), takes the next scripted reply from a queue (or the fallback reply once
//! the queue is empty), and is recorded, so tests can check how many attempts were made and
//! what each one sent.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How a scripted event stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Chunked body, properly terminated.
    Complete,
    /// Chunked body; the connection is closed without the final chunk (a read error).
    CutChunked,
    /// Body delimited by the connection; it is closed early (a plain end of body).
    CutClose,
}

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    Http {
        status: u16,
        content_type: String,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// `text/event-stream`, written piece by piece with `gap` between pieces.
    Stream {
        pieces: Vec<String>,
        gap: Duration,
        end: StreamEnd,
    },
    /// Reads the request, says nothing for this long, then closes.
    Silent(Duration),
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::Http { status, content_type: "application/json".into(), headers: Vec::new(), body: body.into() }
    }

    /// A complete chat completion with `text`, finish reason `stop` and the given usage.
    pub fn answer(text: &str, prompt_tokens: u32, completion_tokens: u32) -> Reply {
        Reply::json(
            200,
            serde_json::json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop"
                }],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens
                }
            })
            .to_string(),
        )
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Http { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    pub fn stream(pieces: Vec<String>, end: StreamEnd) -> Reply {
        Reply::Stream { pieces, gap: Duration::from_millis(15), end }
    }
}

/// A `data:` event carrying one piece of answer text.
pub fn sse_delta(text: &str) -> String {
    let chunk = serde_json::json!({
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]
    });
    format!("data: {chunk}\n\n")
}

/// A `data:` event with the finish reason and no text.
pub fn sse_finish(reason: &str) -> String {
    let chunk = serde_json::json!({
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]
    });
    format!("data: {chunk}\n\n")
}

/// The usage event sent when `stream_options.include_usage` is set.
pub fn sse_usage(prompt_tokens: u32, completion_tokens: u32) -> String {
    let chunk = serde_json::json!({
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    });
    format!("data: {chunk}\n\n")
}

pub const SSE_DONE: &str = "data: [DONE]\n\n";

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

struct Shared {
    script: Mutex<VecDeque<Reply>>,
    fallback: Reply,
    requests: Mutex<Vec<Recorded>>,
}

/// The server; stops accepting when dropped.
pub struct ScriptedServer {
    base_url: String,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl ScriptedServer {
    /// Serves `script` in order, then HTTP 500 for anything more.
    pub async fn start(script: Vec<Reply>) -> ScriptedServer {
        Self::start_with_fallback(script, Reply::json(500, r#"{"error":"script exhausted"}"#)).await
    }

    /// Serves `script` in order, then `fallback` for every further request.
    pub async fn start_with_fallback(script: Vec<Reply>, fallback: Reply) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let shared = Arc::new(Shared { script: Mutex::new(script.into()), fallback, requests: Mutex::new(Vec::new()) });
        let for_accept = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, for_accept.clone()));
            }
        });
        ScriptedServer { base_url, shared, accept }
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Requests received so far: one per attempt.
    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A local address with nothing listening on it.
pub async fn refused_base_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1")
}

async fn serve(mut socket: TcpStream, shared: Arc<Shared>) {
    let _ = socket.set_nodelay(true);
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let reply = {
        let mut script = shared.script.lock().unwrap();
        script.pop_front().unwrap_or_else(|| shared.fallback.clone())
    };
    shared.requests.lock().unwrap().push(request);
    let _ = respond(&mut socket, reply).await;
}

async fn respond(socket: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Http { status, content_type, headers, body } => {
            let mut head = format!(
                "HTTP/1.1 {status} Scripted\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(body.as_bytes()).await?;
        }
        Reply::Stream { pieces, gap, end } => {
            let chunked = end != StreamEnd::CutClose;
            let mut head = String::from(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n",
            );
            if chunked {
                head.push_str("Transfer-Encoding: chunked\r\n");
            }
            head.push_str("\r\n");
            socket.write_all(head.as_bytes()).await?;
            socket.flush().await?;
            for piece in pieces {
                tokio::time::sleep(gap).await;
                if chunked {
                    let framed = format!("{:x}\r\n{piece}\r\n", piece.len());
                    socket.write_all(framed.as_bytes()).await?;
                } else {
                    socket.write_all(piece.as_bytes()).await?;
                }
                socket.flush().await?;
            }
            if end == StreamEnd::Complete {
                socket.write_all(b"0\r\n\r\n").await?;
            }
        }
        Reply::Silent(wait) => tokio::time::sleep(wait).await,
    }
    socket.flush().await?;
    socket.shutdown().await
}

/// Reads one request: the head up to the blank line, then `Content-Length` bytes of body.
async fn read_request(socket: &mut TcpStream) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let body_start = head_end + 4;
    while buffer.len() < body_start + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buffer[body_start..body_start + length]).into_owned();
    Some(Recorded { method, path, headers, body })
}
