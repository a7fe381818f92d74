//! Serde structs that mirror `policies/*.yaml` one to one (`deny_unknown_fields` everywhere), with
//! the documented defaults. Nothing here is validated beyond its type; `policy::compile` does that.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::units::{ByteSize, Dur};

/// One policy file. Every section is optional; files are merged (see `config::load`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub gateway: Option<RawGateway>,
    pub upstreams: Option<BTreeMap<String, RawUpstream>>,
    pub routes: Option<Vec<RawRoute>>,
    pub citizens: Option<RawCitizens>,
    pub partners: Option<RawPartners>,
    /// Redaction profiles by name.
    pub profiles: Option<BTreeMap<String, crate::redact::RawProfile>>,
    /// Rate-limit budgets shared by several routes, by name.
    pub budgets: Option<BTreeMap<String, RawBudget>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    #[serde(default)]
    pub http2: RawHttp2,
    /// CIDRs of proxies whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Extra client-sent header names to remove before forwarding (any spelling).
    #[serde(default)]
    pub strip_headers: Vec<String>,
    /// `Strict-Transport-Security` on HTTPS answers.
    #[serde(default)]
    pub hsts: RawHsts,
}

/// HSTS: browsers that saw it use HTTPS only for `max_age` (`0s` turns the header off).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHsts {
    pub max_age: Dur,
    pub include_subdomains: bool,
    pub preload: bool,
}

impl Default for RawHsts {
    fn default() -> Self {
        RawHsts {
            max_age: Dur(std::time::Duration::from_secs(180 * 86_400)),
            include_subdomains: false,
            preload: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    pub max_headers: usize,
    pub max_header_bytes: ByteSize,
    pub max_uri_bytes: ByteSize,
    pub citizen_body: ByteSize,
    pub partner_body: ByteSize,
    /// Open client connections per listener; beyond it new connections wait in the listen
    /// backlog.
    pub max_connections: usize,
    /// Requests refused before any caller was identified (no token; a bad, expired or revoked
    /// token; wrong partner credentials), per source address: beyond it, 429.
    pub unidentified_per_source: RawRate,
    /// The same, per credential presented (a script retrying a revoked token).
    pub unidentified_per_credential: RawRate,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_headers: 100,
            max_header_bytes: ByteSize(32 << 10),
            max_uri_bytes: ByteSize(8 << 10),
            citizen_body: ByteSize(64 << 10),
            partner_body: ByteSize(1 << 20),
            max_connections: 10_000,
            unidentified_per_source: RawRate { limit: 120, per: Dur(std::time::Duration::from_secs(60)) },
            unidentified_per_credential: RawRate { limit: 10, per: Dur(std::time::Duration::from_secs(60)) },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimeouts {
    pub header_read: Dur,
    pub upstream_connect: Dur,
    pub route: Dur,
    pub request: Dur,
    pub keep_alive: Dur,
    pub drain: Dur,
}

impl Default for RawTimeouts {
    fn default() -> Self {
        use std::time::Duration as D;
        RawTimeouts {
            header_read: Dur(D::from_secs(10)),
            upstream_connect: Dur(D::from_secs(2)),
            route: Dur(D::from_secs(15)),
            request: Dur(D::from_secs(30)),
            keep_alive: Dur(D::from_secs(60)),
            drain: Dur(D::from_secs(30)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp2 {
    pub max_concurrent_streams: u32,
}

impl Default for RawHttp2 {
    fn default() -> Self {
        RawHttp2 { max_concurrent_streams: 100 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `http://host:port` (a path prefix is not allowed: the bytes authorized are the bytes forwarded).
    pub url: String,
    /// When to stop sending to an upstream that keeps failing (see `upstream::breaker`).
    #[serde(default)]
    pub breaker: RawBreaker,
}

/// A circuit breaker: after `failures` consecutive failures (connect errors and timeouts; 0: never
/// open), refuse at once for `open_for`, then let one probe through.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    #[serde(default = "default_breaker_failures")]
    pub failures: u32,
    #[serde(default = "default_breaker_open_for")]
    pub open_for: Dur,
}

fn default_breaker_failures() -> u32 {
    5
}

fn default_breaker_open_for() -> Dur {
    Dur(std::time::Duration::from_secs(10))
}

impl Default for RawBreaker {
    fn default() -> Self {
        RawBreaker { failures: default_breaker_failures(), open_for: default_breaker_open_for() }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Anyone; no credentials are read.
    Public,
    /// A citizen with a verified OTP session.
    Citizen,
    /// A whitelisted partner (mTLS + API key + source CIDR).
    Partner,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    pub methods: Vec<String>,
    /// Template such as `/api/v2/admin/location/districts/{state_id}`.
    pub path: String,
    pub access: Access,
    /// Name of an entry in `upstreams` (or `handler` for routes the gateway answers itself).
    pub upstream: Option<String>,
    pub handler: Option<Handler>,
    /// Citizen routes: which request parameters name a subject, and which response records must
    /// belong to the caller.
    pub ownership: Option<RawOwnership>,
    /// Partner routes: scopes the partner must hold (all of them).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Partner routes: request parameters (query or top-level JSON keys) naming the people looked
    /// up, counted against the partner's distinct-subjects-per-day quota.
    #[serde(default)]
    pub quota_subjects: Vec<String>,
    /// Redaction profile of the response, per caller kind (`none`: a binary document whose
    /// ownership is checked on the request, passed as is).
    pub redact: Option<RawRedact>,
    /// Rate limits, each keyed on one identity, with one or more windows.
    #[serde(default)]
    pub limits: Vec<RawLimit>,
    /// The route releases personal data (audited; needs a redaction profile once profiles exist).
    #[serde(default)]
    pub personal: bool,
    /// Personal-data routes: request headers forwarded besides the safe default set (any other
    /// client header is dropped before the registry sees it).
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// Overrides the body limit of the caller kind.
    pub body_limit: Option<ByteSize>,
    /// Overrides `gateway.timeouts.route`.
    pub timeout: Option<Dur>,
    /// Partner routes with a JSON profile: redact the answer as it flows (bulk exports), audited
    /// by count when it ends. Otherwise answers are read whole (≤ 8 MiB, else 502) so the audit
    /// record names every record released.
    #[serde(default)]
    pub stream: bool,
    /// Citizen routes that hand out scarce seats: requests for the same thing (the `key` fields
    /// of the JSON body) within `window` of the first are forwarded in a random order, one
    /// ticket per person (off when absent).
    pub waiting_room: Option<RawWaitingRoom>,
}

/// A route's waiting room (`policy::waiting_room`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWaitingRoom {
    /// How long after a contest opens requests are held and drawn.
    pub window: Dur,
    /// Top-level JSON body fields naming what is contested (`[session_id]`).
    pub key: Vec<String>,
    /// Forwards per interval, across every contest of the route (protects the upstream).
    pub admission: RawRate,
}

/// Routes the gateway answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handler {
    /// `{"mobile"}` → `{"txnId"}`.
    OtpGenerate,
    /// `{"otp": sha256hex, "txnId"}` → `{"token"}`.
    OtpConfirm,
    /// Revoke the caller's session.
    Logout,
    /// Who accessed the caller's records, from the audit trail.
    MyAccessLog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOwnership {
    #[serde(default)]
    pub request: Vec<crate::ownership::RequestRule>,
    pub response: Option<crate::ownership::ResponseRule>,
}

/// Citizen sign-in: OTP rules, delivery, sessions, and where a caller's own records are listed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCitizens {
    #[serde(default)]
    pub otp: RawOtp,
    #[serde(default)]
    pub session: RawSession,
    pub subjects: Option<RawSubjects>,
    /// Lifetime of the signed identity assertion sent upstream (cached per session).
    pub assertion_ttl: Option<Dur>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub limit: u32,
    pub window: Dur,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOtp {
    pub validity: Dur,
    pub max_attempts: u32,
    pub resend_after: Dur,
    /// OTP sends per mobile and source address.
    pub send_limits: Vec<RawWindow>,
    /// Wrong OTPs per mobile and source address, counted across resends.
    pub failure_limit: RawWindow,
    /// OTP sends per mobile from every source together (SMS cost).
    pub mobile_send_ceiling: RawWindow,
    /// Wrong OTPs per mobile from every source together (the guessing bound).
    pub mobile_failure_ceiling: RawWindow,
    /// OTP sends one source address may ask for, to every mobile together (SMS pumping).
    pub source_send_limit: RawWindow,
    pub delivery: RawDelivery,
    /// Also print each OTP on the console (demo only).
    pub console: bool,
}

impl Default for RawOtp {
    fn default() -> Self {
        use std::time::Duration as D;
        RawOtp {
            validity: Dur(D::from_secs(180)),
            max_attempts: 5,
            resend_after: Dur(D::from_secs(60)),
            send_limits: vec![
                RawWindow { limit: 3, window: Dur(D::from_secs(15 * 60)) },
                RawWindow { limit: 10, window: Dur(D::from_secs(24 * 3600)) },
            ],
            failure_limit: RawWindow { limit: 10, window: Dur(D::from_secs(24 * 3600)) },
            mobile_send_ceiling: RawWindow { limit: 200, window: Dur(D::from_secs(24 * 3600)) },
            mobile_failure_ceiling: RawWindow { limit: 1000, window: Dur(D::from_secs(24 * 3600)) },
            source_send_limit: RawWindow { limit: 20, window: Dur(D::from_secs(3600)) },
            delivery: RawDelivery { outbox: Some(RawOutbox { path: "otp-outbox.jsonl".into() }), webhook: None },
            console: false,
        }
    }
}

/// Exactly one of `outbox` and `webhook`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    /// Append one JSON object per OTP to a file.
    pub outbox: Option<RawOutbox>,
    /// POST each OTP to an SMS provider.
    pub webhook: Option<RawWebhook>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbox {
    /// Relative to the data dir, or absolute.
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    pub timeout: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSession {
    pub token_ttl: Dur,
    pub idle: Dur,
    pub absolute: Dur,
    pub leeway: Dur,
    pub issuer: String,
    pub audience: String,
}

impl Default for RawSession {
    fn default() -> Self {
        use std::time::Duration as D;
        RawSession {
            token_ttl: Dur(D::from_secs(15 * 60)),
            idle: Dur(D::from_secs(30 * 60)),
            absolute: Dur(D::from_secs(12 * 3600)),
            leeway: Dur(D::from_secs(30)),
            issuer: "otpgate".into(),
            audience: "otpgate-citizen".into(),
        }
    }
}

/// The upstream call that lists a caller's own records (their beneficiaries), used to decide
/// whether an ID number, beneficiary reference or appointment id in a request is theirs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubjects {
    pub upstream: String,
    pub path: String,
    pub records: String,
    pub owner: String,
    pub reference: String,
    pub photo_id: String,
    /// The array in each record that lists its appointments (e.g. `appointments`); with
    /// `appointment_id`, needed by `kind: appointment` ownership rules.
    #[serde(default)]
    pub appointments: Option<String>,
    /// The id field of each of those appointments (e.g. `appointment_id`).
    #[serde(default)]
    pub appointment_id: Option<String>,
}

/// Whitelisted partner agencies: mTLS client certificate + API key + source CIDR.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartners {
    /// PEM files of the CAs that issue partner client certificates (relative to the policy dir).
    pub ca: Vec<String>,
    /// PEM CRL files; a revoked certificate fails the TLS handshake.
    #[serde(default)]
    pub crl: Vec<String>,
    #[serde(default)]
    pub clients: BTreeMap<String, RawPartner>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartner {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    pub certificate: RawPartnerCert,
    /// Hex SHA-256 of the API key (`otpgate keys api-key` prints one).
    pub api_key_sha256: String,
    /// CIDRs the partner calls from (socket peer, or the rightmost untrusted forwarded hop).
    pub source: Vec<String>,
    pub scopes: Vec<String>,
    /// Redaction profile applied to this partner's responses.
    pub profile: Option<String>,
    pub quota: Option<RawQuota>,
}

fn enabled_by_default() -> bool {
    true
}

/// Exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartnerCert {
    /// Base64 SHA-256 of the certificate's SubjectPublicKeyInfo (`certs/mkcerts.sh pin`).
    pub spki_sha256: Option<String>,
    /// The certificate subject, RFC 4514 style as printed by `openssl x509 -subject`, e.g. `CN=icmr, O=ICMR`.
    pub subject: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    pub requests: Option<RawWindow>,
    /// Different people one partner may look up per day (IST).
    pub subjects_per_day: Option<u32>,
}

/// `{key: session, rate: [{limit: 20, per: 15m}, {limit: 100, per: 24h}]}`, or
/// `{budget: signed-in-search}`: a named budget that several routes share.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub key: Option<LimitKey>,
    #[serde(default)]
    pub rate: Vec<RawRate>,
    pub budget: Option<String>,
}

/// A named budget (`budgets:`): one key and its windows, charged by every route that names it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub key: LimitKey,
    pub rate: Vec<RawRate>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    pub limit: u32,
    pub per: Dur,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedact {
    pub citizen: Option<String>,
    /// Default for partners without a `profile` of their own.
    pub partner: Option<String>,
}

/// The identity a limit counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKey {
    /// The client address (socket peer, or the rightmost untrusted forwarded hop).
    Ip,
    /// The mobile an OTP is requested for (`mobile` in the JSON body).
    Mobile,
    /// The citizen's session.
    Session,
    /// The verified person or partner: the citizen's mobile, or the partner id.
    Subject,
    /// Each beneficiary the request names (the route's beneficiary ownership parameters).
    Beneficiary,
    /// The partner.
    Partner,
    /// A credential that identified nobody (a bad, expired or revoked token; a wrong API key):
    /// only the gateway's own refusal budget uses it.
    Credential,
}

impl LimitKey {
    /// Keyed on someone the request names (a mobile, beneficiaries) rather than on the caller:
    /// charged only after the caller's own windows, and after an ownership check where there is
    /// one, so a refused caller never spends another person's window.
    pub fn names_others(self) -> bool {
        matches!(self, LimitKey::Mobile | LimitKey::Beneficiary)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LimitKey::Ip => "ip",
            LimitKey::Mobile => "mobile",
            LimitKey::Session => "session",
            LimitKey::Subject => "subject",
            LimitKey::Beneficiary => "beneficiary",
            LimitKey::Partner => "partner",
            LimitKey::Credential => "credential",
        }
    }
}
