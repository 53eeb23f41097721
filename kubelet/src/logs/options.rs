//! PodLogOptions as the kubelet's `/containerLogs` query decodes and validates them (upstream
//! `pkg/kubelet/server/server.go` getContainerLogs, `pkg/apis/core/v1/validation`
//! ValidatePodLogOptions) and their conversion to reader options (upstream `NewLogOptions`).

use jiff::Timestamp;

/// Which of the container's streams to return (`stream` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogStream {
    #[default]
    All,
    Stdout,
    Stderr,
}

/// The query parameters of a container log request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodLogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub since_seconds: Option<i64>,
    pub since_time: Option<Timestamp>,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
    /// As given; checked by [`PodLogOptions::validate`].
    pub stream: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The query could not be decoded (upstream answers 400 `Unable to decode query.`).
    #[error("unable to decode query: {0}")]
    Decode(String),
}

/// Go's query-to-bool conversion: anything but "0" and "false" (any case) is true.
fn query_bool(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("false"))
}

fn query_int(name: &str, v: &str) -> Result<Option<i64>, QueryError> {
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<i64>()
        .map(Some)
        .map_err(|e| QueryError::Decode(format!("{name}: {e}")))
}

impl PodLogOptions {
    /// Decodes a raw query string. The first value of a repeated parameter wins, unknown
    /// parameters are ignored, and the legacy `tail` parameter stands for `tailLines` (`all`
    /// meaning no limit), as upstream.
    pub fn from_query(query: &str) -> Result<PodLogOptions, QueryError> {
        let mut first: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if !first.iter().any(|(fk, _)| *fk == k) {
                first.push((k.into_owned(), v.into_owned()));
            }
        }
        let get = |k: &str| {
            first
                .iter()
                .find(|(fk, _)| fk == k)
                .map(|(_, v)| v.as_str())
        };
        let mut tail_lines = get("tailLines").map(str::to_string);
        if let Some(tail) = get("tail").filter(|t| !t.is_empty()) {
            tail_lines = if tail == "all" {
                None
            } else {
                Some(tail.to_string())
            };
        }
        let since_time = match get("sinceTime") {
            None | Some("") | Some("null") => None,
            Some(t) => Some(
                t.parse::<Timestamp>()
                    .map_err(|e| QueryError::Decode(format!("sinceTime: {e}")))?,
            ),
        };
        Ok(PodLogOptions {
            follow: get("follow").is_some_and(query_bool),
            previous: get("previous").is_some_and(query_bool),
            timestamps: get("timestamps").is_some_and(query_bool),
            since_seconds: get("sinceSeconds")
                .map(|v| query_int("sinceSeconds", v))
                .transpose()?
                .flatten(),
            since_time,
            tail_lines: tail_lines
                .as_deref()
                .map(|v| query_int("tailLines", v))
                .transpose()?
                .flatten(),
            limit_bytes: get("limitBytes")
                .map(|v| query_int("limitBytes", v))
                .transpose()?
                .flatten(),
            stream: get("stream").filter(|s| !s.is_empty()).map(str::to_string),
        })
    }

    /// Upstream ValidatePodLogOptions; the messages are the field errors' texts.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if let Some(t) = self.tail_lines.filter(|t| *t < 0) {
            errs.push(format!(
                "tailLines: Invalid value: {t}: must be greater than or equal to 0"
            ));
        }
        if let Some(b) = self.limit_bytes.filter(|b| *b < 1) {
            errs.push(format!(
                "limitBytes: Invalid value: {b}: must be greater than 0"
            ));
        }
        match (self.since_seconds, self.since_time) {
            (Some(_), Some(_)) => errs.push(
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".into(),
            ),
            (Some(s), None) if s < 1 => errs.push(format!(
                "sinceSeconds: Invalid value: {s}: must be greater than 0"
            )),
            _ => {}
        }
        if let Some(s) = &self.stream {
            if self.log_stream().is_none() {
                errs.push(format!(
                    "stream: Unsupported value: {s:?}: supported values: \"All\", \"Stderr\", \"Stdout\""
                ));
            }
            if s != "All" && self.tail_lines.is_some() {
                errs.push(
                    "Forbidden: `tailLines` and specific `stream` are mutually exclusive for now"
                        .into(),
                );
            }
        }
        errs
    }

    /// The selected stream; `None` for an unknown value.
    pub fn log_stream(&self) -> Option<LogStream> {
        match self.stream.as_deref() {
            None | Some("All") => Some(LogStream::All),
            Some("Stdout") => Some(LogStream::Stdout),
            Some("Stderr") => Some(LogStream::Stderr),
            Some(_) => None,
        }
    }
}

/// What the reader does: upstream's internal `LogOptions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    /// Records to start from the end of the file; `None` reads everything.
    pub tail: Option<u64>,
    /// Stop after this many bytes of output.
    pub limit_bytes: Option<u64>,
    /// Skip records older than this.
    pub since: Option<Timestamp>,
    pub follow: bool,
    pub timestamps: bool,
    pub stream: LogStream,
}

impl LogOptions {
    /// `sinceSeconds` counts back from `now`; a later `sinceTime` wins.
    pub fn new(api: &PodLogOptions, now: Timestamp) -> LogOptions {
        let mut since = api
            .since_seconds
            .and_then(|s| now.checked_sub(jiff::SignedDuration::from_secs(s)).ok());
        if let Some(t) = api.since_time
            && since.is_none_or(|s| t > s)
        {
            since = Some(t);
        }
        LogOptions {
            tail: api.tail_lines.and_then(|t| u64::try_from(t).ok()),
            limit_bytes: api.limit_bytes.and_then(|b| u64::try_from(b).ok()),
            since,
            follow: api.follow,
            timestamps: api.timestamps,
            stream: api.log_stream().unwrap_or_default(),
        }
    }
}
