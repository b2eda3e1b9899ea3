//! What a failed call means for the caller, per the csi-addons contract's error table.

use std::fmt;

use tonic::Code;

use crate::Method;

/// How the caller must react to a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// ABORTED, UNAVAILABLE, UNKNOWN, DEADLINE_EXCEEDED, transport failures: retry with backoff.
    Retry,
    /// INVALID_ARGUMENT, UNAUTHENTICATED (and other caller errors): report, and wait for the
    /// input (spec, class, secret) to change instead of retrying.
    Permanent,
    /// NOT_FOUND: the volume does not exist (Disable: done; GetInfo: no info yet).
    NotFound,
    /// UNIMPLEMENTED: the driver lacks the RPC; never retry it.
    NotImplemented,
    /// FAILED_PRECONDITION: the volume is not in the state the RPC needs. For Promote, the
    /// signal to retry once with `force` (the peer is gone or still primary).
    FailedPrecondition,
}

impl ErrorClass {
    /// Classifies a gRPC status code.
    pub fn of(code: Code) -> Self {
        match code {
            Code::Aborted
            | Code::Unavailable
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::ResourceExhausted
            | Code::Internal => ErrorClass::Retry,
            Code::NotFound => ErrorClass::NotFound,
            Code::Unimplemented => ErrorClass::NotImplemented,
            Code::FailedPrecondition => ErrorClass::FailedPrecondition,
            Code::InvalidArgument
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::AlreadyExists
            | Code::OutOfRange
            | Code::DataLoss
            | Code::Ok => ErrorClass::Permanent,
        }
    }

    /// A stable label for metrics and Events.
    pub const fn category(self) -> &'static str {
        match self {
            ErrorClass::Retry => "retryable",
            ErrorClass::Permanent => "permanent",
            ErrorClass::NotFound => "not_found",
            ErrorClass::NotImplemented => "not_implemented",
            ErrorClass::FailedPrecondition => "failed_precondition",
        }
    }

    /// Whether retrying the same call later may succeed without any change on our side.
    pub const fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Retry)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.category())
    }
}

/// A failed call: which RPC, the gRPC code and the driver's (or transport's) message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{method} failed with {}: {message}", code_name(*.code))]
pub struct CsiError {
    pub method: Method,
    pub code: Code,
    pub message: String,
}

impl CsiError {
    pub(crate) fn from_status(method: Method, status: &tonic::Status) -> Self {
        let mut message = status.message().to_owned();
        if message.is_empty() {
            message = status.code().description().to_owned();
        }
        // Transport failures carry their cause in the source chain, not the message.
        let mut source = std::error::Error::source(status);
        while let Some(cause) = source {
            // tonic enforces the gRPC deadline we send and reports it as CANCELLED with a
            // TimeoutExpired cause; to the caller it is a deadline, as the contract names it.
            if cause.is::<tonic::TimeoutExpired>() {
                return Self {
                    method,
                    code: Code::DeadlineExceeded,
                    message: "the driver did not answer before the deadline".to_owned(),
                };
            }
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        Self {
            method,
            code: status.code(),
            message,
        }
    }

    pub(crate) fn deadline(method: Method, timeout: std::time::Duration) -> Self {
        Self {
            method,
            code: Code::DeadlineExceeded,
            message: format!("no answer within {timeout:?}"),
        }
    }

    /// A call not made: the caller may not act now (a controller whose leadership Lease is
    /// not safely held). Retryable: another process, or this one later, makes it.
    pub(crate) fn fenced(method: Method) -> Self {
        Self {
            method,
            code: Code::Unavailable,
            message: "not sent: this controller does not hold its leadership Lease long enough to make the call".to_owned(),
        }
    }

    /// An answer that breaks the contract (a required field missing): the driver's bug.
    pub(crate) fn malformed(method: Method, what: &str) -> Self {
        Self {
            method,
            code: Code::Internal,
            message: format!("the driver's answer breaks the contract: {what}"),
        }
    }

    pub fn class(&self) -> ErrorClass {
        ErrorClass::of(self.code)
    }

    /// The stable label of [`Self::class`], for metrics and Events.
    pub fn category(&self) -> &'static str {
        self.class().category()
    }

    /// Whether the driver refused the credentials sent (`UNAUTHENTICATED`,
    /// `PERMISSION_DENIED`): worth reading them afresh before the next try.
    pub fn refused_credentials(&self) -> bool {
        matches!(self.code, Code::Unauthenticated | Code::PermissionDenied)
    }
}

/// The gRPC code's canonical name ("FAILED_PRECONDITION"), as drivers document them.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
