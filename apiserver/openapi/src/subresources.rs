//! Subresources: how each known subresource is served (its kind, verbs or connect methods)
//! and its paths. Mirrors the subresource storage registered in
//! `pkg/registry/*/rest/storage_*.go` and the connect/log routes of
//! `k8s.io/apiserver/pkg/endpoints/installer.go`.

use crate::Gvk;
use crate::params::{self, Action, Param};
use crate::paths::{
    ANY, CREATED, Ctx, LOG_TYPES, OBJECT_TYPES, OK, PATCH_TYPES, PathItem, Paths, REPLACED,
    Response, body, capitalize, def, push_path, sorted,
};
use crate::schemas::{Definitions, PATCH};

/// How a subresource is served.
#[derive(Clone, Debug)]
pub(crate) enum SubKind {
    /// An object endpoint (`status`, `scale`, `binding`...) with the given actions.
    Object {
        definition: String,
        gvk: Gvk,
        actions: &'static [Action],
    },
    /// `pods/log`: plain text.
    Log,
    /// Streaming/proxy endpoints; `options_kind` is e.g. `PodExecOptions`.
    Connect {
        options_kind: String,
        methods: &'static [&'static str],
        with_path: bool,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Subresource {
    pub name: String,
    pub kind: SubKind,
}

fn object_sub<T: schemars::JsonSchema>(
    defs: &mut Definitions,
    gvk: Gvk,
    actions: &'static [Action],
) -> SubKind {
    let definition = defs.add_type::<T>();
    defs.add_kind(&definition, gvk.clone());
    SubKind::Object {
        definition,
        gvk,
        actions,
    }
}

/// How subresource `sub` of a kind defined as `definition` is served.
pub(crate) fn kind_of(
    defs: &mut Definitions,
    sub: &str,
    definition: &str,
    parent: &Gvk,
) -> SubKind {
    use k8s_openapi::api;
    const GET_PUT_PATCH: &[Action] = &[Action::Get, Action::Update, Action::Patch];
    const CREATE: &[Action] = &[Action::Create];
    match sub {
        "scale" => object_sub::<api::autoscaling::v1::Scale>(
            defs,
            Gvk::new("autoscaling", "v1", "Scale"),
            GET_PUT_PATCH,
        ),
        "binding" => {
            object_sub::<api::core::v1::Binding>(defs, Gvk::new("", "v1", "Binding"), CREATE)
        }
        "eviction" => object_sub::<api::policy::v1::Eviction>(
            defs,
            Gvk::new("policy", "v1", "Eviction"),
            CREATE,
        ),
        "token" => object_sub::<api::authentication::v1::TokenRequest>(
            defs,
            Gvk::new("authentication.k8s.io", "v1", "TokenRequest"),
            CREATE,
        ),
        "log" => SubKind::Log,
        "exec" | "attach" | "portforward" | "proxy" => {
            let camel = if sub == "portforward" {
                "PortForward".to_string()
            } else {
                capitalize(sub)
            };
            SubKind::Connect {
                options_kind: format!("{}{camel}Options", parent.kind),
                methods: if sub == "proxy" {
                    &["get", "put", "post", "delete", "options", "head", "patch"]
                } else {
                    &["get", "post"]
                },
                with_path: sub == "proxy",
            }
        }
        "finalize" => SubKind::Object {
            definition: definition.to_string(),
            gvk: parent.clone(),
            actions: &[Action::Update],
        },
        // status, ephemeralcontainers, resize, approval and anything else: the parent kind.
        _ => SubKind::Object {
            definition: definition.to_string(),
            gvk: parent.clone(),
            actions: GET_PUT_PATCH,
        },
    }
}

/// Adds the paths of one subresource under the item path `item`.
pub(crate) fn add_paths(
    paths: &mut Paths,
    c: &Ctx,
    item: &str,
    sub: &Subresource,
    item_params: &dyn Fn() -> Vec<Param>,
) {
    let (gv, ns, kind) = (&c.gv, c.ns, c.kind());
    let sub_camel = capitalize(&sub.name);
    let path = format!("{item}/{}", sub.name);
    let name = &sub.name;
    match &sub.kind {
        SubKind::Object {
            definition,
            gvk,
            actions,
        } => {
            let mut p = PathItem::default();
            for action in *actions {
                let mut op = match action {
                    Action::Get => c.op(
                        "get",
                        *action,
                        format!("read{gv}{ns}{kind}{sub_camel}"),
                        format!("read {name} of the specified {kind}"),
                        None,
                        def(definition),
                        OK,
                        ANY,
                        OBJECT_TYPES,
                    ),
                    Action::Update => c.op(
                        "put",
                        *action,
                        format!("replace{gv}{ns}{kind}{sub_camel}"),
                        format!("replace {name} of the specified {kind}"),
                        body(definition, true),
                        def(definition),
                        REPLACED,
                        ANY,
                        OBJECT_TYPES,
                    ),
                    Action::Patch => c.op(
                        "patch",
                        *action,
                        format!("patch{gv}{ns}{kind}{sub_camel}"),
                        format!("partially update {name} of the specified {kind}"),
                        body(PATCH, true),
                        def(definition),
                        REPLACED,
                        PATCH_TYPES,
                        OBJECT_TYPES,
                    ),
                    _ => c.op(
                        "post",
                        Action::Create,
                        format!("create{gv}{ns}{kind}{sub_camel}"),
                        format!("create {name} of a {kind}"),
                        body(definition, true),
                        def(definition),
                        CREATED,
                        ANY,
                        OBJECT_TYPES,
                    ),
                };
                op.gvk = Some(gvk.clone());
                p.ops.push(op);
            }
            push_path(paths, path, p, item_params());
        }
        SubKind::Log => {
            let mut p = PathItem::default();
            let mut op = c.op(
                "get",
                Action::Get,
                format!("read{gv}{ns}{kind}Log"),
                format!("read log of the specified {kind}"),
                None,
                Response::Text,
                OK,
                ANY,
                LOG_TYPES,
            );
            op.params = params::log_params();
            p.ops.push(op);
            push_path(paths, path, p, item_params());
        }
        SubKind::Connect {
            options_kind,
            methods,
            with_path,
        } => {
            let options = Gvk::new(c.r.info.group, c.r.info.version, options_kind);
            let connect = |suffix: &str| {
                let mut p = PathItem::default();
                for m in *methods {
                    let mut op = c.op(
                        m,
                        Action::Connect,
                        format!("connect{gv}{}{ns}{kind}{sub_camel}{suffix}", capitalize(m)),
                        format!("connect {} requests to {name} of {kind}", m.to_uppercase()),
                        None,
                        Response::Text,
                        OK,
                        ANY,
                        ANY,
                    );
                    op.gvk = Some(options.clone());
                    p.ops.push(op);
                }
                p
            };
            let base_params = sorted(
                [
                    vec![params::name(options_kind)],
                    c.scope_params(),
                    params::connect_params(name),
                ]
                .concat(),
            );
            push_path(paths, path.clone(), connect(""), base_params);
            if *with_path {
                let mut with = vec![
                    params::name(options_kind),
                    params::path_param("path", "path to the resource".into()),
                ];
                with.extend(c.scope_params());
                push_path(
                    paths,
                    format!("{path}/{{path}}"),
                    connect("WithPath"),
                    sorted(with),
                );
            }
        }
    }
}
