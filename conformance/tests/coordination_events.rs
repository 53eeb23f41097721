//! Lease and Event API tests. Mirrors upstream `test/e2e/common/node/lease.go` ("Lease"),
//! `test/e2e/instrumentation/events.go` ("Events API", events.k8s.io/v1) and
//! `test/e2e/instrumentation/core_events.go` ("Events", core/v1).

use std::time::Duration;

use conformance::{cluster, poll_until};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

/// Seconds from the Unix epoch to 0001-01-01T00:00:00Z (Go's zero time.Time).
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// Go's `time.Time{}.Add(secs * time.Second)` as a MicroTime.
fn go_zero_plus(secs: i64) -> MicroTime {
    MicroTime(Timestamp::from_second(GO_ZERO_TIME + secs).expect("valid timestamp"))
}

fn lease_spec(
    holder: &str,
    duration: i32,
    acquire: i64,
    renew: i64,
    transitions: i32,
) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.into()),
        lease_duration_seconds: Some(duration),
        acquire_time: Some(go_zero_plus(acquire)),
        renew_time: Some(go_zero_plus(renew)),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// [sig-node] Lease lease API should be available [Conformance]
#[tokio::test]
async fn conformance_lease_api_available() {
    let c = cluster().await;
    let ns = c.create_namespace("lease-test").await;
    let api: Api<Lease> = c.ns_api(&ns.name);
    let pp = PostParams::default();

    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("lease".into()),
            ..Default::default()
        },
        spec: Some(lease_spec("holder", 30, 2, 5, 0)),
    };
    let mut created = api.create(&pp, &lease).await.expect("creating Lease");
    let read = api.get("lease").await.expect("reading Lease");
    assert_eq!(read.spec, lease.spec, "Lease spec after create");

    created.spec = Some(lease_spec("holder2", 30, 20, 50, 1));
    api.replace("lease", &pp, &created)
        .await
        .expect("updating Lease");
    let read = api.get("lease").await.expect("reading Lease");
    assert_eq!(read.spec, created.spec, "Lease spec after update");

    let patched_spec = lease_spec("holder3", 60, 50, 70, 2);
    // The two-way merge patch between the read and the changed lease touches only spec.
    let patch = serde_json::json!({"spec": patched_spec});
    api.patch("lease", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("patching Lease");
    let read = api.get("lease").await.expect("reading Lease");
    assert_eq!(read.spec, Some(patched_spec), "Lease spec after patch");

    let lease2 = Lease {
        metadata: ObjectMeta {
            name: Some("lease2".into()),
            labels: Some([("deletecollection".to_string(), "true".to_string())].into()),
            ..Default::default()
        },
        spec: Some(lease_spec("holder", 30, 2, 5, 0)),
    };
    api.create(&pp, &lease2)
        .await
        .expect("creating second Lease");
    let leases = api
        .list(&ListParams::default())
        .await
        .expect("listing Leases");
    assert_eq!(leases.items.len(), 2);

    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("deletecollection=true"),
    )
    .await
    .expect("delete collection");
    let leases = api
        .list(&ListParams::default())
        .await
        .expect("listing Leases");
    assert_eq!(
        leases.items.len(),
        1,
        "delete collection must delete only the labelled lease"
    );

    api.delete("lease", &DeleteParams::default())
        .await
        .expect("deleting Lease");
    match api.get("lease").await {
        Err(kube::Error::Api(s)) if s.code == 404 && s.reason == "NotFound" => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    let all: Api<Lease> = c.all_api();
    all.list(&ListParams::default())
        .await
        .expect("listing Leases in all namespaces");
}

fn new_test_event(namespace: &str, name: &str, label: &str) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([(label.to_string(), "true".to_string())].into()),
            ..Default::default()
        },
        regarding: Some(ObjectReference {
            namespace: Some(namespace.into()),
            ..Default::default()
        }),
        event_time: Some(MicroTime(Timestamp::from_second(1_505_828_956).unwrap())),
        note: Some(format!("This is {name}")),
        action: Some("Do".into()),
        reason: Some("Test".into()),
        type_: Some("Normal".into()),
        reporting_controller: Some("test-controller".into()),
        reporting_instance: Some("test-node".into()),
        ..Default::default()
    }
}

fn contains(items: &[Event], ns: &str, name: &str) -> bool {
    items.iter().any(|e| {
        e.metadata.name.as_deref() == Some(name) && e.metadata.namespace.as_deref() == Some(ns)
    })
}

/// [sig-instrumentation] Events API should ensure that an event can be fetched, patched,
/// deleted, and listed [Conformance]
#[tokio::test]
async fn conformance_events_api_fetch_patch_delete_list() {
    let c = cluster().await;
    let ns = c.create_namespace("events").await;
    let api: Api<Event> = c.ns_api(&ns.name);
    let all: Api<Event> = c.all_api();
    let core: Api<CoreEvent> = c.ns_api(&ns.name);
    let name = "event-test";
    let constant = ListParams::default().labels("testevent-constant=true");

    api.create(
        &PostParams::default(),
        &new_test_event(&ns.name, name, "testevent-constant"),
    )
    .await
    .expect("create test event");
    assert!(
        contains(
            &all.list(&constant).await.expect("list").items,
            &ns.name,
            name
        ),
        "not listed cluster-wide"
    );
    assert!(
        contains(
            &api.list(&constant).await.expect("list").items,
            &ns.name,
            name
        ),
        "not listed in namespace"
    );

    let filtered = core
        .list(&ListParams::default().fields("source=test-controller"))
        .await
        .expect("core list");
    let names: Vec<_> = filtered
        .items
        .iter()
        .map(|e| e.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        vec![Some(name.to_string())],
        "core/v1 events with source=test-controller"
    );
    let filtered = api
        .list(&ListParams::default().fields("reportingController=test-controller"))
        .await
        .expect("events list");
    let names: Vec<_> = filtered
        .items
        .iter()
        .map(|e| e.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        vec![Some(name.to_string())],
        "events with reportingController=test-controller"
    );

    let mut test_event = api.get(name).await.expect("get test event");
    let note = "This is a test event - patched";
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Strategic(serde_json::json!({"note": note})),
    )
    .await
    .expect("patch test event");
    let mut event = api.get(name).await.expect("get test event");
    for e in [&mut event, &mut test_event] {
        e.metadata.resource_version = None;
        e.metadata.managed_fields = None;
    }
    test_event.note = Some(note.into());
    assert_eq!(event, test_event, "test event wasn't properly patched");

    test_event.series = Some(EventSeries {
        count: 100,
        last_observed_time: MicroTime(Timestamp::from_second(1_505_828_956).unwrap()),
    });
    api.replace(name, &PostParams::default(), &test_event)
        .await
        .expect("update test event");
    let mut event = api.get(name).await.expect("get test event");
    event.metadata.resource_version = None;
    event.metadata.managed_fields = None;
    assert_eq!(event, test_event, "test event wasn't properly updated");

    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete test event");
    assert!(!contains(
        &all.list(&constant).await.expect("list").items,
        &ns.name,
        name
    ));
    assert!(!contains(
        &api.list(&constant).await.expect("list").items,
        &ns.name,
        name
    ));
}

/// [sig-instrumentation] Events API should delete a collection of events [Conformance]
#[tokio::test]
async fn conformance_events_api_delete_collection() {
    let c = cluster().await;
    let ns = c.create_namespace("events").await;
    let api: Api<Event> = c.ns_api(&ns.name);
    let set = ListParams::default().labels("testevent-set=true");
    for name in ["test-event-1", "test-event-2", "test-event-3"] {
        api.create(
            &PostParams::default(),
            &new_test_event(&ns.name, name, "testevent-set"),
        )
        .await
        .expect("create event");
    }
    assert_eq!(api.list(&set).await.expect("list").items.len(), 3);
    api.delete_collection(&DeleteParams::default(), &set)
        .await
        .expect("delete collection");
    assert_eq!(api.list(&set).await.expect("list").items.len(), 0);
}

fn core_event(namespace: &str, name: &str, label: &str, message: &str) -> CoreEvent {
    CoreEvent {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([(label.to_string(), "true".to_string())].into()),
            ..Default::default()
        },
        message: Some(message.into()),
        reason: Some("Test".into()),
        type_: Some("Normal".into()),
        count: Some(1),
        involved_object: ObjectReference {
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// [sig-instrumentation] Events should ensure that an event can be fetched, patched, deleted,
/// and listed [Conformance]
#[tokio::test]
async fn conformance_core_events_fetch_patch_delete_list() {
    let c = cluster().await;
    let ns = c.create_namespace("events").await;
    let api: Api<CoreEvent> = c.ns_api(&ns.name);
    let all: Api<CoreEvent> = c.all_api();
    let name = "event-test";
    let constant = ListParams::default().labels("testevent-constant=true");
    let listed = |items: &[CoreEvent]| {
        items.iter().any(|e| {
            e.metadata.name.as_deref() == Some(name)
                && e.metadata.namespace.as_deref() == Some(&ns.name)
        })
    };

    api.create(
        &PostParams::default(),
        &core_event(&ns.name, name, "testevent-constant", "This is a test event"),
    )
    .await
    .expect("create test event");
    assert!(
        listed(&all.list(&constant).await.expect("list").items),
        "unable to find the test event"
    );

    let message = "This is a test event - patched";
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Strategic(serde_json::json!({"message": message})),
    )
    .await
    .expect("patch test event");
    let event = api.get(name).await.expect("get test event");
    assert_eq!(event.message.as_deref(), Some(message));

    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete test event");
    assert!(
        !listed(&all.list(&constant).await.expect("list").items),
        "event still listed after deletion"
    );
}

/// [sig-instrumentation] Events should delete a collection of events [Conformance]
#[tokio::test]
async fn conformance_core_events_delete_collection() {
    let c = cluster().await;
    let ns = c.create_namespace("events").await;
    let api: Api<CoreEvent> = c.ns_api(&ns.name);
    let set = ListParams::default().labels("testevent-set=true");
    for name in ["test-event-1", "test-event-2", "test-event-3"] {
        let e = core_event(&ns.name, name, "testevent-set", &format!("This is {name}"));
        api.create(&PostParams::default(), &e)
            .await
            .expect("create event");
    }
    assert_eq!(api.list(&set).await.expect("list").items.len(), 3);
    api.delete_collection(&DeleteParams::default(), &set)
        .await
        .expect("delete collection");
    poll_until(
        "events to be gone",
        Duration::from_secs(1),
        Duration::from_secs(60),
        || {
            let api = api.clone();
            let set = set.clone();
            async move {
                api.list(&set)
                    .await
                    .ok()
                    .filter(|l| l.items.is_empty())
                    .map(|_| ())
            }
        },
    )
    .await;
}
