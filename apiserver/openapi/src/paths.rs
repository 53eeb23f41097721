//! REST paths and operations per served resource, in a format-neutral form that `render.rs`
//! turns into Swagger 2.0 or OpenAPI 3 path items. Mirrors the routes, operation ids and
//! `x-kubernetes-*` extensions `k8s.io/apiserver/pkg/endpoints/installer.go` registers.

use std::collections::BTreeMap;

use apiserver_apimachinery::ResourceInfo;

use crate::Gvk;
use crate::params::{self, Action, Param};
use crate::schemas::{API_RESOURCE_LIST, DELETE_OPTIONS, PATCH, STATUS, WATCH_EVENT};

pub(crate) const OBJECT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const STREAM_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
pub(crate) const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
pub(crate) const LOG_TYPES: &[&str] = &[
    "text/plain",
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
pub(crate) const ANY: &[&str] = &["*/*"];

pub(crate) const OK: &[(u16, &str)] = &[(200, "OK"), (401, "Unauthorized")];
pub(crate) const CREATED: &[(u16, &str)] = &[
    (200, "OK"),
    (201, "Created"),
    (202, "Accepted"),
    (401, "Unauthorized"),
];
pub(crate) const REPLACED: &[(u16, &str)] = &[(200, "OK"), (201, "Created"), (401, "Unauthorized")];
const DELETED: &[(u16, &str)] = &[(200, "OK"), (202, "Accepted"), (401, "Unauthorized")];

/// What an operation returns.
#[derive(Clone, Debug)]
pub(crate) enum Response {
    Definition(String),
    Text,
}

#[derive(Clone, Debug)]
pub(crate) struct Body {
    pub definition: String,
    pub required: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Operation {
    /// Lower-case HTTP method: `get`, `put`, `post`, `delete`, `patch`, `options`, `head`.
    pub method: &'static str,
    pub id: String,
    pub description: String,
    pub action: Option<Action>,
    pub gvk: Option<Gvk>,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub response: Response,
    pub codes: &'static [(u16, &'static str)],
    pub consumes: &'static [&'static str],
    pub produces: &'static [&'static str],
    pub tag: String,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct PathItem {
    pub params: Vec<Param>,
    pub ops: Vec<Operation>,
}

/// Paths of one group version, keyed by URL path.
pub(crate) type Paths = BTreeMap<String, PathItem>;

/// A registered resource with its definitions resolved.
#[derive(Clone, Debug)]
pub(crate) struct Resource {
    pub info: ResourceInfo,
    pub definition: String,
    pub list_definition: Option<String>,
    pub subresources: Vec<crate::subresources::Subresource>,
}

/// `api/v1` or `apis/<group>/<version>`: the key of a group version's document.
pub(crate) fn group_version_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The operation-id infix of a group: `Core`, `Apps`, `RbacAuthorization`, `FlowcontrolApiserver`.
pub(crate) fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed
        .split(['.', '-'])
        .map(capitalize)
        .collect::<Vec<_>>()
        .join("")
}

pub(crate) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn tag(group: &str, version: &str) -> String {
    let g = group_camel(group);
    let mut c = g.chars();
    let lower: String = match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

/// Adds the discovery path `/<prefix>/` of a group version.
pub(crate) fn add_discovery(paths: &mut Paths, group: &str, version: &str) {
    let op = Operation {
        method: "get",
        id: format!(
            "get{}{}APIResources",
            group_camel(group),
            capitalize(version)
        ),
        description: "get available resources".into(),
        action: None,
        gvk: None,
        params: Vec::new(),
        body: None,
        response: Response::Definition(API_RESOURCE_LIST.into()),
        codes: OK,
        consumes: ANY,
        produces: OBJECT_TYPES,
        tag: tag(group, version),
    };
    paths
        .entry(format!("/{}/", group_version_key(group, version)))
        .or_default()
        .ops
        .push(op);
}

pub(crate) struct Ctx<'a> {
    pub r: &'a Resource,
    pub gv: String,
    pub ns: &'static str,
    pub tag: String,
}

impl Ctx<'_> {
    pub(crate) fn kind(&self) -> &str {
        self.r.info.kind
    }
    pub(crate) fn gvk(&self) -> Gvk {
        Gvk::new(self.r.info.group, self.r.info.version, self.r.info.kind)
    }
    pub(crate) fn scope_params(&self) -> Vec<Param> {
        if self.r.info.namespaced() {
            vec![params::namespace()]
        } else {
            Vec::new()
        }
    }
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn op(
        &self,
        method: &'static str,
        action: Action,
        id: String,
        description: String,
        body: Option<Body>,
        response: Response,
        codes: &'static [(u16, &'static str)],
        consumes: &'static [&'static str],
        produces: &'static [&'static str],
    ) -> Operation {
        let params = match action {
            // Watch and connect operations take their options at the path level.
            Action::Watch | Action::WatchList | Action::Connect => Vec::new(),
            _ => params::for_action(action),
        };
        Operation {
            method,
            id,
            description,
            action: Some(action),
            gvk: Some(self.gvk()),
            params,
            body,
            response,
            codes,
            consumes,
            produces,
            tag: self.tag.clone(),
        }
    }
    fn has(&self, verb: &str) -> bool {
        self.r.info.verbs.contains(&verb)
    }
}

pub(crate) fn sorted(mut p: Vec<Param>) -> Vec<Param> {
    p.sort_by_key(|p| p.name);
    p
}

pub(crate) fn def(name: &str) -> Response {
    Response::Definition(name.to_string())
}

pub(crate) fn body(name: &str, required: bool) -> Option<Body> {
    Some(Body {
        definition: name.to_string(),
        required,
    })
}

/// Adds every path of `r` (collection, item, all-namespaces, watch and subresources).
pub(crate) fn add_resource(paths: &mut Paths, r: &Resource) {
    let info = &r.info;
    let c = Ctx {
        r,
        gv: format!("{}{}", group_camel(info.group), capitalize(info.version)),
        ns: if info.namespaced() { "Namespaced" } else { "" },
        tag: tag(info.group, info.version),
    };
    let (gv, ns, kind) = (&c.gv, c.ns, c.kind());
    let prefix = format!("/{}", group_version_key(info.group, info.version));
    let scope = if info.namespaced() {
        format!("{prefix}/namespaces/{{namespace}}")
    } else {
        prefix.clone()
    };
    let collection = format!("{scope}/{}", info.resource);
    let item = format!("{collection}/{{name}}");
    let list = r.list_definition.as_deref();

    let mut coll = PathItem::default();
    if let (true, Some(list)) = (c.has("list"), list) {
        coll.ops.push(c.op(
            "get",
            Action::List,
            format!("list{gv}{ns}{kind}"),
            format!("list or watch objects of kind {kind}"),
            None,
            def(list),
            OK,
            ANY,
            STREAM_TYPES,
        ));
    }
    if c.has("create") {
        coll.ops.push(c.op(
            "post",
            Action::Create,
            format!("create{gv}{ns}{kind}"),
            format!("create a {kind}"),
            body(&r.definition, true),
            def(&r.definition),
            CREATED,
            ANY,
            OBJECT_TYPES,
        ));
    }
    if c.has("deletecollection") {
        coll.ops.push(c.op(
            "delete",
            Action::DeleteCollection,
            format!("delete{gv}Collection{ns}{kind}"),
            format!("delete collection of {kind}"),
            body(DELETE_OPTIONS, false),
            def(STATUS),
            OK,
            ANY,
            OBJECT_TYPES,
        ));
    }
    push_path(
        paths,
        collection.clone(),
        coll,
        sorted([c.scope_params(), vec![params::pretty()]].concat()),
    );

    let mut one = PathItem::default();
    if c.has("get") {
        one.ops.push(c.op(
            "get",
            Action::Get,
            format!("read{gv}{ns}{kind}"),
            format!("read the specified {kind}"),
            None,
            def(&r.definition),
            OK,
            ANY,
            OBJECT_TYPES,
        ));
    }
    if c.has("update") {
        one.ops.push(c.op(
            "put",
            Action::Update,
            format!("replace{gv}{ns}{kind}"),
            format!("replace the specified {kind}"),
            body(&r.definition, true),
            def(&r.definition),
            REPLACED,
            ANY,
            OBJECT_TYPES,
        ));
    }
    if c.has("patch") {
        one.ops.push(c.op(
            "patch",
            Action::Patch,
            format!("patch{gv}{ns}{kind}"),
            format!("partially update the specified {kind}"),
            body(PATCH, true),
            def(&r.definition),
            REPLACED,
            PATCH_TYPES,
            OBJECT_TYPES,
        ));
    }
    if c.has("delete") {
        one.ops.push(c.op(
            "delete",
            Action::Delete,
            format!("delete{gv}{ns}{kind}"),
            format!("delete a {kind}"),
            body(DELETE_OPTIONS, false),
            def(STATUS),
            DELETED,
            ANY,
            OBJECT_TYPES,
        ));
    }
    let item_params = || {
        sorted(
            [
                vec![params::name(kind)],
                c.scope_params(),
                vec![params::pretty()],
            ]
            .concat(),
        )
    };
    push_path(paths, item.clone(), one, item_params());

    let list_level = || params::for_action(Action::List);
    if info.namespaced()
        && let (true, Some(list)) = (c.has("list"), list)
    {
        let mut all = PathItem::default();
        all.ops.push(c.op(
            "get",
            Action::List,
            format!("list{gv}{kind}ForAllNamespaces"),
            format!("list or watch objects of kind {kind}"),
            None,
            def(list),
            OK,
            ANY,
            STREAM_TYPES,
        ));
        push_path(
            paths,
            format!("{prefix}/{}", info.resource),
            all,
            sorted([list_level(), vec![params::pretty()]].concat()),
        );
    }
    if c.has("watch") {
        let watch_scope = if info.namespaced() {
            format!("{prefix}/watch/namespaces/{{namespace}}")
        } else {
            format!("{prefix}/watch")
        };
        let list_desc = format!(
            "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
        );
        let mut wl = PathItem::default();
        wl.ops.push(c.op(
            "get",
            Action::WatchList,
            format!("watch{gv}{ns}{kind}List"),
            list_desc.clone(),
            None,
            def(WATCH_EVENT),
            OK,
            ANY,
            STREAM_TYPES,
        ));
        push_path(
            paths,
            format!("{watch_scope}/{}", info.resource),
            wl,
            sorted([list_level(), c.scope_params(), vec![params::pretty()]].concat()),
        );
        let mut w = PathItem::default();
        w.ops.push(c.op("get", Action::Watch, format!("watch{gv}{ns}{kind}"),
            format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."),
            None, def(WATCH_EVENT), OK, ANY, STREAM_TYPES));
        push_path(
            paths,
            format!("{watch_scope}/{}/{{name}}", info.resource),
            w,
            sorted([list_level(), item_params()].concat()),
        );
        if info.namespaced() {
            let mut wa = PathItem::default();
            wa.ops.push(c.op(
                "get",
                Action::WatchList,
                format!("watch{gv}{kind}ListForAllNamespaces"),
                list_desc,
                None,
                def(WATCH_EVENT),
                OK,
                ANY,
                STREAM_TYPES,
            ));
            push_path(
                paths,
                format!("{prefix}/watch/{}", info.resource),
                wa,
                sorted([list_level(), vec![params::pretty()]].concat()),
            );
        }
    }

    for sub in &r.subresources {
        crate::subresources::add_paths(paths, &c, &item, sub, &item_params);
    }
}

pub(crate) fn push_path(paths: &mut Paths, path: String, mut item: PathItem, params: Vec<Param>) {
    if item.ops.is_empty() {
        return;
    }
    item.params = params;
    paths.insert(path, item);
}
