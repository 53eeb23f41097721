//! The registry: one generic store for every resource (mirrors
//! apiserver/pkg/registry/generic/registry/store.go), per-resource strategies
//! (mirrors pkg/registry/<group>/<resource>/strategy.go), subresources as wrappers over the same
//! store, and the install table that lists every served resource.

pub mod context;
pub mod conversions;
pub mod customresource;
pub mod decode;
pub mod dupes;
pub mod install;
pub mod lifecycle;
pub mod meta;
pub mod metrics;
pub mod openapi_meta;
pub mod rest;
pub mod reviews;
pub mod serviceaccount;
pub mod store;
pub mod strategies;
pub mod strategy;
pub mod subresources;
pub mod table;
pub mod typesupport;
pub mod versioned;

pub use context::{DeleteOptions, ListOptions, PatchType, RequestContext, WriteOptions};
pub use rest::{ListOutput, Rest, WatchOutput};
pub use store::GenericStore;
pub use strategy::Strategy;
