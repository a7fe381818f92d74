use super::*;
use http_body_util::BodyExt;

fn all_errors() -> Vec<(GatewayError, u16)> {
    vec![
        (GatewayError::AmbiguousPath(PathProblem::DotSegment), 400),
        (GatewayError::BadRequest("x"), 400),
        (GatewayError::RouteNotFound, 404),
        (GatewayError::MethodNotAllowed { allow: "GET".into() }, 405),
        (GatewayError::AmbiguousSubject("x"), 400),
        (GatewayError::Unauthenticated, 401),
        (GatewayError::InvalidToken, 401),
        (GatewayError::InvalidMobile, 400),
        (GatewayError::InvalidOtp, 401),
        (GatewayError::OtpTransactionInvalid, 401),
        (GatewayError::OtpThrottled { retry_after: Duration::from_secs(60) }, 429),
        (GatewayError::OtpDeliveryFailed, 503),
        (GatewayError::NotOwned, 403),
        (GatewayError::NoRecords, 404),
        (GatewayError::AlreadyWaiting, 409),
        (GatewayError::StoreUnavailable, 503),
        (GatewayError::AuditUnavailable, 503),
        (GatewayError::Forbidden, 403),
        (GatewayError::PayloadTooLarge, 413),
        (GatewayError::UriTooLong, 414),
        (GatewayError::HeadersTooLarge, 431),
        (GatewayError::RequestTimeout, 408),
        (GatewayError::RateLimited { retry_after: Duration::from_millis(1500) }, 429),
        (GatewayError::UpstreamUnavailable, 502),
        (GatewayError::UpstreamBadResponse, 502),
        (GatewayError::UpstreamTimeout, 504),
        (GatewayError::NotImplemented, 501),
        (GatewayError::Draining, 503),
        (GatewayError::Internal, 500),
    ]
}

#[tokio::test]
async fn every_variant_renders_its_status_in_the_json_shape() {
    let mut codes = std::collections::HashSet::new();
    for (err, status) in all_errors() {
        let resp = err.render("req-1");
        assert_eq!(resp.status().as_u16(), status, "{err:?}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["x-request-id"], "req-1");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 3, "exactly errorCode, error, requestId: {v}");
        assert_eq!(v["errorCode"], err.code());
        assert_eq!(v["requestId"], "req-1");
        assert!(!v["error"].as_str().unwrap().is_empty());
        assert!(codes.insert(err.code()), "error codes are unique: {}", err.code());
    }
}

#[test]
fn status_specific_headers() {
    let r = GatewayError::Unauthenticated.render("r");
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"otpgate\"");
    let r = GatewayError::RateLimited { retry_after: Duration::from_millis(1500) }.render("r");
    assert_eq!(r.headers()["retry-after"], "2", "rounded up, never 0");
    let r = GatewayError::RateLimited { retry_after: Duration::ZERO }.render("r");
    assert_eq!(r.headers()["retry-after"], "1");
    let r = GatewayError::MethodNotAllowed { allow: "GET, POST".into() }.render("r");
    assert_eq!(r.headers()["allow"], "GET, POST");
    for (err, _) in all_errors() {
        let r = err.render("r");
        assert_eq!(r.headers().contains_key("www-authenticate"), r.status() == 401, "{err:?}");
        assert_eq!(r.headers().contains_key("retry-after"), r.status() == 429);
    }
}
