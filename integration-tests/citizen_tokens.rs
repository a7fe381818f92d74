//! Issue 3: hostile tokens against the real binary — every one is 401 with WWW-Authenticate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::citizen_flow::{OUTBOX_POLICY, citizen_policy, get_auth, sign_in};
use crate::harness::upstream::Echo;
use crate::harness::*;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn raw_token(header: serde_json::Value, claims: serde_json::Value, sig: &[u8]) -> String {
    format!("{}.{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()), B64.encode(sig))
}

#[tokio::test]
async fn hostile_tokens_are_refused_with_401() {
    let echo = Echo::start().await;
    let dir = citizen_policy(&echo.url(), OUTBOX_POLICY, "    token_ttl: 15m");
    let gw = Gateway::serve(dir.path(), &[]);
    let http = gw.addr("http");
    let token = sign_in(http, &gw.data_path("otp-outbox.jsonl"), "9000000041").await;
    assert_eq!(get_auth(http, "/mine", &token).await.status, 200);

    // Our real signing key, to prove claim checks do not rest on the signature alone.
    let keys = gw.data_path("keys");
    let pem_path = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("session-"))
        .unwrap();
    let kid = pem_path.file_stem().unwrap().to_str().unwrap().trim_start_matches("session-").to_string();
    let pem = std::fs::read_to_string(&pem_path).unwrap();
    let signing = EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
    let public_pem = rcgen::KeyPair::from_pem(&pem).unwrap().public_key_pem();
    let real_header: serde_json::Value =
        serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(real_header["alg"], "EdDSA");
    assert_eq!(real_header["kid"], kid.as_str());
    let real_claims: serde_json::Value =
        serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let sub = real_claims["sub"].as_str().unwrap().to_string();
    let t = now();
    let good =
        serde_json::json!({"iss": "otpgate", "aud": "otpgate-citizen", "sub": sub, "iat": t, "nbf": t, "exp": t + 600});
    let sign = |claims: serde_json::Value, header: Header| jsonwebtoken::encode(&header, &claims, &signing).unwrap();
    let ed = || {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(kid.clone());
        h
    };
    assert_eq!(
        get_auth(http, "/mine", &sign(good.clone(), ed())).await.status,
        200,
        "a well-formed token of ours passes"
    );

    let mut attacks: Vec<(&str, String)> = Vec::new();
    attacks.push(("alg none", raw_token(serde_json::json!({"alg": "none", "typ": "JWT"}), good.clone(), b"")));
    attacks.push(("alg None", raw_token(serde_json::json!({"alg": "None", "kid": kid}), good.clone(), b"")));
    let hs = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.clone());
        jsonwebtoken::encode(&h, &good, &EncodingKey::from_secret(public_pem.as_bytes())).unwrap()
    };
    attacks.push(("HS256 with our public key", hs));
    for bad_kid in ["../../../etc/passwd", "' OR 1=1 --", "", "nope"] {
        let mut h = ed();
        h.kid = Some(bad_kid.to_string());
        attacks.push(("kid trick", sign(good.clone(), h)));
    }
    let mut no_kid = ed();
    no_kid.kid = None;
    attacks.push(("no kid", sign(good.clone(), no_kid)));
    let mut h = ed();
    h.jku = Some("https://attacker.example/jwks.json".into());
    attacks.push(("jku", sign(good.clone(), h)));
    let mut h = ed();
    h.x5u = Some("https://attacker.example/cert.pem".into());
    attacks.push(("x5u", sign(good.clone(), h)));
    let jwk_header =
        serde_json::json!({"alg": "EdDSA", "kid": kid, "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}});
    let signed = sign(good.clone(), ed());
    let parts: Vec<&str> = signed.split('.').collect();
    attacks.push(("embedded jwk", format!("{}.{}.{}", B64.encode(jwk_header.to_string()), parts[1], parts[2])));
    for (what, field, value) in [
        ("missing exp", "exp", serde_json::Value::Null),
        ("string exp", "exp", serde_json::json!((t + 600).to_string())),
        ("float exp", "exp", serde_json::json!((t + 600) as f64 + 0.5)),
        ("missing iat", "iat", serde_json::Value::Null),
        ("missing aud", "aud", serde_json::Value::Null),
        ("array aud", "aud", serde_json::json!(["otpgate-citizen", "x"])),
        ("wrong aud", "aud", serde_json::json!("otpgate-upstream")),
        ("missing iss", "iss", serde_json::Value::Null),
        ("wrong iss", "iss", serde_json::json!("evil")),
        ("string nbf", "nbf", serde_json::json!("0")),
        ("expired", "exp", serde_json::json!(t - 120)),
        ("not yet valid", "nbf", serde_json::json!(t + 600)),
        ("issued in the future", "iat", serde_json::json!(t + 600)),
        ("unknown session", "sub", serde_json::json!("AAAAAAAAAAAAAAAAAAAAAA")),
    ] {
        let mut c = good.clone();
        if value.is_null() {
            c.as_object_mut().unwrap().remove(field);
        } else {
            c[field] = value;
        }
        attacks.push((what, sign(c, ed())));
    }
    let mut tampered: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut claims = real_claims.clone();
    claims["exp"] = serde_json::json!(t + 999_999);
    tampered[1] = B64.encode(claims.to_string());
    attacks.push(("tampered payload", tampered.join(".")));
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let other_key = EncodingKey::from_ed_pem(other.serialize_pem().as_bytes()).unwrap();
    attacks.push(("someone else's key, our kid", jsonwebtoken::encode(&ed(), &good, &other_key).unwrap()));

    for (what, hostile) in &attacks {
        let r = get_auth(http, "/mine", hostile).await;
        assert_eq!(r.status, 401, "{what}");
        assert_eq!(r.error_code(), "USRAUT0007", "{what}");
        assert!(r.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"), "{what}");
    }

    // Revoked: log out, then the same token is refused.
    let r = crate::citizen_flow::post(http, "/api/v2/auth/logout", "", Some(&token)).await;
    assert_eq!(r.status, 200);
    assert_eq!(get_auth(http, "/mine", &token).await.status, 401, "revoked");

    // Tokens in query strings are refused, even valid ones, and never logged.
    let fresh = sign_in(http, &gw.data_path("otp-outbox.jsonl"), "9000000042").await;
    let r = get_h1(http, &format!("/mine?access_token={fresh}")).await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "USRAUT0007"));
    let r = get_auth(http, &format!("/mine?x={fresh}"), &fresh).await;
    assert_eq!(r.status, 401, "a JWT-shaped query value");
    let log = gw.stderr();
    assert!(!log.contains(&fresh) && !log.contains(&token), "no token in the logs");
}

#[test]
fn keys_rotate_adds_an_active_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN).args(args).arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run(&["keys", "generate", "--dir"]);
    assert!(first.contains("session-") && first.contains("otp.key") && first.contains("identity.key"), "{first}");
    assert_eq!(run(&["keys", "generate", "--dir"]).trim(), "", "nothing missing, nothing written");
    let rotated = run(&["keys", "rotate", "--dir"]);
    assert!(rotated.contains("active"));
    let keys = otpgate::auth::keys::load(dir.path()).unwrap();
    assert_eq!(keys.sessions.kids().len(), 2);
    assert!(rotated.contains(keys.sessions.active_kid()), "the new key is the active one");
    for f in std::fs::read_dir(dir.path()).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let mode = f.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "secrets are private");
    }
}
