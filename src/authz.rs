//! Authorization: the only code that can construct a [`Permit`].
//!
//! Forwarding (and, later, redaction and audit) take a `Permit`, so a request path that skips
//! authorization does not compile. `Permit`'s fields are private to this module.

use crate::auth::Caller;
use crate::config::raw::Access;
use crate::error::GatewayError;
use crate::policy::Route;

/// Proof that `caller` may call `route`.
#[derive(Debug)]
pub struct Permit<'p> {
    route: &'p Route,
    caller: Caller,
}

impl<'p> Permit<'p> {
    pub fn route(&self) -> &'p Route {
        self.route
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }
}

/// Decide whether `caller` may call `route`.
///
/// Public routes admit anyone. Citizen routes need a citizen and partner routes a partner holding
/// every scope the route names (else `403`); a caller of the wrong kind (or none) is `401`, so no
/// route is ever open without its protection.
pub fn authorize(route: &Route, caller: Caller) -> Result<Permit<'_>, GatewayError> {
    match (route.access, &caller) {
        (Access::Public, _) => Ok(Permit { route, caller }),
        (Access::Citizen, Caller::Citizen(_)) => Ok(Permit { route, caller }),
        (Access::Citizen, Caller::Anonymous | Caller::Partner(_)) => Err(GatewayError::Unauthenticated),
        (Access::Partner, Caller::Partner(p)) if route.scopes.iter().all(|s| p.scopes.contains(s)) => {
            Ok(Permit { route, caller })
        }
        (Access::Partner, Caller::Partner(_)) => Err(GatewayError::Forbidden),
        (Access::Partner, Caller::Anonymous | Caller::Citizen(_)) => Err(GatewayError::Unauthenticated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Citizen, Mobile};

    fn route(access: Access) -> Route {
        Route {
            name: "r".into(),
            template: "/r".into(),
            methods: vec![http::Method::GET],
            access,
            target: crate::policy::Target::Upstream(0),
            personal: access != Access::Public,
            ownership: None,
            scopes: vec![],
            quota_subjects: vec![],
            limits: vec![],
            redact: Default::default(),
            params: vec![],
            body_limit: 1024,
            timeout: std::time::Duration::from_secs(1),
            stream: false,
        }
    }

    fn citizen() -> Caller {
        Caller::Citizen(Citizen { session_id: "s".into(), mobile: Mobile::new("9000000001".into()) })
    }

    fn partner(scopes: &[&str]) -> Caller {
        Caller::Partner(crate::auth::partner::PartnerCaller {
            id: "icmr".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            profile: None,
        })
    }

    #[test]
    fn partners_need_every_scope_of_the_route() {
        let mut r = route(Access::Partner);
        r.scopes = vec!["beneficiaries:search".into()];
        assert!(authorize(&r, partner(&["beneficiaries:search", "x:y"])).is_ok());
        assert!(matches!(authorize(&r, partner(&["beneficiaries:export"])), Err(GatewayError::Forbidden)));
        assert!(matches!(authorize(&route(Access::Citizen), partner(&[])), Err(GatewayError::Unauthenticated)));
    }

    #[test]
    fn each_access_kind_admits_only_its_callers() {
        assert!(authorize(&route(Access::Public), Caller::Anonymous).is_ok());
        assert!(authorize(&route(Access::Public), citizen()).is_ok());
        assert!(authorize(&route(Access::Citizen), citizen()).is_ok());
        let refused =
            [(Access::Citizen, Caller::Anonymous), (Access::Partner, Caller::Anonymous), (Access::Partner, citizen())];
        for (access, caller) in refused {
            let err = authorize(&route(access), caller).unwrap_err();
            assert!(matches!(err, GatewayError::Unauthenticated), "{access:?}");
        }
    }
}
