//! Forwarding to the upstream: a pooled hyper-util client (keep-alive, HTTP or HTTPS), connect and
//! route timeouts, and the exact request bytes that authorization looked at.
//!
//! Every way out takes a [`Permit`]: [`UpstreamClient::forward`] sends the authorized request,
//! [`UpstreamClient::subjects`] asks the registry for a signed-in citizen's own records. The raw
//! client is private, so nothing reaches the upstream without authorization.

pub mod assertion;
pub mod breaker;
pub mod headers;
pub mod identity;

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::authz::Permit;
use crate::error::GatewayError;
use crate::policy::Policy;

/// Why forwarding failed, for metrics (`otpgate_upstream_errors_total{kind}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    Connect,
    ConnectTimeout,
    RouteTimeout,
    Protocol,
}

impl UpstreamFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamFailure::Connect => "connect",
            UpstreamFailure::ConnectTimeout => "connect_timeout",
            UpstreamFailure::RouteTimeout => "route_timeout",
            UpstreamFailure::Protocol => "protocol",
        }
    }

    pub fn error(self) -> GatewayError {
        match self {
            UpstreamFailure::Connect => GatewayError::UpstreamUnavailable,
            UpstreamFailure::ConnectTimeout => GatewayError::UpstreamTimeout,
            UpstreamFailure::RouteTimeout => GatewayError::UpstreamTimeout,
            UpstreamFailure::Protocol => GatewayError::UpstreamBadResponse,
        }
    }
}

/// The pooled client. Built per compiled policy, so a reload that changes timeouts takes effect.
#[derive(Clone)]
pub struct UpstreamClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl UpstreamClient {
    pub fn new(policy: &Policy) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(policy.timeouts.upstream_connect));
        http.set_keepalive(Some(Duration::from_secs(30)));
        let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "no system trust roots; HTTPS upstreams will fail verification");
                let config = rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let connector = builder.https_or_http().enable_http1().enable_http2().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            // Every connection a burst needed stays for the next (idle ones close after 90 s): a
            // cap below the concurrency closed and reopened upstream connections on every
            // request past it — at 1,000 clients, half the gateway's CPU (BENCHMARKS.md).
            .pool_max_idle_per_host(usize::MAX)
            .build(connector);
        UpstreamClient { client }
    }

    /// Send the authorized request upstream and wait (at most the route timeout) for its head.
    pub async fn forward(
        &self,
        permit: &Permit<'_>,
        policy: &Policy,
        parts: http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Incoming>, UpstreamFailure> {
        let route = permit.route();
        let crate::policy::Target::Upstream(upstream) = route.target else {
            return Err(UpstreamFailure::Protocol);
        };
        let up = &policy.upstreams[upstream];
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let uri = Uri::builder()
            .scheme(up.scheme.clone())
            .authority(up.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| UpstreamFailure::Protocol)?;
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = parts.method;
        *req.uri_mut() = uri;
        *req.headers_mut() = parts.headers;
        self.send(req, route.timeout).await
    }

    /// The registry's list of the permit's citizen's own records (`citizens.subjects`), asked
    /// with the citizen's identity assertion. `None` when the permit is not a citizen's.
    pub async fn subjects(
        &self,
        permit: &Permit<'_>,
        policy: &Policy,
        source: &crate::policy::citizens::SubjectSource,
        assertion: &str,
        request_id: &str,
    ) -> Result<Response<Incoming>, UpstreamFailure> {
        permit.citizen().ok_or(UpstreamFailure::Protocol)?;
        let up = &policy.upstreams[source.upstream];
        let uri = Uri::builder()
            .scheme(up.scheme.clone())
            .authority(up.authority.clone())
            .path_and_query(source.path.as_str())
            .build()
            .map_err(|_| UpstreamFailure::Protocol)?;
        let req = Request::get(uri)
            .header(assertion::IDENTITY_HEADER, assertion)
            .header("x-request-id", request_id)
            .header(http::header::ACCEPT_ENCODING, "identity")
            .body(Full::new(Bytes::new()))
            .map_err(|_| UpstreamFailure::Protocol)?;
        self.send(req, policy.timeouts.route).await
    }

    /// Send one request and wait at most `timeout` for the response head.
    async fn send(&self, req: Request<Full<Bytes>>, timeout: Duration) -> Result<Response<Incoming>, UpstreamFailure> {
        match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => Err(UpstreamFailure::RouteTimeout),
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) if e.is_connect() => {
                if caused_by_timeout(&e) {
                    Err(UpstreamFailure::ConnectTimeout)
                } else {
                    Err(UpstreamFailure::Connect)
                }
            }
            Ok(Err(_)) => Err(UpstreamFailure::Protocol),
        }
    }
}

fn caused_by_timeout(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        source = s.source();
    }
    false
}
