//! batch/v1: defaulting and validation for Job and CronJob (mirrors pkg/apis/batch/v1/defaults.go
//! and pkg/apis/batch/validation/validation.go).

use crate::ApiType;
use crate::corev1::defaults::default_pod_template_spec;
use crate::corev1::{kube_finalizers, validate_pod_template_spec};
use crate::cron;
use crate::util::{self, Errs, Selector};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::batch::v1 as batch;
use std::collections::{BTreeMap, BTreeSet};

pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

mod cronjob;
mod job;
mod policy;

pub use job::job_generate_selector;
