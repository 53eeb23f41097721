//! hostPath volumes (upstream `pkg/volume/hostpath/host_path.go`): the path itself is what
//! containers mount; `type` is checked (following symlinks) and the `...OrCreate` types
//! create a 0755 directory or an empty 0644 file.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

pub fn check_type(path: &Path, path_type: &str) -> Result<(), String> {
    let p = path.display();
    let meta = fs::metadata(path).ok();
    let ft = meta.as_ref().map(fs::Metadata::file_type);
    let is = |f: fn(&fs::FileType) -> bool| ft.as_ref().is_some_and(f);
    match path_type {
        "" => Ok(()),
        "DirectoryOrCreate" | "Directory" => {
            if meta.is_none() && path_type == "DirectoryOrCreate" {
                return fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(path)
                    .map_err(|e| format!("mkdir {p}: {e}"));
            }
            if is(fs::FileType::is_dir) {
                Ok(())
            } else {
                Err(format!(
                    "hostPath type check failed: {p} is not a directory"
                ))
            }
        }
        "FileOrCreate" | "File" => {
            if meta.is_none() && path_type == "FileOrCreate" {
                return match fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o644)
                    .open(path)
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                    Err(e) => Err(format!("open {p}: {e}")),
                };
            }
            if is(fs::FileType::is_file) {
                Ok(())
            } else {
                Err(format!("hostPath type check failed: {p} is not a file"))
            }
        }
        "Socket" => is(FileTypeExt::is_socket)
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {p} is not a socket file")),
        "CharDevice" => is(FileTypeExt::is_char_device)
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {p} is not a character device")),
        "BlockDevice" => is(FileTypeExt::is_block_device)
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {p} is not a block device")),
        other => Err(format!("{other} is an invalid volume type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::test_support::TempDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn type_checks_with_upstream_messages() {
        let tmp = TempDir::new();
        let dir = tmp.path();
        let file = dir.join("f");
        fs::write(&file, "x").unwrap();
        let missing = dir.join("missing");
        let msg = |p: &Path, what: &str| {
            format!(
                "hostPath type check failed: {} is not a {what}",
                p.display()
            )
        };

        assert_eq!(check_type(&missing, ""), Ok(()));
        assert_eq!(check_type(dir, "Directory"), Ok(()));
        assert_eq!(check_type(&file, "Directory"), Err(msg(&file, "directory")));
        assert_eq!(
            check_type(&missing, "Directory"),
            Err(msg(&missing, "directory"))
        );
        assert_eq!(check_type(&file, "File"), Ok(()));
        assert_eq!(check_type(dir, "File"), Err(msg(dir, "file")));
        assert_eq!(check_type(&missing, "File"), Err(msg(&missing, "file")));
        assert_eq!(check_type(&file, "Socket"), Err(msg(&file, "socket file")));
        assert_eq!(
            check_type(&file, "CharDevice"),
            Err(msg(&file, "character device"))
        );
        assert_eq!(
            check_type(&file, "BlockDevice"),
            Err(msg(&file, "block device"))
        );
        assert_eq!(check_type(Path::new("/dev/null"), "CharDevice"), Ok(()));
        assert_eq!(
            check_type(&file, "Bogus"),
            Err("Bogus is an invalid volume type".to_string())
        );
        // A symlink is followed.
        let link = dir.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(check_type(&link, "File"), Ok(()));

        let sock_path = dir.join("s.sock");
        let _sock = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
        assert_eq!(check_type(&sock_path, "Socket"), Ok(()));
    }

    #[test]
    fn or_create_types_create() {
        let tmp = TempDir::new();
        let d = tmp.path().join("a/b");
        check_type(&d, "DirectoryOrCreate").unwrap();
        assert!(d.is_dir());
        let f = tmp.path().join("a/file");
        check_type(&f, "FileOrCreate").unwrap();
        assert!(f.is_file());
        assert_eq!(fs::metadata(&f).unwrap().permissions().mode() & 0o7, 0o4);
        // Existing of the wrong kind still fails.
        assert!(check_type(&f, "DirectoryOrCreate").is_err());
        assert!(check_type(&d, "FileOrCreate").is_err());
        // FileOrCreate does not create parents.
        assert!(check_type(&tmp.path().join("x/y"), "FileOrCreate").is_err());
    }
}
