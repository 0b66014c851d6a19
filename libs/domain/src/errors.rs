//! What kind of failure a domain error is. Services map a kind — not each error — to an HTTP
//! status (problem+json) and a gRPC code, in one place (`goose_platform::problem`), so the
//! same refusal reads the same over REST and gRPC.

use crate::approval::Refusal;
use crate::user::UserError;
use ErrorKind as K;

/// The kinds of failure a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or breaks a rule about its own content (400).
    Invalid,
    /// A rule about the caller refuses it (403).
    Forbidden,
    /// What it names does not exist (404).
    NotFound,
    /// It conflicts with the current state (409).
    Conflict,
    /// The state does not allow it now, though the request is well formed (422).
    Unprocessable,
}

/// An error that says which [`ErrorKind`] it is.
pub trait Classified: std::error::Error {
    fn kind(&self) -> ErrorKind;
}

impl Classified for UserError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound | Self::NoSuchKey(_) => K::NotFound,
            Self::Invalid(_) => K::Invalid,
            Self::Exists(_)
            | Self::Active(_)
            | Self::Deactivated(_)
            | Self::AlreadyHolds { .. }
            | Self::DoesNotHold { .. }
            | Self::LastAdmin { .. } => K::Conflict,
        }
    }
}

impl Classified for crate::identity::IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::MissingClaim(_) | Self::InvalidUser { .. } | Self::Config(_) => K::Invalid,
            Self::NoRole { .. } | Self::NotLinked { .. } | Self::Deactivated(_) => K::Forbidden,
        }
    }
}

impl Classified for Refusal {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::SelfApproval(_)
            | Self::MissingPermission { .. }
            | Self::NeedsOutsideApprover { .. } => K::Forbidden,
            Self::NotFound => K::NotFound,
            Self::Invalid(_) => K::Invalid,
            Self::AlreadyGranted(_) | Self::AlreadyDecided(_) | Self::AlreadyExists => K::Conflict,
        }
    }
}

impl Classified for crate::model::ModelError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => K::Invalid,
            Self::Exists(_) => K::Conflict,
            Self::NotFound(_) => K::NotFound,
            Self::Refused(_) | Self::InUse { .. } => K::Unprocessable,
        }
    }
}

impl Classified for crate::usecase::UseCaseError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => K::Invalid,
            Self::Exists(_) => K::Conflict,
            Self::NotFound(_) => K::NotFound,
            Self::State { .. } | Self::ModelsNotInProduction(_) => K::Unprocessable,
        }
    }
}

impl Classified for crate::package::PackageRefusal {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyExists => K::Conflict,
            Self::NotFound => K::NotFound,
            Self::Invalid(_) => K::Unprocessable,
        }
    }
}

impl Classified for crate::promotion::OrderError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Unknown(_) => K::NotFound,
            Self::Cycle(_) | Self::Duplicate(_) => K::Invalid,
        }
    }
}

impl Classified for crate::compliance::TransitionError {
    fn kind(&self) -> ErrorKind {
        K::Unprocessable
    }
}

impl Classified for crate::rbac::Error {
    fn kind(&self) -> ErrorKind {
        K::Invalid
    }
}

impl Classified for crate::rbac::Denied {
    fn kind(&self) -> ErrorKind {
        K::Forbidden
    }
}

impl Classified for crate::catalog::ParseError {
    fn kind(&self) -> ErrorKind {
        K::Invalid
    }
}

/// Well-formed definitions that do not fit the catalog (unknown dependencies, cycles).
impl Classified for crate::catalog::Rejected {
    fn kind(&self) -> ErrorKind {
        K::Unprocessable
    }
}

/// For commands that cannot be refused.
impl Classified for std::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

impl Classified for crate::org_config::Invalid {
    fn kind(&self) -> ErrorKind {
        K::Invalid
    }
}

impl Classified for crate::policy::Invalid {
    fn kind(&self) -> ErrorKind {
        K::Invalid
    }
}

impl Classified for crate::lock::Held {
    fn kind(&self) -> ErrorKind {
        K::Conflict
    }
}
