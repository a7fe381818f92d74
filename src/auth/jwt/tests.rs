use super::*;
use jsonwebtoken::EncodingKey;
use proptest::prelude::*;
use serde_json::json;

const NOW: u64 = 1_750_000_000;
const SUB: &str = "AAECAwQFBgcICQoLDA0ODw";

/// Throwaway P-256 key (PKCS#8) for ES256 tokens.
const P256_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5PmATJLGBrPXUzwn
Kxk25lN/I2iN6DON1zUXiRF4seOhRANCAARNhMJLFnIDIpzF0ehiUNGDymdVZkdN
3ipnHNxaS5tloMH/US1FK2IGfluQ0XqtZIC7bSnVt1mU6f93oyYN/pGC
-----END PRIVATE KEY-----
";

fn tokens() -> Tokens {
    Tokens::new(Arc::new(SessionKeys::generate_ephemeral().unwrap()), TokenConfig::default())
}

fn kid(t: &Tokens) -> String {
    t.keys.active_kid().to_owned()
}

fn enc(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn header(kid: &str) -> Value {
    json!({"alg": "EdDSA", "typ": "JWT", "kid": kid})
}

fn claims() -> Value {
    json!({"iss": "otpgate", "aud": "otpgate-citizen", "sub": SUB, "iat": NOW, "nbf": NOW, "exp": NOW + 900})
}

/// `header.payload` signed by `key` with `alg`, as an attacker would assemble it.
fn signed_raw(header: &str, payload: &str, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!("{header}.{payload}");
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// A token with `header` and `claims` signed by our active key.
fn ours(t: &Tokens, header: &Value, claims: &Value) -> String {
    signed_raw(&enc(header), &enc(claims), t.keys.signing_key(), Algorithm::EdDSA)
}

fn unsigned(header: &Value, claims: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", enc(header), enc(claims))
}

fn with(mut value: Value, field: &str, replacement: Value) -> Value {
    value[field] = replacement;
    value
}

fn without(mut value: Value, field: &str) -> Value {
    value.as_object_mut().unwrap().remove(field);
    value
}

#[test]
fn fresh_token_verifies() {
    let t = tokens();
    let sid = new_session_id();
    let token = t.issue(&sid, NOW).unwrap();
    let claims = t.verify(&token, NOW).unwrap();
    assert_eq!(claims, SessionClaims { sub: sid, iat: NOW, exp: NOW + 900 });
    let head: Value = serde_json::from_slice(&b64(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(head, header(&kid(&t)));
    let body: Value = serde_json::from_slice(&b64(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(body["nbf"], json!(NOW));
    assert_eq!(body.as_object().unwrap().len(), 6, "{body}");
}

#[test]
fn session_ids_are_22_base64url_chars_and_unique() {
    let a = new_session_id();
    assert_eq!(a.len(), 22);
    assert!(valid_session_id(&a));
    assert_ne!(a, new_session_id());
}

#[test]
fn issue_refuses_odd_session_ids() {
    let t = tokens();
    for bad in ["", "a.b", "a b", "é", &"a".repeat(65)] {
        assert_eq!(t.issue(bad, NOW), Err(TokenError::InvalidSessionId), "{bad}");
    }
}

#[test]
fn alg_none_is_refused_in_any_casing() {
    let t = tokens();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = with(header(&kid(&t)), "alg", json!(alg));
        assert_eq!(t.verify(&unsigned(&h, &claims(), ""), NOW), Err(TokenError::Algorithm), "{alg}");
        assert_eq!(t.verify(&ours(&t, &h, &claims()), NOW), Err(TokenError::Algorithm), "{alg}");
    }
}

#[test]
fn other_algorithms_are_refused() {
    let t = tokens();
    let k = kid(&t);
    for alg in [json!("eddsa"), json!("Ed25519"), json!("RS256"), json!("PS256"), json!(null), json!(["EdDSA"])] {
        let h = with(header(&k), "alg", alg.clone());
        assert_eq!(t.verify(&ours(&t, &h, &claims()), NOW), Err(TokenError::Algorithm), "{alg}");
    }
    let rs = unsigned(&with(header(&k), "alg", json!("RS256")), &claims(), &URL_SAFE_NO_PAD.encode([7u8; 256]));
    assert_eq!(t.verify(&rs, NOW), Err(TokenError::Algorithm));
    assert_eq!(t.verify(&ours(&t, &without(header(&k), "alg"), &claims()), NOW), Err(TokenError::Algorithm));
}

#[test]
fn es256_token_is_refused() {
    let t = tokens();
    let h = with(header(&kid(&t)), "alg", json!("ES256"));
    let key = EncodingKey::from_ec_pem(P256_KEY.as_bytes()).unwrap();
    let token = signed_raw(&enc(&h), &enc(&claims()), &key, Algorithm::ES256);
    assert_eq!(t.verify(&token, NOW), Err(TokenError::Algorithm));
}

#[test]
fn hs256_with_our_public_key_as_secret_is_refused() {
    let t = tokens();
    let k = kid(&t);
    let pem = t.keys.public_key_pem(&k).unwrap().as_bytes().to_vec();
    let raw = t.keys.verifying_key(&k).unwrap().as_bytes().to_vec();
    for secret in [pem, raw] {
        let hmac = EncodingKey::from_secret(&secret);
        let h = with(header(&k), "alg", json!("HS256"));
        let token = signed_raw(&enc(&h), &enc(&claims()), &hmac, Algorithm::HS256);
        assert_eq!(t.verify(&token, NOW), Err(TokenError::Algorithm));
        // The same HMAC under an honest-looking EdDSA header fails the signature.
        let token = signed_raw(&enc(&header(&k)), &enc(&claims()), &hmac, Algorithm::HS256);
        assert_eq!(t.verify(&token, NOW), Err(TokenError::BadSignature));
    }
}

#[test]
fn missing_unknown_and_tricky_kids_are_refused() {
    let t = tokens();
    let long = "k".repeat(3000);
    let kids = [json!("20000101-000000"), json!("../../etc/passwd"), json!("' OR 1=1 --"), json!(""), json!(long)];
    for k in kids.iter().chain([&json!(7), &json!(null), &json!({"kid": kid(&t)})]) {
        let h = with(header(&kid(&t)), "kid", k.clone());
        let token = ours(&t, &h, &claims());
        let expected = if token.len() > MAX_TOKEN_BYTES { TokenError::Malformed } else { TokenError::UnknownKid };
        assert_eq!(t.verify(&token, NOW), Err(expected), "{k}");
    }
    assert_eq!(t.verify(&ours(&t, &without(header(&kid(&t)), "kid"), &claims()), NOW), Err(TokenError::UnknownKid));
    let h = with(header(&kid(&t)), "kid", json!("k".repeat(2000)));
    assert_eq!(t.verify(&ours(&t, &h, &claims()), NOW), Err(TokenError::UnknownKid));
}

#[test]
fn embedded_or_remote_keys_are_refused() {
    let t = tokens();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    let fields = [
        ("jwk", jwk),
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("x5c", json!(["MIIB"])),
        ("x5t", json!("dGh1bWI")),
        ("x5t#S256", json!("dGh1bWI")),
    ];
    for (field, value) in fields {
        let h = with(header(&kid(&t)), field, value);
        assert_eq!(t.verify(&ours(&t, &h, &claims()), NOW), Err(TokenError::EmbeddedKey), "{field}");
    }
}

#[test]
fn crit_unknown_fields_and_odd_typ_are_refused() {
    let t = tokens();
    let k = kid(&t);
    let cases = [
        with(header(&k), "crit", json!(["exp"])),
        with(header(&k), "cty", json!("JWT")),
        with(header(&k), "b64", json!(false)),
        with(header(&k), "typ", json!("at+jwt")),
        with(header(&k), "typ", json!(1)),
    ];
    for h in cases {
        assert_eq!(t.verify(&ours(&t, &h, &claims()), NOW), Err(TokenError::UnsupportedHeader), "{h}");
    }
    // `typ` is optional and case-insensitive.
    assert!(t.verify(&ours(&t, &without(header(&k), "typ"), &claims()), NOW).is_ok());
    assert!(t.verify(&ours(&t, &with(header(&k), "typ", json!("jwt")), &claims()), NOW).is_ok());
}

#[test]
fn duplicate_header_fields_are_malformed() {
    let t = tokens();
    let h = format!(r#"{{"alg":"none","alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, kid(&t));
    let token = signed_raw(&URL_SAFE_NO_PAD.encode(h), &enc(&claims()), t.keys.signing_key(), Algorithm::EdDSA);
    assert_eq!(t.verify(&token, NOW), Err(TokenError::Malformed));
    let c = format!(
        r#"{{"iss":"otpgate","aud":"otpgate-citizen","sub":"{SUB}","sub":"other","iat":{NOW},"nbf":{NOW},"exp":{}}}"#,
        NOW + 9
    );
    let token = signed_raw(&enc(&header(&kid(&t))), &URL_SAFE_NO_PAD.encode(c), t.keys.signing_key(), Algorithm::EdDSA);
    assert_eq!(t.verify(&token, NOW), Err(TokenError::Malformed));
}

#[test]
fn missing_claims_are_refused() {
    let t = tokens();
    for field in ["iss", "aud", "sub", "iat", "nbf", "exp"] {
        let token = ours(&t, &header(&kid(&t)), &without(claims(), field));
        assert_eq!(t.verify(&token, NOW), Err(TokenError::MissingClaim), "{field}");
        let token = ours(&t, &header(&kid(&t)), &with(claims(), field, Value::Null));
        assert_eq!(t.verify(&token, NOW), Err(TokenError::MissingClaim), "{field} null");
    }
}

#[test]
fn wrongly_typed_claims_are_refused() {
    let t = tokens();
    let cases = [
        ("exp", json!("9999999999")),
        ("exp", json!(9_999_999_999.0)),
        ("exp", json!(-1)),
        ("exp", json!([NOW + 900])),
        ("nbf", json!(true)),
        ("iat", json!(f64::from(u32::MAX) + 0.5)),
        ("iat", json!("now")),
        ("aud", json!(["otpgate-citizen"])),
        ("aud", json!(["otpgate-citizen", "other"])),
        ("iss", json!(1)),
        ("sub", json!(1)),
        ("sub", json!("")),
        ("sub", json!("../../session")),
        ("sub", json!({"id": SUB})),
        ("jti", json!(5)),
    ];
    for (field, value) in cases {
        let token = ours(&t, &header(&kid(&t)), &with(claims(), field, value.clone()));
        assert_eq!(t.verify(&token, NOW), Err(TokenError::BadClaim), "{field}: {value}");
    }
    // Floats written in exponent form are still floats.
    let text = claims().to_string().replace(&format!("\"exp\":{}", NOW + 900), "\"exp\":1.75e9");
    assert!(text.contains("1.75e9"));
    let token =
        signed_raw(&enc(&header(&kid(&t))), &URL_SAFE_NO_PAD.encode(text), t.keys.signing_key(), Algorithm::EdDSA);
    assert_eq!(t.verify(&token, NOW), Err(TokenError::BadClaim));
    // Unknown claims and a string jti are fine.
    let extra = with(with(claims(), "jti", json!("abc")), "scope", json!(["x"]));
    assert!(t.verify(&ours(&t, &header(&kid(&t)), &extra), NOW).is_ok());
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let t = tokens();
    let token = ours(&t, &header(&kid(&t)), &with(claims(), "iss", json!("someone-else")));
    assert_eq!(t.verify(&token, NOW), Err(TokenError::WrongIssuer));
    let token = ours(&t, &header(&kid(&t)), &with(claims(), "aud", json!("otpgate-partner")));
    assert_eq!(t.verify(&token, NOW), Err(TokenError::WrongAudience));
}

#[test]
fn time_claims_are_enforced_with_leeway() {
    let t = tokens();
    let k = kid(&t);
    let token = t.issue(SUB, NOW).unwrap();
    assert!(t.verify(&token, NOW + 900 + 30).is_ok());
    let t = Tokens::new(t.keys.clone(), TokenConfig::default()); // fresh cache
    assert_eq!(t.verify(&token, NOW + 900 + 31), Err(TokenError::Expired));
    let future = with(with(claims(), "nbf", json!(NOW + 31)), "iat", json!(NOW));
    assert_eq!(t.verify(&ours(&t, &header(&k), &future), NOW), Err(TokenError::NotYetValid));
    assert!(t.verify(&ours(&t, &header(&k), &with(claims(), "nbf", json!(NOW + 30))), NOW).is_ok());
    let future = with(claims(), "iat", json!(NOW + 31));
    assert_eq!(t.verify(&ours(&t, &header(&k), &future), NOW), Err(TokenError::IssuedInFuture));
    let huge = with(claims(), "exp", json!(u64::MAX));
    assert!(t.verify(&ours(&t, &header(&k), &huge), NOW).is_ok());
}

#[test]
fn leeway_is_clamped_to_30_seconds() {
    let keys = Arc::new(SessionKeys::generate_ephemeral().unwrap());
    let config = TokenConfig { leeway: Duration::from_secs(3600), ..TokenConfig::default() };
    let t = Tokens::new(keys, config);
    assert_eq!(t.config().leeway, MAX_LEEWAY);
    let token = t.issue(SUB, NOW).unwrap();
    assert_eq!(t.verify(&token, NOW + 900 + 60), Err(TokenError::Expired));
}

#[test]
fn foreign_key_with_our_kid_is_refused() {
    let t = tokens();
    let impostor = SessionKeys::from_pems([(
        kid(&t),
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap().serialize_pem(),
    )])
    .unwrap();
    let forged = Tokens::new(Arc::new(impostor), TokenConfig::default()).issue(SUB, NOW).unwrap();
    assert_eq!(t.verify(&forged, NOW), Err(TokenError::BadSignature));
}

#[test]
fn tampered_tokens_are_refused() {
    let t = tokens();
    let token = t.issue(SUB, NOW).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let payload = enc(&with(claims(), "sub", json!("BBECAwQFBgcICQoLDA0ODw")));
    let swapped = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(t.verify(&swapped, NOW), Err(TokenError::BadSignature));
    let empty = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(t.verify(&empty, NOW), Err(TokenError::BadSignature));
    let short = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]);
    assert_eq!(t.verify(&short, NOW), Err(TokenError::BadSignature));
    let mut sig = b64(parts[2]).unwrap();
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(t.verify(&flipped, NOW), Err(TokenError::BadSignature));
}

#[test]
fn malformed_tokens_are_refused() {
    let t = tokens();
    let token = t.issue(SUB, NOW).unwrap();
    let cases = [
        String::new(),
        "abc".to_owned(),
        token.split('.').take(2).collect::<Vec<_>>().join("."),
        format!("{token}.x"),
        format!("{token}.x.y"),
        format!("{token}="),
        token.replacen('.', "+.", 1),
        format!(" {token}"),
        format!("!!.{}", token.split_once('.').unwrap().1),
        unsigned(&json!(["EdDSA"]), &claims(), ""),
        format!("{}.{}", URL_SAFE_NO_PAD.encode("not json"), token.split_once('.').unwrap().1),
    ];
    for bad in &cases {
        assert_eq!(t.verify(bad, NOW), Err(TokenError::Malformed), "{bad}");
    }
    let not_object = signed_raw(&enc(&header(&kid(&t))), &enc(&json!([1])), t.keys.signing_key(), Algorithm::EdDSA);
    assert_eq!(t.verify(&not_object, NOW), Err(TokenError::Malformed));
    let big = ours(&t, &header(&kid(&t)), &with(claims(), "pad", json!("p".repeat(3100))));
    assert!(big.len() > MAX_TOKEN_BYTES);
    assert_eq!(t.verify(&big, NOW), Err(TokenError::Malformed));
}

#[test]
fn old_kid_still_verifies_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    crate::auth::keys::generate(dir.path()).unwrap();
    let before = Tokens::new(Arc::new(crate::auth::keys::load(dir.path()).unwrap().sessions), TokenConfig::default());
    let old_token = before.issue(SUB, NOW).unwrap();
    crate::auth::keys::rotate(dir.path()).unwrap();
    let after = Tokens::new(Arc::new(crate::auth::keys::load(dir.path()).unwrap().sessions), TokenConfig::default());
    assert_ne!(kid(&before), kid(&after));
    assert!(after.verify(&old_token, NOW).is_ok());
    let new_token = after.issue(SUB, NOW).unwrap();
    let head: Value = serde_json::from_slice(&b64(new_token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(head["kid"], json!(kid(&after)));
    assert_eq!(before.verify(&new_token, NOW), Err(TokenError::UnknownKid));
}

#[test]
fn cached_verify_returns_the_same_claims() {
    let t = tokens();
    let token = t.issue(SUB, NOW).unwrap();
    let first = t.verify(&token, NOW).unwrap();
    let cached = t.cache.get(&token).unwrap();
    assert_eq!(cached.claims, first);
    assert_eq!(cached.ttl, Duration::from_secs(900), "entry must not outlive exp");
    assert_eq!(t.verify(&token, NOW + 5).unwrap(), first);
}

#[test]
fn cache_hits_skip_the_signature_but_not_the_clock() {
    let t = tokens();
    // An entry planted in the cache is answered without a signature check: proof the hit path runs.
    let planted = SessionClaims { sub: "planted".to_owned(), iat: NOW, exp: NOW + 60 };
    t.cache.insert("x.y.z".to_owned(), Cached { claims: planted.clone(), nbf: NOW, ttl: Duration::from_secs(60) });
    assert_eq!(t.verify("x.y.z", NOW), Ok(planted));
    // A cached token is refused once expired, or before its nbf.
    let token = t.issue(SUB, NOW).unwrap();
    assert!(t.verify(&token, NOW).is_ok());
    assert!(t.cache.contains_key(&token));
    assert!(t.verify(&token, NOW + 900 + 30).is_ok());
    assert_eq!(t.verify(&token, NOW + 900 + 31), Err(TokenError::Expired));
    assert_eq!(t.verify(&token, NOW - 31), Err(TokenError::NotYetValid));
}

#[test]
fn failures_are_not_cached() {
    let t = tokens();
    let token = ours(&t, &header(&kid(&t)), &with(claims(), "iss", json!("x")));
    assert!(t.verify(&token, NOW).is_err());
    assert!(!t.cache.contains_key(&token));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_single_byte_change_is_refused(pos in 0usize..400, byte in 0x21u8..0x7f) {
        let t = tokens();
        let token = t.issue(SUB, NOW).unwrap();
        let pos = pos % token.len();
        prop_assume!(token.as_bytes()[pos] != byte);
        let mut bytes = token.into_bytes();
        bytes[pos] = byte;
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assert!(t.verify(&mutated, NOW).is_err());
    }

    #[test]
    fn garbage_never_verifies(s in "\\PC{0,300}") {
        let t = tokens();
        prop_assert!(t.verify(&s, NOW).is_err());
    }
}

#[test]
fn a_clock_jump_either_way_never_lengthens_a_token_s_life() {
    // The same token, verified cached and uncached, as the clock jumps.
    let t = tokens();
    let token = t.issue(SUB, NOW).unwrap();
    assert!(t.verify(&token, NOW + 10).is_ok(), "cached from here on");
    assert_eq!(t.verify(&token, NOW - 600), Err(TokenError::NotYetValid), "back 10 min: refused, not extended");
    assert!(t.verify(&token, NOW - 20).is_ok(), "within the leeway");
    assert_eq!(t.verify(&token, NOW + 3600), Err(TokenError::Expired), "forward past exp: refused");
    assert!(t.verify(&token, NOW + 60).is_ok(), "and back again: valid within its life");
}

/// The committed corpus of the `token` fuzz target, replayed (what CI runs; fuzzing is not).
#[test]
fn fuzz_corpus_replays_clean() {
    let fixture = super::fuzzing::Fixture::new().unwrap();
    let files = crate::redact::fuzzing::replay("token", |data| fixture.check(data));
    assert!(files >= 20, "only {files} corpus files");
}

#[test]
fn the_fuzz_fixture_accepts_its_own_current_tokens_and_nothing_edited() {
    let fixture = super::fuzzing::Fixture::new().unwrap();
    for token in fixture.issued() {
        let mut input = vec![0u8];
        input.extend_from_slice(token.as_bytes());
        fixture.check(&input).unwrap();
    }
    // Flipping any one byte of an issued token is refused (mode 1, one edit at each position).
    for at in 0..=255u8 {
        fixture.check(&[1, 0, at, b'A']).unwrap();
        fixture.check(&[1, 0, at, 0]).unwrap();
    }
}
