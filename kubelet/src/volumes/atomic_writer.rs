//! Atomic projection of a set of files into a volume directory (upstream
//! `pkg/volume/util/atomic_writer.go`): the data lives in a hidden timestamped directory
//! `..<timestamp>.<n>`, `..data` is a symlink to it, and every user-visible top-level entry is
//! a symlink `name -> ..data/name`. An update writes a new timestamped directory, points
//! `..data_tmp` at it and renames that over `..data` (atomic), then removes stale top-level
//! links and the previous timestamped directory. Nothing is written when content and modes are
//! unchanged. Names starting with `..` are reserved.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const MAX_FILE_NAME_LENGTH: usize = 255;
const MAX_PATH_LENGTH: usize = 4096;
pub const DATA_DIR_NAME: &str = "..data";
pub const NEW_DATA_DIR_NAME: &str = "..data_tmp";

/// One file of the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    /// Permission bits (e.g. 0o644).
    pub mode: u32,
}

/// The files to project, keyed by their path relative to the volume directory.
pub type Payload = BTreeMap<String, FileProjection>;

pub struct AtomicWriter {
    target_dir: PathBuf,
}

/// What a `write` did (for logs and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A new timestamped directory was written and swapped in.
    Written,
    /// Content was already up to date.
    Unchanged,
}

impl AtomicWriter {
    /// The target directory must exist.
    pub fn new(target_dir: &Path) -> io::Result<AtomicWriter> {
        fs::metadata(target_dir)?;
        Ok(AtomicWriter {
            target_dir: target_dir.to_path_buf(),
        })
    }

    /// Projects `payload` into the target directory; errors read like upstream's
    /// (`invalid path: ...`) or are the underlying I/O error.
    pub fn write(&self, payload: &Payload) -> Result<WriteOutcome, String> {
        let payload = validate_payload(payload)?;
        let data_dir = self.target_dir.join(DATA_DIR_NAME);
        let old_ts = match fs::read_link(&data_dir) {
            Ok(p) => Some(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("error reading link for data directory: {e}")),
        };
        let old_ts_path = old_ts.as_ref().map(|p| self.target_dir.join(p));

        let mut to_remove = BTreeSet::new();
        let mut should_write = true;
        if let Some(old) = &old_ts_path {
            to_remove = paths_to_remove(&payload, old).map_err(|e| e.to_string())?;
            should_write = should_write_payload(&payload, old).map_err(|e| e.to_string())?
                || !to_remove.is_empty();
        }

        if should_write {
            let ts_dir = self.new_timestamp_dir().map_err(|e| e.to_string())?;
            if let Err(e) = write_payload_to_dir(&payload, &ts_dir) {
                let _ = fs::remove_dir_all(&ts_dir);
                return Err(format!(
                    "error writing payload to ts data directory {}: {e}",
                    ts_dir.display()
                ));
            }
            let ts_name = ts_dir
                .file_name()
                .map(PathBuf::from)
                .ok_or_else(|| "invalid timestamp directory".to_string())?;
            let tmp_link = self.target_dir.join(NEW_DATA_DIR_NAME);
            // A leftover from an interrupted write would make symlink() fail.
            let _ = fs::remove_file(&tmp_link);
            if let Err(e) = std::os::unix::fs::symlink(&ts_name, &tmp_link) {
                let _ = fs::remove_dir_all(&ts_dir);
                return Err(format!(
                    "error creating symbolic link for atomic update: {e}"
                ));
            }
            if let Err(e) = fs::rename(&tmp_link, &data_dir) {
                let _ = fs::remove_file(&tmp_link);
                let _ = fs::remove_dir_all(&ts_dir);
                return Err(format!(
                    "error renaming symbolic link for data directory {}: {e}",
                    tmp_link.display()
                ));
            }
            if let Some(old) = &old_ts_path
                && old.file_name() != Some(ts_name.as_os_str())
            {
                match fs::remove_dir_all(old) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(format!(
                            "error removing old data directory {}: {e}",
                            old.display()
                        ));
                    }
                }
            }
        }

        // Links are (re)created even when nothing was written: one may have been removed.
        self.create_user_visible_files(&payload)
            .map_err(|e| format!("error creating visible symlinks: {e}"))?;
        self.remove_user_visible_paths(&to_remove)?;
        Ok(if should_write {
            WriteOutcome::Written
        } else {
            WriteOutcome::Unchanged
        })
    }

    /// `..YYYY_MM_DD_HH_MM_SS.<random>` with mode 0755 whatever the umask.
    fn new_timestamp_dir(&self) -> io::Result<PathBuf> {
        let now = jiff::Timestamp::now()
            .strftime("%Y_%m_%d_%H_%M_%S")
            .to_string();
        for _ in 0..16 {
            let suffix = uuid::Uuid::new_v4().as_u128() % 10_000_000_000;
            let dir = self.target_dir.join(format!("..{now}.{suffix}"));
            match fs::create_dir(&dir) {
                Ok(()) => {
                    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("unable to create new temp directory"))
    }

    /// One symlink per first path element: `foo -> ..data/foo` (for `foo` and `foo/bar`).
    fn create_user_visible_files(&self, payload: &Payload) -> io::Result<()> {
        let tops: BTreeSet<&str> = payload
            .keys()
            .map(|p| p.split('/').next().unwrap_or(p))
            .collect();
        for top in tops {
            let visible = self.target_dir.join(top);
            match fs::symlink_metadata(&visible) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::os::unix::fs::symlink(Path::new(DATA_DIR_NAME).join(top), &visible)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Removes stale top-level entries (nested ones vanish with the old data directory).
    fn remove_user_visible_paths(&self, paths: &BTreeSet<String>) -> Result<(), String> {
        let mut last_err = None;
        for p in paths.iter().filter(|p| !p.contains('/')) {
            match fs::remove_file(self.target_dir.join(p)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => last_err = Some(format!("error pruning old user-visible path {p}: {e}")),
            }
        }
        last_err.map_or(Ok(()), Err)
    }
}

/// Validates every path and returns the payload keyed by cleaned paths.
fn validate_payload(payload: &Payload) -> Result<Payload, String> {
    let mut clean = Payload::new();
    for (path, content) in payload {
        validate_path(path)?;
        clean.insert(clean_path(path), content.clone());
    }
    Ok(clean)
}

/// A payload path must be relative, not contain or start with `..`, and respect the
/// file-name and path length limits.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("invalid path: must not be empty: \"\"".into());
    }
    if path.starts_with('/') {
        return Err(format!("invalid path: must be relative path: {path}"));
    }
    if path.len() > MAX_PATH_LENGTH {
        return Err(format!(
            "invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters"
        ));
    }
    let items: Vec<&str> = path.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(format!("invalid path: must not contain '..': {path}"));
        }
        if item.len() > MAX_FILE_NAME_LENGTH {
            return Err(format!(
                "invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters"
            ));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(format!("invalid path: must not start with '..': {path}"));
    }
    Ok(())
}

/// Lexical clean of a relative path (no `..` left after validation): drops empty and `.`
/// elements.
pub fn clean_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

fn should_write_payload(payload: &Payload, old_ts: &Path) -> io::Result<bool> {
    for (path, fp) in payload {
        let p = old_ts.join(path);
        let meta = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        };
        if !meta.is_file() || meta.permissions().mode() & 0o7777 != fp.mode & 0o7777 {
            return Ok(true);
        }
        if fs::read(&p)? != fp.data {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every path of the current data directory that the new payload no longer has (parents of
/// new files count as present).
fn paths_to_remove(payload: &Payload, old_ts: &Path) -> io::Result<BTreeSet<String>> {
    let mut current = BTreeSet::new();
    match walk(old_ts, "", &mut current) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e),
    }
    let mut wanted = BTreeSet::new();
    for file in payload.keys() {
        let mut sub = file.as_str();
        loop {
            wanted.insert(sub.to_string());
            match sub.rfind('/') {
                Some(i) => sub = &sub[..i],
                None => break,
            }
        }
    }
    Ok(current.difference(&wanted).cloned().collect())
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &rel, out)?;
        }
        out.insert(rel);
    }
    Ok(())
}

fn write_payload_to_dir(payload: &Payload, dir: &Path) -> io::Result<()> {
    for (path, fp) in payload {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent)?;
        }
        let mode = fp.mode & 0o7777;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&full)?;
        f.write_all(&fp.data)?;
        // The create mode was masked by the umask; set it exactly.
        fs::set_permissions(&full, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::test_support::TempDir;

    fn fp(data: &str, mode: u32) -> FileProjection {
        FileProjection {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    fn payload(items: &[(&str, &str, u32)]) -> Payload {
        items
            .iter()
            .map(|(p, d, m)| (p.to_string(), fp(d, *m)))
            .collect()
    }

    fn ts_dirs(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n != DATA_DIR_NAME)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_content_modes_and_symlinks() {
        let tmp = TempDir::new();
        let w = AtomicWriter::new(tmp.path()).unwrap();
        let p = payload(&[("a", "alpha", 0o644), ("sub/b", "beta", 0o600)]);
        assert_eq!(w.write(&p).unwrap(), WriteOutcome::Written);

        let dir = tmp.path();
        assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "alpha");
        assert_eq!(fs::read_to_string(dir.join("sub/b")).unwrap(), "beta");
        assert_eq!(fs::read_link(dir.join("a")).unwrap(), Path::new("..data/a"));
        assert_eq!(
            fs::read_link(dir.join("sub")).unwrap(),
            Path::new("..data/sub")
        );
        let data = fs::read_link(dir.join(DATA_DIR_NAME)).unwrap();
        let name = data.to_string_lossy().into_owned();
        assert!(name.starts_with(".."), "{name}");
        assert_eq!(name.matches('_').count(), 5, "{name}");
        let ts = dir.join(&data);
        let m = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(m(&ts), 0o755);
        assert_eq!(m(&ts.join("a")), 0o644);
        assert_eq!(m(&ts.join("sub/b")), 0o600);
        assert!(!dir.join(NEW_DATA_DIR_NAME).exists());
    }

    #[test]
    fn unchanged_content_is_not_rewritten() {
        let tmp = TempDir::new();
        let w = AtomicWriter::new(tmp.path()).unwrap();
        let p = payload(&[("a", "alpha", 0o644)]);
        w.write(&p).unwrap();
        let before = fs::read_link(tmp.path().join(DATA_DIR_NAME)).unwrap();
        assert_eq!(w.write(&p).unwrap(), WriteOutcome::Unchanged);
        assert_eq!(
            fs::read_link(tmp.path().join(DATA_DIR_NAME)).unwrap(),
            before
        );
        // A changed mode is a change.
        let p2 = payload(&[("a", "alpha", 0o600)]);
        assert_eq!(w.write(&p2).unwrap(), WriteOutcome::Written);
    }

    #[test]
    fn update_swaps_data_dir_and_drops_old_one() {
        let tmp = TempDir::new();
        let dir = tmp.path();
        let w = AtomicWriter::new(dir).unwrap();
        w.write(&payload(&[("a", "one", 0o644)])).unwrap();
        let first = fs::read_link(dir.join(DATA_DIR_NAME)).unwrap();
        w.write(&payload(&[("a", "two", 0o644)])).unwrap();
        let second = fs::read_link(dir.join(DATA_DIR_NAME)).unwrap();
        assert_ne!(first, second);
        assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "two");
        assert!(!dir.join(&first).exists());
        assert_eq!(ts_dirs(dir), vec![second.to_string_lossy().into_owned()]);
    }

    #[test]
    fn removed_keys_disappear() {
        let tmp = TempDir::new();
        let dir = tmp.path();
        let w = AtomicWriter::new(dir).unwrap();
        w.write(&payload(&[
            ("a", "1", 0o644),
            ("b", "2", 0o644),
            ("d/x", "3", 0o644),
            ("d/y", "4", 0o644),
        ]))
        .unwrap();
        // Same content for what is kept: removal alone must trigger the swap.
        let out = w
            .write(&payload(&[("a", "1", 0o644), ("d/x", "3", 0o644)]))
            .unwrap();
        assert_eq!(out, WriteOutcome::Written);
        assert!(fs::symlink_metadata(dir.join("b")).is_err());
        assert!(dir.join("d/x").exists());
        assert!(!dir.join("d/y").exists());
        w.write(&payload(&[("a", "1", 0o644)])).unwrap();
        assert!(fs::symlink_metadata(dir.join("d")).is_err());
        let visible: BTreeSet<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".."))
            .collect();
        assert_eq!(visible, BTreeSet::from(["a".to_string()]));
    }

    #[test]
    fn missing_visible_link_is_recreated_without_rewrite() {
        let tmp = TempDir::new();
        let dir = tmp.path();
        let w = AtomicWriter::new(dir).unwrap();
        let p = payload(&[("a", "1", 0o644)]);
        w.write(&p).unwrap();
        fs::remove_file(dir.join("a")).unwrap();
        assert_eq!(w.write(&p).unwrap(), WriteOutcome::Unchanged);
        assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "1");
    }

    #[test]
    fn empty_payload_and_invalid_paths() {
        let tmp = TempDir::new();
        let w = AtomicWriter::new(tmp.path()).unwrap();
        assert_eq!(w.write(&Payload::new()).unwrap(), WriteOutcome::Written);
        assert!(tmp.path().join(DATA_DIR_NAME).exists());
        assert_eq!(w.write(&Payload::new()).unwrap(), WriteOutcome::Unchanged);

        let err = w.write(&payload(&[("/abs", "", 0o644)])).unwrap_err();
        assert_eq!(err, "invalid path: must be relative path: /abs");
        let err = w.write(&payload(&[("a/../b", "", 0o644)])).unwrap_err();
        assert_eq!(err, "invalid path: must not contain '..': a/../b");
        let err = w.write(&payload(&[("..data", "", 0o644)])).unwrap_err();
        assert_eq!(err, "invalid path: must not start with '..': ..data");
        assert!(AtomicWriter::new(&tmp.path().join("missing")).is_err());
        assert_eq!(clean_path("./a//b/"), "a/b");
    }
}
