//! Throw-away PKI for one control plane: a CA that signs the API server's serving certificate
//! and the client certificates (the admin's, the test node's kubelet's), plus the
//! service-account signing key.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::{fs, path::Path};

use crate::Error;

/// The admin client identity; the other PEM files are written into the directory.
pub struct Pki {
    pub admin_cert: String,
    pub admin_key: String,
}

fn cert_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> Error {
    move |source| Error::Certificate { what, source }
}

/// Writes `ca.crt`, `apiserver.{crt,key}`, `node.{crt,key}`, `sa.{key,pub}` into `dir` and returns the admin identity
/// (CN `dmk-admin`, O `system:masters`) for the kubeconfig.
pub fn generate(dir: &Path) -> Result<Pki, Error> {
    let ca_key = KeyPair::generate().map_err(cert_err("CA key"))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err("CA"))?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "dmk-test-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err("CA"))?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let serving_key = KeyPair::generate().map_err(cert_err("serving key"))?;
    let mut serving = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "kubernetes.default.svc".to_string(),
        // The test node's address, where its Pods reach the API server (src/node/).
        crate::node::NODE_IP.to_string(),
    ])
    .map_err(cert_err("serving certificate"))?;
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving
        .signed_by(&serving_key, &issuer)
        .map_err(cert_err("serving certificate"))?;

    let admin_key = KeyPair::generate().map_err(cert_err("admin key"))?;
    let mut admin =
        CertificateParams::new(Vec::<String>::new()).map_err(cert_err("admin certificate"))?;
    admin
        .distinguished_name
        .push(DnType::CommonName, "dmk-admin");
    admin
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = admin
        .signed_by(&admin_key, &issuer)
        .map_err(cert_err("admin certificate"))?;

    // The test node's kubelet, as the Node authorizer knows it.
    let node_key = KeyPair::generate().map_err(cert_err("node key"))?;
    let mut node =
        CertificateParams::new(Vec::<String>::new()).map_err(cert_err("node certificate"))?;
    node.distinguished_name.push(
        DnType::CommonName,
        format!("system:node:{}", crate::node::NODE_NAME),
    );
    node.distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    node.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let node_cert = node
        .signed_by(&node_key, &issuer)
        .map_err(cert_err("node certificate"))?;

    let sa_key = KeyPair::generate().map_err(cert_err("service-account key"))?;

    write(dir, "ca.crt", &ca_cert.pem())?;
    write(dir, "apiserver.crt", &serving_cert.pem())?;
    write(dir, "apiserver.key", &serving_key.serialize_pem())?;
    write(dir, "node.crt", &node_cert.pem())?;
    write(dir, "node.key", &node_key.serialize_pem())?;
    write(dir, "sa.key", &sa_key.serialize_pem())?;
    write(dir, "sa.pub", &sa_key.public_key_pem())?;
    Ok(Pki {
        admin_cert: admin_cert.pem(),
        admin_key: admin_key.serialize_pem(),
    })
}

fn write(dir: &Path, name: &str, content: &str) -> Result<(), Error> {
    let path = dir.join(name);
    fs::write(&path, content).map_err(|source| Error::Io {
        what: format!("write {}", path.display()),
        source,
    })
}
