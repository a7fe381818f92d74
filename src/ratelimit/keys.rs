//! What a limit is keyed on, and how a request's values for each key kind are found.

use std::net::IpAddr;

use serde::Deserialize;

use crate::auth::Caller;

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
}

impl LimitKey {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKey::Ip => "ip",
            LimitKey::Mobile => "mobile",
            LimitKey::Session => "session",
            LimitKey::Subject => "subject",
            LimitKey::Beneficiary => "beneficiary",
            LimitKey::Partner => "partner",
        }
    }
}

/// The request's values for `key` (empty when it names none).
pub fn values_for(
    key: LimitKey,
    caller: &Caller,
    client_ip: IpAddr,
    body: &[u8],
    beneficiaries: &dyn Fn() -> Vec<String>,
) -> Vec<String> {
    match key {
        LimitKey::Ip => vec![crate::policy::cidr::canonical(client_ip).to_string()],
        LimitKey::Mobile => crate::ownership::parse_strict(body)
            .ok()
            .and_then(|v| match v.get("mobile") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
            .map(|m| vec![crate::ownership::canonical_mobile(&m).unwrap_or(m)])
            .unwrap_or_default(),
        LimitKey::Session => match caller {
            Caller::Citizen(c) => vec![c.session_id.clone()],
            Caller::Anonymous | Caller::Partner(_) => Vec::new(),
        },
        LimitKey::Subject => match caller {
            Caller::Citizen(c) => vec![format!("m:{}", c.mobile.as_str())],
            Caller::Partner(p) => vec![format!("p:{}", p.id)],
            Caller::Anonymous => Vec::new(),
        },
        LimitKey::Beneficiary => beneficiaries(),
        LimitKey::Partner => match caller {
            Caller::Partner(p) => vec![p.id.clone()],
            Caller::Anonymous | Caller::Citizen(_) => Vec::new(),
        },
    }
}
