//! One record of a container log file: the CRI format containerd writes and, for old files,
//! Docker's JSON format (upstream `parseCRILog`, `parseDockerJSONLog`), and the fixed-width
//! RFC3339Nano rendering of record timestamps (upstream `RFC3339NanoFixed`).

use jiff::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    Stdout,
    Stderr,
}

/// A parsed record. `log` is the content to write: a full line keeps its trailing newline, a
/// partial one (tag `P`) loses it so that it joins the next record.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMessage {
    pub timestamp: Timestamp,
    /// The timestamp as written, for rendering in its own offset.
    pub raw_time: String,
    pub stream: StreamType,
    pub log: Vec<u8>,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>()
        .map_err(|e| format!("unexpected timestamp format {s:?}: {e}"))
}

fn parse_stream(s: &[u8]) -> Result<StreamType, String> {
    match s {
        b"stdout" => Ok(StreamType::Stdout),
        b"stderr" => Ok(StreamType::Stderr),
        other => Err(format!(
            "unexpected stream type {:?}",
            String::from_utf8_lossy(other)
        )),
    }
}

/// `2016-10-06T00:17:09.669794202Z stdout P content`.
fn parse_cri(line: &[u8]) -> Result<LogMessage, String> {
    let mut rest = line;
    let mut field = |what: &str| -> Result<&[u8], String> {
        let idx = rest
            .iter()
            .position(|b| *b == b' ')
            .ok_or_else(|| format!("{what} is not found"))?;
        let (f, r) = rest.split_at(idx);
        rest = &r[1..];
        Ok(f)
    };
    let ts = field("timestamp")?;
    let ts = std::str::from_utf8(ts).map_err(|_| "timestamp is not valid UTF-8".to_string())?;
    let timestamp = parse_time(ts)?;
    let stream = parse_stream(field("stream type")?)?;
    let tags = field("log tag")?;
    // Tags are `:`-separated for forward compatibility; the first says partial or full.
    let partial = tags.split(|b| *b == b':').next() == Some(b"P");
    let mut log = rest;
    if partial && log.last() == Some(&b'\n') {
        log = &log[..log.len() - 1];
    }
    Ok(LogMessage {
        timestamp,
        raw_time: ts.to_string(),
        stream,
        log: log.to_vec(),
    })
}

#[derive(serde::Deserialize)]
struct DockerJsonLog {
    #[serde(default)]
    log: String,
    #[serde(default)]
    stream: String,
    time: String,
}

/// `{"log":"content\n","stream":"stdout","time":"2016-10-20T18:39:20.57606443Z"}`.
fn parse_docker_json(line: &[u8]) -> Result<LogMessage, String> {
    let l: DockerJsonLog =
        serde_json::from_slice(line).map_err(|e| format!("failed to unmarshal log: {e}"))?;
    Ok(LogMessage {
        timestamp: parse_time(&l.time)?,
        stream: parse_stream(l.stream.as_bytes())?,
        raw_time: l.time,
        log: l.log.into_bytes(),
    })
}

/// The log file formats; the first line of a file decides which one the rest is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Cri,
    DockerJson,
}

impl LogFormat {
    pub fn detect(line: &[u8]) -> Option<LogFormat> {
        if parse_cri(line).is_ok() {
            Some(LogFormat::Cri)
        } else if parse_docker_json(line).is_ok() {
            Some(LogFormat::DockerJson)
        } else {
            None
        }
    }

    pub fn parse(self, line: &[u8]) -> Result<LogMessage, String> {
        match self {
            LogFormat::Cri => parse_cri(line),
            LogFormat::DockerJson => parse_docker_json(line),
        }
    }
}

/// Parses one record in either format.
pub fn parse_log_line(line: &[u8]) -> Result<LogMessage, String> {
    parse_cri(line).or_else(|_| parse_docker_json(line))
}

/// Renders a parsed RFC3339 timestamp with exactly nine fractional digits, keeping its offset
/// (`Z` for a zero offset), as Go's `2006-01-02T15:04:05.000000000Z07:00`.
pub fn format_fixed_timestamp(raw: &str, ts: Timestamp) -> String {
    // raw was accepted by the RFC3339 parser: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)`.
    let fallback = || ts.to_string();
    let Some(head) = raw.get(..19) else {
        return fallback();
    };
    let rest = &raw[19..];
    let (frac, offset) = match rest.strip_prefix(['.', ',']) {
        Some(r) => {
            let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (&r[..n], &r[n..])
        }
        None => ("", rest),
    };
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let offset = match offset {
        "z" | "Z" | "+00:00" | "-00:00" => "Z",
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => o,
        _ => return fallback(),
    };
    format!("{}T{}.{digits}{offset}", &head[..10], &head[11..19])
}
