//! The registry's routing table: path → endpoint, method, and who may call it.
//!
//! Order per request: match the path (404), check the method (405), check the identity assertion
//! (401/403), then run the endpoint. Apart from the assertion there are no ownership checks: the
//! registry is deliberately naive, the gateway in front of it does those.

use http::Method;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// No assertion needed.
    Public,
    /// Any valid assertion.
    Any,
    /// A valid assertion of kind `citizen`.
    Citizen,
    /// A valid assertion of kind `partner`.
    Partner,
}

/// The four session queries, public or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionQuery {
    CalendarByDistrict,
    CalendarByPin,
    FindByDistrict,
    FindByPin,
}

impl SessionQuery {
    fn parse(name: &str) -> Option<SessionQuery> {
        Some(match name {
            "calendarByDistrict" => SessionQuery::CalendarByDistrict,
            "calendarByPin" => SessionQuery::CalendarByPin,
            "findByDistrict" => SessionQuery::FindByDistrict,
            "findByPin" => SessionQuery::FindByPin,
            _ => return None,
        })
    }

    /// Days covered: 7 for calendars, 1 for `findBy*`.
    pub(crate) fn days(self) -> u32 {
        match self {
            SessionQuery::CalendarByDistrict | SessionQuery::CalendarByPin => 7,
            SessionQuery::FindByDistrict | SessionQuery::FindByPin => 1,
        }
    }

    pub(crate) fn by_pin(self) -> bool {
        matches!(self, SessionQuery::CalendarByPin | SessionQuery::FindByPin)
    }
}

/// Every endpoint of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    States,
    Districts(&'a str),
    Sessions { public: bool, query: SessionQuery },
    MyBeneficiaries,
    Search,
    Schedule,
    Reschedule,
    Cancel,
    AppointmentSlip,
    Certificate,
    PartnerSearch,
    Export,
}

impl<'a> Route<'a> {
    /// The endpoint at `path`, if any.
    pub(crate) fn parse(path: &'a str) -> Option<Route<'a>> {
        let route = match path {
            "/api/v2/admin/location/states" => Route::States,
            "/api/v2/appointment/beneficiaries" => Route::MyBeneficiaries,
            "/api/v2/appointment/beneficiaries/search" => Route::Search,
            "/api/v2/appointment/schedule" => Route::Schedule,
            "/api/v2/appointment/reschedule" => Route::Reschedule,
            "/api/v2/appointment/cancel" => Route::Cancel,
            "/api/v2/appointment/appointmentslip/download" => Route::AppointmentSlip,
            "/api/v2/registration/certificate/public/download" => Route::Certificate,
            "/api/v2/partner/beneficiaries/search" => Route::PartnerSearch,
            "/api/v2/partner/beneficiaries/export" => Route::Export,
            _ => {
                if let Some(id) = path.strip_prefix("/api/v2/admin/location/districts/") {
                    return (!id.is_empty() && !id.contains('/')).then_some(Route::Districts(id));
                }
                if let Some(name) = path.strip_prefix("/api/v2/appointment/sessions/public/") {
                    return SessionQuery::parse(name).map(|query| Route::Sessions { public: true, query });
                }
                let name = path.strip_prefix("/api/v2/appointment/sessions/")?;
                return SessionQuery::parse(name).map(|query| Route::Sessions { public: false, query });
            }
        };
        Some(route)
    }

    pub(crate) fn method(&self) -> Method {
        match self {
            Route::Schedule | Route::Reschedule | Route::Cancel | Route::PartnerSearch => Method::POST,
            _ => Method::GET,
        }
    }

    /// The `Allow` header value for a 405.
    pub(crate) fn allow(&self) -> &'static str {
        if self.method() == Method::POST { "POST" } else { "GET" }
    }

    pub(crate) fn access(&self) -> Access {
        match self {
            Route::States | Route::Districts(_) | Route::Sessions { public: true, .. } => Access::Public,
            Route::Sessions { public: false, .. }
            | Route::Search
            | Route::Schedule
            | Route::Reschedule
            | Route::Cancel
            | Route::AppointmentSlip
            | Route::Certificate => Access::Any,
            Route::MyBeneficiaries => Access::Citizen,
            Route::PartnerSearch | Route::Export => Access::Partner,
        }
    }
}

/// The first value of query parameter `name`, percent-decoded (`None` when absent or not UTF-8).
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_encoding::percent_decode_str(v).decode_utf8().ok().map(|v| v.into_owned()))?
    })
}
