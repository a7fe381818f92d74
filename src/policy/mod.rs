//! The compiled, immutable policy: validated settings, upstreams, routes, redaction profiles and
//! the route trie.
//!
//! [`load`] turns policy files into a [`Policy`] or into *every* error found. A policy is never
//! changed after compilation; a reload builds a new one and swaps the whole runtime snapshot
//! (ARCHITECTURE.md, "Where state lives").

pub mod cidr;
pub mod citizens;
#[doc(hidden)]
pub mod fuzzing;
pub mod partners;
pub mod profiles;
pub mod router;
pub mod routes;
pub mod waiting_room;

use std::time::Duration;

use http::Method;
use http::uri::{Authority, Scheme};

pub use crate::config::raw::LimitKey;
use crate::config::{ConfigError, Merged, Sources};
pub use cidr::Cidr;
pub use citizens::Citizens;
pub use partners::Partners;
use router::{Match, Router};
pub use routes::{
    Access, CitizenAccess, Handler, Limit, NO_REDACTION, Ownership, PartnerAccess, Redaction, Route, Target,
};

#[derive(Debug, Clone)]
pub struct Limits {
    /// The refusal budget of callers not identified: per source address, per credential.
    pub unidentified: Vec<Limit>,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub max_uri_bytes: usize,
    pub citizen_body: u64,
    pub partner_body: u64,
    pub max_connections: usize,
}

#[derive(Debug, Clone)]
pub struct Timeouts {
    pub header_read: Duration,
    pub upstream_connect: Duration,
    pub route: Duration,
    pub request: Duration,
    pub keep_alive: Duration,
    pub drain: Duration,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub scheme: Scheme,
    pub authority: Authority,
    pub breaker: BreakerRules,
}

/// When an upstream's circuit breaker opens (`upstream::breaker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerRules {
    /// Consecutive failures that open it (0: never).
    pub failures: u32,
    /// How long it refuses before letting one probe through.
    pub open_for: Duration,
}

#[derive(Debug)]
pub struct Policy {
    /// Fingerprint of the policy text (see `Sources::version`).
    pub version: String,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub h2_max_streams: u32,
    /// The `Strict-Transport-Security` value of HTTPS answers (none: off).
    pub hsts: Option<http::HeaderValue>,
    pub trusted_proxies: Vec<Cidr>,
    /// Normalized (lowercase, `_`/`.` → `-`) extra header names to strip.
    pub strip_headers: Vec<String>,
    pub upstreams: Vec<Upstream>,
    pub routes: Vec<Route>,
    pub citizens: Option<Citizens>,
    pub partners: Option<Partners>,
    router: Router,
}

impl Policy {
    pub fn route_for<'s>(&'s self, segments: &[&'s str], method: &Method) -> Match<'s> {
        self.router.find(segments, method)
    }

    pub fn is_trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(ip))
    }
}

/// Upstream URL overrides given on the command line (`--upstream NAME=URL`), applied at compile.
pub type Overrides = Vec<(String, String)>;

/// Read, parse, validate and compile in one step. `redact_key` is the master key of the
/// profiles' HMAC tokens (each profile derives its own).
pub fn load(sources: &Sources, overrides: &Overrides, redact_key: &[u8]) -> Result<Policy, Vec<ConfigError>> {
    let (merged, mut errors) = crate::config::parse_all(sources);
    match compile(merged, sources.version(), sources.base.as_deref(), overrides, redact_key) {
        Ok(policy) if errors.is_empty() => Ok(policy),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more);
            Err(errors)
        }
    }
}

fn compile(
    mut m: Merged,
    version: String,
    base: Option<&std::path::Path>,
    overrides: &Overrides,
    redact_key: &[u8],
) -> Result<Policy, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let profiles = profiles::compile(&m, redact_key, &mut errors);
    let citizens = citizens::compile(&m, &mut errors);
    let partners = partners::compile(&m, base, &profiles, &mut errors);
    let (g_at, g) = match m.gateway.take() {
        Some((at, g)) => (Some(at), g),
        None => (None, Default::default()),
    };
    let g_err = |field: &str, msg: String| match &g_at {
        Some(at) => at.err(field, msg),
        None => ConfigError::new("<defaults>", format!("gateway.{field}"), msg),
    };

    let l = &g.limits;
    let mut unidentified = Vec::new();
    for (field, key, rate) in [
        ("limits.unidentified_per_source", LimitKey::Ip, l.unidentified_per_source),
        ("limits.unidentified_per_credential", LimitKey::Credential, l.unidentified_per_credential),
    ] {
        match std::num::NonZeroU32::new(rate.limit) {
            Some(n) if rate.per.0 / rate.limit > Duration::ZERO => unidentified.push(Limit {
                key,
                windows: vec![(n, rate.per.0)],
                budget: Some(field.trim_start_matches("limits.").replace('_', "-")),
            }),
            _ => errors.push(g_err(field, "limit and per must be greater than zero".into())),
        }
    }
    let limits = Limits {
        unidentified,
        max_headers: l.max_headers,
        max_header_bytes: l.max_header_bytes.0 as usize,
        max_uri_bytes: l.max_uri_bytes.0 as usize,
        citizen_body: l.citizen_body.0,
        partner_body: l.partner_body.0,
        max_connections: l.max_connections,
    };
    if !(1..=1_000_000).contains(&limits.max_connections) {
        errors.push(g_err("limits.max_connections", "must be between 1 and 1000000".into()));
    }
    if !(1..=1000).contains(&limits.max_headers) {
        errors.push(g_err("limits.max_headers", "must be between 1 and 1000".into()));
    }
    if !(1024..=(1 << 20)).contains(&limits.max_header_bytes) {
        errors.push(g_err("limits.max_header_bytes", "must be between 1KiB and 1MiB".into()));
    }
    if !(256..=(64 << 10)).contains(&limits.max_uri_bytes) {
        errors.push(g_err("limits.max_uri_bytes", "must be between 256B and 64KiB".into()));
    }
    let t = &g.timeouts;
    let timeouts = Timeouts {
        header_read: t.header_read.0,
        upstream_connect: t.upstream_connect.0,
        route: t.route.0,
        request: t.request.0,
        keep_alive: t.keep_alive.0,
        drain: t.drain.0,
    };
    for (field, d) in [
        ("header_read", timeouts.header_read),
        ("upstream_connect", timeouts.upstream_connect),
        ("route", timeouts.route),
        ("request", timeouts.request),
        ("keep_alive", timeouts.keep_alive),
        ("drain", timeouts.drain),
    ] {
        if d.is_zero() {
            errors.push(g_err(&format!("timeouts.{field}"), "must be greater than zero".into()));
        }
    }
    if g.http2.max_concurrent_streams == 0 {
        errors.push(g_err("http2.max_concurrent_streams", "must be at least 1".into()));
    }
    let h = &g.hsts;
    if h.preload && (!h.include_subdomains || h.max_age.0 < Duration::from_secs(365 * 86_400)) {
        errors.push(g_err(
            "hsts.preload",
            "preload lists need include_subdomains and a max_age of a year or more".into(),
        ));
    }
    let hsts = (!h.max_age.0.is_zero()).then(|| {
        let mut v = format!("max-age={}", h.max_age.0.as_secs());
        if h.include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if h.preload {
            v.push_str("; preload");
        }
        http::HeaderValue::from_str(&v).unwrap_or(http::HeaderValue::from_static("max-age=15552000"))
    });
    let mut trusted_proxies = Vec::new();
    for (i, s) in g.trusted_proxies.iter().enumerate() {
        match s.parse::<Cidr>() {
            Ok(c) => trusted_proxies.push(c),
            Err(e) => errors.push(g_err(&format!("trusted_proxies[{i}]"), e)),
        }
    }
    let mut strip_headers = Vec::new();
    for (i, s) in g.strip_headers.iter().enumerate() {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            errors.push(g_err(&format!("strip_headers[{i}]"), format!("`{s}` is not a header name")));
        } else {
            strip_headers.push(normalize_header_name(s).into_owned());
        }
    }

    let mut upstreams = Vec::new();
    for (at, name, raw) in &m.upstreams {
        let url = overrides.iter().find(|(n, _)| n == name).map_or(raw.url.as_str(), |(_, u)| u);
        match parse_upstream_url(url) {
            Ok((scheme, authority)) => {
                let breaker = BreakerRules { failures: raw.breaker.failures, open_for: raw.breaker.open_for.0 };
                upstreams.push(Upstream { name: name.clone(), scheme, authority, breaker });
            }
            Err(e) => errors.push(at.err("url", e)),
        }
        if raw.breaker.open_for.0.is_zero() || raw.breaker.open_for.0 > Duration::from_secs(600) {
            errors.push(at.err("breaker.open_for", "must be between 1ms and 10m"));
        }
    }
    for (name, _) in overrides {
        if !m.upstreams.iter().any(|(_, n, _)| n == name) {
            errors.push(ConfigError::new("<command line>", "--upstream", format!("no upstream named `{name}`")));
        }
    }

    let cx = routes::Context {
        limits: &limits,
        route_timeout: timeouts.route,
        citizens: citizens.as_ref(),
        profiles: &profiles,
    };
    let (routes, router) = routes::compile(&m, &cx, &mut errors);

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Policy {
        version,
        limits,
        timeouts,
        h2_max_streams: g.http2.max_concurrent_streams,
        hsts,
        trusted_proxies,
        strip_headers,
        upstreams,
        routes,
        citizens,
        partners,
        router,
    })
}

fn parse_upstream_url(url: &str) -> Result<(Scheme, Authority), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
    let scheme = uri.scheme().cloned().ok_or_else(|| format!("`{url}` needs http:// or https://"))?;
    if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
        return Err(format!("`{url}`: only http and https upstreams are supported"));
    }
    let authority = uri.authority().cloned().ok_or_else(|| format!("`{url}` has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("`{url}`: credentials in upstream URLs are not allowed"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!("`{url}`: an upstream URL has no path or query (paths are forwarded as sent)"));
    }
    Ok((scheme, authority))
}

/// Lowercase, with `_` and `.` read as `-`: `X_OTPGATE.Mobile` → `x-otpgate-mobile`. Header
/// names are compared in this form wherever a spelling could matter.
pub fn normalize_header_name(name: &str) -> std::borrow::Cow<'_, str> {
    // Names hyper parsed are lowercase already: most need no copy.
    if !name.bytes().any(|b| b == b'_' || b == b'.' || b.is_ascii_uppercase()) {
        return std::borrow::Cow::Borrowed(name);
    }
    name.bytes()
        .map(|b| match b {
            b'_' | b'.' => '-',
            b => char::from(b.to_ascii_lowercase()),
        })
        .collect::<String>()
        .into()
}

/// Client-sent headers that could claim an identity, carry a credential meant for the gateway,
/// or forge forwarding information, by normalized name: never forwarded, never allowlisted. On
/// personal-data routes only an allowlist is forwarded at all (`Route::forward_headers`), so a
/// name missing here still never reaches the registry there.
pub fn identity_header(normalized: &str) -> bool {
    const EXACT: [&str; 20] = [
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "x-forwarded-client-cert",
        "client-cert",
        "client-cert-chain",
        "x-client-cert",
        "x-client-dn",
        "x-real-ip",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "remote-user",
        "x-remote-user",
        "true-client-ip",
        "x-client-ip",
        "cf-connecting-ip",
        "x-original-forwarded-for",
    ];
    const PREFIXES: [&str; 8] = [
        "x-otpgate-",
        "x-user",
        "x-ssl-client",
        "x-forwarded-",
        "x-client-verify",
        "x-auth-request-",
        "x-remote-",
        "x-amzn-oidc-",
    ];
    EXACT.contains(&normalized) || PREFIXES.iter().any(|p| normalized.starts_with(p))
}

#[cfg(test)]
mod tests;
