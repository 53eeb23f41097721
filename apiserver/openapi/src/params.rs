//! The query and path parameters the apiserver documents per operation. Mirrors the parameter
//! sets `k8s.io/apiserver/pkg/endpoints/installer.go` derives from ListOptions, CreateOptions,
//! PatchOptions, UpdateOptions, DeleteOptions and the connect/log option types.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum In {
    Path,
    Query,
}

#[derive(Clone, Debug)]
pub(crate) struct Param {
    pub name: &'static str,
    pub location: In,
    pub ty: &'static str,
    pub description: String,
}

impl Param {
    fn query(name: &'static str, ty: &'static str, description: &str) -> Param {
        Param {
            name,
            location: In::Query,
            ty,
            description: description.to_string(),
        }
    }
}

pub(crate) fn path_param(name: &'static str, description: String) -> Param {
    Param {
        name,
        location: In::Path,
        ty: "string",
        description,
    }
}

pub(crate) fn namespace() -> Param {
    path_param(
        "namespace",
        "object name and auth scope, such as for teams and projects".into(),
    )
}

pub(crate) fn name(kind: &str) -> Param {
    path_param("name", format!("name of the {kind}"))
}

pub(crate) fn pretty() -> Param {
    Param::query(
        "pretty",
        "string",
        "If 'true', the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
    )
}

fn dry_run() -> Param {
    Param::query(
        "dryRun",
        "string",
        "When present, the request is processed but its changes are not persisted. The only valid value is 'All' (all dry run stages are run); other values are rejected.",
    )
}

fn field_manager(patch: bool) -> Param {
    let mut d = String::from(
        "fieldManager names the actor making these changes. It must be at most 128 characters long and contain only printable characters.",
    );
    if patch {
        d.push_str(" Required for apply patches (application/apply-patch+yaml), optional for the other patch types.");
    }
    Param::query("fieldManager", "string", &d)
}

fn field_validation() -> Param {
    Param::query(
        "fieldValidation",
        "string",
        "fieldValidation tells the server what to do with unknown or duplicate fields in the request body (POST/PUT/PATCH). Ignore: drop unknown fields silently and keep the last of duplicates. Warn (the default): as Ignore, but report each dropped or duplicate field in a Warning header. Strict: fail the request with BadRequest listing every unknown and duplicate field.",
    )
}

fn force() -> Param {
    Param::query(
        "force",
        "boolean",
        "Force an apply patch: conflicting fields owned by other managers are taken over. Must be unset for other patch types.",
    )
}

fn list_params() -> Vec<Param> {
    vec![
        Param::query(
            "allowWatchBookmarks",
            "boolean",
            "allowWatchBookmarks asks for BOOKMARK watch events. The server may ignore it and decides when bookmarks are sent; ignored for non-watch requests.",
        ),
        Param::query(
            "continue",
            "string",
            "continue is the token from a previous paginated list response, used to fetch the next chunk. A token that has expired yields 410 ResourceExpired. Not supported with watch.",
        ),
        Param::query(
            "fieldSelector",
            "string",
            "A selector restricting the returned objects by their fields. Defaults to everything.",
        ),
        Param::query(
            "labelSelector",
            "string",
            "A selector restricting the returned objects by their labels. Defaults to everything.",
        ),
        Param::query(
            "limit",
            "integer",
            "limit is the maximum number of items to return in one list response; when more exist, the list metadata carries a continue token. Not supported with watch.",
        ),
        Param::query(
            "resourceVersion",
            "string",
            "resourceVersion constrains which resource versions the request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.",
        ),
        Param::query(
            "resourceVersionMatch",
            "string",
            "resourceVersionMatch says how resourceVersion applies to list calls (Exact or NotOlderThan). See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.",
        ),
        Param::query(
            "sendInitialEvents",
            "boolean",
            "With watch=true, start the stream with synthetic ADDED events for the current state, followed by a BOOKMARK annotated \"k8s.io/initial-events-end\". Requires resourceVersionMatch=NotOlderThan.",
        ),
        Param::query(
            "timeoutSeconds",
            "integer",
            "Timeout for the list/watch call, regardless of activity.",
        ),
        Param::query(
            "watch",
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, update and remove notifications. Specify resourceVersion.",
        ),
    ]
}

fn delete_params() -> Vec<Param> {
    vec![
        dry_run(),
        Param::query(
            "gracePeriodSeconds",
            "integer",
            "The duration in seconds before the object should be deleted; a non-negative integer. Zero means delete immediately; unset means the type's default.",
        ),
        Param::query(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
            "If true, an object that cannot be read from storage (corrupt) is deleted unsafely, bypassing finalizers and preconditions. Use only when you know what you are doing.",
        ),
        Param::query(
            "orphanDependents",
            "boolean",
            "Deprecated: use propagationPolicy. Whether dependent objects are orphaned. Only one of this and propagationPolicy may be set.",
        ),
        Param::query(
            "propagationPolicy",
            "string",
            "Whether and how garbage collection is performed: Orphan, Background or Foreground. Only one of this and orphanDependents may be set.",
        ),
    ]
}

/// Query parameters of one kind of operation, sorted by name as upstream lists them.
pub(crate) fn for_action(action: Action) -> Vec<Param> {
    let mut p = match action {
        Action::List | Action::Watch | Action::WatchList => list_params(),
        Action::Create | Action::Update => {
            vec![dry_run(), field_manager(false), field_validation()]
        }
        Action::Patch => vec![dry_run(), field_manager(true), field_validation(), force()],
        Action::Delete => delete_params(),
        Action::DeleteCollection => {
            let mut p = delete_params();
            p.extend(
                list_params()
                    .into_iter()
                    .filter(|p| p.name != "watch" && p.name != "allowWatchBookmarks"),
            );
            p
        }
        Action::Get | Action::Connect => Vec::new(),
    };
    p.sort_by_key(|p| p.name);
    p
}

/// The operation kinds, named as in `x-kubernetes-action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Get,
    List,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
    Watch,
    WatchList,
    Connect,
}

impl Action {
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::List => "list",
            Action::Create => "post",
            Action::Update => "put",
            Action::Patch => "patch",
            Action::Delete => "delete",
            Action::DeleteCollection => "deletecollection",
            Action::Watch => "watch",
            Action::WatchList => "watchlist",
            Action::Connect => "connect",
        }
    }
}

/// Query parameters of `pods/log`.
pub(crate) fn log_params() -> Vec<Param> {
    vec![
        Param::query(
            "container",
            "string",
            "The container whose logs to stream. Defaults to the only container if the pod has one.",
        ),
        Param::query(
            "follow",
            "boolean",
            "Follow the log stream of the pod. Defaults to false.",
        ),
        Param::query(
            "insecureSkipTLSVerifyBackend",
            "boolean",
            "Skip verifying the serving certificate of the backend (kubelet) the logs are read from.",
        ),
        Param::query(
            "limitBytes",
            "integer",
            "If set, the number of bytes to read from the server before terminating the log output.",
        ),
        Param::query(
            "previous",
            "boolean",
            "Return the logs of the previous terminated container. Defaults to false.",
        ),
        Param::query(
            "sinceSeconds",
            "integer",
            "A relative time in seconds before the current time from which to show logs.",
        ),
        Param::query(
            "stream",
            "string",
            "Which container log stream to return: Stdout, Stderr or All (the default).",
        ),
        Param::query(
            "tailLines",
            "integer",
            "If set, the number of lines from the end of the logs to show.",
        ),
        Param::query(
            "timestamps",
            "boolean",
            "If true, prefix every line of output with an RFC3339 timestamp. Defaults to false.",
        ),
    ]
}

/// Query parameters of the connect subresources (`exec`, `attach`, `portforward`, `proxy`).
pub(crate) fn connect_params(sub: &str) -> Vec<Param> {
    let stream = |name: &'static str, what: &str| {
        Param::query(
            name,
            "boolean",
            &format!("Redirect the {what} of the process."),
        )
    };
    let container = Param::query(
        "container",
        "string",
        "The container in which to run the command.",
    );
    match sub {
        "exec" => vec![
            Param::query(
                "command",
                "string",
                "The command to run, one argument per parameter; not run in a shell.",
            ),
            container,
            stream("stderr", "standard error stream"),
            stream("stdin", "standard input stream"),
            stream("stdout", "standard output stream"),
            Param::query(
                "tty",
                "boolean",
                "Allocate a terminal for the process. Defaults to false.",
            ),
        ],
        "attach" => vec![
            container,
            stream("stderr", "standard error stream"),
            stream("stdin", "standard input stream"),
            stream("stdout", "standard output stream"),
            Param::query(
                "tty",
                "boolean",
                "The attached stream is a terminal. Defaults to false.",
            ),
        ],
        "portforward" => vec![Param::query(
            "ports",
            "integer",
            "List of ports to forward.",
        )],
        "proxy" => vec![Param::query(
            "path",
            "string",
            "The path of the request to proxy.",
        )],
        _ => Vec::new(),
    }
}
