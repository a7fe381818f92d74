//! Forwarding to the upstream: pooled keep-alive connections (HTTP or HTTPS, see [`pool`]), connect and
//! route timeouts, and the exact request bytes that authorization looked at.
//!
//! Every way out takes a [`Permit`]: [`UpstreamClient::forward`] sends the authorized request,
//! [`UpstreamClient::subjects`] asks the registry for a signed-in citizen's own records. The raw
//! client is private, so nothing reaches the upstream without authorization.

pub mod assertion;
pub mod breaker;
pub mod headers;
pub mod identity;
pub mod pool;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::authz::Permit;
use crate::error::GatewayError;
use crate::policy::Policy;
use pool::Pool;
pub use pool::PooledBody;

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

/// The upstream connections of one compiled policy (see [`pool`]). Built per compiled policy, so
/// a reload that changes timeouts or upstreams takes effect.
#[derive(Clone)]
pub struct UpstreamClient {
    pool: Arc<Pool>,
}

/// How long an upstream connection may stay idle in the pool.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

impl UpstreamClient {
    pub fn new(policy: &Policy) -> Result<Self, String> {
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
        let hosts = policy
            .upstreams
            .iter()
            .map(|up| {
                pool::Host::new(&up.scheme, &up.authority, IDLE_TIMEOUT)
                    .map(Arc::new)
                    .ok_or_else(|| format!("upstream `{}`: `{}` cannot be addressed", up.name, up.authority))
            })
            .collect::<Result<_, _>>()?;
        Ok(UpstreamClient { pool: Pool::new(connector, hosts) })
    }

    /// Send the authorized request upstream and wait (at most the route timeout) for its head.
    pub async fn forward(
        &self,
        permit: &Permit<'_>,
        parts: http::request::Parts,
        body: Bytes,
    ) -> Result<Response<PooledBody>, UpstreamFailure> {
        let route = permit.route();
        let crate::policy::Target::Upstream(upstream) = route.target else {
            return Err(UpstreamFailure::Protocol);
        };
        let path_and_query = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = parts.method;
        *req.uri_mut() = Uri::from(path_and_query);
        *req.headers_mut() = parts.headers;
        self.send(upstream, req, route.timeout).await
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
    ) -> Result<Response<PooledBody>, UpstreamFailure> {
        permit.citizen().ok_or(UpstreamFailure::Protocol)?;
        let req = Request::get(source.path.as_str())
            .header(assertion::IDENTITY_HEADER, assertion)
            .header(headers::X_REQUEST_ID, request_id)
            .header(http::header::ACCEPT_ENCODING, "identity")
            .body(Full::new(Bytes::new()))
            .map_err(|_| UpstreamFailure::Protocol)?;
        self.send(source.upstream, req, policy.timeouts.route).await
    }

    /// Send one request and wait at most `timeout` for the response head.
    async fn send(
        &self,
        upstream: usize,
        req: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Response<PooledBody>, UpstreamFailure> {
        tokio::time::timeout(timeout, self.pool.send(upstream, req)).await.map_err(|_| UpstreamFailure::RouteTimeout)?
    }
}
