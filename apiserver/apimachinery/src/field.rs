//! Field errors with upstream's types, reasons and message formats
//! (mirrors apimachinery/pkg/util/validation/field/{path,errors}.go).

use std::fmt;

/// A path to a field, rendered as upstream does: `spec.containers[0].name`, `metadata.labels[app]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    pub fn root(name: &str) -> Self {
        FieldPath(name.to_string())
    }
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(name.to_string())
        } else {
            FieldPath(format!("{}.{}", self.0, name))
        }
    }
    pub fn index(&self, i: usize) -> Self {
        FieldPath(format!("{}[{}]", self.0, i))
    }
    pub fn key(&self, k: &str) -> Self {
        FieldPath(format!("{}[{}]", self.0, k))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
    TypeInvalid,
}

impl FieldErrorType {
    /// The `details.causes[].reason` upstream uses for this type.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "FieldValueNotFound",
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::Internal => "InternalError",
            FieldErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }
    fn label(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "Not found",
            FieldErrorType::Required => "Required value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::Internal => "Internal error",
            FieldErrorType::TypeInvalid => "Invalid value",
        }
    }
}

/// One validation failure.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorType,
    pub field: FieldPath,
    /// The offending value, already rendered as upstream prints it (strings quoted).
    pub value: Option<String>,
    pub detail: String,
}

/// Renders a value the way upstream's `%q`/`%v` formatting shows it in messages.
pub fn show_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

impl FieldError {
    fn new(
        kind: FieldErrorType,
        field: &FieldPath,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind,
            field: field.clone(),
            value,
            detail: detail.into(),
        }
    }
    pub fn required(field: &FieldPath, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Required, field, None, detail)
    }
    pub fn invalid(field: &FieldPath, value: impl fmt::Display, detail: impl Into<String>) -> Self {
        Self::new(
            FieldErrorType::Invalid,
            field,
            Some(value.to_string()),
            detail,
        )
    }
    /// Invalid with a string value, quoted as upstream's `%q`.
    pub fn invalid_str(field: &FieldPath, value: &str, detail: impl Into<String>) -> Self {
        Self::new(
            FieldErrorType::Invalid,
            field,
            Some(show_str(value)),
            detail,
        )
    }
    pub fn not_supported(field: &FieldPath, value: &str, valid: &[&str]) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = valid.iter().map(|v| show_str(v)).collect();
            format!("supported values: {}", list.join(", "))
        };
        Self::new(
            FieldErrorType::NotSupported,
            field,
            Some(show_str(value)),
            detail,
        )
    }
    pub fn forbidden(field: &FieldPath, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Forbidden, field, None, detail)
    }
    pub fn duplicate(field: &FieldPath, value: impl fmt::Display) -> Self {
        Self::new(
            FieldErrorType::Duplicate,
            field,
            Some(value.to_string()),
            "",
        )
    }
    pub fn not_found(field: &FieldPath, value: impl fmt::Display) -> Self {
        Self::new(FieldErrorType::NotFound, field, Some(value.to_string()), "")
    }
    pub fn too_long(field: &FieldPath, max: usize) -> Self {
        Self::new(
            FieldErrorType::TooLong,
            field,
            None,
            format!("may not be more than {max} bytes"),
        )
    }
    pub fn too_many(field: &FieldPath, actual: usize, max: usize) -> Self {
        Self::new(
            FieldErrorType::TooMany,
            field,
            Some(actual.to_string()),
            format!("must have at most {max} items"),
        )
    }
    pub fn internal(field: &FieldPath, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Internal, field, None, detail)
    }

    /// The message without the field path (used as `details.causes[].message`).
    pub fn body(&self) -> String {
        let mut s = self.kind.label().to_string();
        match self.kind {
            FieldErrorType::Required
            | FieldErrorType::Forbidden
            | FieldErrorType::TooLong
            | FieldErrorType::Internal => {}
            _ => {
                if let Some(v) = &self.value {
                    s.push_str(": ");
                    s.push_str(v);
                }
            }
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.as_str().is_empty() {
            f.write_str(&self.body())
        } else {
            write!(f, "{}: {}", self.field, self.body())
        }
    }
}

pub type FieldErrors = Vec<FieldError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_upstream_format() {
        let p = FieldPath::root("spec").child("containers");
        assert_eq!(
            FieldError::required(&p, "").to_string(),
            "spec.containers: Required value"
        );
        let e = FieldError::invalid_str(&FieldPath::root("metadata").child("name"), "Foo", "bad");
        assert_eq!(e.to_string(), "metadata.name: Invalid value: \"Foo\": bad");
        assert_eq!(e.body(), "Invalid value: \"Foo\": bad");
        let e = FieldError::not_supported(
            &FieldPath::root("spec").child("restartPolicy"),
            "X",
            &["Always", "Never"],
        );
        assert_eq!(
            e.to_string(),
            "spec.restartPolicy: Unsupported value: \"X\": supported values: \"Always\", \"Never\""
        );
        assert_eq!(
            p.index(0).child("name").key("a").as_str(),
            "spec.containers[0].name[a]"
        );
    }
}
