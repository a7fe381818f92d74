//! Where the policy comes from: a directory, or the copy compiled into the binary (plus the
//! demo's generated files).

use std::path::PathBuf;

use crate::config::{ConfigError, Sources};

#[derive(Debug, Clone)]
pub enum PolicySource {
    Dir(PathBuf),
    /// The policy compiled into the binary, plus extra files (the demo's generated partners).
    Embedded {
        extra: Vec<PathBuf>,
    },
}

impl PolicySource {
    pub fn read(&self) -> Result<Sources, Vec<ConfigError>> {
        match self {
            PolicySource::Dir(d) => Sources::from_dir(d).map_err(|e| vec![e]),
            PolicySource::Embedded { extra } => {
                let mut sources = Sources::embedded();
                for path in extra {
                    let name = path.display().to_string();
                    let content = std::fs::read_to_string(path)
                        .map_err(|e| vec![ConfigError::new(&name, "", format!("cannot read: {e}"))])?;
                    sources.files.push((name, content));
                }
                Ok(sources)
            }
        }
    }

    /// Whether the source can change while the process runs (a directory can; the binary cannot).
    pub fn can_change(&self) -> bool {
        matches!(self, PolicySource::Dir(_))
    }
}
