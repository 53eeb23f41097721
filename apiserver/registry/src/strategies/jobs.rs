//! Job strategy (mirrors pkg/registry/batch/job/strategy.go): generated selector and labels.

use crate::strategy::Strategy;
use apiserver_apimachinery::FieldError;
use apiserver_apis::ApiType;
use k8s_openapi::api::batch::v1::Job;

pub struct JobStrategy;

impl Strategy<Job> for JobStrategy {
    fn has_status(&self) -> bool {
        true
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn prepare_for_create(&self, job: &mut Job) {
        job.status = Some(Default::default());
        apiserver_apis::strategy::job_generate_selector(job);
    }
    fn validate(&self, job: &Job) -> Vec<FieldError> {
        job.validate()
    }
    fn validate_update(&self, new: &Job, old: &Job) -> Vec<FieldError> {
        new.validate_update(old)
    }
}
