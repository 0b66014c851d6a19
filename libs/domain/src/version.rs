//! Versions of services, packages and models: one type, one rule, checked wherever a version
//! enters the system.

use crate::errors::{Classified, ErrorKind};
use crate::org_config::VersionScheme;
use serde::{Deserialize, Serialize};

/// A version: 1 to 64 of `A-Z a-z 0-9 . _ + -`. Whether it follows the organisation's
/// scheme (semver, ...) is a separate check: [`Version::conforms_to`].
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[A-Za-z0-9._+-]{1,64}$")]
pub struct Version(String);

/// A version that breaks the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version {0:?} must be 1 to 64 of A-Z a-z 0-9 . _ + -")]
pub struct InvalidVersion(pub String);

impl Classified for InvalidVersion {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl Version {
    pub fn parse(v: &str) -> Result<Self, InvalidVersion> {
        let ok = !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
        if ok {
            Ok(Self(v.to_owned()))
        } else {
            Err(InvalidVersion(v.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it follows `scheme`; the error says how it does not.
    pub fn conforms_to(&self, scheme: VersionScheme) -> Result<(), String> {
        match scheme {
            VersionScheme::Semver => semver(&self.0).then_some(()).ok_or_else(|| {
                format!(
                    "version {} is not semantic (MAJOR.MINOR.PATCH[-pre][+build])",
                    self.0
                )
            }),
            VersionScheme::Calver => calver(&self.0).then_some(()).ok_or_else(|| {
                format!(
                    "version {} is not calendar (YYYY.MM[.DD or .MICRO][-modifier])",
                    self.0
                )
            }),
        }
    }
}

/// Calendar versioning as calver.org describes it: a year (YYYY or YY), a month (MM or 0M),
/// optionally a day or micro number, optionally a `-modifier`.
fn calver(v: &str) -> bool {
    let core = v
        .split_once('-')
        .map_or(v, |(c, m)| if m.is_empty() { "" } else { c });
    let parts: Vec<&str> = core.split('.').collect();
    let num = |s: &str| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit());
    (2..=3).contains(&parts.len())
        && parts.iter().all(|p| num(p))
        && matches!(parts[0].len(), 2 | 4)
        && parts[1].parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
}

/// Semantic Versioning 2.0.0: numeric identifiers without leading zeros, then optional
/// pre-release and build identifiers.
fn semver(v: &str) -> bool {
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let idents = |s: &str, no_leading_zero: bool| {
        s.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (!no_leading_zero || !id.bytes().all(|b| b.is_ascii_digit()) || numeric(id))
        })
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| idents(p, true))
        && build.is_none_or(|b| idents(b, false))
}

impl TryFrom<String> for Version {
    type Error = InvalidVersion;
    fn try_from(v: String) -> Result<Self, InvalidVersion> {
        Self::parse(&v)
    }
}

impl From<Version> for String {
    fn from(v: Version) -> Self {
        v.0
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_and_semver() {
        for ok in ["1.0.0", "v2", "2024.10.01+build.7", "1.0.0-rc.1"] {
            assert!(Version::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1 0", "1/0", &"9".repeat(65), "ü"] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
        let semver = |v: &str| {
            Version::parse(v)
                .unwrap()
                .conforms_to(VersionScheme::Semver)
                .is_ok()
        };
        for ok in [
            "1.0.0",
            "0.0.1",
            "1.2.3-alpha.1",
            "1.2.3+build.01",
            "10.20.30-rc-1",
        ] {
            assert!(semver(ok), "{ok}");
        }
        for bad in [
            "-1", "1.0", "01.0.0", "1.0.0-01", "1.0.0-", "1.0.0+", "v1.0.0", "1.0.0.0",
        ] {
            assert!(!semver(bad), "{bad}");
        }
        let calver = |v: &str| {
            Version::parse(v)
                .unwrap()
                .conforms_to(VersionScheme::Calver)
                .is_ok()
        };
        for ok in ["2026.12", "2026.12.03", "26.1.4", "2026.03-beta"] {
            assert!(calver(ok), "{ok}");
        }
        for bad in ["1.0.0x", "2026", "2026.13", "2026.0", "2026.12-", "x.1"] {
            assert!(!calver(bad), "{bad}");
        }
        let v: Version = serde_json::from_str("\"1.2.3\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"1.2.3\"");
        assert!(serde_json::from_str::<Version>("\"a b\"").is_err());
    }
}
