//! `fleet-agent`: run one device of the fleet.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fleet_agent::agent::{self, Config};
use fleet_agent::process::Timings;

/// Run one device of the fleet: watch its manifest in NATS, make the device
/// hold it, report its status back.
#[derive(Parser)]
#[command(name = "fleet-agent", version)]
struct Args {
    /// The fleet's NATS server.
    #[arg(long, env = "FLEET_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// The NATS user.
    #[arg(long, env = "FLEET_NATS_USER")]
    user: String,
    /// A file holding the NATS password (or FLEET_NATS_PASSWORD; never on the command line).
    #[arg(long, env = "FLEET_NATS_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// This device's id: its key in the fleet's buckets.
    #[arg(long, env = "FLEET_DEVICE")]
    device: String,
    /// A label the fleet selects this device by, `key=value`; repeat for more.
    #[arg(long = "label", value_parser = label)]
    labels: Vec<(String, String)>,
    /// Where the agent keeps what it applied, its process records and logs.
    #[arg(long, env = "FLEET_STATE_DIR", default_value = "/var/lib/fleet-agent")]
    state_dir: PathBuf,
    /// A directory the fleet may write files under; repeat for more. Without
    /// one, the device takes no `File` resources (each reports why).
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
    let nats = match fleet_kv::Settings::for_binary(args.nats, args.user, args.password_file.as_deref(), name) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("error: {message}");
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
    let config = Config {
        nats,
        device: args.device,
        labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
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
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(agent::run(config, fleet_kv::stopped())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
