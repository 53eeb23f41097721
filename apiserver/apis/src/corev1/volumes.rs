//! Pod volume validation (mirrors ValidateVolumes and validateVolumeSource of
//! pkg/apis/core/validation/validation.go).

use super::containers;
use super::resources;
use crate::util::{self, Errs};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;
use std::collections::{BTreeMap, BTreeSet};

const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

fn mode(errs: &mut Errs, m: Option<i32>, path: &FieldPath) {
    if let Some(m) = m
        && !(0..=0o777).contains(&m)
    {
        errs.push(FieldError::invalid(path, m, FILE_MODE_MSG));
    }
}

fn key_to_path(errs: &mut Errs, kp: &api::KeyToPath, path: &FieldPath) {
    if kp.key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    }
    if kp.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    util::local_non_reserved_path(errs, &kp.path, &path.child("path"));
    mode(errs, kp.mode, &path.child("mode"));
}

fn downward_file(errs: &mut Errs, f: &api::DownwardAPIVolumeFile, path: &FieldPath) {
    if f.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    util::local_non_reserved_path(errs, &f.path, &path.child("path"));
    if let Some(fr) = &f.field_ref {
        containers::field_selector(
            errs,
            fr,
            &containers::VOLUME_FIELD_PATHS,
            &path.child("fieldRef"),
        );
        if f.resource_field_ref.is_some() {
            errs.push(FieldError::invalid_str(
                path,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if let Some(rf) = &f.resource_field_ref {
        containers::resource_field_selector(errs, rf, true, &path.child("resourceFieldRef"));
    } else {
        errs.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    mode(errs, f.mode, &path.child("mode"));
}

fn projected(errs: &mut Errs, p: &api::ProjectedVolumeSource, path: &FieldPath) {
    mode(errs, p.default_mode, &path.child("defaultMode"));
    let mut paths = BTreeSet::new();
    for (i, src) in p.sources.iter().flatten().enumerate() {
        let sp = path.child("sources").index(i);
        let mut n = 0;
        let mut keyed =
            |errs: &mut Errs, field: &str, name: &str, items: &Option<Vec<api::KeyToPath>>| {
                n += 1;
                let pp = sp.child(field);
                if name.is_empty() {
                    errs.push(FieldError::required(&pp.child("name"), ""));
                }
                for (j, kp) in items.iter().flatten().enumerate() {
                    key_to_path(errs, kp, &pp.child("items").index(j));
                    if !kp.path.is_empty() && !paths.insert(kp.path.clone()) {
                        errs.push(FieldError::invalid_str(
                            path,
                            name,
                            "conflicting duplicate paths",
                        ));
                    }
                }
            };
        if let Some(s) = &src.secret {
            keyed(errs, "secret", &s.name, &s.items);
        }
        if let Some(c) = &src.config_map {
            keyed(errs, "configMap", &c.name, &c.items);
        }
        if let Some(d) = &src.downward_api {
            n += 1;
            for f in d.items.iter().flatten() {
                downward_file(errs, f, &sp.child("downwardAPI"));
                if !f.path.is_empty() && !paths.insert(f.path.clone()) {
                    errs.push(FieldError::invalid_str(
                        path,
                        &f.path,
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(t) = &src.service_account_token {
            n += 1;
            let tp = sp.child("serviceAccountToken").child("expirationSeconds");
            let exp = t.expiration_seconds.unwrap_or(0);
            if exp < 600 {
                errs.push(FieldError::invalid(
                    &tp,
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(FieldError::invalid(
                    &tp,
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            if t.path.is_empty() {
                errs.push(FieldError::required(&path.child("path"), ""));
            } else {
                util::local_non_reserved_path(errs, &t.path, &path.child("path"));
            }
        }
        if let Some(c) = &src.cluster_trust_bundle {
            n += 1;
            let cp = sp.child("clusterTrustBundle");
            match (&c.name, &c.signer_name) {
                (Some(_), Some(_)) => errs.push(FieldError::invalid(
                    &cp,
                    util::json(c),
                    "only one of name and signerName may be used",
                )),
                (Some(name), None) if name.is_empty() => {
                    errs.push(FieldError::required(
                        &cp.child("name"),
                        "must be a valid object name",
                    ));
                }
                (None, Some(signer)) if signer.is_empty() => {
                    errs.push(FieldError::required(
                        &cp.child("signerName"),
                        "must be a valid signer name",
                    ));
                }
                (None, None) => errs.push(FieldError::required(
                    &cp,
                    "either name or signerName must be specified",
                )),
                _ => {}
            }
            if c.path.is_empty() {
                errs.push(FieldError::required(&cp.child("path"), ""));
            }
            util::local_non_reserved_path(errs, &c.path, &cp.child("path"));
            if !paths.insert(c.path.clone()) {
                errs.push(FieldError::invalid_str(
                    path,
                    &c.path,
                    "conflicting duplicate paths",
                ));
            }
        }
        if src.pod_certificate.is_some() {
            n += 1;
        }
        if n > 1 {
            errs.push(FieldError::forbidden(
                &sp,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
}

/// Validates one volume source; returns how many source types were set.
fn volume_source(errs: &mut Errs, v: &api::Volume, pod_name: Option<&str>, path: &FieldPath) {
    let mut n = 0;
    let mut one = |errs: &mut Errs, field: &str| -> bool {
        if n > 0 {
            errs.push(FieldError::forbidden(
                &path.child(field),
                "may not specify more than 1 volume type",
            ));
            false
        } else {
            n += 1;
            true
        }
    };
    if let Some(e) = &v.empty_dir
        && one(errs, "emptyDir")
    {
        let negative = e
            .size_limit
            .as_ref()
            .is_some_and(|q| crate::quantity::parse(&q.0).is_ok_and(|q| q.nanos < 0));
        if negative {
            errs.push(FieldError::forbidden(
                &path.child("emptyDir").child("sizeLimit"),
                "SizeLimit field must be a valid resource quantity",
            ));
        }
    }
    if let Some(h) = &v.host_path
        && one(errs, "hostPath")
    {
        let hp = path.child("hostPath");
        if h.path.is_empty() {
            errs.push(FieldError::required(&hp.child("path"), ""));
        } else {
            util::path_no_backsteps(errs, &h.path, &hp.child("path"));
            let valid = [
                "",
                "BlockDevice",
                "CharDevice",
                "Directory",
                "DirectoryOrCreate",
                "File",
                "FileOrCreate",
                "Socket",
            ];
            if let Some(t) = &h.type_
                && !valid.contains(&t.as_str())
            {
                errs.push(FieldError::not_supported(&hp.child("type"), t, &valid));
            }
        }
    }
    if let Some(g) = &v.git_repo
        && one(errs, "gitRepo")
    {
        let gp = path.child("gitRepo");
        if g.repository.is_empty() {
            errs.push(FieldError::required(&gp.child("repository"), ""));
        }
        util::local_descending_path(errs, util::s(&g.directory), &gp.child("directory"));
    }
    if let Some(s) = &v.secret
        && one(errs, "secret")
    {
        let sp = path.child("secret");
        if s.secret_name.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(&sp.child("secretName"), ""));
        }
        mode(errs, s.default_mode, &sp.child("defaultMode"));
        for (i, kp) in s.items.iter().flatten().enumerate() {
            key_to_path(errs, kp, &sp.child("items").index(i));
        }
    }
    if let Some(nfs) = &v.nfs
        && one(errs, "nfs")
    {
        let np = path.child("nfs");
        if nfs.server.is_empty() {
            errs.push(FieldError::required(&np.child("server"), ""));
        }
        if nfs.path.is_empty() {
            errs.push(FieldError::required(&np.child("path"), ""));
        }
        if !nfs.path.starts_with('/') {
            errs.push(FieldError::invalid_str(
                &np.child("path"),
                &nfs.path,
                "must be an absolute path",
            ));
        }
    }
    if let Some(pvc) = &v.persistent_volume_claim
        && one(errs, "persistentVolumeClaim")
        && pvc.claim_name.is_empty()
    {
        errs.push(FieldError::required(
            &path.child("persistentVolumeClaim").child("claimName"),
            "",
        ));
    }
    if let Some(d) = &v.downward_api
        && one(errs, "downwarAPI")
    {
        let dp = path.child("downwardAPI");
        mode(errs, d.default_mode, &dp.child("defaultMode"));
        for f in d.items.iter().flatten() {
            downward_file(errs, f, &dp);
        }
    }
    if let Some(c) = &v.config_map
        && one(errs, "configMap")
    {
        let cp = path.child("configMap");
        if c.name.is_empty() {
            errs.push(FieldError::required(&cp.child("name"), ""));
        }
        mode(errs, c.default_mode, &cp.child("defaultMode"));
        for (i, kp) in c.items.iter().flatten().enumerate() {
            key_to_path(errs, kp, &cp.child("items").index(i));
        }
    }
    if let Some(p) = &v.projected
        && one(errs, "projected")
    {
        projected(errs, p, &path.child("projected"));
    }
    if let Some(c) = &v.csi
        && one(errs, "csi")
    {
        let cp = path.child("csi").child("driver");
        if c.driver.is_empty() {
            errs.push(FieldError::required(&cp, ""));
        }
        if c.driver.len() > 63 {
            errs.push(FieldError::too_long(&cp, 63));
        }
        util::dns_subdomain(errs, &c.driver.to_lowercase(), &cp);
    }
    if let Some(e) = &v.ephemeral
        && one(errs, "ephemeral")
    {
        let ep = path.child("ephemeral");
        match &e.volume_claim_template {
            None => errs.push(FieldError::required(&ep.child("volumeClaimTemplate"), "")),
            Some(t) => {
                let tp = ep.child("volumeClaimTemplate");
                if let Some(m) = &t.metadata {
                    util::labels(errs, &m.labels, &tp.child("metadata").child("labels"));
                    util::annotations(
                        errs,
                        &m.annotations,
                        &tp.child("metadata").child("annotations"),
                    );
                }
                resources::pvc_spec(errs, &t.spec, &tp.child("spec"));
            }
        }
        if let Some(pod) = pod_name.filter(|p| !p.is_empty() && !v.name.is_empty()) {
            let pvc = format!("{pod}-{}", v.name);
            for m in apiserver_apimachinery::names::is_dns1123_subdomain(&pvc) {
                errs.push(FieldError::invalid_str(
                    &path.child("name"),
                    &v.name,
                    format!("PVC name {pvc:?}: {m}"),
                ));
            }
        }
    }
    if let Some(img) = &v.image
        && one(errs, "image")
    {
        let ip = path.child("image");
        if img.reference.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(&ip.child("reference"), ""));
        }
        let pp = img.pull_policy.as_deref().unwrap_or("");
        if !matches!(pp, "Always" | "IfNotPresent" | "Never") {
            if pp.is_empty() {
                errs.push(FieldError::required(&ip.child("pullPolicy"), ""));
            } else {
                errs.push(FieldError::not_supported(
                    &ip.child("pullPolicy"),
                    pp,
                    &["Always", "IfNotPresent", "Never"],
                ));
            }
        }
    }
    // Legacy in-tree sources: counted, not validated in depth.
    for (set, field) in [
        (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (v.iscsi.is_some(), "iscsi"),
        (v.glusterfs.is_some(), "glusterfs"),
        (v.flocker.is_some(), "flocker"),
        (v.rbd.is_some(), "rbd"),
        (v.cinder.is_some(), "cinder"),
        (v.cephfs.is_some(), "cephFS"),
        (v.quobyte.is_some(), "quobyte"),
        (v.fc.is_some(), "fc"),
        (v.flex_volume.is_some(), "flexVolume"),
        (v.azure_file.is_some(), "azureFile"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.storageos.is_some(), "storageos"),
        (v.scale_io.is_some(), "scaleIO"),
    ] {
        if set {
            one(errs, field);
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
}

/// `ValidateVolumes`: returns the volumes that validated, by name.
pub(crate) fn volumes<'a>(
    errs: &mut Errs,
    vols: &'a [api::Volume],
    pod_name: Option<&str>,
    path: &FieldPath,
) -> BTreeMap<&'a str, &'a api::Volume> {
    let created_pvcs: BTreeSet<String> = match pod_name.filter(|n| !n.is_empty()) {
        Some(pod) => vols
            .iter()
            .filter(|v| v.ephemeral.is_some())
            .map(|v| format!("{pod}-{}", v.name))
            .collect(),
        None => BTreeSet::new(),
    };
    let mut out = BTreeMap::new();
    for (i, v) in vols.iter().enumerate() {
        let p = path.index(i);
        let np = p.child("name");
        let mut el = Vec::new();
        volume_source(&mut el, v, pod_name, &p);
        if v.name.is_empty() {
            el.push(FieldError::required(&np, ""));
        } else {
            util::dns_label(&mut el, &v.name, &np);
        }
        if out.contains_key(v.name.as_str()) {
            el.push(util::duplicate_str(&np, &v.name));
        }
        if el.is_empty() {
            out.insert(v.name.as_str(), v);
        } else {
            errs.extend(el);
        }
        if let Some(pvc) = &v.persistent_volume_claim
            && created_pvcs.contains(&pvc.claim_name)
        {
            errs.push(FieldError::invalid_str(
                &p.child("persistentVolumeClaim").child("claimName"),
                &pvc.claim_name,
                "must not reference a PVC that gets created for an ephemeral volume",
            ));
        }
    }
    out
}
