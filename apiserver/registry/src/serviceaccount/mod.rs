//! Service account tokens (upstream pkg/serviceaccount, the `serviceaccounts/token`
//! subresource, the token authenticator and the ServiceAccount admission plugin).
//!
//! - `keys`: signing and verification keys from PEM files.
//! - `claims`: token claims, their time validation, and the user of a token.
//! - `jwt`: signing, and the signature, issuer and audience checks.
//! - `authenticator`: bearer token authentication against the stored objects.
//! - `token`: the TokenRequest endpoint.
//! - `admission`: ServiceAccount admission of pods.

pub mod admission;
pub mod authenticator;
pub mod claims;
pub mod jwt;
pub mod keys;
pub mod token;

/// The lifetime admission gives projected tokens; tokens the kubelet requests with it are
/// extended (upstream `WarnOnlyBoundTokenExpirationSeconds`).
pub const WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;

/// The lifetime of extended tokens, one year (upstream `ExpirationExtensionSeconds`).
pub const EXPIRATION_EXTENSION_SECONDS: i64 = 24 * 365 * 60 * 60;

/// The token configuration from the service account flags.
pub struct TokenOptions {
    /// `--service-account-issuer`: the first signs, all are accepted.
    pub issuers: Vec<String>,
    /// `--service-account-signing-key-file`.
    pub signing_key: keys::SigningKey,
    /// `--service-account-key-file` (every key, public halves of private keys included).
    pub verifying_keys: Vec<keys::VerifyingKey>,
    /// `--api-audiences` (defaulted to the issuers).
    pub api_audiences: Vec<String>,
    /// `--service-account-max-token-expiration` in seconds, 0 for none.
    pub max_expiration_seconds: i64,
    /// `--service-account-extend-token-expiration`.
    pub extend_expiration: bool,
}
