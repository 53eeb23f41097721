//! Errors of the protobuf transcoder; the apiserver maps them to 400 (malformed body),
//! 415 (unsupported kind in a request) or 406 (unsupported kind in a response).

/// An error while decoding or encoding the Kubernetes protobuf wire format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The body is empty or holds only the magic prefix.
    #[error("empty body")]
    Empty,
    /// The body does not start with the `k8s\0` magic prefix.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    NotProtobuf,
    /// The envelope names no kind.
    #[error("Object 'Kind' is missing in protobuf envelope")]
    MissingKind,
    /// The envelope names no apiVersion.
    #[error("Object 'apiVersion' is missing in protobuf envelope")]
    MissingApiVersion,
    /// No protobuf schema is known for this apiVersion and kind.
    #[error("no protobuf schema for kind {kind:?} in version {api_version:?}")]
    UnsupportedKind { api_version: String, kind: String },
    /// The protobuf bytes are not a valid encoding of the expected message.
    #[error("malformed protobuf{}: {message}", at(path))]
    Malformed { path: String, message: String },
    /// The JSON value does not fit the protobuf schema.
    #[error("cannot encode{} as protobuf: {message}", at(path))]
    Invalid { path: String, message: String },
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

impl ProtoError {
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        ProtoError::Malformed {
            path: String::new(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ProtoError::Invalid {
            path: String::new(),
            message: message.into(),
        }
    }

    /// Prefixes the error's field path with `segment` (a JSON key or `[index]`).
    pub(crate) fn at(self, segment: &str) -> Self {
        match self {
            ProtoError::Malformed { path, message } => ProtoError::Malformed {
                path: join(segment, &path),
                message,
            },
            ProtoError::Invalid { path, message } => ProtoError::Invalid {
                path: join(segment, &path),
                message,
            },
            other => other,
        }
    }

    /// True when the error means "this kind has no protobuf form" rather than bad data.
    pub fn is_unsupported_kind(&self) -> bool {
        matches!(self, ProtoError::UnsupportedKind { .. })
    }
}

fn join(segment: &str, rest: &str) -> String {
    if segment.is_empty() {
        rest.to_string()
    } else if rest.is_empty() || rest.starts_with('[') {
        format!("{segment}{rest}")
    } else {
        format!("{segment}.{rest}")
    }
}
