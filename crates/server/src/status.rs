//! The one gRPC boundary: [`ApiError`] collects every error a request can end with, and its
//! single `From<ApiError> for tonic::Status` maps it to the gRPC code SpiceDB uses, with a
//! machine-readable `google.rpc.ErrorInfo` reason. This is the only place request errors are
//! logged.

use ostiary_engine::EngineError;
use ostiary_proto::authzed::api::v1::ErrorReason;
use ostiary_schema::Diagnostics;
use ostiary_store::StoreError;
use ostiary_tenancy::TenancyError;
use ostiary_types::TypesError;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt as _};

/// The error domain SpiceDB attaches to `ErrorInfo`.
const ERROR_DOMAIN: &str = "authzed.com";

/// Every way a request can fail; `From<ApiError> for tonic::Status` is the only mapping.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// A malformed request: a missing or invalid field.
    #[error("{message}")]
    InvalidArgument {
        /// What is wrong, naming the field.
        message: String,
        /// The SpiceDB error reason.
        reason: ErrorReason,
    },
    /// The request names something the schema does not have, or a schema change would
    /// orphan data.
    #[error("{message}")]
    FailedPrecondition {
        /// What is missing or in the way.
        message: String,
        /// The SpiceDB error reason.
        reason: ErrorReason,
    },
    /// The schema text does not compile.
    #[error("{0}")]
    Schema(Diagnostics),
    /// An engine error.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A store error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The requested thing does not exist (SpiceDB's `NotFound`, e.g. ReadSchema before any
    /// schema was written).
    #[error("{0}")]
    NotFound(String),
    /// The method or option is not implemented (the message says which).
    #[error("{0}")]
    Unimplemented(&'static str),
    /// The server is shutting down or a worker failed.
    #[error("{0}")]
    Unavailable(String),
    /// The caller's token may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// A tenant's quota would be exceeded.
    #[error("{0}")]
    QuotaExceeded(String),
    /// A tenancy operation failed.
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
}

impl ApiError {
    /// A malformed field with SpiceDB's generic reason.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            message: message.into(),
            reason: ErrorReason::Unspecified,
        }
    }

    /// A malformed field with a specific reason.
    pub(crate) fn invalid_with(reason: ErrorReason, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            message: message.into(),
            reason,
        }
    }

    /// A field failed name or id validation.
    pub(crate) fn field(field: &str, err: &TypesError) -> Self {
        Self::invalid(format!("invalid `{field}`: {err}"))
    }

    /// A required field is missing.
    pub(crate) fn missing(field: &str) -> Self {
        Self::invalid(format!("missing required field `{field}`"))
    }

    /// A consistency token that does not decode.
    pub(crate) fn invalid_token(field: &str, token: &str) -> Self {
        Self::invalid(format!(
            "invalid `{field}`: `{token}` is not a valid consistency token"
        ))
    }

    /// A cursor that does not decode.
    pub(crate) fn invalid_cursor(field: &str, cursor: &str) -> Self {
        Self::invalid_with(
            ErrorReason::InvalidCursor,
            format!("invalid `{field}`: `{cursor}` is not a valid cursor"),
        )
    }

    /// A failed precondition with a reason.
    pub(crate) fn precondition(reason: ErrorReason, message: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            message: message.into(),
            reason,
        }
    }
}

impl From<TypesError> for ApiError {
    fn from(err: TypesError) -> Self {
        Self::invalid(err.to_string())
    }
}

/// The gRPC code, the reason and the client-facing message of an error.
fn classify(err: &ApiError) -> (Code, ErrorReason, String) {
    use ErrorReason as R;
    match err {
        ApiError::InvalidArgument { message, reason } => {
            (Code::InvalidArgument, *reason, message.clone())
        }
        ApiError::FailedPrecondition { message, reason } => {
            (Code::FailedPrecondition, *reason, message.clone())
        }
        ApiError::Schema(diagnostics) => (
            Code::InvalidArgument,
            R::SchemaParseError,
            diagnostics.to_string(),
        ),
        ApiError::NotFound(message) => (Code::NotFound, R::Unspecified, message.clone()),
        ApiError::Unimplemented(_) => (Code::Unimplemented, R::Unspecified, err.to_string()),
        ApiError::Unavailable(message) => (Code::Unavailable, R::Unspecified, message.clone()),
        ApiError::Store(store) => classify_store(store),
        ApiError::PermissionDenied(message) => {
            (Code::PermissionDenied, R::Unspecified, message.clone())
        }
        ApiError::QuotaExceeded(message) => {
            (Code::ResourceExhausted, R::Unspecified, message.clone())
        }
        ApiError::Tenancy(tenancy) => match tenancy {
            TenancyError::PermissionDenied(message) => {
                (Code::PermissionDenied, R::Unspecified, message.clone())
            }
            TenancyError::InvalidArgument(message) => {
                (Code::InvalidArgument, R::Unspecified, message.clone())
            }
            TenancyError::TenantNotFound(_) | TenancyError::TokenNotFound(_) => {
                (Code::NotFound, R::Unspecified, tenancy.to_string())
            }
            TenancyError::TenantExists(_) => {
                (Code::AlreadyExists, R::Unspecified, tenancy.to_string())
            }
            TenancyError::TenantNotActive { .. } => (
                Code::FailedPrecondition,
                R::Unspecified,
                tenancy.to_string(),
            ),
            TenancyError::Store(store) => classify_store(store),
            _ => internal(),
        },
        ApiError::Engine(engine) => match engine {
            EngineError::UnknownDefinition(_) => (
                Code::FailedPrecondition,
                R::UnknownDefinition,
                engine.to_string(),
            ),
            EngineError::UnknownRelation { .. } => (
                Code::FailedPrecondition,
                R::UnknownRelationOrPermission,
                engine.to_string(),
            ),
            EngineError::UnknownCaveat(_) => (
                Code::FailedPrecondition,
                R::UnknownCaveat,
                engine.to_string(),
            ),
            EngineError::WildcardNotAllowed(_) => {
                (Code::InvalidArgument, R::Unspecified, engine.to_string())
            }
            // SpiceDB v1.54 answers FailedPrecondition here (not ResourceExhausted).
            EngineError::MaxDepthExceeded { .. } => (
                Code::FailedPrecondition,
                R::MaximumDepthExceeded,
                engine.to_string(),
            ),
            EngineError::CaveatContext { .. } => (
                Code::InvalidArgument,
                R::CaveatParameterTypeError,
                engine.to_string(),
            ),
            EngineError::CaveatEvaluation { .. } => (
                Code::InvalidArgument,
                R::CaveatEvaluationError,
                engine.to_string(),
            ),
            EngineError::InvalidCursor(_) => {
                (Code::InvalidArgument, R::InvalidCursor, engine.to_string())
            }
            EngineError::Store(store) => classify_store(store),
            _ => internal(),
        },
    }
}

/// The classification of a store error.
fn classify_store(err: &StoreError) -> (Code, ErrorReason, String) {
    use ErrorReason as R;
    match err {
        StoreError::RevisionExpired(_) | StoreError::RevisionInFuture(_) => {
            (Code::OutOfRange, R::Unspecified, err.to_string())
        }
        StoreError::AlreadyExists(_) => (
            Code::AlreadyExists,
            R::AttemptToRecreateRelationship,
            format!("could not CREATE relationship: {err}"),
        ),
        StoreError::PreconditionFailed(_) => (
            Code::FailedPrecondition,
            R::WriteOrDeletePreconditionFailure,
            err.to_string(),
        ),
        StoreError::InvalidArgument(_) => {
            (Code::InvalidArgument, R::InvalidFilter, err.to_string())
        }
        StoreError::Conflict => (Code::Aborted, R::SerializationFailure, err.to_string()),
        StoreError::Unavailable(_) => (Code::Unavailable, R::Unspecified, err.to_string()),
        _ => internal(),
    }
}

/// Bugs and corruption get a generic message; the details go to the log only.
fn internal() -> (Code, ErrorReason, String) {
    (
        Code::Internal,
        ErrorReason::Unspecified,
        "internal server error".to_owned(),
    )
}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        let (code, reason, message) = classify(&err);
        match code {
            Code::Internal | Code::Unavailable => {
                tracing::error!(error = %err, ?code, "request failed")
            }
            _ => tracing::debug!(error = %err, ?code, "request refused"),
        }
        if reason == ErrorReason::Unspecified {
            return tonic::Status::new(code, message);
        }
        let details = ErrorDetails::with_error_info(
            reason.as_str_name(),
            ERROR_DOMAIN,
            std::collections::HashMap::<String, String>::new(),
        );
        tonic::Status::with_error_details(code, message, details)
    }
}

#[cfg(test)]
mod tests {
    use ostiary_types::Revision;

    use super::*;

    fn code_of(err: ApiError) -> (Code, String) {
        let status = tonic::Status::from(err);
        (status.code(), status.message().to_owned())
    }

    #[test]
    fn errors_map_to_spicedb_codes() {
        let cases: Vec<(ApiError, Code)> = vec![
            (ApiError::missing("resource"), Code::InvalidArgument),
            (
                EngineError::UnknownDefinition("nope".into()).into(),
                Code::FailedPrecondition,
            ),
            (
                EngineError::MaxDepthExceeded { max_depth: 50 }.into(),
                Code::FailedPrecondition,
            ),
            (
                StoreError::RevisionExpired(Revision::new(1)).into(),
                Code::OutOfRange,
            ),
            (StoreError::Conflict.into(), Code::Aborted),
            (
                StoreError::PreconditionFailed("must match `x`".into()).into(),
                Code::FailedPrecondition,
            ),
            (
                StoreError::Internal("secret detail".into()).into(),
                Code::Internal,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(code_of(err).0, code);
        }
        let (_, message) = code_of(StoreError::Internal("secret detail".into()).into());
        assert_eq!(message, "internal server error");
    }

    #[test]
    fn reasons_travel_as_error_info() {
        let status = tonic::Status::from(ApiError::from(EngineError::UnknownDefinition(
            "nope".into(),
        )));
        let details = status.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(info.reason, "ERROR_REASON_UNKNOWN_DEFINITION");
        assert_eq!(info.domain, "authzed.com");
    }
}
