//! The `waiting room` phase, between the last check and `forward`: on a route with a waiting
//! room, the request waits for its turn in its contest (see `waitroom`). Everything that can
//! refuse it — identification, authorization, ownership, limits — has run before, so a refused
//! request never takes a ticket; the audit record names the contest and the request's rank.

use super::context::RequestCtx;
use crate::authz::Permit;
use crate::error::GatewayError;
use crate::runtime::App;
use crate::waitroom::{self, Deps, Room, Turn};

/// Wait for the request's turn (`None`: the route has no waiting room).
pub async fn enter(
    app: &App,
    permit: &Permit<'_>,
    route_index: usize,
    body: &[u8],
    cx: &mut RequestCtx,
) -> Result<Option<Turn>, GatewayError> {
    let route = permit.route();
    let Some(room) = &route.waiting_room else {
        return Ok(None);
    };
    // A waiting room is only on citizen routes (`policy::waiting_room`): the entrant is the mobile.
    let Some(mobile) = cx.outcome.citizen_mobile.clone() else {
        return Err(GatewayError::Internal);
    };
    let Some(Some(admission)) = cx.rt.admission.get(route_index) else {
        return Err(GatewayError::Internal);
    };
    let values = waitroom::key_values(room, body)?;
    let deps = Deps {
        store: &app.store,
        clock: &app.clock,
        audit: app.audit.as_ref(),
        metrics: &app.metrics,
        limiters: &app.limiters,
    };
    let at =
        Room { route: &route.name, policy_version: &cx.rt.policy.version, room, admission, timeout: route.timeout };
    let turn = app.rooms.wait(&deps, &at, &values, mobile.as_str()).await?;
    cx.outcome.waiting_room = Some(turn.record());
    Ok(Some(turn))
}
