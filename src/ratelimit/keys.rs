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
        }
    }
}

/// The `ip` key of a client: its IPv4 address, or the /64 of an IPv6 one (one subscriber is
/// usually handed a whole /64, so keying on /128 would let a client rotate addresses freely).
pub fn ip_key(ip: IpAddr) -> String {
    match crate::policy::cidr::canonical(ip) {
        IpAddr::V6(v6) => format!("{}/64", std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4.to_string(),
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
        LimitKey::Ip => vec![ip_key(client_ip)],
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

#[cfg(test)]
mod ip_tests {
    use super::ip_key;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let k = |s: &str| ip_key(s.parse().expect("address"));
        assert_eq!(k("2001:db8:1:2:aaaa::1"), k("2001:db8:1:2:ffff:1:2:3"), "same /64");
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"), "another /64");
        assert_eq!(k("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(k("203.0.113.7"), "203.0.113.7");
        assert_eq!(k("::ffff:203.0.113.7"), "203.0.113.7", "v4-mapped is the v4 address");
    }
}
