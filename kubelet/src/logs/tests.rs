//! Tests of log reading and rotation against files in a temporary directory and a fake runtime.

use super::*;
use crate::cri::v1 as criv1;
use bytes::Bytes;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub(crate) struct TempDir(pub std::path::PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "kubelet-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A runtime whose containers have a fixed log path and a switchable running state.
#[derive(Default)]
pub(crate) struct FakeRuntime {
    pub running: AtomicBool,
    pub log_paths: Mutex<HashMap<String, String>>,
    pub reopened: Mutex<Vec<String>>,
    pub fail_reopen: AtomicBool,
}

#[async_trait::async_trait]
impl LogRuntime for FakeRuntime {
    async fn container_status(&self, id: &str) -> crate::cri::Result<criv1::ContainerStatus> {
        let path = self.log_paths.lock().unwrap().get(id).cloned();
        let Some(log_path) = path else {
            return Err(tonic::Status::not_found(format!("container {id} not found")).into());
        };
        let state = if self.running.load(Ordering::SeqCst) {
            criv1::ContainerState::ContainerRunning
        } else {
            criv1::ContainerState::ContainerExited
        };
        Ok(criv1::ContainerStatus {
            id: id.into(),
            state: state as i32,
            log_path,
            ..Default::default()
        })
    }
    async fn list_containers(&self) -> crate::cri::Result<Vec<criv1::Container>> {
        let state = if self.running.load(Ordering::SeqCst) {
            criv1::ContainerState::ContainerRunning
        } else {
            criv1::ContainerState::ContainerExited
        };
        Ok(self
            .log_paths
            .lock()
            .unwrap()
            .keys()
            .map(|id| criv1::Container {
                id: id.clone(),
                state: state as i32,
                ..Default::default()
            })
            .collect())
    }
    async fn reopen_container_log(&self, id: &str) -> crate::cri::Result<()> {
        if self.fail_reopen.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("no").into());
        }
        self.reopened.lock().unwrap().push(id.to_string());
        // The runtime creates a fresh file at the log path.
        if let Some(p) = self.log_paths.lock().unwrap().get(id) {
            std::fs::File::create(p).unwrap();
        }
        Ok(())
    }
}

const SAMPLE: &str = "\
2016-10-06T00:17:09.669794202Z stdout F line one
2016-10-06T00:17:10.1Z stderr F err two
2016-10-06T00:17:11.000000003Z stdout P part
2016-10-06T00:17:11.000000004Z stdout F ial three
2016-10-06T00:17:12+02:00 stdout F four
";

fn opts(q: &str) -> LogOptions {
    let api = PodLogOptions::from_query(q).unwrap();
    assert!(api.validate().is_empty(), "{q}: {:?}", api.validate());
    LogOptions::new(&api, "2016-10-06T00:17:12Z".parse().unwrap())
}

async fn read_all(path: &std::path::Path, o: LogOptions) -> String {
    let reader = LogReader::open(path, o).unwrap();
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    let task = tokio::spawn(reader.run(tx));
    let mut out = Vec::new();
    while let Some(b) = rx.recv().await {
        out.extend_from_slice(&b);
    }
    task.await.unwrap().unwrap();
    String::from_utf8(out).unwrap()
}

fn write_sample(dir: &TempDir) -> std::path::PathBuf {
    let p = dir.0.join("0.log");
    std::fs::write(&p, SAMPLE).unwrap();
    p
}

#[test]
fn parses_cri_and_docker_lines() {
    let m = parse_log_line(b"2016-10-06T00:17:09.669794202Z stdout P abc\n").unwrap();
    assert_eq!(m.stream, StreamType::Stdout);
    assert_eq!(m.log, b"abc");
    let m = parse_log_line(b"2016-10-06T00:17:09Z stderr F:x abc\n").unwrap();
    assert_eq!(m.stream, StreamType::Stderr);
    assert_eq!(m.log, b"abc\n");
    let m = parse_log_line(
        br#"{"log":"hi\n","stream":"stderr","time":"2016-10-20T18:39:20.57606443Z"}"#,
    )
    .unwrap();
    assert_eq!(m.log, b"hi\n");
    assert!(parse_log_line(b"2016-10-06T00:17:09Z stdin F x\n").is_err());
    assert!(parse_log_line(b"garbage\n").is_err());
}

#[test]
fn fixed_timestamps() {
    let f = |s: &str| format_fixed_timestamp(s, s.parse().unwrap());
    assert_eq!(
        f("2016-10-06T00:17:10.1Z"),
        "2016-10-06T00:17:10.100000000Z"
    );
    assert_eq!(f("2016-10-06T00:17:10Z"), "2016-10-06T00:17:10.000000000Z");
    assert_eq!(
        f("2016-10-06T00:17:10.123456789+02:00"),
        "2016-10-06T00:17:10.123456789+02:00"
    );
    assert_eq!(
        f("2016-10-06T00:17:10+00:00"),
        "2016-10-06T00:17:10.000000000Z"
    );
}

#[test]
fn query_decoding_and_validation() {
    let o =
        PodLogOptions::from_query("follow=true&tailLines=5&timestamps=1&previous=false").unwrap();
    assert!(o.follow && o.timestamps && !o.previous);
    assert_eq!(o.tail_lines, Some(5));
    assert_eq!(
        PodLogOptions::from_query("tail=all&tailLines=3")
            .unwrap()
            .tail_lines,
        None
    );
    assert_eq!(
        PodLogOptions::from_query("tail=7").unwrap().tail_lines,
        Some(7)
    );
    assert!(PodLogOptions::from_query("tailLines=x").is_err());
    assert!(PodLogOptions::from_query("sinceTime=yesterday").is_err());
    let bad = PodLogOptions::from_query("tailLines=-1&limitBytes=0&sinceSeconds=0").unwrap();
    assert_eq!(bad.validate().len(), 3, "{:?}", bad.validate());
    let both = PodLogOptions::from_query("sinceSeconds=5&sinceTime=2020-01-01T00:00:00Z").unwrap();
    assert_eq!(both.validate().len(), 1);
    let st = PodLogOptions::from_query("stream=Stderr&tailLines=1").unwrap();
    assert!(st.validate()[0].contains("mutually exclusive"));
    assert!(
        !PodLogOptions::from_query("stream=Nope")
            .unwrap()
            .validate()
            .is_empty()
    );
}

#[test]
fn since_seconds_and_later_since_time() {
    let now: jiff::Timestamp = "2020-01-01T00:01:00Z".parse().unwrap();
    let o = LogOptions::new(&PodLogOptions::from_query("sinceSeconds=30").unwrap(), now);
    assert_eq!(o.since, Some("2020-01-01T00:00:30Z".parse().unwrap()));
    let o = LogOptions::new(
        &PodLogOptions::from_query("sinceTime=2020-01-01T00:00:10Z").unwrap(),
        now,
    );
    assert_eq!(o.since, Some("2020-01-01T00:00:10Z".parse().unwrap()));
}

#[tokio::test]
async fn reads_whole_file_joining_partial_lines() {
    let d = TempDir::new("logs");
    let p = write_sample(&d);
    assert_eq!(
        read_all(&p, opts("")).await,
        "line one\nerr two\npartial three\nfour\n"
    );
}

#[tokio::test]
async fn tail_since_timestamps_limit_and_streams() {
    let d = TempDir::new("logs");
    let p = write_sample(&d);
    assert_eq!(read_all(&p, opts("tailLines=2")).await, "ial three\nfour\n");
    assert_eq!(read_all(&p, opts("tailLines=0")).await, "");
    assert_eq!(read_all(&p, opts("tailLines=100")).await.lines().count(), 4);
    // 00:17:12+02:00 is before 00:17:11Z; only the record at 00:17:11.000000004Z is not older.
    assert_eq!(
        read_all(&p, opts("sinceTime=2016-10-06T00:17:11Z")).await,
        "partial three\n"
    );
    // now is 00:17:12Z: since 00:17:10Z.
    assert_eq!(
        read_all(&p, opts("sinceSeconds=2")).await,
        "err two\npartial three\n"
    );
    assert_eq!(
        read_all(&p, opts("timestamps=true&tailLines=1")).await,
        "2016-10-06T00:17:12.000000000+02:00 four\n"
    );
    assert_eq!(read_all(&p, opts("limitBytes=12")).await, "line one\nerr");
    assert_eq!(read_all(&p, opts("stream=Stderr")).await, "err two\n");
    assert_eq!(
        read_all(&p, opts("stream=Stdout")).await,
        "line one\npartial three\nfour\n"
    );
}

#[tokio::test]
async fn incomplete_last_line_is_returned_without_follow() {
    let d = TempDir::new("logs");
    let p = d.0.join("0.log");
    std::fs::write(
        &p,
        "2016-10-06T00:17:09Z stdout F a\n2016-10-06T00:17:09Z stdout F b",
    )
    .unwrap();
    assert_eq!(read_all(&p, opts("")).await, "a\nb");
    // The incomplete line does not count as one of the tail lines, and reading stops after them.
    assert_eq!(read_all(&p, opts("tailLines=1")).await, "a\n");
}

#[tokio::test]
async fn open_errors_name_the_path() {
    let d = TempDir::new("logs");
    let e = LogReader::open(&d.0.join("missing.log"), opts(""))
        .err()
        .unwrap();
    assert!(
        e.0.starts_with("failed to try resolving symlinks in path"),
        "{e}"
    );
}

fn append(p: &std::path::Path, s: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

async fn recv_text(rx: &mut mpsc::Receiver<Bytes>, want: &str) -> String {
    let mut got = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !got.contains(want) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(b)) => got.push_str(std::str::from_utf8(&b).unwrap()),
            _ => panic!("did not receive {want:?}; got {got:?}"),
        }
    }
    got
}

#[tokio::test]
async fn follow_streams_appended_lines_and_ends_when_container_stops() {
    let d = TempDir::new("logs");
    let p = d.0.join("0.log");
    std::fs::write(&p, "2016-10-06T00:17:09Z stdout F first\n").unwrap();
    let rt = Arc::new(FakeRuntime::default());
    rt.running.store(true, Ordering::SeqCst);
    rt.log_paths
        .lock()
        .unwrap()
        .insert("c1".into(), p.display().to_string());
    let reader = LogReader::open(&p, opts("follow=true"))
        .unwrap()
        .container("c1", rt.clone());
    let (tx, mut rx) = mpsc::channel(16);
    let task = tokio::spawn(reader.run(tx));
    recv_text(&mut rx, "first\n").await;
    // A line written in two pieces comes out once it is complete.
    append(&p, "2016-10-06T00:17:10Z stdout F sec");
    tokio::time::sleep(Duration::from_millis(300)).await;
    append(&p, "ond\n");
    let got = recv_text(&mut rx, "second\n").await;
    assert_eq!(got, "second\n");
    assert!(!task.is_finished());
    // The container exits after a last line: that line is still delivered, then the stream ends.
    append(&p, "2016-10-06T00:17:11Z stderr F bye\n");
    rt.running.store(false, Ordering::SeqCst);
    let mut rest = String::new();
    while let Ok(Some(b)) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        rest.push_str(std::str::from_utf8(&b).unwrap());
    }
    assert_eq!(rest, "bye\n");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the reader ends")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn follow_ends_when_the_client_goes_away() {
    let d = TempDir::new("logs");
    let p = d.0.join("0.log");
    std::fs::write(&p, "2016-10-06T00:17:09Z stdout F first\n").unwrap();
    let rt = Arc::new(FakeRuntime::default());
    rt.running.store(true, Ordering::SeqCst);
    rt.log_paths
        .lock()
        .unwrap()
        .insert("c1".into(), p.display().to_string());
    let reader = LogReader::open(&p, opts("follow=true"))
        .unwrap()
        .container("c1", rt);
    let (tx, mut rx) = mpsc::channel(16);
    let task = tokio::spawn(reader.run(tx));
    recv_text(&mut rx, "first\n").await;
    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the reader notices the closed client")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn follow_continues_into_the_new_file_after_rotation() {
    let d = TempDir::new("logs");
    let p = d.0.join("0.log");
    std::fs::write(&p, "2016-10-06T00:17:09Z stdout F old\n").unwrap();
    let rt = Arc::new(FakeRuntime::default());
    rt.running.store(true, Ordering::SeqCst);
    rt.log_paths
        .lock()
        .unwrap()
        .insert("c1".into(), p.display().to_string());
    let reader = LogReader::open(&p, opts("follow=true"))
        .unwrap()
        .container("c1", rt.clone());
    let (tx, mut rx) = mpsc::channel(16);
    let task = tokio::spawn(reader.run(tx));
    recv_text(&mut rx, "old\n").await;
    // Rotation: rename away, the runtime still writes a last line to the old file, then reopens.
    let rotated = d.0.join("0.log.20240101-000000");
    std::fs::rename(&p, &rotated).unwrap();
    append(&rotated, "2016-10-06T00:17:10Z stdout F late\n");
    std::fs::write(&p, "2016-10-06T00:17:11Z stdout F new\n").unwrap();
    let got = recv_text(&mut rx, "new\n").await;
    assert_eq!(got, "late\nnew\n");
    rt.running.store(false, Ordering::SeqCst);
    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[test]
fn quantities() {
    assert_eq!(parse_quantity("10Mi"), Ok(10 * 1024 * 1024));
    assert_eq!(parse_quantity("1k"), Ok(1000));
    assert_eq!(parse_quantity("2048"), Ok(2048));
    assert_eq!(parse_quantity("-1"), Ok(-1));
    assert!(parse_quantity("1.5").is_err());
    assert!(parse_quantity("10 apples").is_err());
}

#[test]
fn log_paths() {
    let p = container_log_path(
        std::path::Path::new("/var/log/pods"),
        "ns",
        "web",
        "u-1",
        "c",
        3,
    );
    assert_eq!(
        p,
        std::path::PathBuf::from("/var/log/pods/ns_web_u-1/c/3.log")
    );
}

#[tokio::test]
async fn rotation_renames_compresses_and_keeps_max_files() {
    let d = TempDir::new("rotate");
    let p = d.0.join("0.log");
    let rt = Arc::new(FakeRuntime::default());
    rt.running.store(true, Ordering::SeqCst);
    rt.log_paths
        .lock()
        .unwrap()
        .insert("c1".into(), p.display().to_string());
    let m = ContainerLogManager::new(rt.clone(), "100", 3)
        .unwrap()
        .unwrap();

    // Under the limit: nothing happens.
    std::fs::write(&p, "x".repeat(50)).unwrap();
    m.rotate_logs().await.unwrap();
    assert_eq!(rotated_names(&d), Vec::<String>::new());

    // Leftovers of an interrupted rotation go away; the oldest beyond max_files too.
    std::fs::write(d.0.join("0.log.20200101-000000.gz"), "old").unwrap();
    std::fs::write(d.0.join("0.log.20200102-000000"), "x".repeat(10)).unwrap();
    std::fs::write(d.0.join("0.log.20200102-000000.gz"), "dup").unwrap();
    std::fs::write(d.0.join("0.log.20200103-000000.tmp"), "tmp").unwrap();
    std::fs::write(
        d.0.join("0.log.20200104-000000"),
        "2016-10-06T00:17:09Z stdout F hi\n",
    )
    .unwrap();
    std::fs::write(&p, "x".repeat(150)).unwrap();
    m.rotate_logs().await.unwrap();
    assert_eq!(*rt.reopened.lock().unwrap(), vec!["c1".to_string()]);
    let names = rotated_names(&d);
    // max_files 3 = current + just rotated + one older (compressed).
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0], "0.log.20200104-000000.gz");
    assert!(
        names[1].starts_with("0.log.2") && !names[1].ends_with(".gz"),
        "{names:?}"
    );
    assert_eq!(
        std::fs::metadata(&p).unwrap().len(),
        0,
        "the runtime reopened a fresh log"
    );
    let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(d.0.join(&names[0])).unwrap());
    let mut s = String::new();
    std::io::Read::read_to_string(&mut gz, &mut s).unwrap();
    assert_eq!(s, "2016-10-06T00:17:09Z stdout F hi\n");
    let all = all_logs(&p).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all.last().unwrap(), &p);
}

#[tokio::test]
async fn rotation_is_undone_when_reopen_fails_and_skips_stopped_containers() {
    let d = TempDir::new("rotate");
    let p = d.0.join("0.log");
    let rt = Arc::new(FakeRuntime::default());
    rt.log_paths
        .lock()
        .unwrap()
        .insert("c1".into(), p.display().to_string());
    let m = ContainerLogManager::new(rt.clone(), "10", 5)
        .unwrap()
        .unwrap();
    std::fs::write(&p, "x".repeat(50)).unwrap();
    m.rotate_logs().await.unwrap();
    assert!(rotated_names(&d).is_empty(), "not running: left alone");
    rt.running.store(true, Ordering::SeqCst);
    rt.fail_reopen.store(true, Ordering::SeqCst);
    m.rotate_logs().await.unwrap();
    assert!(rotated_names(&d).is_empty(), "renamed back");
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 50);
    assert!(ContainerLogManager::new(rt.clone(), "10", 1).is_err());
    assert!(ContainerLogManager::new(rt, "-1", 5).unwrap().is_none());
}

fn rotated_names(d: &TempDir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&d.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "0.log")
        .collect();
    v.sort();
    v
}
