//! The cluster's credentials, made fresh for every start: a CA, the serving certificate the API
//! server, the fault proxy and the kubelet present (for 127.0.0.1, so clients verify TLS), the
//! service-account signing key, and a bearer token per user.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::error::StartError;

/// A user the API server knows by its bearer token (`--token-auth-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub token: String,
    pub groups: Vec<String>,
}

/// Who talks to the API server: the administrator the tests and `scripts/test-cluster` hand
/// out, a user with no rights at all (tests of refusals grant it what they need), the control
/// plane's own components under their usual names, so Kubernetes' bootstrap roles apply to them
/// as on any cluster, and the volume provisioner, with the rights an external provisioner is
/// given ([`crate::volumes`]).
#[derive(Debug, Clone)]
pub struct Users {
    pub admin: User,
    pub restricted: User,
    pub controller_manager: User,
    pub scheduler: User,
    pub kubelet: User,
    pub provisioner: User,
}

impl Users {
    fn new(node: &str) -> Result<Users, StartError> {
        let user = |name: &str, groups: &[&str]| -> Result<User, StartError> {
            Ok(User {
                name: name.to_owned(),
                token: token()?,
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            })
        };
        Ok(Users {
            admin: user("harmony-admin", &["system:masters"])?,
            restricted: user("harmony-restricted", &[])?,
            controller_manager: user("system:kube-controller-manager", &[])?,
            scheduler: user("system:kube-scheduler", &[])?,
            kubelet: user(&format!("system:node:{node}"), &["system:nodes"])?,
            provisioner: user(crate::volumes::PROVISIONER_USER, &[])?,
        })
    }

    fn all(&self) -> [&User; 6] {
        [
            &self.admin,
            &self.restricted,
            &self.controller_manager,
            &self.scheduler,
            &self.kubelet,
            &self.provisioner,
        ]
    }

    /// The API server's `--token-auth-file`: `token,user,uid,"group,…"` a line.
    fn token_file(&self) -> String {
        self.all().iter().fold(String::new(), |mut out, u| {
            let _ = writeln!(out, "{},{},{},\"{}\"", u.token, u.name, u.name, u.groups.join(","));
            out
        })
    }
}

/// 32 hex digits from the kernel's random source.
fn token() -> Result<String, StartError> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| StartError::io("read /dev/urandom for a token", e))?;
    Ok(bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// The names the serving certificate is valid for: loopback, and the in-cluster names and
/// service IP of the API server.
pub const SERVING_NAMES: [&str; 7] = [
    "127.0.0.1",
    "localhost",
    "10.96.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// The files of the cluster's credentials, PEM, written by [`Pki::write`].
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: String,
    pub serving_cert: String,
    pub serving_key: String,
    pub service_account_key: String,
    pub service_account_public: String,
    pub users: Users,
}

fn pki_error(what: &str) -> impl FnOnce(rcgen::Error) -> StartError + '_ {
    move |e| StartError::Pki(format!("{what}: {e}"))
}

impl Pki {
    /// Fresh credentials; `node` is the name the kubelet registers.
    pub fn generate(node: &str) -> Result<Pki, StartError> {
        let ca_key = KeyPair::generate().map_err(pki_error("the CA's key"))?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(pki_error("the CA"))?;
        ca.distinguished_name = name("harmony-test-cluster-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(pki_error("the CA"))?;

        let serving_key = KeyPair::generate().map_err(pki_error("the serving key"))?;
        let mut serving =
            CertificateParams::new(SERVING_NAMES.map(str::to_owned).to_vec()).map_err(pki_error("the serving certificate"))?;
        serving.distinguished_name = name("harmony-test-cluster");
        serving.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving.signed_by(&serving_key, &ca).map_err(pki_error("the serving certificate"))?;

        let service_account = KeyPair::generate().map_err(pki_error("the service-account key"))?;
        Ok(Pki {
            ca_cert: ca.pem(),
            serving_cert: serving_cert.pem(),
            serving_key: serving_key.serialize_pem(),
            service_account_key: service_account.serialize_pem(),
            service_account_public: service_account.public_key_pem(),
            users: Users::new(node)?,
        })
    }

    /// Writes the files the control plane's processes read, private to the owner.
    pub fn write(&self, dir: &Path) -> Result<(), StartError> {
        let files = [
            ("ca.crt", &self.ca_cert),
            ("serving.crt", &self.serving_cert),
            ("serving.key", &self.serving_key),
            ("service-account.key", &self.service_account_key),
            ("service-account.pub", &self.service_account_public),
            ("tokens.csv", &self.users.token_file()),
        ];
        for (file, content) in files {
            crate::util::write_private(&dir.join(file), content.as_bytes())?;
        }
        Ok(())
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}
