//! The operator's key as an operator handles it, through the binary: `keygen` makes a key file
//! only its owner reads and never replaces one, `public-key` prints what devices are enrolled
//! with, and a missing key file stops the operator before it dials anything, saying how to make
//! one. The private key appears in no output.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

fn operator(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fleet-operator"))
        .env_clear()
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn keygen_makes_a_private_key_file_and_prints_only_its_public_half() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signing-key");
    let path = file.to_str().unwrap();
    let (code, public, stderr) = operator(&["keygen", path]);
    assert_eq!(code, Some(0), "{stderr}");
    let public = public.trim();
    assert!(public.parse::<fleet_model::signed::ManifestKey>().is_ok(), "{public}");
    let private = std::fs::read_to_string(&file).unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let key = fleet_model::signed::SigningKey::from_text(&private).unwrap();
    assert_eq!(key.public().to_string(), public);

    let (code, again, _) = operator(&["public-key", path]);
    assert_eq!((code, again.trim()), (Some(0), public));

    // Never over an existing key: that would orphan every device enrolled with it.
    let (code, out, stderr) = operator(&["keygen", path]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("already exists") && stderr.contains("orphan"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), private, "the key is untouched");
    for said in [&out, &stderr] {
        assert!(!said.contains(private.trim()), "the private key was printed: {said}");
    }
}

#[test]
fn a_missing_key_file_stops_the_operator_before_it_dials_anything() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    // NATS at a port nothing listens on: were the key read after NATS, this would wait forever.
    let (code, _, stderr) = operator(&[
        "--nats",
        "nats://127.0.0.1:9",
        "--user",
        "fleet",
        "--signing-key",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("does not exist") && stderr.contains(&format!("fleet-operator keygen {}", missing.display())),
        "{stderr}"
    );
    let (code, _, stderr) = operator(&["--nats", "nats://127.0.0.1:9", "--user", "fleet"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--signing-key") && stderr.contains("--signing-key-secret"),
        "{stderr}"
    );
}

/// The fleet's NATS authority and a device's credentials, made as an operator makes them:
/// files only their owner reads, never written over, and a server configuration that holds no
/// secret.
#[test]
fn the_nats_authority_and_a_devices_credentials_are_made_by_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let authority = dir.path().join("authority");
    let a = authority.to_str().unwrap();
    let (code, _, stderr) = operator(&["nats-authority", a]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(std::fs::metadata(&authority).unwrap().permissions().mode() & 0o777, 0o600);
    let (code, _, stderr) = operator(&["nats-authority", a]);
    assert!(code == Some(2) && stderr.contains("already exists"), "{stderr}");

    let creds = dir.path().join("d1.creds");
    let (code, public, stderr) = operator(&["credentials", a, "--device", "d1", creds.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(public.trim().starts_with('U'), "a user's public key: {public}");
    let text = std::fs::read_to_string(&creds).unwrap();
    assert!(text.contains("BEGIN NATS USER JWT") && text.contains("BEGIN USER NKEY SEED"));
    assert_eq!(std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777, 0o600);
    let (code, _, stderr) = operator(&["credentials", a, "--device", "a/b", dir.path().join("x").to_str().unwrap()]);
    assert!(code == Some(2) && stderr.contains("device id"), "{stderr}");

    let (code, config, stderr) = operator(&["nats-config", a, "/data/accounts"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(config.contains("operator:") && config.contains("resolver_preload"), "{config}");
    let seeds = std::fs::read_to_string(&authority).unwrap();
    for seed in seeds
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(_, s)| s))
        .filter(|s| s.starts_with('S'))
    {
        assert!(!config.contains(seed), "the server's configuration holds a seed");
    }
}

/// Revoking a device as an operator would, through the binary, on a real nats-server that
/// trusts the authority: the device's credentials no longer get in; another device's still do.
#[test]
fn a_device_revoked_through_the_binary_is_shut_out_and_the_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("authority");
    let a = file.to_str().unwrap();
    assert_eq!(operator(&["nats-authority", a]).0, Some(0));
    let authority = fleet_kv::identity::Authority::from_text(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let server = fleet_testing::NatsServer::start_trusting(&authority);
    let creds = |device: &str| {
        let out = dir.path().join(format!("{device}.creds"));
        let (code, public, stderr) = operator(&["credentials", a, "--device", device, out.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{stderr}");
        (std::fs::read_to_string(out).unwrap(), public.trim().to_owned())
    };
    let ((d1, d1_key), (d2, _)) = (creds("d1"), creds("d2"));
    let connects = |text: &str| {
        let settings = fleet_kv::Settings {
            url: server.url.clone(),
            login: fleet_kv::Login::Credentials {
                text: text.to_owned(),
                inbox: None,
            },
            name: "revocation-test".into(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(fleet_kv::Connection::open(&settings, |_| {})).is_ok()
    };
    assert!(connects(&d1) && connects(&d2));

    let revoked = dir.path().join("revoked.json");
    let (code, said, stderr) = operator(&["revoke", a, "--revoked", revoked.to_str().unwrap(), "--nats", &server.url, &d1_key]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(said.contains(&d1_key), "{said}");
    assert!(std::fs::read_to_string(&revoked).unwrap().contains(&d1_key));
    assert!(!connects(&d1), "d1's credentials still get in");
    assert!(connects(&d2), "d2 was shut out too");

    let (code, _, stderr) = operator(&[
        "revoke",
        a,
        "--revoked",
        revoked.to_str().unwrap(),
        "--nats",
        &server.url,
        "not-a-key",
    ]);
    assert!(code == Some(2) && stderr.contains("not a user's public key"), "{stderr}");
}
