//! A small HTTP(S) probe for the verify and dns checks: one GET, no redirect
//! following (a 301/302 is an answer), an optional `Host` header so the check
//! can reach a site through a base URL that is not its own name (the local
//! stand-in), an optional address to connect to instead of the URL's host
//! (verify reaches a tenant through its load balancer before any DNS record
//! exists, with the tenant's name as SNI and Host), and a timeout.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// HTTP status.
    pub status: u16,
    /// `Location`, for redirects.
    pub location: Option<String>,
}

/// Why a probe got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The URL could not be parsed.
    #[error("{url}: not a valid URL: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer in time.
    #[error("{url}: no answer within {seconds} s")]
    Timeout {
        /// The URL.
        url: String,
        /// The limit.
        seconds: u64,
    },
    /// Connection or protocol failure.
    #[error("{url}: {source}")]
    Request {
        /// The URL.
        url: String,
        /// The client's error.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The TLS settings were refused (no protocol version in common with the crypto provider).
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] rustls::Error),
}

/// Resolves every name to the addresses of one other host: the URL keeps
/// the tenant's name (so it is the TLS SNI and the `Host`), the connection
/// goes to the load balancer.
#[derive(Clone)]
struct ConnectTo(Arc<str>);

impl tower_service::Service<Name> for ConnectTo {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _name: Name) -> Self::Future {
        let target = self.0.clone();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port on every address.
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((&*target, 0)).await?.collect();
            Ok(addresses.into_iter())
        })
    }
}

type Https<R> = hyper_rustls::HttpsConnector<HttpConnector<R>>;

/// An HTTP/HTTPS client built once per cold start.
#[derive(Clone)]
pub struct Prober {
    client: Client<Https<hyper_util::client::legacy::connect::dns::GaiResolver>, Empty<Bytes>>,
    tls: rustls::ClientConfig,
    timeout: Duration,
}

fn https<R>(tls: rustls::ClientConfig, http: HttpConnector<R>) -> Https<R> {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

impl Prober {
    /// A client trusting the roots of [`crate::tls::root_store`].
    pub fn new(timeout: Duration) -> Result<Self, ProbeError> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(ProbeError::Tls)?
        .with_root_certificates(crate::tls::root_store())
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https(tls.clone(), http)),
            tls,
            timeout,
        })
    }

    /// `GET url`, with `Host: host` when given.
    pub async fn get(&self, url: &str, host: Option<&str>) -> Result<ProbeResult, ProbeError> {
        self.send(&self.client, url, host).await
    }

    /// `GET url` (its host is the TLS SNI and the `Host`), connecting to
    /// `connect_to` (a DNS name or an IP address) instead of the URL's host.
    pub async fn get_via(&self, url: &str, connect_to: &str) -> Result<ProbeResult, ProbeError> {
        let mut http = HttpConnector::new_with_resolver(ConnectTo(connect_to.into()));
        http.enforce_http(false);
        let client = Client::builder(TokioExecutor::new()).build(https(self.tls.clone(), http));
        self.send(&client, url, None).await
    }

    async fn send<C>(
        &self,
        client: &Client<C, Empty<Bytes>>,
        url: &str,
        host: Option<&str>,
    ) -> Result<ProbeResult, ProbeError>
    where
        C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    {
        let uri: hyper::Uri =
            url.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| ProbeError::Url {
                    url: url.into(),
                    reason: e.to_string(),
                })?;
        let mut request = hyper::Request::get(uri).header("user-agent", "stepdeploy-verify/1");
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| ProbeError::Url {
                url: url.into(),
                reason: e.to_string(),
            })?;
        let _clock = crate::timing::InFlight::start(crate::timing::External::Http);
        let response = tokio::time::timeout(self.timeout, client.request(request))
            .await
            .map_err(|_| ProbeError::Timeout {
                url: url.into(),
                seconds: self.timeout.as_secs(),
            })?
            .map_err(|source| ProbeError::Request {
                url: url.into(),
                source,
            })?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // Drain the body so the connection can be reused; its content does not matter.
        let _ = tokio::time::timeout(self.timeout, response.into_body().collect()).await;
        Ok(ProbeResult { status, location })
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`%XX` and `+`); a
/// malformed escape is kept as it is. The approval page's form bodies, and
/// IAM's policy documents (IAM answers them URL-encoded).
pub fn url_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One HTTP check, as the verify and dns phases need it.
pub trait Site: Send + Sync {
    /// Status of `GET url` with `Host: host`, or why there was none.
    fn status(
        &self,
        url: &str,
        host: &str,
    ) -> impl std::future::Future<Output = Result<u16, String>> + Send;
    /// Status of `GET url` connecting to `connect_to` instead of the URL's host.
    fn status_via(
        &self,
        url: &str,
        connect_to: &str,
    ) -> impl std::future::Future<Output = Result<u16, String>> + Send;
}

impl Site for Prober {
    async fn status(&self, url: &str, host: &str) -> Result<u16, String> {
        self.get(url, Some(host))
            .await
            .map(|r| r.status)
            .map_err(|e| e.to_string())
    }

    async fn status_via(&self, url: &str, connect_to: &str) -> Result<u16, String> {
        self.get_via(url, connect_to)
            .await
            .map(|r| r.status)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server on loopback that answers `status` and echoes the Host it saw.
    async fn serve_once(status: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await.expect("read");
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let response = format!("HTTP/1.1 {status}\r\nLocation: /wp-login.php\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            socket.write_all(response.as_bytes()).await.expect("write");
            request
        });
        (format!("http://{addr}/"), handle)
    }

    #[tokio::test]
    async fn sends_host_header_and_does_not_follow_redirects() {
        let (url, server) = serve_once("302 Found").await;
        let prober = Prober::new(Duration::from_secs(5)).expect("client");
        let result = prober
            .get(&url, Some("goldencrust.wpdev.kimmyai.io"))
            .await
            .expect("answer");
        assert_eq!(
            result,
            ProbeResult {
                status: 302,
                location: Some("/wp-login.php".into())
            }
        );
        let request = server.await.expect("server").to_ascii_lowercase();
        assert!(
            request.contains("host: goldencrust.wpdev.kimmyai.io"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn connects_to_another_address_keeping_the_urls_host() {
        let (url, server) = serve_once("200 OK").await;
        let port = url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .expect("port")
            .to_string();
        let prober = Prober::new(Duration::from_secs(5)).expect("client");
        // The tenant's name resolves nowhere: the probe connects to loopback.
        let result = prober
            .get_via(&format!("http://acme.wpdev.invalid:{port}/"), "localhost")
            .await
            .expect("answer");
        assert_eq!(result.status, 200);
        let request = server.await.expect("server").to_ascii_lowercase();
        assert!(request.contains("host: acme.wpdev.invalid"), "{request}");
    }

    #[tokio::test]
    async fn refused_connection_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let prober = Prober::new(Duration::from_secs(5)).expect("client");
        let err = prober
            .get(&format!("http://{addr}/"), None)
            .await
            .expect_err("refused");
        assert!(matches!(err, ProbeError::Request { .. }), "{err}");
        assert!(matches!(
            prober.get("not a url", None).await,
            Err(ProbeError::Url { .. })
        ));
    }
}
