//! Tests of the patch metadata table and the type graph.

use super::*;

#[test]
fn pod_spec_metadata() {
    let c = field_meta("io.k8s.api.core.v1.PodSpec", "containers").unwrap();
    assert_eq!(c.patch_strategy, Some("merge"));
    assert_eq!(c.patch_merge_key, Some("name"));
    assert_eq!(c.list_type, Some("map"));
    assert_eq!(c.list_map_keys, &["name"]);

    let v = field_meta("io.k8s.api.core.v1.PodSpec", "volumes").unwrap();
    assert_eq!(v.patch_strategy, Some("merge,retainKeys"));
    assert_eq!(v.patch_strategies(), vec!["merge", "retainKeys"]);

    let t = field_meta("io.k8s.api.core.v1.PodSpec", "tolerations").unwrap();
    assert_eq!((t.patch_strategy, t.list_type), (None, Some("atomic")));

    let ns = field_meta("io.k8s.api.core.v1.PodSpec", "nodeSelector").unwrap();
    assert_eq!(ns.map_type, Some("atomic"));

    let tsc = field_meta("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints").unwrap();
    assert_eq!(tsc.patch_merge_key, Some("topologyKey"));
    assert_eq!(tsc.list_map_keys, &["topologyKey", "whenUnsatisfiable"]);

    assert!(field_meta("io.k8s.api.core.v1.PodSpec", "hostname").is_none());
    assert!(field_meta("io.k8s.api.core.v1.NoSuchType", "containers").is_none());
}

#[test]
fn container_and_meta_metadata() {
    let port = field_meta("io.k8s.api.core.v1.Container", "ports").unwrap();
    assert_eq!(port.patch_merge_key, Some("containerPort"));
    assert_eq!(port.list_map_keys, &["containerPort", "protocol"]);
    let mounts = field_meta("io.k8s.api.core.v1.Container", "volumeMounts").unwrap();
    assert_eq!(mounts.patch_merge_key, Some("mountPath"));
    let env = field_meta("io.k8s.api.core.v1.Container", "env").unwrap();
    assert_eq!(env.patch_merge_key, Some("name"));

    let fin = field_meta(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    )
    .unwrap();
    assert_eq!(
        (fin.patch_strategy, fin.list_type),
        (Some("merge"), Some("set"))
    );
    let owners = field_meta(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
    )
    .unwrap();
    assert_eq!(owners.patch_merge_key, Some("uid"));

    let strategy = field_meta("io.k8s.api.apps.v1.DeploymentSpec", "strategy").unwrap();
    assert_eq!(strategy.patch_strategy, Some("retainKeys"));
    let pdb = field_meta("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector").unwrap();
    assert_eq!(pdb.patch_strategy, Some("replace"));
    let cond = field_meta("io.k8s.api.apps.v1.DeploymentStatus", "conditions").unwrap();
    assert_eq!(cond.patch_merge_key, Some("type"));
    // Inlined embedded structs contribute their fields to the embedding definition.
    assert!(field_meta("io.k8s.api.core.v1.Volume", "name").is_none());
    assert_eq!(
        definition_map_type("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
        Some("atomic")
    );
    assert_eq!(definition_map_type("io.k8s.api.core.v1.PodSpec"), None);
}

#[test]
fn table_values_are_well_formed() {
    let mut prev: Option<(&str, &str)> = None;
    for (d, f, m) in all_field_meta() {
        if let Some(p) = prev {
            assert!(p < (d, f), "table not sorted at {d}.{f}");
        }
        prev = Some((d, f));
        for s in m.patch_strategies() {
            assert!(
                ["merge", "retainKeys", "replace"].contains(&s),
                "{d}.{f}: {s}"
            );
        }
        if let Some(lt) = m.list_type {
            assert!(["atomic", "set", "map"].contains(&lt), "{d}.{f}: {lt}");
            assert_eq!(lt == "map", !m.list_map_keys.is_empty(), "{d}.{f}");
        }
        if let Some(mt) = m.map_type {
            assert!(["atomic", "granular"].contains(&mt), "{d}.{f}: {mt}");
        }
        if m.patch_merge_key.is_some() {
            assert!(
                m.patch_strategy.is_some(),
                "{d}.{f}: merge key without strategy"
            );
        }
    }
    assert!(table::FIELDS.len() > 400);
}

#[test]
fn type_graph_names_and_shapes() {
    let g = type_graph();
    assert_eq!(
        definition_of::<k8s_openapi::api::apps::v1::Deployment>(),
        "io.k8s.api.apps.v1.Deployment"
    );
    assert_eq!(
        g.field("io.k8s.api.apps.v1.Deployment", "spec"),
        Some(&Shape::Ref("io.k8s.api.apps.v1.DeploymentSpec".into()))
    );
    assert_eq!(
        g.field("io.k8s.api.core.v1.PodSpec", "containers"),
        Some(&Shape::Array(Box::new(Shape::Ref(
            "io.k8s.api.core.v1.Container".into()
        ))))
    );
    assert_eq!(
        g.field("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "labels"),
        Some(&Shape::Map(Box::new(Shape::Scalar)))
    );
    assert_eq!(
        g.field(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "finalizers"
        ),
        Some(&Shape::Array(Box::new(Shape::Scalar)))
    );
    assert_eq!(
        g.field("io.k8s.api.core.v1.Container", "image"),
        Some(&Shape::Scalar)
    );
    // Free-form and union shapes.
    assert_eq!(
        g.field("io.k8s.api.apps.v1.ControllerRevision", "data"),
        Some(&Shape::Ref(
            "io.k8s.apimachinery.pkg.runtime.RawExtension".into()
        ))
    );
    let items = g
        .field(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
            "items",
        )
        .unwrap();
    let resolved = g.resolve(items);
    assert!(resolved.as_array().is_some() && resolved.as_object().is_some());
    // Fields of inlined embedded structs (Volume embeds VolumeSource) are properties.
    assert!(g.field("io.k8s.api.core.v1.Volume", "configMap").is_some());
    assert!(g.contains("io.k8s.api.core.v1.Pod"));
    assert!(g.len() > 500, "only {} definitions", g.len());
}

#[test]
fn every_table_field_is_a_property_of_its_definition() {
    let g = type_graph();
    let mut checked = 0;
    for (d, f, _) in all_field_meta() {
        if let Some(def) = g.definition(d) {
            assert!(def.properties.contains_key(f), "{d} has no property {f}");
            checked += 1;
        }
    }
    assert!(
        checked > 400,
        "only {checked} table rows found in the graph"
    );
}
