//! `otpgate check --config DIR`: validate everything and print every error with file and path.

use std::path::Path;

use crate::config::Sources;
use crate::policy;

/// Returns the process exit code: 0 valid, 1 invalid.
pub fn run(dir: &Path) -> i32 {
    let result = Sources::from_dir(dir)
        .map_err(|e| vec![e])
        .and_then(|sources| policy::load(&sources, &Vec::new()).map(|p| (p, sources)));
    match result {
        Ok((p, _)) => {
            println!("ok: {} routes, {} upstreams, policy version {}", p.routes.len(), p.upstreams.len(), p.version);
            0
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{} error(s); the policy was not accepted", errors.len());
            1
        }
    }
}
