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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    pub max_headers: usize,
    pub max_header_bytes: ByteSize,
    pub max_uri_bytes: ByteSize,
    pub citizen_body: ByteSize,
    pub partner_body: ByteSize,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_headers: 100,
            max_header_bytes: ByteSize(32 << 10),
            max_uri_bytes: ByteSize(8 << 10),
            citizen_body: ByteSize(64 << 10),
            partner_body: ByteSize(1 << 20),
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
    /// Name of an entry in `upstreams`.
    pub upstream: String,
    /// The route releases personal data (audited; needs a redaction profile once profiles exist).
    #[serde(default)]
    pub personal: bool,
    /// Overrides the body limit of the caller kind.
    pub body_limit: Option<ByteSize>,
    /// Overrides `gateway.timeouts.route`.
    pub timeout: Option<Dur>,
}
