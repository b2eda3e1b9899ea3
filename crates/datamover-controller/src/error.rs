//! Why a reconcile stopped, with a stable category and a retry policy.

use crate::problem::Problem;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; the status says so. Waits for a change.
    #[error(transparent)]
    Problem(#[from] Problem),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Error::Problem(p) => p.reason(),
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "api_conflict",
            Error::Kube(_) => "api",
        }
    }

    /// Retry soon (API trouble) or only after a change (bad input).
    pub fn retryable(&self) -> bool {
        matches!(self, Error::Kube(_))
    }
}
