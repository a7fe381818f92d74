//! Build facts for `otpgate --version` and the `otpgate_build_info` metric: the git revision
//! (`OTPGATE_GIT_REV` overrides it, e.g. in an image built without `.git`) and the profile.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=OTPGATE_GIT_REV");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let rev = std::env::var("OTPGATE_GIT_REV").ok().filter(|r| !r.is_empty()).or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!("cargo:rustc-env=OTPGATE_GIT_REV={}", rev.unwrap_or_else(|| "unknown".into()));
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=OTPGATE_BUILD_PROFILE={profile}");
}
