//! The synthetic CoWIN-shaped registry: the upstream behind the gateway in `otpgate demo`,
//! integration tests and benchmarks.
//!
//! Deliberately naive: apart from verifying the gateway's identity assertion it answers whatever it is
//! asked, including the 2023-leak lookup of anyone's records by mobile or photo id. Data is computed
//! from `(seed, index)` on demand ([`data`]), so `beneficiaries` costs no memory; the only state is the
//! bookings ([`bookings::Bookings`]: seats, appointments, who holds one for which dose).
//!
//! Module map: [`data`] records and geography · [`assertion`] identity JWT · `routes` routing table ·
//! `endpoints` / `schedule` (appointments) handlers · [`bookings`] booking state · `export` streamed
//! export body · `pdf` certificates and appointment slips ·
//! `response` body type and error catalogue · `serve` HTTP/1.1 + HTTP/2 listener.

pub use crate::upstream::assertion;
pub mod bookings;
pub mod data;
mod endpoints;
mod export;
mod pdf;
mod response;
mod routes;
pub mod schedule;
mod serve;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;

pub use assertion::{
    AUDIENCE, AssertionSigner, AssertionVerifier, IDENTITY_HEADER, ISSUER, IdentityClaims, KIND_CITIZEN, KIND_PARTNER,
    LEEWAY_SECS, sign_assertion, verify_assertion,
};
pub use data::{Dataset, verhoeff_check_digit, verhoeff_valid};
pub use export::{CHUNK_BYTES, ExportBody};
pub use pdf::certificate_pdf;
pub use response::{RegistryBody, RegistryError};
pub use serve::serve;

use bookings::Bookings;
use routes::{Access, Route};

/// Largest request body the registry reads (schedule and partner search bodies are tiny).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How to build a [`Registry`].
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Seed of the deterministic data.
    pub seed: u64,
    /// Number of beneficiary records (clamped to [`data::MAX_BENEFICIARIES`]).
    pub beneficiaries: u64,
    /// HS256 key of the identity assertion. `None`: every endpoint that needs an assertion answers 401.
    pub identity_key: Option<Vec<u8>>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig { seed: 1, beneficiaries: 10_000, identity_key: None }
    }
}

/// The registry: a data generator, an assertion verifier and the booking state.
pub struct Registry {
    dataset: Dataset,
    verifier: Option<AssertionVerifier>,
    bookings: Bookings,
}

impl Registry {
    pub fn new(cfg: RegistryConfig) -> Arc<Registry> {
        Arc::new(Registry {
            dataset: Dataset::new(cfg.seed, cfg.beneficiaries),
            verifier: cfg.identity_key.as_deref().map(AssertionVerifier::new),
            bookings: Bookings::default(),
        })
    }

    /// The data this registry serves (tests use it to know valid mobiles, refs and sessions).
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// Seat bookings so far.
    pub fn bookings(&self) -> &Bookings {
        &self.bookings
    }

    /// Answer one request. Never fails: every refusal is a JSON error response.
    pub async fn handle<B>(self: &Arc<Self>, req: Request<B>) -> Response<RegistryBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        match self.route(req).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        }
    }

    async fn route<B>(&self, req: Request<B>) -> Result<Response<RegistryBody>, RegistryError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let (parts, body) = req.into_parts();
        let route = Route::parse(parts.uri.path()).ok_or(RegistryError::NotFound)?;
        if parts.method != route.method() {
            return Err(RegistryError::MethodNotAllowed(route.allow()));
        }
        let claims = match route.access() {
            Access::Public => None,
            Access::Any => Some(self.authenticate(&parts.headers, None)?),
            Access::Citizen => Some(self.authenticate(&parts.headers, Some(KIND_CITIZEN))?),
            Access::Partner => Some(self.authenticate(&parts.headers, Some(KIND_PARTNER))?),
        };
        let q = parts.uri.query().unwrap_or("");
        match (route, claims) {
            (Route::States, _) => endpoints::states(self),
            (Route::Districts(id), _) => endpoints::districts(self, id),
            (Route::Sessions { query, .. }, _) => endpoints::sessions(self, query, q),
            (Route::MyBeneficiaries, Some(claims)) => endpoints::my_beneficiaries(self, &claims),
            (Route::MyBeneficiaries, None) => Err(RegistryError::Unauthenticated),
            (Route::Search, _) => endpoints::search(self, q),
            (Route::Certificate, _) => endpoints::certificate(self, q),
            (Route::Export, _) => endpoints::export(self, q),
            (Route::Schedule, _) => schedule::schedule(self, &read_body(body, MAX_BODY_BYTES).await?),
            (Route::Reschedule, _) => schedule::reschedule(self, &read_body(body, MAX_BODY_BYTES).await?),
            (Route::Cancel, _) => schedule::cancel(self, &read_body(body, MAX_BODY_BYTES).await?),
            (Route::AppointmentSlip, _) => schedule::appointment_slip(self, q),
            (Route::PartnerSearch, _) => {
                let body = read_body(body, MAX_BODY_BYTES).await?;
                endpoints::partner_search(self, &body)
            }
        }
    }

    /// Verify the identity assertion, and its `kind` when one is required.
    fn authenticate(&self, headers: &HeaderMap, kind: Option<&str>) -> Result<IdentityClaims, RegistryError> {
        let verifier = self.verifier.as_ref().ok_or(RegistryError::Unauthenticated)?;
        let token = headers.get(IDENTITY_HEADER).and_then(|v| v.to_str().ok()).ok_or(RegistryError::Unauthenticated)?;
        let claims = verifier.verify(token).map_err(|e| {
            tracing::debug!(error = %e, "registry: identity assertion rejected");
            RegistryError::Unauthenticated
        })?;
        match kind {
            Some(k) if claims.kind != k => Err(RegistryError::WrongKind),
            _ => Ok(claims),
        }
    }
}

/// Read a whole request body of at most `limit` bytes.
async fn read_body<B>(body: B, limit: usize) -> Result<Vec<u8>, RegistryError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::debug!(error = %e, "registry: reading request body failed");
            RegistryError::BadBody
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(RegistryError::BodyTooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}
