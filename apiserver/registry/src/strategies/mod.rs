//! Strategies of the resources that have rules beyond defaulting and validation of their type.
//! Everything else uses `crate::strategy::DefaultStrategy`.

pub mod crds;
pub mod events;
pub mod jobs;
pub mod namespaces;
pub mod nodes;
pub mod pods;
pub mod secrets;
pub mod services;
