//! Routes: who may call each one (a sum type, so a route's rules exist only for the callers they
//! concern), where its answer comes from, its limits and its redaction.
//!
//! [`compile`] validates every raw route and reports every problem with its file and field path.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use http::Method;

use super::router::{self, Router};
use super::{Citizens, LimitKey, Limits};
use crate::config::raw::{self, RawRoute};
use crate::config::{At, ConfigError, Merged};
use crate::ownership::{RequestRule, ResponseRule, SubjectKind};
use crate::redact::Profile;

/// The reserved profile name of a route that releases a binary document unredacted (its
/// ownership is checked on the request side).
pub const NO_REDACTION: &str = "none";

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub template: String,
    pub methods: Vec<Method>,
    pub target: Target,
    /// The route releases personal data: audited, and never public.
    pub personal: bool,
    pub access: Access,
    /// Rate limits: key and windows (limit per duration), the route's own or a shared budget's.
    pub limits: Vec<Limit>,
    /// Parameter names of the template, in order.
    pub params: Vec<String>,
    pub body_limit: u64,
    pub timeout: Duration,
    /// Personal routes: the request headers forwarded (normalized names: the safe default set
    /// and the route's `forward_headers`); `None` on other routes (every header but identity ones).
    pub forward_headers: Option<Vec<String>>,
    /// The gateway parses the request body (OTP handlers, ownership rules, quotas, limits keyed
    /// on what the body names): a compressed body is refused, never guessed at.
    pub reads_body: bool,
    /// Requests contesting the same thing are held and forwarded in a drawn order.
    pub waiting_room: Option<super::waiting_room::WaitingRoom>,
}

/// Request headers a personal-data route forwards by default.
pub const SAFE_REQUEST_HEADERS: [&str; 5] =
    ["accept", "accept-language", "content-type", "content-length", "user-agent"];

/// One rate limit of a route: a key and its windows (limit per duration), charged to buckets of
/// the route's own, or to those of a named budget that every route naming it shares (one budget
/// per identity, whatever the route).
#[derive(Debug, Clone)]
pub struct Limit {
    pub key: LimitKey,
    pub windows: Vec<(NonZeroU32, Duration)>,
    pub budget: Option<String>,
}

impl Limit {
    /// A limit of the route's own.
    pub fn of(key: LimitKey, windows: Vec<(NonZeroU32, Duration)>) -> Limit {
        Limit { key, windows, budget: None }
    }
}

/// Who may call a route, and the rules that apply to that kind of caller.
#[derive(Debug, Clone)]
pub enum Access {
    /// Anyone; no credentials are read.
    Public,
    /// A citizen with a verified OTP session.
    Citizen(CitizenAccess),
    /// A whitelisted partner (mTLS + API key + source CIDR) holding every scope named.
    Partner(PartnerAccess),
}

impl Access {
    /// Metric and log label.
    pub fn kind(&self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Citizen(_) => "citizen",
            Access::Partner(_) => "partner",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CitizenAccess {
    /// Own-records-only rules (request and response side).
    pub ownership: Option<Ownership>,
    pub redaction: Redaction,
}

#[derive(Debug, Clone)]
pub struct PartnerAccess {
    /// Scopes required (all).
    pub scopes: Vec<String>,
    /// Parameters naming looked-up people (distinct-subjects quota).
    pub quota_subjects: Vec<String>,
    /// The route's profile for partners without one of their own.
    pub redaction: Redaction,
    /// Answers are redacted as they flow (bulk exports), audited by count when they end.
    pub stream: bool,
}

/// What happens to an answer before it reaches the caller.
#[derive(Debug, Clone)]
pub enum Redaction {
    /// Passed as is: the route releases nothing personal, or `none` (a binary document whose
    /// ownership was checked on the request).
    Pass,
    /// Redacted by this compiled profile, fail-closed.
    Profile(Arc<Profile>),
}

/// Where a route's answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Index into `Policy::upstreams`.
    Upstream(usize),
    Handler(Handler),
}

/// Routes the gateway answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    OtpGenerate,
    OtpConfirm,
    Logout,
    MyAccessLog,
}

impl From<raw::Handler> for Handler {
    fn from(h: raw::Handler) -> Handler {
        match h {
            raw::Handler::OtpGenerate => Handler::OtpGenerate,
            raw::Handler::OtpConfirm => Handler::OtpConfirm,
            raw::Handler::Logout => Handler::Logout,
            raw::Handler::MyAccessLog => Handler::MyAccessLog,
        }
    }
}

/// Own-records-only rules of a citizen route.
#[derive(Debug, Clone)]
pub struct Ownership {
    pub request: Vec<RequestRule>,
    pub response: Option<ResponseRule>,
    /// Some rule names an ID number or beneficiary: the caller's record list is needed.
    pub needs_subjects: bool,
}

impl Ownership {
    /// The request names people whose ownership is checked before it is forwarded.
    pub fn checks_request(&self) -> bool {
        !self.request.is_empty()
    }
}

/// What route compilation reads besides the routes.
pub struct Context<'a> {
    pub limits: &'a Limits,
    pub route_timeout: Duration,
    pub citizens: Option<&'a Citizens>,
    pub profiles: &'a HashMap<String, Arc<Profile>>,
}

/// Compile every route into `routes` and `router`, pushing every problem to `errors`.
pub fn compile(m: &Merged, cx: &Context<'_>, errors: &mut Vec<ConfigError>) -> (Vec<Route>, Router) {
    let mut routes: Vec<Route> = Vec::new();
    let mut router = Router::default();
    let mut names = HashSet::new();
    let budgets = budgets(m, errors);
    for (at, r) in &m.routes {
        let before = errors.len();
        let valid_name = !r.name.is_empty()
            && r.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            errors.push(at.err("name", "route names use a-z, 0-9, '-' and '_'"));
        } else if !names.insert(r.name.clone()) {
            errors.push(at.err("name", format!("duplicate route name `{}`", r.name)));
        }
        let methods = methods(at, r, errors);
        let segments = router::parse_template(&r.path).map_err(|e| errors.push(at.err("path", e))).ok();
        let target = target(at, r, m, errors);
        let access = access(at, r, m, cx, errors);
        let limits = limits(at, r, &budgets, errors);
        for (i, h) in r.forward_headers.iter().enumerate() {
            let field = format!("forward_headers[{i}]");
            let name = super::normalize_header_name(h);
            if !r.personal {
                errors.push(
                    at.err(&field, "only personal-data routes forward by allowlist; others forward every header"),
                );
            } else if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                errors.push(at.err(&field, format!("`{h}` is not a header name")));
            } else if crate::policy::identity_header(&name) {
                errors
                    .push(at.err(&field, format!("`{h}` can carry an identity or credential; it is never forwarded")));
            }
        }
        let default_body = match r.access {
            raw::Access::Partner => cx.limits.partner_body,
            raw::Access::Public | raw::Access::Citizen => cx.limits.citizen_body,
        };
        let (Some(segments), Some(target), Some(access), true) = (segments, target, access, errors.len() == before)
        else {
            continue;
        };
        let index = routes.len();
        if let Err(other) = router.insert(&segments, &methods, index) {
            let other = &routes[other];
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
        let forward_headers = r.personal.then(|| {
            let extra = r.forward_headers.iter().map(|h| super::normalize_header_name(h).into_owned());
            SAFE_REQUEST_HEADERS.iter().map(|h| h.to_string()).chain(extra).collect()
        });
        let waiting_room = super::waiting_room::compile(at, r, errors);
        let reads_body = waiting_room.is_some()
            || matches!(target, Target::Handler(_))
            || ownership_request(&access)
            || matches!(&access, Access::Partner(p) if !p.quota_subjects.is_empty())
            || limits.iter().any(|l| l.key.names_others());
        routes.push(Route {
            name: r.name.clone(),
            template: r.path.clone(),
            methods,
            target,
            personal: r.personal,
            access,
            limits,
            params,
            body_limit: r.body_limit.map_or(default_body, |b| b.0),
            timeout: r.timeout.map_or(cx.route_timeout, |d| d.0),
            forward_headers,
            reads_body,
            waiting_room,
        });
    }
    if m.routes.is_empty() {
        errors.push(ConfigError::new("<policy>", "routes", "no routes are defined"));
    }
    (routes, router)
}

fn ownership_request(access: &Access) -> bool {
    matches!(access, Access::Citizen(c) if c.ownership.as_ref().is_some_and(Ownership::checks_request))
}

fn methods(at: &At, r: &RawRoute, errors: &mut Vec<ConfigError>) -> Vec<Method> {
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
    methods
}

fn parse_method(s: &str) -> Result<Method, String> {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    if KNOWN.contains(&s) {
        Method::from_bytes(s.as_bytes()).map_err(|e| e.to_string())
    } else {
        Err(format!("`{s}` is not one of {}", KNOWN.join(", ")))
    }
}

fn target(at: &At, r: &RawRoute, m: &Merged, errors: &mut Vec<ConfigError>) -> Option<Target> {
    let target = match (&r.upstream, r.handler) {
        (Some(name), None) => match m.upstreams.iter().position(|(_, n, _)| n == name) {
            Some(i) => Some(Target::Upstream(i)),
            None => {
                errors.push(at.err("upstream", format!("no upstream named `{name}`")));
                None
            }
        },
        (None, Some(h)) => Some(Target::Handler(h.into())),
        _ => {
            errors.push(at.err("upstream", "give exactly one of `upstream` and `handler`"));
            None
        }
    };
    let wanted_access = match r.handler {
        Some(raw::Handler::OtpGenerate | raw::Handler::OtpConfirm) => Some(raw::Access::Public),
        Some(raw::Handler::Logout | raw::Handler::MyAccessLog) => Some(raw::Access::Citizen),
        None => None,
    };
    if wanted_access.is_some_and(|a| a != r.access) {
        errors.push(at.err("access", format!("handler {:?} needs access {:?}", r.handler, wanted_access)));
    }
    target
}

/// The route's access rules; every combination that makes no sense is an error here, so the
/// request path never meets one.
fn access(at: &At, r: &RawRoute, m: &Merged, cx: &Context<'_>, errors: &mut Vec<ConfigError>) -> Option<Access> {
    let before = errors.len();
    if r.personal && r.access == raw::Access::Public {
        errors.push(at.err("personal", "a route that releases personal data cannot be public"));
    }
    if r.access == raw::Access::Citizen && cx.citizens.is_none() && m.citizens.is_none() {
        errors.push(at.err("access", "citizen routes need a `citizens` section"));
    }
    let ownership = ownership(at, r, cx, errors);
    match r.access {
        raw::Access::Partner if r.scopes.is_empty() => {
            errors.push(at.err("scopes", "partner routes name the scopes they need"))
        }
        raw::Access::Public | raw::Access::Citizen if !r.scopes.is_empty() || !r.quota_subjects.is_empty() => {
            errors.push(at.err("scopes", "scopes and quota_subjects apply to partner routes"))
        }
        _ => {}
    }
    let redact = r.redact.clone().unwrap_or_default();
    let mut resolve = |field: &str, name: &Option<String>| match name.as_deref() {
        None | Some(NO_REDACTION) => Some(Redaction::Pass),
        Some(n) => match cx.profiles.get(n) {
            Some(p) => Some(Redaction::Profile(p.clone())),
            None if m.profiles.iter().any(|(_, known, _)| known == n) => None, // reported with the profile
            None => {
                errors.push(at.err(field, format!("no profile named `{n}`")));
                None
            }
        },
    };
    let citizen_redaction = resolve("redact.citizen", &redact.citizen);
    let partner_redaction = resolve("redact.partner", &redact.partner);
    if r.personal && r.handler.is_none() {
        match r.access {
            raw::Access::Citizen if redact.citizen.is_none() => errors.push(at.err(
                "redact.citizen",
                "a personal-data route needs a redaction profile (or `none` for a binary document)",
            )),
            raw::Access::Partner if redact.partner.is_none() => {
                errors.push(at.err("redact.partner", "a personal-data route needs a redaction profile for partners"))
            }
            _ => {}
        }
    }
    if r.stream && (r.access != raw::Access::Partner || redact.partner.as_deref().is_none_or(|n| n == NO_REDACTION)) {
        errors.push(at.err("stream", "streaming applies to partner routes with a JSON redaction profile"));
    }
    if errors.len() != before {
        return None;
    }
    Some(match r.access {
        raw::Access::Public => Access::Public,
        raw::Access::Citizen => Access::Citizen(CitizenAccess { ownership, redaction: citizen_redaction? }),
        raw::Access::Partner => Access::Partner(PartnerAccess {
            scopes: r.scopes.clone(),
            quota_subjects: r.quota_subjects.clone(),
            redaction: partner_redaction?,
            stream: r.stream,
        }),
    })
}

/// The route's ownership rules. A request rule names a parameter the route must be able to carry
/// to the ownership check: a bare name is looked for in the path parameters, the query and a JSON
/// body, so any route the gateway forwards can carry it; the path form `{name}` is carried only by
/// a route whose path template has `{name}`; and a route the gateway answers itself (`handler`)
/// carries nothing to the check, which runs only before forwarding.
fn ownership(at: &At, r: &RawRoute, cx: &Context<'_>, errors: &mut Vec<ConfigError>) -> Option<Ownership> {
    if let Some(o) = &r.ownership {
        let name_ok = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        // A bad template is reported on `path`.
        let template: Option<Vec<String>> = router::parse_template(&r.path).ok().map(|segments| {
            let params = segments.into_iter().filter_map(|s| match s {
                router::Segment::Param(p) => Some(p),
                router::Segment::Literal(_) => None,
            });
            params.collect()
        });
        for (i, rule) in o.request.iter().enumerate() {
            let field = format!("ownership.request[{i}].param");
            if !name_ok(rule.name()) {
                errors.push(at.err(&field, "use letters, digits and '_' (or `{name}` for a parameter of the path)"));
            } else if rule.in_path()
                && let Some(params) = &template
                && !params.iter().any(|p| p.eq_ignore_ascii_case(rule.name()))
            {
                errors.push(at.err(
                    &field,
                    format!("`{}` names a path parameter, and the path `{}` has none of that name", rule.param, r.path),
                ));
            }
        }
        if r.handler.is_some() {
            errors.push(at.err(
                "ownership",
                "the gateway answers this route itself (`handler`): no parameter of it reaches an ownership check",
            ));
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
        (None, raw::Access::Citizen, true) if r.handler.is_none() => errors
            .push(at.err("ownership", "a citizen route that releases personal data must declare its ownership rules")),
        (Some(_), access, _) if access != raw::Access::Citizen => {
            errors.push(at.err("ownership", "ownership rules apply to citizen routes"))
        }
        (Some(o), _, _) if o.request.is_empty() && o.response.is_none() => {
            errors.push(at.err("ownership", "give request rules, a response rule, or both"))
        }
        (Some(o), _, _) if o.needs_subjects && cx.citizens.is_some_and(|c| c.subjects.is_none()) => {
            errors.push(at.err("ownership", "ID-number, beneficiary and appointment rules need `citizens.subjects`"))
        }
        (Some(o), _, _)
            if o.request.iter().any(|rule| rule.kind == SubjectKind::Appointment)
                && cx.citizens.and_then(|c| c.subjects.as_ref()).is_some_and(|s| s.appointments.is_none()) =>
        {
            errors.push(at.err(
                "ownership",
                "appointment rules need `citizens.subjects.appointments` and `appointment_id` (where the registry lists each record's appointments)",
            ))
        }
        _ => {}
    }
    ownership
}

type Windows = Vec<(NonZeroU32, Duration)>;

/// The windows of `rate`, each checked (`field` names the list for errors).
fn windows(at: &At, field: &str, rate: &[crate::config::raw::RawRate], errors: &mut Vec<ConfigError>) -> Windows {
    let mut windows = Vec::new();
    if rate.is_empty() {
        errors.push(at.err(field, "at least one {limit, per} is required"));
    }
    for (j, rate) in rate.iter().enumerate() {
        match NonZeroU32::new(rate.limit) {
            Some(n) if rate.per.0 >= Duration::from_millis(1) && rate.per.0 / rate.limit > Duration::ZERO => {
                windows.push((n, rate.per.0))
            }
            _ => errors.push(at.err(&format!("{field}[{j}]"), "limit and per must be greater than zero")),
        }
    }
    windows
}

/// The named budgets, compiled.
fn budgets(m: &Merged, errors: &mut Vec<ConfigError>) -> HashMap<String, (LimitKey, Windows)> {
    let mut out = HashMap::new();
    for (at, name, b) in &m.budgets {
        let valid = !name.is_empty()
            && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
        if !valid {
            errors.push(at.err("", "budget names use a-z, 0-9, '-' and '_'"));
        }
        out.insert(name.clone(), (b.key, windows(at, "rate", &b.rate, errors)));
    }
    out
}

fn limits(
    at: &At,
    r: &RawRoute,
    budgets: &HashMap<String, (LimitKey, Windows)>,
    errors: &mut Vec<ConfigError>,
) -> Vec<Limit> {
    let mut out = Vec::new();
    for (i, l) in r.limits.iter().enumerate() {
        let limit = match (&l.budget, l.key) {
            (Some(name), None) if l.rate.is_empty() => match budgets.get(name) {
                Some((key, windows)) => Limit { key: *key, windows: windows.clone(), budget: Some(name.clone()) },
                None => {
                    errors.push(at.err(&format!("limits[{i}].budget"), format!("no budget named `{name}`")));
                    continue;
                }
            },
            (None, Some(key)) => {
                Limit { key, windows: windows(at, &format!("limits[{i}].rate"), &l.rate, errors), budget: None }
            }
            _ => {
                errors.push(at.err(&format!("limits[{i}]"), "give either `key` and `rate`, or `budget`"));
                continue;
            }
        };
        let fits = match limit.key {
            LimitKey::Ip | LimitKey::Mobile => true,
            LimitKey::Session => r.access == raw::Access::Citizen,
            LimitKey::Subject => r.access != raw::Access::Public,
            LimitKey::Partner => r.access == raw::Access::Partner,
            LimitKey::Credential => false,
            LimitKey::Beneficiary => {
                r.ownership.as_ref().is_some_and(|o| o.request.iter().any(|rule| rule.kind == SubjectKind::Beneficiary))
            }
        };
        if !fits {
            let field = if limit.budget.is_some() { format!("limits[{i}].budget") } else { format!("limits[{i}].key") };
            errors.push(at.err(
                &field,
                format!("`{}` cannot be known on this route (access or ownership rules)", limit.key.as_str()),
            ));
        }
        out.push(limit);
    }
    out
}
