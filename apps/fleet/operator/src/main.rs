//! `fleet-operator`: run the controller of `FleetDeployment` resources.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fleet_operator::controller::{self, Context};
use fleet_operator::crd::FleetDeployment;
use fleet_operator::{keys, view};

/// Write each FleetDeployment's resources to the devices it selects, signed,
/// through the fleet's NATS, and bring their statuses back into the resource.
#[derive(Parser)]
#[command(
    name = "fleet-operator",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The fleet's NATS server.
    #[arg(long, env = "FLEET_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// The operator's NATS credentials (a `.creds` file from
    /// `fleet-operator credentials --operator`).
    #[arg(long, env = "FLEET_NATS_CREDS", conflicts_with_all = ["user", "password_file"])]
    creds: Option<PathBuf>,
    /// The NATS user, when the server knows users and passwords.
    #[arg(long, env = "FLEET_NATS_USER", required_unless_present = "creds")]
    user: Option<String>,
    /// A file holding the NATS password (or FLEET_NATS_PASSWORD; never on the command line).
    #[arg(long, env = "FLEET_NATS_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// Watch FleetDeployments in this namespace only (all namespaces when not given).
    #[arg(long, env = "FLEET_NAMESPACE")]
    namespace: Option<String>,
    /// Seconds without a report after which a device counts as silent.
    #[arg(long, default_value_t = 60)]
    silence: u64,
    #[command(flatten)]
    key: KeyArgs,
}

/// Where the key that signs every manifest is kept: exactly one of these.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct KeyArgs {
    /// A file made by `fleet-operator keygen`.
    #[arg(long, env = "FLEET_SIGNING_KEY_FILE")]
    signing_key: Option<PathBuf>,
    /// A Secret of the operator's namespace, made on first start if there is
    /// none (in a cluster); the public key goes to ConfigMap `fleet-manifest-key`.
    #[arg(long, env = "FLEET_SIGNING_KEY_SECRET")]
    signing_key_secret: Option<String>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Make the fleet's NATS authority in FILE (never over an existing one):
    /// the keys that vouch for every party on the fleet's NATS.
    NatsAuthority { file: PathBuf },
    /// Print the nats-server configuration that trusts the authority in
    /// FILE, keeping accounts in ACCOUNTS (a directory of the server's);
    /// with --revoked, a server that lost its data still refuses those listed.
    NatsConfig {
        file: PathBuf,
        accounts: String,
        /// The revocation list `revoke` keeps.
        #[arg(long)]
        revoked: Option<PathBuf>,
    },
    /// Write NATS credentials signed by the authority in FILE to OUT (never
    /// over an existing file): one device's (enrolling it), or the operator's.
    /// They are derived: the same authority, party and enrolment number give
    /// the same credentials (and the same public key, printed).
    Credentials {
        file: PathBuf,
        #[arg(long, conflicts_with = "operator", required_unless_present = "operator")]
        device: Option<String>,
        #[arg(long)]
        operator: bool,
        /// Enrol again after a revocation: the next number gives a new key.
        #[arg(long, default_value_t = 0)]
        enrolment: u32,
        out: PathBuf,
    },
    /// Make a new signing key in FILE (never over an existing one) and print
    /// its public key, which devices are enrolled with (`fleet-agent --manifest-key`).
    Keygen { file: PathBuf },
    /// Revoke the party whose public key is KEY (as `credentials` printed it)
    /// on the fleet's NATS at once, without touching the others: add it to the
    /// revocation list in REVOKED (made if missing) and push the fleet
    /// account, listing them all, to the server at --nats.
    Revoke {
        file: PathBuf,
        #[arg(long)]
        revoked: PathBuf,
        #[arg(long, env = "FLEET_NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats: String,
        key: String,
    },
    /// Print the public key of the signing key in FILE.
    PublicKey { file: PathBuf },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(command) = &args.command {
        return match run_command(command) {
            Ok(said) => {
                print!("{said}");
                ExitCode::SUCCESS
            }
            Err(message) => fail(message),
        };
    }
    // A key file is read before anything else: a missing one is an error now, not after NATS.
    let from_file = match args.key.signing_key.as_deref().map(keys::read_file).transpose() {
        Ok(key) => key,
        Err(message) => return fail(message),
    };
    let settings = match &args.creds {
        Some(file) => fleet_kv::Settings::with_credentials_file(args.nats.clone(), file, None, "fleet-operator".into()),
        None => {
            let user = args.user.clone().unwrap_or_default();
            fleet_kv::Settings::for_binary(args.nats.clone(), user, args.password_file.as_deref(), "fleet-operator".into())
        }
    };
    let settings = match settings {
        Ok(settings) => settings,
        Err(message) => return fail(message),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(format_args!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        // NATS may start after the operator: wait for it (a refused login ends the run).
        let mut delay = Duration::from_millis(250);
        let (connection, buckets) = loop {
            let opened = fleet_kv::Connection::open(&settings, |event| eprintln!("fleet-operator: NATS {event}")).await;
            match opened {
                Ok(connection) => match connection.create_buckets().await {
                    Ok(buckets) => break (connection, buckets),
                    Err(e) if e.is_transient() => eprintln!("fleet-operator: {e}; trying again in {} ms", delay.as_millis()),
                    Err(e) => return fail(e),
                },
                Err(e) if e.is_transient() => eprintln!("fleet-operator: {e}; trying again in {} ms", delay.as_millis()),
                Err(e) => return fail(e),
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = fleet_kv::stopped() => return ExitCode::SUCCESS,
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        };
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(e) => {
                return fail(format_args!(
                    "cannot reach the Kubernetes API: {e}\nhelp: run in a pod with a service account, or set KUBECONFIG"
                ));
            }
        };
        let signer = match (from_file, &args.key.signing_key_secret) {
            (Some(key), _) => Ok(key),
            (None, Some(secret)) => keys::from_secret(&client, client.default_namespace(), secret).await,
            (None, None) => Err("no signing key: pass --signing-key FILE or --signing-key-secret NAME".into()),
        };
        let signer = match signer {
            Ok(key) => Arc::new(key),
            Err(message) => return fail(message),
        };
        eprintln!(
            "fleet-operator: signing manifests with the key devices trust as {}",
            signer.public()
        );
        let api = match &args.namespace {
            Some(ns) => kube::Api::<FleetDeployment>::namespaced(client.clone(), ns),
            None => kube::Api::<FleetDeployment>::all(client.clone()),
        };
        let context = Arc::new(Context {
            client,
            fleet: view::watch_buckets(&buckets, signer.public()),
            nats: connection.clone(),
            buckets,
            signer,
            told: Default::default(),
            silence: Duration::from_secs(args.silence.max(1)),
        });
        tokio::spawn(controller::keep_buckets(connection, Duration::from_secs(5)));
        controller::run(api, context, fleet_kv::stopped()).await;
        ExitCode::SUCCESS
    })
}

/// Carry out a subcommand; what it prints, or why it failed.
fn run_command(command: &Command) -> Result<String, String> {
    use fleet_kv::identity::{Authority, Role};
    match command {
        Command::Keygen { file } => keys::create_file(file).map(|key| format!("{}\n", key.public())),
        Command::PublicKey { file } => keys::read_file(file).map(|key| format!("{}\n", key.public())),
        Command::NatsAuthority { file } => keys::create_secret_file(file, &Authority::generate().to_text()).map(|()| String::new()),
        Command::NatsConfig { file, accounts, revoked } => {
            let revoked = match revoked {
                Some(list) => read_revocations(list)?,
                None => Default::default(),
            };
            keys::read_authority(file).map(|authority| authority.server_config(accounts, &revoked))
        }
        Command::Credentials {
            file,
            device,
            out,
            enrolment,
            ..
        } => {
            let authority = keys::read_authority(file)?;
            let role = match device {
                Some(id) => {
                    fleet_model::check_device_id(id)?;
                    Role::Device(id.clone())
                }
                None => Role::Operator,
            };
            let credentials = authority.credentials(&role, *enrolment);
            keys::create_secret_file(out, &credentials.to_text())?;
            Ok(format!("{}\n", credentials.public))
        }
        Command::Revoke { file, revoked, nats, key } => {
            revoke(file, revoked, nats, key).map(|count| format!("revoked {key}: the fleet account now lists {count} revoked parties\n"))
        }
    }
}

/// Add `key` to the revocation list in `list` and push it to NATS at `url`.
fn revoke(authority: &std::path::Path, list: &std::path::Path, url: &str, key: &str) -> Result<usize, String> {
    if !key.starts_with('U') || key.len() != 56 {
        return Err(format!(
            "`{key}` is not a user's public key (56 characters, starting with U, as `credentials` prints it)"
        ));
    }
    let authority = keys::read_authority(authority)?;
    let mut revoked = read_revocations(list)?;
    revoked.insert(key.to_owned(), fleet_kv::identity::unix_now());
    // Kept before it is pushed: a list the server has, and we lost, would be undone by the next push.
    std::fs::write(list, serde_json::to_vec_pretty(&revoked).unwrap_or_default())
        .map_err(|e| format!("cannot write `{}`: {e}", list.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime
        .block_on(fleet_kv::push_revocations(&authority, url, &revoked))
        .map_err(|e| e.to_string())?;
    Ok(revoked.len())
}

/// The revocation list in `list`; none yet if it does not exist.
fn read_revocations(list: &std::path::Path) -> Result<fleet_kv::identity::Revocations, String> {
    match std::fs::read(list) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("`{}` is not a revocation list: {e}", list.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(format!("cannot read `{}`: {e}", list.display())),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}
