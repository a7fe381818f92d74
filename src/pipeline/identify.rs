//! The `identify` phase: read only the credential the route asks for and turn it into a
//! [`Caller`]. A public route never looks at a token; a citizen route reads only its bearer token;
//! a partner route only the client certificate, the API key and the source address.

use http::HeaderMap;

use super::context::{ConnInfo, RequestCtx};
use crate::auth::{self, Caller};
use crate::error::GatewayError;
use crate::policy::{Access, Route};
use crate::runtime::App;

pub async fn caller(
    app: &App,
    route: &Route,
    conn: &ConnInfo,
    headers: &HeaderMap,
    cx: &RequestCtx,
) -> Result<Caller, GatewayError> {
    let rt = &cx.rt;
    match &route.access {
        Access::Public => Ok(Caller::Anonymous),
        Access::Partner(_) => {
            let (Some(partners), Some(verifier)) = (rt.policy.partners.as_ref(), rt.tls.partner_verifier.as_ref())
            else {
                return Err(GatewayError::Unauthenticated);
            };
            let cert = conn.client_cert.as_ref();
            auth::partner::identify(cert, headers, cx.client, partners, verifier.as_ref(), rt.generation, cx.now_ms)
                .map(Caller::Partner)
        }
        Access::Citizen(_) => {
            let (Some(rules), Some(cr)) = (rt.policy.citizens.as_ref(), rt.citizens.as_ref()) else {
                return Err(GatewayError::Unauthenticated);
            };
            auth::identify_citizen(headers, &cr.tokens, &app.store, &rules.session, cx.now_ms).await
        }
    }
}
