use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::policy::{Redaction, Target};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

fn route(access: Access) -> Route {
    Route {
        name: "r".into(),
        template: "/r".into(),
        methods: vec![http::Method::GET],
        target: Target::Upstream(0),
        personal: !matches!(access, Access::Public),
        access,
        limits: vec![],
        params: vec![],
        body_limit: 1024,
        timeout: std::time::Duration::from_secs(1),
        forward_headers: None,
        reads_body: false,
        waiting_room: None,
    }
}

fn citizen_route() -> Route {
    route(Access::Citizen(CitizenAccess { ownership: None, redaction: Redaction::Pass }))
}

fn partner_route(scopes: &[&str]) -> Route {
    route(Access::Partner(PartnerAccess {
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        quota_subjects: vec![],
        redaction: Redaction::Pass,
        stream: false,
    }))
}

fn citizen() -> Caller {
    Caller::Citizen(Citizen::for_tests("s", "9000000001"))
}

fn partner(scopes: &[&str]) -> Caller {
    Caller::Partner(PartnerCaller::for_tests("icmr", scopes, None))
}

#[test]
fn partners_need_every_scope_of_the_route() {
    let r = partner_route(&["beneficiaries:search"]);
    assert!(authorize(&r, partner(&["beneficiaries:search", "x:y"]), CLIENT).is_ok());
    assert!(matches!(authorize(&r, partner(&["beneficiaries:export"]), CLIENT), Err(GatewayError::Forbidden)));
    assert!(matches!(authorize(&citizen_route(), partner(&[]), CLIENT), Err(GatewayError::Unauthenticated)));
}

#[test]
fn each_access_kind_admits_only_its_callers() {
    assert!(authorize(&route(Access::Public), Caller::Anonymous, CLIENT).is_ok());
    assert!(authorize(&citizen_route(), citizen(), CLIENT).is_ok());
    let refused = [
        (citizen_route(), Caller::Anonymous),
        (partner_route(&[]), Caller::Anonymous),
        (partner_route(&[]), citizen()),
    ];
    for (route, caller) in refused {
        let err = authorize(&route, caller, CLIENT).unwrap_err();
        assert!(matches!(err, GatewayError::Unauthenticated), "{}", route.access.kind());
    }
}

#[test]
fn a_public_route_asserts_no_identity_even_for_a_signed_in_caller() {
    let r = route(Access::Public);
    let permit = authorize(&r, citizen(), CLIENT).expect("public");
    assert!(permit.identity().is_none());
    assert_eq!(permit.caller_kind(), "anonymous");
    assert!(permit.plan().is_none());
}

#[test]
fn the_permit_carries_the_callers_own_limit_keys() {
    let mut r = citizen_route();
    let one = vec![(std::num::NonZeroU32::MIN, std::time::Duration::from_secs(1))];
    for key in [LimitKey::Ip, LimitKey::Session, LimitKey::Subject, LimitKey::Beneficiary] {
        r.limits.push(crate::policy::Limit::of(key, one.clone()));
    }
    let permit = authorize(&r, citizen(), CLIENT).expect("citizen");
    let keys: Vec<(LimitKey, &str)> = permit.caller_keys().iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        keys,
        [(LimitKey::Ip, "203.0.113.7"), (LimitKey::Session, "s"), (LimitKey::Subject, "m:9000000001")],
        "beneficiaries are named by the request, not the caller"
    );
    match permit.identity() {
        Some(Identity::Citizen { session_id, mobile }) => {
            assert_eq!((session_id, mobile.as_str()), ("s", "9000000001"));
        }
        other => panic!("{other:?}"),
    }
}
