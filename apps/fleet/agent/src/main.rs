//! `fleet-agent`: run one device of the fleet.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fleet_agent::agent::{self, Config};
use fleet_agent::process::Timings;
use fleet_agent::trust::{self, KeySource};

/// Run one device of the fleet: watch its manifest in NATS, make the device
/// hold it, report its status back.
#[derive(Parser)]
#[command(name = "fleet-agent", version)]
struct Args {
    /// The fleet's NATS server.
    #[arg(long, env = "FLEET_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// This device's NATS credentials (a `.creds` file from `fleet-operator
    /// credentials --device`): it may then reach its own keys only.
    #[arg(long, env = "FLEET_NATS_CREDS", conflicts_with_all = ["user", "password_file"])]
    creds: Option<PathBuf>,
    /// The NATS user, when the server knows users and passwords.
    #[arg(long, env = "FLEET_NATS_USER", required_unless_present = "creds")]
    user: Option<String>,
    /// A file holding the NATS password (or FLEET_NATS_PASSWORD; never on the command line).
    #[arg(long, env = "FLEET_NATS_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// This device's id: its key in the fleet's buckets.
    #[arg(long, env = "FLEET_DEVICE")]
    device: String,
    #[command(flatten)]
    trust: TrustArgs,
    /// A label the fleet selects this device by, `key=value`; repeat for more.
    #[arg(long = "label", value_parser = label)]
    labels: Vec<(String, String)>,
    /// Where the agent keeps what it applied, its process records and logs.
    #[arg(long, env = "FLEET_STATE_DIR", default_value = "/var/lib/fleet-agent")]
    state_dir: PathBuf,
    /// A directory the fleet may write files and make links under (and links
    /// may point into); repeat for more. Without one, the device takes no
    /// `File` or `Link` resources (each reports why).
    #[arg(long = "file-root", env = "FLEET_FILE_ROOTS", value_delimiter = ':', value_parser = absolute)]
    file_roots: Vec<PathBuf>,
    /// Let files carry the setuid or setgid bit.
    #[arg(long)]
    allow_setuid: bool,
    /// A program the fleet may run (a path, or a name found on `PATH`);
    /// repeat for more. Without one, the device runs no processes. Allowing a
    /// shell or an interpreter allows any script.
    #[arg(long = "allow-program", env = "FLEET_ALLOWED_PROGRAMS", value_delimiter = ':')]
    programs: Vec<String>,
    /// Seconds between two status reports when nothing changes.
    #[arg(long, default_value_t = 10)]
    heartbeat: u64,
}

/// The operator key this device trusts (pinned in the state directory at
/// first start): exactly one of these.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct TrustArgs {
    /// The operator's public key (`ed25519:…`): the agent runs only what it
    /// signed. `fleet-operator keygen` and `fleet-operator public-key FILE`
    /// print it; in a cluster, the operator publishes it in the ConfigMap
    /// `fleet-manifest-key` of its namespace.
    // A String, parsed after clap, whose errors would repeat a private key given by mistake.
    #[arg(long, env = "FLEET_MANIFEST_KEY", hide_env_values = true)]
    manifest_key: Option<String>,
    /// A file holding it, waited for while it does not exist (an agent in a
    /// pod, given the ConfigMap as a volume).
    #[arg(long, env = "FLEET_MANIFEST_KEY_FILE")]
    manifest_key_file: Option<PathBuf>,
}

fn absolute(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!("`{s}` is not an absolute path"))
    }
}

fn label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not `key=value`")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let name = format!("fleet-agent {}", args.device);
    let settings = match (&args.creds, args.user) {
        (Some(file), _) => {
            fleet_kv::Settings::with_credentials_file(args.nats, file, Some(fleet_kv::identity::inbox_prefix(&args.device)), name)
        }
        (None, user) => fleet_kv::Settings::for_binary(args.nats, user.unwrap_or_default(), args.password_file.as_deref(), name),
    };
    let nats = match settings {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let source = match (args.trust.manifest_key, args.trust.manifest_key_file) {
        (Some(text), _) => match text.parse() {
            Ok(key) => KeySource::Given(key),
            Err(message) => {
                eprintln!("error: --manifest-key: {message}");
                return ExitCode::from(2);
            }
        },
        (None, Some(file)) => KeySource::File(file),
        (None, None) => {
            eprintln!("error: no operator key to trust: pass --manifest-key or --manifest-key-file");
            return ExitCode::from(2);
        }
    };
    let programs = match fleet_agent::process::Programs::allowing(&args.programs) {
        Ok(programs) => programs,
        Err(message) => {
            eprintln!("error: --allow-program: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let state = args.state_dir.clone();
    runtime.block_on(async move {
        let trust = tokio::select! {
            trusted = trust::resolve(&source, &state, Duration::from_secs(2)) => match trusted {
                Ok(key) => key,
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(2);
                }
            },
            () = fleet_kv::stopped() => return ExitCode::SUCCESS,
        };
        let config = Config {
            nats,
            device: args.device,
            labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
            trust,
            state: args.state_dir,
            files: fleet_agent::files::Policy {
                roots: args.file_roots,
                allow_setid: args.allow_setuid,
                host: None,
            },
            programs,
            heartbeat: Duration::from_secs(args.heartbeat.max(1)),
            timings: Timings::default(),
        };
        match agent::run(config, fleet_kv::stopped()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        }
    })
}
