//! The webhook's certificates: a CA of its own, made fresh at each rotation, and the serving
//! certificate it signs. The CA's private key is used once and dropped: nothing can sign with it
//! afterwards, and the next rotation makes a new CA. The API server trusts the bundle in the
//! webhook configuration, which holds the new CA and every older one still valid, so a replica
//! still serving the previous certificate keeps being trusted while it catches up.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The files of the webhook's Secret (`kubernetes.io/tls`, plus the CA bundle).
pub const CA_BUNDLE: &str = "ca.crt";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";

/// A certificate and key as PEM. The key is never logged: this type has no `Debug`.
pub struct Issued {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot issue the webhook certificate: {0}")]
pub struct IssueError(String);

/// Issues a new CA and a serving certificate for `hosts` (DNS names or IP addresses), both valid
/// from a minute ago (clock skew between replicas and the API server) for `lifetime`.
pub fn issue(hosts: &[String], lifetime: Duration, now: SystemTime) -> Result<Issued, IssueError> {
    let err = |e: rcgen::Error| IssueError(e.to_string());
    let from = now - Duration::from_secs(60);
    let until = now + lifetime;

    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name = name("dataminer-keys-operator webhook CA");
    ca.not_before = from.into();
    ca.not_after = until.into();
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(hosts.to_vec()).map_err(err)?;
    leaf.distinguished_name = name(hosts.first().map_or("webhook", String::as_str));
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = from.into();
    leaf.not_after = until.into();
    let leaf_key = KeyPair::generate().map_err(err)?;
    let cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;
    Ok(Issued {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common);
    dn
}

/// What a certificate says about itself, as far as rotation goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// DNS names and IP addresses, as text.
    pub hosts: Vec<String>,
}

/// Reads every certificate in a PEM bundle; `None` if any block is not a certificate.
pub fn read_bundle(pem: &str) -> Option<Vec<(String, Seen)>> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.ok()?;
        let cert = block.parse_x509().ok()?;
        let validity = cert.validity();
        let time = |t: x509_parser::time::ASN1Time| {
            SystemTime::UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64)
        };
        let mut hosts = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(d) => hosts.push(d.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(ip) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*ip) {
                            hosts.push(std::net::Ipv4Addr::from(v4).to_string());
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                            hosts.push(std::net::Ipv6Addr::from(v6).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let text = pem_block(&block.contents);
        out.push((
            text,
            Seen {
                not_before: time(validity.not_before),
                not_after: time(validity.not_after),
                hosts,
            },
        ));
    }
    (!out.is_empty()).then_some(out)
}

fn pem_block(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Why the serving certificate must be replaced, or `None` to keep it.
pub fn rotation_due(
    serving: Option<&Seen>,
    hosts: &[String],
    lifetime: Duration,
    now: SystemTime,
) -> Option<&'static str> {
    let Some(seen) = serving else {
        return Some("no certificate yet");
    };
    let mut want: Vec<&String> = hosts.iter().collect();
    let mut have: Vec<&String> = seen.hosts.iter().collect();
    want.sort();
    have.sort();
    if want != have {
        return Some("the webhook's host names changed");
    }
    // Renew with a third of the lifetime left, and never keep one issued for far longer than
    // asked (the lifetime was shortened) or not yet valid (a clock that jumped back).
    let total = seen
        .not_after
        .duration_since(seen.not_before)
        .unwrap_or_default();
    let left = seen.not_after.duration_since(now).unwrap_or_default();
    if left < total.min(lifetime) / 3 {
        return Some("the certificate is near its end");
    }
    if total > lifetime + Duration::from_secs(120) {
        return Some("the certificate outlives the configured lifetime");
    }
    if seen.not_before > now + Duration::from_secs(300) {
        return Some("the certificate is not valid yet");
    }
    None
}

/// The bundle to trust after a rotation: the new CA first, then the older CAs still valid.
pub fn next_bundle(new_ca: &str, old_bundle: Option<&str>, now: SystemTime) -> String {
    let mut out = new_ca.trim_end().to_string();
    out.push('\n');
    for (pem, seen) in old_bundle.and_then(read_bundle).unwrap_or_default() {
        if seen.not_after > now && pem.trim_end() != new_ca.trim_end() {
            out.push_str(pem.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn hosts() -> Vec<String> {
        vec!["dmk-webhook.keys-system.svc".into(), "127.0.0.1".into()]
    }

    #[test]
    fn an_issued_certificate_reads_back_with_its_hosts_and_lifetime() {
        let now = SystemTime::now();
        let issued = issue(&hosts(), 30 * DAY, now).unwrap();
        let serving = read_bundle(&issued.cert_pem).unwrap();
        assert_eq!(serving.len(), 1);
        let seen = &serving[0].1;
        assert_eq!(seen.hosts, hosts());
        let life = seen.not_after.duration_since(seen.not_before).unwrap();
        assert!(
            life >= 30 * DAY && life <= 30 * DAY + Duration::from_secs(61),
            "{life:?}"
        );
        assert!(issued.key_pem.contains("PRIVATE KEY"));
        assert!(
            !issued.ca_pem.contains("PRIVATE"),
            "the CA key is never kept"
        );
        assert_eq!(rotation_due(Some(seen), &hosts(), 30 * DAY, now), None);
    }

    #[test]
    fn rotation_is_due_when_missing_renamed_late_or_too_long() {
        let now = SystemTime::now();
        let seen = Seen {
            not_before: now - 10 * DAY,
            not_after: now + 20 * DAY,
            hosts: hosts(),
        };
        let due = |s: Option<&Seen>, h: &[String], life| rotation_due(s, h, life, now);
        assert_eq!(due(None, &hosts(), 30 * DAY), Some("no certificate yet"));
        assert_eq!(due(Some(&seen), &hosts(), 30 * DAY), None);
        assert!(
            due(Some(&seen), &hosts()[..1], 30 * DAY).is_some(),
            "a host fewer"
        );
        let late = Seen {
            not_after: now + 9 * DAY,
            not_before: now - 21 * DAY,
            ..seen.clone()
        };
        assert_eq!(
            due(Some(&late), &hosts(), 30 * DAY),
            Some("the certificate is near its end")
        );
        assert_eq!(
            due(Some(&seen), &hosts(), 3 * DAY),
            Some("the certificate outlives the configured lifetime")
        );
        let future = Seen {
            not_before: now + DAY,
            not_after: now + 10 * DAY,
            ..seen
        };
        assert_eq!(
            due(Some(&future), &hosts(), 30 * DAY),
            Some("the certificate is not valid yet")
        );
    }

    #[test]
    fn the_bundle_keeps_older_cas_until_they_expire() {
        let now = SystemTime::now();
        let first = issue(&hosts(), 30 * DAY, now - 25 * DAY).unwrap();
        let expired = issue(&hosts(), DAY, now - 3 * DAY).unwrap();
        let new = issue(&hosts(), 30 * DAY, now).unwrap();
        let old = format!("{}{}", first.ca_pem, expired.ca_pem);
        let bundle = next_bundle(&new.ca_pem, Some(&old), now);
        let read = read_bundle(&bundle).unwrap();
        assert_eq!(
            read.len(),
            2,
            "the new CA and the first one; the expired one is gone"
        );
        assert_eq!(read[0].0.trim_end(), new.ca_pem.trim_end());
        assert_eq!(read[1].0.trim_end(), first.ca_pem.trim_end());
        // Rotating twice onto the same CA never lists it twice; garbage is dropped.
        assert_eq!(
            read_bundle(&next_bundle(&new.ca_pem, Some(&bundle), now))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            read_bundle(&next_bundle(&new.ca_pem, Some("junk"), now))
                .unwrap()
                .len(),
            1
        );
    }
}
