//! Incidents (seed 004): six types, four severities, a lifecycle open → acknowledged →
//! mitigated → resolved (reopen allowed), an assignee, timeline notes, and links to the
//! events that caused them. One stream per cause (`incident/<cause>`): a cause has at most
//! one incident open — a recurrence while open is a note, not a second incident; once
//! resolved, the cause's next occurrence opens a new incident in the same stream.

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IncidentType {
    SlaBreach,
    ComplianceViolation,
    SecurityFinding,
    EvidenceIntegrity,
    UnauthorizedAccess,
    PromotionFailure,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IncidentSeverity {
    Info,
    Warning,
    Error,
    Critical,
}

impl IncidentSeverity {
    pub const ALL: [Self; 4] = [Self::Info, Self::Warning, Self::Error, Self::Critical];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    Acknowledged,
    Mitigated,
    Resolved,
}

/// What an incident is about, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentReport {
    #[serde(rename = "type")]
    pub kind: IncidentType,
    pub severity: IncidentSeverity,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Ledger positions of the events that caused it (provable with inclusion proofs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caused_by: Vec<u64>,
}

/// Events of `incident/<cause>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum IncidentEvent {
    IncidentOpened {
        id: String,
        cause: String,
        report: IncidentReport,
        by: String,
    },
    /// The cause happened again while the incident was open.
    IncidentRecurred {
        id: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        caused_by: Vec<u64>,
        note: String,
    },
    IncidentAcknowledged {
        id: String,
        by: String,
    },
    IncidentAssigned {
        id: String,
        assignee: String,
        by: String,
    },
    IncidentNoted {
        id: String,
        note: String,
        by: String,
    },
    IncidentMitigated {
        id: String,
        note: String,
        by: String,
    },
    IncidentResolved {
        id: String,
        note: String,
        by: String,
    },
    IncidentReopened {
        id: String,
        reason: String,
        by: String,
    },
}

impl IncidentEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::IncidentOpened { .. } => "IncidentOpened",
            Self::IncidentRecurred { .. } => "IncidentRecurred",
            Self::IncidentAcknowledged { .. } => "IncidentAcknowledged",
            Self::IncidentAssigned { .. } => "IncidentAssigned",
            Self::IncidentNoted { .. } => "IncidentNoted",
            Self::IncidentMitigated { .. } => "IncidentMitigated",
            Self::IncidentResolved { .. } => "IncidentResolved",
            Self::IncidentReopened { .. } => "IncidentReopened",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Self::IncidentOpened { id, .. }
            | Self::IncidentRecurred { id, .. }
            | Self::IncidentAcknowledged { id, .. }
            | Self::IncidentAssigned { id, .. }
            | Self::IncidentNoted { id, .. }
            | Self::IncidentMitigated { id, .. }
            | Self::IncidentResolved { id, .. }
            | Self::IncidentReopened { id, .. } => id,
        }
    }
}

/// A lifecycle step that does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncidentError {
    #[error("no incident {0}")]
    NotFound(String),
    #[error("incident {id} is {status:?}: it cannot be {action}")]
    Conflict {
        id: String,
        status: IncidentStatus,
        action: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
}

impl crate::errors::Classified for IncidentError {
    fn kind(&self) -> crate::errors::ErrorKind {
        use crate::errors::ErrorKind;
        match self {
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::Invalid(_) => ErrorKind::Invalid,
        }
    }
}

/// A cause's stream: its current (latest) incident.
#[derive(Debug, Clone, Default)]
pub struct CauseState {
    pub current: Option<(String, IncidentStatus)>,
    /// The newest ledger position an incident of this cause cites: an occurrence citing
    /// nothing newer was recorded already (by another replica, or before a crash).
    pub cited: u64,
}

/// A lifecycle action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    Assign(String),
    Note(String),
    Mitigate(String),
    Resolve(String),
    Reopen(String),
}

impl CauseState {
    pub fn apply(&mut self, e: &IncidentEvent) {
        let cited = match e {
            IncidentEvent::IncidentOpened { report, .. } => report.caused_by.iter().max(),
            IncidentEvent::IncidentRecurred { caused_by, .. } => caused_by.iter().max(),
            _ => None,
        };
        self.cited = self.cited.max(cited.copied().unwrap_or(0));
        let id = e.id().to_owned();
        let status = match e {
            IncidentEvent::IncidentOpened { .. } | IncidentEvent::IncidentReopened { .. } => {
                IncidentStatus::Open
            }
            IncidentEvent::IncidentAcknowledged { .. } => IncidentStatus::Acknowledged,
            IncidentEvent::IncidentMitigated { .. } => IncidentStatus::Mitigated,
            IncidentEvent::IncidentResolved { .. } => IncidentStatus::Resolved,
            IncidentEvent::IncidentRecurred { .. }
            | IncidentEvent::IncidentAssigned { .. }
            | IncidentEvent::IncidentNoted { .. } => match &self.current {
                Some((_, s)) => *s,
                None => IncidentStatus::Open,
            },
        };
        self.current = Some((id, status));
    }

    /// The cause occurred: a new incident (id `new_id`), or a recurrence of the open one
    /// (nothing when every event it cites is cited already, or it cites none and the cause
    /// has an incident).
    pub fn occur(
        &self,
        cause: &str,
        new_id: &str,
        report: &IncidentReport,
        by: &str,
    ) -> Result<Vec<IncidentEvent>, IncidentError> {
        if report.title.trim().is_empty() || report.title.len() > 500 {
            return Err(IncidentError::Invalid("title: 1 to 500 characters".into()));
        }
        if !report.caused_by.is_empty() && report.caused_by.iter().all(|p| *p <= self.cited) {
            return Ok(Vec::new());
        }
        // An occurrence that cites no event (a verification failure, a forged checkpoint row:
        // the cause names it) is recorded once: its cause has an incident already.
        if report.caused_by.is_empty() && self.current.is_some() {
            return Ok(Vec::new());
        }
        Ok(match &self.current {
            Some((id, status)) if *status != IncidentStatus::Resolved => {
                vec![IncidentEvent::IncidentRecurred {
                    id: id.clone(),
                    caused_by: report.caused_by.clone(),
                    note: report.title.clone(),
                }]
            }
            _ => vec![IncidentEvent::IncidentOpened {
                id: new_id.to_owned(),
                cause: cause.to_owned(),
                report: report.clone(),
                by: by.to_owned(),
            }],
        })
    }

    /// A lifecycle step on incident `id` (which must be this cause's latest).
    pub fn act(
        &self,
        id: &str,
        action: Action,
        by: &str,
    ) -> Result<Vec<IncidentEvent>, IncidentError> {
        let Some((current, status)) = self.current.as_ref().filter(|(c, _)| c == id) else {
            return Err(IncidentError::NotFound(id.to_owned()));
        };
        let (id, by) = (current.clone(), by.to_owned());
        let refuse = |action| {
            Err(IncidentError::Conflict {
                id: id.clone(),
                status: *status,
                action,
            })
        };
        use IncidentStatus as S;
        let event = match (action, *status) {
            (Action::Acknowledge, S::Open) => IncidentEvent::IncidentAcknowledged { id, by },
            (Action::Acknowledge, _) => return refuse("acknowledged"),
            (Action::Assign(assignee), s) if s != S::Resolved => {
                IncidentEvent::IncidentAssigned { id, assignee, by }
            }
            (Action::Assign(_), _) => return refuse("assigned"),
            (Action::Note(note), _) => IncidentEvent::IncidentNoted { id, note, by },
            (Action::Mitigate(note), S::Open | S::Acknowledged) => {
                IncidentEvent::IncidentMitigated { id, note, by }
            }
            (Action::Mitigate(_), _) => return refuse("mitigated"),
            (Action::Resolve(note), s) if s != S::Resolved => {
                IncidentEvent::IncidentResolved { id, note, by }
            }
            (Action::Resolve(_), _) => return refuse("resolved"),
            (Action::Reopen(reason), S::Mitigated | S::Resolved) => {
                IncidentEvent::IncidentReopened { id, reason, by }
            }
            (Action::Reopen(_), _) => return refuse("reopened"),
        };
        Ok(vec![event])
    }
}

/// The severity of an SLA breach by how fast the budget burns: 14.4x and more (the page-fast
/// alert of a 30-day SLO spends 2 % of the budget in an hour) is critical, 6x an error,
/// slower burns a warning.
pub fn breach_severity(factor: f64) -> IncidentSeverity {
    if factor >= 14.4 {
        IncidentSeverity::Critical
    } else if factor >= 6.0 {
        IncidentSeverity::Error
    } else {
        IncidentSeverity::Warning
    }
}
