//! Golden Goose packages (seed 001 §3.5): a versioned set of service versions, promoted
//! together in dependency order, whose signed manifest records what made the release
//! compliant.

use crate::catalog::ServiceName;
use crate::version::Version;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Most services one package may hold.
pub const MAX_PACKAGE_SERVICES: usize = 5000;

/// One member: `service@version`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct Member {
    pub service: String,
    pub version: String,
}

/// Reads the seed's `services` list: `name` (at the package's version) or `name@version`.
pub fn parse_members(services: &[String], package_version: &str) -> Result<Vec<Member>, String> {
    Version::parse(package_version).map_err(|e| format!("package {e}"))?;
    if services.is_empty() {
        return Err("services must name at least one service".into());
    }
    if services.len() > MAX_PACKAGE_SERVICES {
        return Err(format!(
            "a package holds at most {MAX_PACKAGE_SERVICES} services, got {}",
            services.len()
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(services.len());
    for s in services {
        let (name, version) = match s.split_once('@') {
            Some((n, v)) => (n, v),
            None => (s.as_str(), package_version),
        };
        let name = ServiceName::parse(name.trim())?;
        Version::parse(version).map_err(|e| format!("{name}: {e}"))?;
        if !seen.insert(name.to_string()) {
            return Err(format!("{name} is listed twice"));
        }
        out.push(Member {
            service: name.to_string(),
            version: version.to_owned(),
        });
    }
    Ok(out)
}

/// A DSSE envelope (the in-toto signing wrapper): `payload` is base64 of the manifest bytes,
/// each signature is Ed25519 over `PAE(payloadType, payload)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: String,
}

/// The payload type of package manifests.
pub const MANIFEST_PAYLOAD_TYPE: &str = "application/vnd.golden-goose.package-manifest+json";

/// Events of a package stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum PackageEvent {
    PackageCreated {
        version: String,
        members: Vec<Member>,
        created_by: String,
    },
    /// The manifest of a finished promotion, signed by the orchestrator.
    PackageManifestSigned {
        promotion_id: String,
        /// SHA3-256 of the manifest bytes (hex).
        manifest_digest: String,
        envelope: Envelope,
    },
}

impl PackageEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::PackageCreated { .. } => "PackageCreated",
            Self::PackageManifestSigned { .. } => "PackageManifestSigned",
        }
    }
}

/// Why a package command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageRefusal {
    #[error("package already exists")]
    AlreadyExists,
    #[error("no such package")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
}

/// A package as folded from its events (its serde leaves the envelopes out: they are served
/// as the bundle; read-model snapshots keep them apart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Package {
    pub version: String,
    pub members: Vec<Member>,
    pub created_by: String,
    /// `(promotion id, manifest digest)` of each signed manifest.
    pub manifests: Vec<(String, String)>,
    #[serde(skip)]
    pub envelopes: Vec<Envelope>,
}

impl Package {
    pub fn apply(&mut self, e: &PackageEvent) {
        match e {
            PackageEvent::PackageCreated {
                version,
                members,
                created_by,
            } => {
                self.version.clone_from(version);
                self.members.clone_from(members);
                self.created_by.clone_from(created_by);
            }
            PackageEvent::PackageManifestSigned {
                promotion_id,
                manifest_digest,
                envelope,
            } => {
                self.manifests
                    .push((promotion_id.clone(), manifest_digest.clone()));
                self.envelopes.push(envelope.clone());
            }
        }
    }

    pub fn exists(&self) -> bool {
        !self.members.is_empty()
    }

    pub fn create(
        &self,
        version: &str,
        members: Vec<Member>,
        actor: &str,
    ) -> Result<Vec<PackageEvent>, PackageRefusal> {
        if self.exists() {
            return Err(PackageRefusal::AlreadyExists);
        }
        if members.is_empty() {
            return Err(PackageRefusal::Invalid("a package needs members".into()));
        }
        Ok(vec![PackageEvent::PackageCreated {
            version: version.to_owned(),
            members,
            created_by: actor.to_owned(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_default_to_the_package_version() {
        let m = parse_members(&["service-a".into(), "service-b@2.0.1".into()], "1.0.0").unwrap();
        assert_eq!(m[0].version, "1.0.0");
        assert_eq!(m[1].version, "2.0.1");
        assert!(
            parse_members(&["service-a".into(), "service-a@2".into()], "1")
                .unwrap_err()
                .contains("twice")
        );
        assert!(parse_members(&[], "1")
            .unwrap_err()
            .contains("at least one"));
        assert!(parse_members(&["Bad_Name".into()], "1")
            .unwrap_err()
            .contains("invalid service name"));
        assert!(parse_members(&["a".into()], "1 0")
            .unwrap_err()
            .contains("package version"));
    }

    #[test]
    fn a_package_is_created_once() {
        let mut p = Package::default();
        let members = vec![Member {
            service: "a".into(),
            version: "1".into(),
        }];
        for e in p.create("1.0.0", members.clone(), "olga").unwrap() {
            p.apply(&e);
        }
        assert_eq!(
            p.create("1.0.0", members, "olga"),
            Err(PackageRefusal::AlreadyExists)
        );
        assert!(Package::default().create("1", vec![], "olga").is_err());
    }
}
