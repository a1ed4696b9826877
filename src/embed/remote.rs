//! An embedder backed by an OpenAI-compatible `POST {base_url}/embeddings` endpoint.
//!
//! Some teams would rather use a hosted or self-hosted embedding service than run MiniLM on the
//! support server. This client sends texts in batches, puts the returned vectors back in input
//! order by their `index`, checks each has the configured length (so a misconfigured model is
//! caught before it pollutes the index) and L2-normalises them like the local embedder does.
//! The API key is only ever sent as a Bearer header: it is redacted from `Debug` output and never
//! copied into error messages.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{l2_normalize, EmbedError, Embedder};

/// Longest piece of an error response body quoted in an error message.
const BODY_EXCERPT_CHARS: usize = 300;

/// Settings for [`RemoteEmbedder`].
#[derive(Clone)]
pub struct RemoteEmbedderConfig {
    /// Base URL of the API, e.g. `https://api.openai.com/v1`; `/embeddings` is appended.
    pub base_url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<SecretString>,
    /// Length every returned vector must have.
    pub dimensions: usize,
    /// Texts per request.
    pub batch_size: usize,
    /// Timeout for each request.
    pub timeout: Duration,
}

impl std::fmt::Debug for RemoteEmbedderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteEmbedderConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("dimensions", &self.dimensions)
            .field("batch_size", &self.batch_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Embeds through an OpenAI-compatible HTTP API.
#[derive(Debug, Clone)]
pub struct RemoteEmbedder {
    config: RemoteEmbedderConfig,
    url: String,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct EmbeddingRequest<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    index: usize,
}

impl RemoteEmbedder {
    /// Builds the client. Fails only if the HTTP client cannot be set up.
    pub fn new(config: RemoteEmbedderConfig) -> Result<Self, EmbedError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| EmbedError::Remote(format!("cannot set up the HTTP client: {e}")))?;
        let url = format!("{}/embeddings", config.base_url.trim_end_matches('/'));
        Ok(RemoteEmbedder { config, url, client })
    }

    /// The endpoint requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut request =
            self.client.post(&self.url).json(&EmbeddingRequest { model: &self.config.model, input: texts });
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        // reqwest errors carry the URL, never the headers, so the key cannot leak through them.
        let response =
            request.send().await.map_err(|e| EmbedError::Remote(format!("request to {} failed: {e}", self.url)))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| EmbedError::Remote(format!("reading the response from {} failed: {e}", self.url)))?;
        if !status.is_success() {
            return Err(EmbedError::Remote(format!("{} returned HTTP {status}: {}", self.url, excerpt(&body))));
        }
        let parsed: EmbeddingResponse = serde_json::from_str(&body).map_err(|e| {
            EmbedError::Remote(format!("{} returned an unexpected response ({e}): {}", self.url, excerpt(&body)))
        })?;
        self.collect(texts.len(), parsed)
    }

    /// Orders vectors by `index`, checks count and length, and normalises them.
    fn collect(&self, expected: usize, response: EmbeddingResponse) -> Result<Vec<Vec<f32>>, EmbedError> {
        if response.data.len() != expected {
            return Err(EmbedError::Remote(format!(
                "{} returned {} embeddings for {expected} inputs",
                self.url,
                response.data.len()
            )));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for item in response.data {
            if item.embedding.len() != self.config.dimensions {
                return Err(EmbedError::Remote(format!(
                    "model {} returned a {}-dimensional embedding but {} dimensions are \
                     configured; set the embedding dimensions to match the model",
                    self.config.model,
                    item.embedding.len(),
                    self.config.dimensions
                )));
            }
            let Some(slot) = slots.get_mut(item.index) else {
                return Err(EmbedError::Remote(format!(
                    "{} returned an embedding with index {} for {expected} inputs",
                    self.url, item.index
                )));
            };
            if slot.is_some() {
                return Err(EmbedError::Remote(format!("{} returned index {} twice", self.url, item.index)));
            }
            let mut vector = item.embedding;
            l2_normalize(&mut vector);
            *slot = Some(vector);
        }
        // Every slot is filled: there are `expected` distinct in-range indices.
        Ok(slots.into_iter().flatten().collect())
    }
}

/// The start of a response body, on one line, for error messages.
fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > BODY_EXCERPT_CHARS {
        let cut: String = flat.chars().take(BODY_EXCERPT_CHARS).collect();
        format!("{cut}…")
    } else if flat.is_empty() {
        "(empty body)".to_string()
    } else {
        flat
    }
}

#[async_trait]
impl Embedder for RemoteEmbedder {
    fn model_id(&self) -> &str {
        &self.config.model
    }

    fn dimensions(&self) -> usize {
        self.config.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size.max(1)) {
            vectors.extend(self.embed_batch(batch).await?);
        }
        Ok(vectors)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::net::{TcpListener, TcpStream};

    const KEY: &str = "sk-test-very-secret-key";

    /// Serves each connection with the next canned (status line, body) pair and records the
    /// raw requests.
    async fn serve(responses: Vec<(&'static str, String)>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            for (status, body) in responses {
                let (stream, _) = listener.accept().await.unwrap();
                let request = read_request(&stream).await;
                log.lock().unwrap().push(request);
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                write_all(&stream, reply.as_bytes()).await;
            }
        });
        (format!("http://{addr}/v1"), seen)
    }

    async fn read_request(stream: &TcpStream) -> String {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            stream.readable().await.unwrap();
            match stream.try_read(&mut buf) {
                Ok(0) => break,
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("read failed: {e}"),
            }
            let text = String::from_utf8_lossy(&data);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())
                            .flatten()
                    })
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    break;
                }
            }
        }
        String::from_utf8_lossy(&data).into_owned()
    }

    async fn write_all(stream: &TcpStream, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            stream.writable().await.unwrap();
            match stream.try_write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("write failed: {e}"),
            }
        }
    }

    fn config(base_url: String, dimensions: usize, batch_size: usize) -> RemoteEmbedderConfig {
        RemoteEmbedderConfig {
            base_url,
            model: "text-embed-test".to_string(),
            api_key: Some(SecretString::from(KEY)),
            dimensions,
            batch_size,
            timeout: Duration::from_secs(10),
        }
    }

    fn texts(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn good_response_is_ordered_by_index_and_normalised() {
        // Out of order on purpose.
        let body = r#"{"object":"list","data":[
            {"object":"embedding","embedding":[0.0,4.0,0.0],"index":1},
            {"object":"embedding","embedding":[3.0,0.0,4.0],"index":0}],
            "model":"text-embed-test"}"#
            .to_string();
        let second = r#"{"data":[{"embedding":[0.0,0.0,2.0],"index":0}]}"#.to_string();
        let (url, seen) = serve(vec![("200 OK", body), ("200 OK", second)]).await;
        let embedder = RemoteEmbedder::new(config(format!("{url}/"), 3, 2)).unwrap();
        assert_eq!(embedder.url(), format!("{url}/embeddings"));
        assert_eq!(embedder.model_id(), "text-embed-test");
        assert_eq!(embedder.dimensions(), 3);

        let vectors = embedder.embed(&texts(&["first", "second", "third"])).await.unwrap();
        assert_eq!(vectors, vec![vec![0.6, 0.0, 0.8], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0]]);

        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests.len(), 2);
        assert!(requests[0].starts_with("POST /v1/embeddings HTTP/1.1"));
        assert!(requests[0].contains(&format!("Bearer {KEY}")));
        let body = requests[0].split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json, serde_json::json!({"model": "text-embed-test", "input": ["first", "second"]}));
        assert!(requests[1].contains(r#""input":["third"]"#));
    }

    #[tokio::test]
    async fn no_key_means_no_authorization_header() {
        let body = r#"{"data":[{"embedding":[1.0,0.0],"index":0}]}"#.to_string();
        let (url, seen) = serve(vec![("200 OK", body)]).await;
        let mut cfg = config(url, 2, 8);
        cfg.api_key = None;
        let embedder = RemoteEmbedder::new(cfg).unwrap();
        embedder.embed(&texts(&["x"])).await.unwrap();
        let request = seen.lock().unwrap()[0].to_ascii_lowercase();
        assert!(!request.contains("authorization"));
    }

    #[tokio::test]
    async fn wrong_dimension_is_a_clear_error() {
        let body = r#"{"data":[{"embedding":[1.0,2.0,3.0,4.0],"index":0}]}"#.to_string();
        let (url, _) = serve(vec![("200 OK", body)]).await;
        let embedder = RemoteEmbedder::new(config(url, 3, 8)).unwrap();
        let err = embedder.embed(&texts(&["x"])).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EmbedError::Remote(_)));
        assert!(msg.contains("4-dimensional") && msg.contains("3 dimensions"), "{msg}");
    }

    #[tokio::test]
    async fn server_error_reports_status_and_body_but_not_the_key() {
        let body = format!(r#"{{"error":{{"message":"upstream exploded","detail":"{}"}}}}"#, "x".repeat(1000));
        let (url, _) = serve(vec![("500 Internal Server Error", body)]).await;
        let embedder = RemoteEmbedder::new(config(url, 3, 8)).unwrap();
        let err = embedder.embed(&texts(&["x"])).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("500") && msg.contains("upstream exploded"), "{msg}");
        assert!(msg.chars().count() < 600, "excerpt too long: {msg}");
        assert!(!msg.contains(KEY));
        assert!(!format!("{err:?}").contains(KEY));
    }

    #[tokio::test]
    async fn missing_or_duplicate_indices_are_errors() {
        let dup = r#"{"data":[{"embedding":[1.0],"index":0},{"embedding":[1.0],"index":0}]}"#;
        let short = r#"{"data":[{"embedding":[1.0],"index":0}]}"#;
        let (url, _) = serve(vec![("200 OK", dup.to_string()), ("200 OK", short.to_string())]).await;
        let embedder = RemoteEmbedder::new(config(url, 1, 8)).unwrap();
        let err = embedder.embed(&texts(&["a", "b"])).await.unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        let err = embedder.embed(&texts(&["a", "b"])).await.unwrap_err();
        assert!(err.to_string().contains("1 embeddings for 2 inputs"), "{err}");
    }

    #[tokio::test]
    async fn empty_input_sends_nothing() {
        let embedder = RemoteEmbedder::new(config("http://127.0.0.1:9".to_string(), 3, 8)).unwrap();
        assert!(embedder.embed(&[]).await.unwrap().is_empty());
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let embedder = RemoteEmbedder::new(config("http://127.0.0.1:9".to_string(), 3, 8)).unwrap();
        let debug = format!("{embedder:?}");
        assert!(!debug.contains(KEY), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");
        assert!(!format!("{:?}", config(String::new(), 3, 8)).contains(KEY));
    }
}
