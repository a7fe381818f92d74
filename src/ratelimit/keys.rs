//! The values a request presents for the limit keys that are not the caller's own identity: the
//! client address (`ip`) and the mobile an OTP is asked for (`mobile`). The caller's identities
//! (`session`, `subject`, `partner`) are fixed by `authz` in the `Permit`.

use std::net::IpAddr;

pub use crate::policy::LimitKey;

/// The `ip` key of a client: its IPv4 address, or the /64 of an IPv6 one (one subscriber is
/// usually handed a whole /64, so keying on /128 would let a client rotate addresses freely).
pub fn ip_key(ip: IpAddr) -> String {
    match crate::policy::cidr::canonical(ip) {
        IpAddr::V6(v6) => format!("{}/64", std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4.to_string(),
    }
}

/// The mobile a JSON body names (`mobile`), canonical (`+91…` is the same person), if any.
pub fn mobile_in_body(body: &[u8]) -> Option<String> {
    let doc = crate::ownership::parse_strict(body).ok()?;
    let m = match doc.get("mobile")? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(crate::ownership::canonical_mobile(&m).unwrap_or(m))
}

#[cfg(test)]
mod tests;
