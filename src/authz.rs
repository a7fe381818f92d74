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
/// Public routes admit anyone. Citizen and partner routes need a caller of that kind; a caller of
/// the wrong kind (or none) is `401`, so that no route is ever open without its protection.
pub fn authorize(route: &Route, caller: Caller) -> Result<Permit<'_>, GatewayError> {
    match (route.access, &caller) {
        (Access::Public, _) => Ok(Permit { route, caller }),
        (Access::Citizen, Caller::Anonymous) => Err(GatewayError::Unauthenticated),
        (Access::Partner, Caller::Anonymous) => Err(GatewayError::Unauthenticated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(access: Access) -> Route {
        Route {
            name: "r".into(),
            template: "/r".into(),
            methods: vec![http::Method::GET],
            access,
            target: crate::policy::Target::Upstream(0),
            personal: access != Access::Public,
            ownership: None,
            params: vec![],
            body_limit: 1024,
            timeout: std::time::Duration::from_secs(1),
        }
    }

    #[test]
    fn anonymous_callers_reach_only_public_routes() {
        assert!(authorize(&route(Access::Public), Caller::Anonymous).is_ok());
        for access in [Access::Citizen, Access::Partner] {
            let err = authorize(&route(access), Caller::Anonymous).unwrap_err();
            assert!(matches!(err, GatewayError::Unauthenticated), "{access:?}");
        }
    }
}
