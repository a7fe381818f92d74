//! Authorization: the only code that can construct a [`Permit`].
//!
//! A `Permit` is proof that `authorize` ran, and it carries everything the later stages act on:
//! the matched route, the grant (which kind of caller, with the route's rules for that kind), the
//! redaction plan, the caller's own limit keys and the identity to assert upstream. Forwarding,
//! assertion minting, subject fetches and redaction take `&Permit`, so a request path that skips
//! authorization does not compile (ARCHITECTURE.md, "Invariants").

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::{Caller, Citizen, Mobile, partner::PartnerCaller};
use crate::error::GatewayError;
use crate::policy::{Access, CitizenAccess, LimitKey, Ownership, PartnerAccess, Redaction, Route};
use crate::ratelimit::keys::ip_key;
use crate::redact::Profile;

/// Proof that the caller may call the route, with what the later stages need.
#[derive(Debug)]
pub struct Permit<'r> {
    route: &'r Route,
    grant: Grant<'r>,
    keys: Vec<(LimitKey, String)>,
}

/// Who was let in, with the route's rules for that kind of caller.
#[derive(Debug)]
pub enum Grant<'r> {
    Public,
    Citizen { citizen: Citizen, rules: &'r CitizenAccess },
    Partner { partner: PartnerCaller, rules: &'r PartnerAccess },
}

/// A permit's redaction plan: the compiled profile its answer goes through. Only a [`Permit`]
/// makes one, so redaction cannot be applied outside an authorized request.
#[derive(Debug, Clone)]
pub struct Plan {
    profile: Arc<Profile>,
}

impl Plan {
    pub fn profile(&self) -> &Arc<Profile> {
        &self.profile
    }
}

/// The verified identity the gateway asserts to the upstream.
#[derive(Debug, Clone, Copy)]
pub enum Identity<'a> {
    Citizen { session_id: &'a str, mobile: &'a Mobile },
    Partner { id: &'a str, scopes: &'a [String] },
}

impl<'r> Permit<'r> {
    pub fn route(&self) -> &'r Route {
        self.route
    }

    pub fn grant(&self) -> &Grant<'r> {
        &self.grant
    }

    /// `anonymous`, `citizen` or `partner`: the label of metrics, spans and audit records.
    pub fn caller_kind(&self) -> &'static str {
        match self.grant {
            Grant::Public => "anonymous",
            Grant::Citizen { .. } => "citizen",
            Grant::Partner { .. } => "partner",
        }
    }

    pub fn citizen(&self) -> Option<&Citizen> {
        match &self.grant {
            Grant::Citizen { citizen, .. } => Some(citizen),
            Grant::Public | Grant::Partner { .. } => None,
        }
    }

    /// The citizen route's ownership rules (none on other routes).
    pub fn ownership(&self) -> Option<&'r Ownership> {
        match &self.grant {
            Grant::Citizen { rules, .. } => rules.ownership.as_ref(),
            Grant::Public | Grant::Partner { .. } => None,
        }
    }

    /// The identity to assert upstream; public routes assert none.
    pub fn identity(&self) -> Option<Identity<'_>> {
        match &self.grant {
            Grant::Public => None,
            Grant::Citizen { citizen, .. } => {
                Some(Identity::Citizen { session_id: citizen.session_id(), mobile: citizen.mobile() })
            }
            Grant::Partner { partner, .. } => Some(Identity::Partner { id: partner.id(), scopes: partner.scopes() }),
        }
    }

    /// How the answer is redacted: a partner's own profile, else the route's for the caller's
    /// kind; `None` passes answers as they are (public routes release nothing personal; `none`
    /// marks a binary document whose ownership was checked on the request).
    pub fn plan(&self) -> Option<Plan> {
        let redaction = match &self.grant {
            Grant::Public => return None,
            Grant::Citizen { rules, .. } => &rules.redaction,
            Grant::Partner { partner, rules } => match partner.profile() {
                Some(p) => return Some(Plan { profile: p.clone() }),
                None => &rules.redaction,
            },
        };
        match redaction {
            Redaction::Pass => None,
            Redaction::Profile(p) => Some(Plan { profile: p.clone() }),
        }
    }

    /// The values of the route's limit keys that identify the caller (`ip`, `session`,
    /// `subject`, `partner`). Keys naming other people (`mobile`, `beneficiary`) come from the
    /// request's parameters, once they have been read.
    pub fn caller_keys(&self) -> &[(LimitKey, String)] {
        &self.keys
    }
}

/// Decide whether `caller` may call `route` (from `client`, the address limits are keyed on).
///
/// Public routes admit anyone (and read no credentials). Citizen routes need a citizen and
/// partner routes a partner holding every scope the route names (else `403`); a caller of the
/// wrong kind (or none) is `401`, so no route is ever open without its protection.
pub fn authorize(route: &Route, caller: Caller, client: IpAddr) -> Result<Permit<'_>, GatewayError> {
    let grant = match (&route.access, caller) {
        (Access::Public, _) => Grant::Public,
        (Access::Citizen(rules), Caller::Citizen(citizen)) => Grant::Citizen { citizen, rules },
        (Access::Citizen(_), Caller::Anonymous | Caller::Partner(_)) => return Err(GatewayError::Unauthenticated),
        (Access::Partner(rules), Caller::Partner(partner)) => {
            if !rules.scopes.iter().all(|s| partner.scopes().contains(s)) {
                return Err(GatewayError::Forbidden);
            }
            Grant::Partner { partner, rules }
        }
        (Access::Partner(_), Caller::Anonymous | Caller::Citizen(_)) => return Err(GatewayError::Unauthenticated),
    };
    let mut keys: Vec<(LimitKey, String)> = Vec::new();
    for limit in &route.limits {
        if keys.iter().all(|(k, _)| *k != limit.key)
            && let Some(value) = caller_key(limit.key, &grant, client)
        {
            keys.push((limit.key, value));
        }
    }
    Ok(Permit { route, grant, keys })
}

/// The caller's value for `key`, where the key names the caller.
fn caller_key(key: LimitKey, grant: &Grant<'_>, client: IpAddr) -> Option<String> {
    match (key, grant) {
        (LimitKey::Ip, _) => Some(ip_key(client)),
        (LimitKey::Session, Grant::Citizen { citizen, .. }) => Some(citizen.session_id().to_string()),
        (LimitKey::Subject, Grant::Citizen { citizen, .. }) => Some(format!("m:{}", citizen.mobile().as_str())),
        (LimitKey::Subject, Grant::Partner { partner, .. }) => Some(format!("p:{}", partner.id())),
        (LimitKey::Partner, Grant::Partner { partner, .. }) => Some(partner.id().to_string()),
        (LimitKey::Session | LimitKey::Subject | LimitKey::Partner, _) => None,
        (LimitKey::Mobile | LimitKey::Beneficiary | LimitKey::Credential, _) => None,
    }
}

#[cfg(test)]
mod tests;
