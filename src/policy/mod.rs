//! The compiled, immutable policy: validated settings, upstreams, routes and the route trie.
//!
//! [`compile`] turns merged raw files into a [`Policy`] or into *every* error found. A policy is
//! never changed after compilation; reload builds a new one and swaps the `Arc` (see `reload`).

pub mod cidr;
pub mod citizens;
pub mod partners;
pub mod router;

use std::collections::HashSet;
use std::time::Duration;

use std::num::NonZeroU32;

use http::Method;

use crate::ratelimit::LimitKey;
use http::uri::{Authority, Scheme};

use crate::config::raw::{Access, Handler};
use crate::config::{ConfigError, Merged, Sources};
use crate::ownership::{RequestRule, ResponseRule, SubjectKind};
pub use cidr::Cidr;
pub use citizens::Citizens;
pub use partners::Partners;
use router::{Match, Router};

#[derive(Debug, Clone)]
pub struct Limits {
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
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub template: String,
    pub methods: Vec<Method>,
    pub access: Access,
    pub target: Target,
    pub personal: bool,
    pub ownership: Option<Ownership>,
    /// Partner routes: scopes required (all).
    pub scopes: Vec<String>,
    /// Partner routes: parameters naming looked-up people (distinct-subjects quota).
    pub quota_subjects: Vec<String>,
    /// Redaction profile names per caller kind (`none`: passed as is).
    pub redact: crate::config::raw::RawRedact,
    /// Rate limits: key and windows (limit per duration).
    pub limits: Vec<(LimitKey, Vec<(NonZeroU32, Duration)>)>,
    /// Parameter names of the template, in order.
    pub params: Vec<String>,
    pub body_limit: u64,
    pub timeout: Duration,
    /// Partner answers are redacted as they flow (see `RawRoute::stream`).
    pub stream: bool,
}

/// Where a route's answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Index into `Policy::upstreams`.
    Upstream(usize),
    Handler(Handler),
}

/// Own-records-only rules of a citizen route.
#[derive(Debug, Clone)]
pub struct Ownership {
    pub request: Vec<RequestRule>,
    pub response: Option<ResponseRule>,
    /// Some rule names an ID number or beneficiary: the caller's record list is needed.
    pub needs_subjects: bool,
}

#[derive(Debug)]
pub struct Policy {
    /// Fingerprint of the policy text (see `Sources::version`).
    pub version: String,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub h2_max_streams: u32,
    pub trusted_proxies: Vec<Cidr>,
    /// Normalized (lowercase, `_`/`.` → `-`) extra header names to strip.
    pub strip_headers: Vec<String>,
    pub upstreams: Vec<Upstream>,
    pub routes: Vec<Route>,
    pub citizens: Option<Citizens>,
    pub partners: Option<Partners>,
    /// Redaction profiles as written (compiled with their keys when the runtime is built).
    pub profiles: Vec<(String, crate::redact::RawProfile)>,
    router: Router,
}

/// A route matched for a request, with its parameter values.
#[derive(Debug)]
pub struct Matched<'p> {
    pub index: usize,
    pub params: Vec<(&'p str, &'p str)>,
}

impl Policy {
    pub fn route_for<'s>(&'s self, segments: &[&'s str], method: &Method) -> Match<'s> {
        self.router.find(segments, method)
    }

    pub fn is_trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(ip))
    }
}

/// The reserved profile name of a route that releases a binary document unredacted (its
/// ownership is checked on the request side).
pub const NO_REDACTION: &str = "none";

/// Upstream URL overrides given on the command line (`--upstream NAME=URL`), applied at compile.
pub type Overrides = Vec<(String, String)>;

/// Read, parse, validate and compile in one step.
pub fn load(sources: &Sources, overrides: &Overrides) -> Result<Policy, Vec<ConfigError>> {
    let (merged, mut errors) = crate::config::parse_all(sources);
    match compile(merged, sources.version(), sources.base.as_deref(), overrides) {
        Ok(policy) if errors.is_empty() => Ok(policy),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more);
            Err(errors)
        }
    }
}

pub fn compile(
    m: Merged,
    version: String,
    base: Option<&std::path::Path>,
    overrides: &Overrides,
) -> Result<Policy, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let citizens = citizens::compile(&m, &mut errors);
    let partners = partners::compile(&m, base, &mut errors);
    let (g_at, g) = match m.gateway {
        Some((at, g)) => (Some(at), g),
        None => (None, Default::default()),
    };
    let g_err = |field: &str, msg: String| match &g_at {
        Some(at) => at.err(field, msg),
        None => ConfigError::new("<defaults>", format!("gateway.{field}"), msg),
    };

    let l = &g.limits;
    let limits = Limits {
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
            strip_headers.push(crate::upstream::headers::normalize_name(s));
        }
    }

    let mut upstreams = Vec::new();
    for (at, name, raw) in &m.upstreams {
        let url = overrides.iter().find(|(n, _)| n == name).map_or(raw.url.as_str(), |(_, u)| u);
        match parse_upstream_url(url) {
            Ok((scheme, authority)) => upstreams.push(Upstream { name: name.clone(), scheme, authority }),
            Err(e) => errors.push(at.err("url", e)),
        }
    }
    for (name, _) in overrides {
        if !m.upstreams.iter().any(|(_, n, _)| n == name) {
            errors.push(ConfigError::new("<command line>", "--upstream", format!("no upstream named `{name}`")));
        }
    }

    let mut profiles = Vec::new();
    for (at, name, raw) in &m.profiles {
        if name == NO_REDACTION {
            errors.push(at.err("", format!("`{NO_REDACTION}` is reserved")));
            continue;
        }
        // Validated here with a placeholder key; the runtime compiles them with the real one.
        match crate::redact::compile(name, raw, &[0u8; 32]) {
            Ok(_) => profiles.push((name.clone(), raw.clone())),
            Err(problems) => {
                for (field, message) in problems {
                    errors.push(at.err(&field, message));
                }
            }
        }
    }
    if let Some(p) = &partners {
        for c in &p.clients {
            if let Some(profile) = &c.profile
                && !m.profiles.iter().any(|(_, n, _)| n == profile)
            {
                errors.push(ConfigError::new(
                    "<policy>",
                    format!("partners.clients.{}.profile", c.id),
                    format!("no profile named `{profile}`"),
                ));
            }
        }
    }
    let mut routes = Vec::new();
    let mut router = Router::default();
    let mut names = HashSet::new();
    for (at, r) in &m.routes {
        let before = errors.len();
        let valid_name = !r.name.is_empty()
            && r.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            errors.push(at.err("name", "route names use a-z, 0-9, '-' and '_'"));
        } else if !names.insert(r.name.clone()) {
            errors.push(at.err("name", format!("duplicate route name `{}`", r.name)));
        }
        let mut methods = Vec::new();
        if r.methods.is_empty() {
            errors.push(at.err("methods", "at least one method is required"));
        }
        for (i, s) in r.methods.iter().enumerate() {
            match parse_method(s) {
                Ok(mth) if methods.contains(&mth) => {
                    errors.push(at.err(&format!("methods[{i}]"), format!("`{s}` is listed twice")))
                }
                Ok(mth) => methods.push(mth),
                Err(e) => errors.push(at.err(&format!("methods[{i}]"), e)),
            }
        }
        let segments = router::parse_template(&r.path).map_err(|e| errors.push(at.err("path", e))).ok();
        let target = match (&r.upstream, r.handler) {
            (Some(name), None) => match m.upstreams.iter().position(|(_, n, _)| n == name) {
                Some(i) => Some(Target::Upstream(i)),
                None => {
                    errors.push(at.err("upstream", format!("no upstream named `{name}`")));
                    None
                }
            },
            (None, Some(h)) => Some(Target::Handler(h)),
            _ => {
                errors.push(at.err("upstream", "give exactly one of `upstream` and `handler`"));
                None
            }
        };
        let wanted_access = match r.handler {
            Some(Handler::OtpGenerate | Handler::OtpConfirm) => Some(Access::Public),
            Some(Handler::Logout | Handler::MyAccessLog) => Some(Access::Citizen),
            None => None,
        };
        if wanted_access.is_some_and(|a| a != r.access) {
            errors.push(at.err("access", format!("handler {:?} needs access {:?}", r.handler, wanted_access)));
        }
        if r.personal && r.access == Access::Public {
            errors.push(at.err("personal", "a route that releases personal data cannot be public"));
        }
        if r.access == Access::Citizen && citizens.is_none() && m.citizens.is_none() {
            errors.push(at.err("access", "citizen routes need a `citizens` section"));
        }
        if let Some(o) = &r.ownership {
            let name_ok = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            for (i, rule) in o.request.iter().enumerate() {
                if !name_ok(&rule.param) {
                    errors.push(at.err(&format!("ownership.request[{i}].param"), "use letters, digits and '_'"));
                }
            }
            if let Some(resp) = &o.response
                && (!name_ok(&resp.records) || !name_ok(&resp.owner))
            {
                errors.push(at.err("ownership.response", "records and owner are field names (letters, digits, '_')"));
            }
        }
        let ownership = r.ownership.as_ref().map(|o| Ownership {
            request: o.request.clone(),
            response: o.response.clone(),
            needs_subjects: o.request.iter().any(|rule| rule.kind != SubjectKind::Mobile),
        });
        match (&ownership, r.access, r.personal) {
            (None, Access::Citizen, true) if r.handler.is_none() => errors.push(
                at.err("ownership", "a citizen route that releases personal data must declare its ownership rules"),
            ),
            (Some(_), access, _) if access != Access::Citizen => {
                errors.push(at.err("ownership", "ownership rules apply to citizen routes"))
            }
            (Some(o), _, _) if o.request.is_empty() && o.response.is_none() => {
                errors.push(at.err("ownership", "give request rules, a response rule, or both"))
            }
            (Some(o), _, _) if o.needs_subjects && citizens.as_ref().is_some_and(|c| c.subjects.is_none()) => {
                errors.push(at.err("ownership", "ID-number and beneficiary rules need `citizens.subjects`"))
            }
            _ => {}
        }
        match r.access {
            Access::Partner if r.scopes.is_empty() => {
                errors.push(at.err("scopes", "partner routes name the scopes they need"))
            }
            Access::Public | Access::Citizen if !r.scopes.is_empty() || !r.quota_subjects.is_empty() => {
                errors.push(at.err("scopes", "scopes and quota_subjects apply to partner routes"))
            }
            _ => {}
        }
        let mut rate_limits = Vec::new();
        for (i, l) in r.limits.iter().enumerate() {
            let mut windows = Vec::new();
            if l.rate.is_empty() {
                errors.push(at.err(&format!("limits[{i}].rate"), "at least one {limit, per} is required"));
            }
            for (j, rate) in l.rate.iter().enumerate() {
                match NonZeroU32::new(rate.limit) {
                    Some(n) if rate.per.0 >= Duration::from_millis(1) && rate.per.0 / rate.limit > Duration::ZERO => {
                        windows.push((n, rate.per.0))
                    }
                    _ => errors
                        .push(at.err(&format!("limits[{i}].rate[{j}]"), "limit and per must be greater than zero")),
                }
            }
            let fits = match l.key {
                LimitKey::Ip | LimitKey::Mobile => true,
                LimitKey::Session => r.access == Access::Citizen,
                LimitKey::Subject => r.access != Access::Public,
                LimitKey::Partner => r.access == Access::Partner,
                LimitKey::Beneficiary => r.ownership.as_ref().is_some_and(|o| {
                    o.request.iter().any(|rule| rule.kind == crate::ownership::SubjectKind::Beneficiary)
                }),
            };
            if !fits {
                errors.push(at.err(
                    &format!("limits[{i}].key"),
                    format!("`{}` cannot be known on this route (access or ownership rules)", l.key.as_str()),
                ));
            }
            rate_limits.push((l.key, windows));
        }
        let redact = r.redact.clone().unwrap_or_default();
        let known = |name: &str| name == NO_REDACTION || m.profiles.iter().any(|(_, n, _)| n == name);
        for (field, name) in [("redact.citizen", &redact.citizen), ("redact.partner", &redact.partner)] {
            if let Some(n) = name
                && !known(n)
            {
                errors.push(at.err(field, format!("no profile named `{n}`")));
            }
        }
        if r.personal && r.handler.is_none() {
            match r.access {
                Access::Citizen if redact.citizen.is_none() => errors.push(at.err(
                    "redact.citizen",
                    "a personal-data route needs a redaction profile (or `none` for a binary document)",
                )),
                Access::Partner if redact.partner.is_none() => errors
                    .push(at.err("redact.partner", "a personal-data route needs a redaction profile for partners")),
                _ => {}
            }
        }
        if r.stream && (r.access != Access::Partner || redact.partner.as_deref().is_none_or(|n| n == NO_REDACTION)) {
            errors.push(at.err("stream", "streaming applies to partner routes with a JSON redaction profile"));
        }
        let default_body = match r.access {
            Access::Partner => limits.partner_body,
            Access::Public | Access::Citizen => limits.citizen_body,
        };
        let (Some(segments), Some(target), true) = (segments, target, errors.len() == before) else {
            continue;
        };
        let index = routes.len();
        if let Err(other) = router.insert(&segments, &methods, index) {
            let other: &Route = &routes[other];
            errors.push(at.err(
                "path",
                format!("`{}` overlaps route `{}` ({}) for the same method", r.path, other.name, other.template),
            ));
            continue;
        }
        let params = segments
            .iter()
            .filter_map(|s| match s {
                router::Segment::Param(p) => Some(p.clone()),
                router::Segment::Literal(_) => None,
            })
            .collect();
        routes.push(Route {
            name: r.name.clone(),
            template: r.path.clone(),
            methods,
            access: r.access,
            target,
            personal: r.personal,
            ownership,
            scopes: r.scopes.clone(),
            quota_subjects: r.quota_subjects.clone(),
            limits: rate_limits,
            redact,
            params,
            body_limit: r.body_limit.map_or(default_body, |b| b.0),
            timeout: r.timeout.map_or(timeouts.route, |d| d.0),
            stream: r.stream,
        });
    }
    if m.routes.is_empty() {
        errors.push(ConfigError::new("<policy>", "routes", "no routes are defined"));
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Policy {
        version,
        limits,
        timeouts,
        h2_max_streams: g.http2.max_concurrent_streams,
        trusted_proxies,
        strip_headers,
        upstreams,
        routes,
        citizens,
        partners,
        profiles,
        router,
    })
}

fn parse_method(s: &str) -> Result<Method, String> {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    if KNOWN.contains(&s) {
        Method::from_bytes(s.as_bytes()).map_err(|e| e.to_string())
    } else {
        Err(format!("`{s}` is not one of {}", KNOWN.join(", ")))
    }
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

#[cfg(test)]
mod tests;
