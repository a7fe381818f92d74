//! The `authorize` phase: the caller meets the route's access rules (see `authz`); who called
//! is noted first, so a refusal is logged and audited with its caller.

use super::context::RequestCtx;
use crate::auth::Caller;
use crate::authz::{self, Permit};
use crate::error::GatewayError;
use crate::policy::Route;

pub fn permit<'r>(route: &'r Route, caller: Caller, cx: &mut RequestCtx) -> Result<Permit<'r>, GatewayError> {
    cx.outcome.caller_kind = caller.kind();
    match &caller {
        Caller::Citizen(c) => cx.outcome.citizen_mobile = Some(c.mobile().clone()),
        Caller::Partner(p) => cx.outcome.caller_id = p.id().to_string(),
        Caller::Anonymous => {}
    }
    authz::authorize(route, caller, cx.client)
}
