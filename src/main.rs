//! The `otpgate` command line. Parses arguments and hands over to `otpgate::cmd`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use otpgate::cmd;

/// `0.1.0 (git 1a2b3c4d5e6f, release)`.
const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("OTPGATE_GIT_REV"), ", ", env!("OTPGATE_BUILD_PROFILE"), ")");

#[derive(Parser)]
#[command(name = "otpgate", version = VERSION, about = "OTP-gated personal-data API gateway")]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text", env = "OTPGATE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway from a policy directory.
    Serve(cmd::serve::ServeArgs),
    /// Run the synthetic registry and the gateway in front of it, on the embedded policy.
    Demo(cmd::demo::DemoArgs),
    /// Validate a policy directory as `serve` would; print every error; exit 1 if any.
    Check(cmd::check::CheckArgs),
    /// Run only the synthetic registry.
    RegistrySim(cmd::demo::RegistryArgs),
    /// Verify or query the audit trail.
    Audit {
        #[command(subcommand)]
        action: cmd::audit::AuditCommand,
    },
    /// Create or rotate the secrets in a keys directory.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff; `otpgate man | man -l -`).
    Man,
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create whatever is missing: a session signing key, otp.key, identity.key.
    Generate {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Add a new session signing key that becomes the active one (old ones keep verifying).
    Rotate {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print a new random partner API key and the SHA-256 the policy stores.
    ApiKey,
}

/// One core: one thread runs everything (no work-stealing scheduler to pay for). More cores: a
/// worker per core.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("otpgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let format = match cli.log_format {
        LogFormat::Text => otpgate::telemetry::LogFormat::Text,
        LogFormat::Json => otpgate::telemetry::LogFormat::Json,
    };
    let result = runtime.block_on(async {
        let telemetry = otpgate::telemetry::init(format);
        let result = match cli.command {
            Command::Serve(args) => cmd::serve::run(args, &telemetry).await,
            Command::Demo(args) => cmd::demo::run(args, &telemetry).await,
            Command::Check(args) => match cmd::check::run(args) {
                0 => Ok(()),
                _ => Err(String::new()),
            },
            Command::RegistrySim(args) => cmd::demo::run_registry(args).await,
            Command::Audit { action } => cmd::audit::run(action),
            Command::Keys { action: KeysAction::Generate { dir } } => otpgate::auth::keys::generate(&dir)
                .map(|files| files.iter().for_each(|f| println!("wrote {}", f.display())))
                .map_err(|e| e.to_string()),
            Command::Keys { action: KeysAction::ApiKey } => {
                let key = otpgate::auth::keys::new_api_key();
                println!("api key (give to the partner):     {key}");
                println!("api_key_sha256 (put in the policy): {}", otpgate::auth::keys::api_key_sha256(&key));
                Ok(())
            }
            Command::Completions { shell } => {
                clap_complete::generate(shell, &mut Cli::command(), "otpgate", &mut std::io::stdout());
                Ok(())
            }
            Command::Man => clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| format!("cannot write the manual page: {e}")),
            Command::Keys { action: KeysAction::Rotate { dir } } => otpgate::auth::keys::rotate(&dir)
                .map(|f| println!("wrote {} (now the active signing key)", f.display()))
                .map_err(|e| e.to_string()),
        };
        telemetry.shutdown();
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) if msg.is_empty() => ExitCode::FAILURE,
        Err(msg) => {
            eprintln!("otpgate: {msg}");
            ExitCode::FAILURE
        }
    }
}
