//! Unpacking a runtime archive (`.tar.gz` or `.zip`) into a folder, refusing what could escape it
//! or swamp the disk: absolute paths and `..`, links that point outside, device files, more entries
//! or more bytes than a llama.cpp build can have (a zip bomb).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The most entries an archive may hold.
const MAX_ENTRIES: usize = 20_000;
/// Unpacked bytes may be at most this many times the archive's size...
const MAX_RATIO: u64 = 40;
/// ...but never less than this (small archives of big sparse files are fine up to it)...
const MIN_BUDGET: u64 = 256 << 20;
/// ...nor more than this.
const MAX_BUDGET: u64 = 16 << 30;

/// Unpacks `archive` into `into` (which must exist); returns the bytes written.
pub fn unpack(archive: &Path, into: &Path) -> Result<u64, String> {
    let name = archive.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let size = std::fs::metadata(archive).map_err(|e| format!("cannot read {}: {e}", archive.display()))?.len();
    let mut budget = Budget { left: size.saturating_mul(MAX_RATIO).clamp(MIN_BUDGET, MAX_BUDGET), written: 0 };
    let file = std::fs::File::open(archive).map_err(|e| format!("cannot open {}: {e}", archive.display()))?;
    let outcome = if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        unpack_tar(file, into, &mut budget)
    } else if name.ends_with(".zip") {
        unpack_zip(file, into, &mut budget)
    } else {
        Err(format!("{name} is neither a .tar.gz nor a .zip"))
    };
    outcome.map(|()| budget.written).map_err(|reason| format!("{name}: {reason}"))
}

struct Budget {
    left: u64,
    written: u64,
}

/// The entry's path as plain components below the folder, or why it is refused.
fn safe_relative(path: &Path) -> Result<PathBuf, String> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(format!("the entry {} points outside the folder; refusing the archive", path.display()))
            }
        }
    }
    Ok(relative)
}

/// A link at `relative` pointing to `target` must land inside the folder.
fn check_link(relative: &Path, target: &Path) -> Result<(), String> {
    let refused = || {
        format!(
            "the link {} → {} points outside the folder; refusing the archive",
            relative.display(),
            target.display()
        )
    };
    let mut depth: Vec<&std::ffi::OsStr> =
        relative.parent().map(|p| p.components().filter_map(normal).collect()).unwrap_or_default();
    for component in target.components() {
        match component {
            Component::Normal(part) => depth.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                depth.pop().ok_or_else(refused)?;
            }
            Component::RootDir | Component::Prefix(_) => return Err(refused()),
        }
    }
    Ok(())
}

fn normal(component: Component<'_>) -> Option<&std::ffi::OsStr> {
    match component {
        Component::Normal(part) => Some(part),
        _ => None,
    }
}

/// Copies `reader` into a new file at `target`, within the budget.
fn write_file(reader: &mut impl Read, target: &Path, executable: bool, budget: &mut Budget) -> Result<(), String> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut file = std::fs::File::create(target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let mut buffer = vec![0u8; 256 << 10];
    loop {
        let read = reader.read(&mut buffer).map_err(|e| format!("the archive is damaged: {e}"))?;
        if read == 0 {
            break;
        }
        if read as u64 > budget.left {
            return Err(format!(
                "it unpacks to more than {} MB, far more than a llama.cpp build; refusing it (a zip bomb?)",
                (budget.written + budget.left) >> 20
            ));
        }
        budget.left -= read as u64;
        budget.written += read as u64;
        file.write_all(&buffer[..read]).map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    }
    set_executable(target, executable)
}

#[cfg(unix)]
fn set_executable(target: &Path, executable: bool) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", target.display()))
}

#[cfg(not(unix))]
fn set_executable(_target: &Path, _executable: bool) -> Result<(), String> {
    Ok(())
}

#[cfg(unix)]
fn make_link(target: &Path, at: &Path) -> Result<(), String> {
    if let Some(parent) = at.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let _ = std::fs::remove_file(at);
    std::os::unix::fs::symlink(target, at).map_err(|e| format!("cannot create the link {}: {e}", at.display()))
}

#[cfg(not(unix))]
fn make_link(_target: &Path, at: &Path) -> Result<(), String> {
    Err(format!("{} is a symbolic link, which Windows builds do not carry", at.display()))
}

fn count_entry(entries: &mut usize) -> Result<(), String> {
    *entries += 1;
    if *entries > MAX_ENTRIES {
        return Err(format!("it holds more than {MAX_ENTRIES} entries; refusing it"));
    }
    Ok(())
}

fn unpack_tar(file: std::fs::File, into: &Path, budget: &mut Budget) -> Result<(), String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let entries = archive.entries().map_err(|e| format!("not a tar.gz archive: {e}"))?;
    let mut count = 0usize;
    for entry in entries {
        count_entry(&mut count)?;
        let mut entry = entry.map_err(|e| format!("the archive is damaged: {e}"))?;
        let path = entry.path().map_err(|e| format!("an entry has an unreadable name: {e}"))?.into_owned();
        let relative = safe_relative(&path)?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = into.join(&relative);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let executable = entry.header().mode().is_ok_and(|mode| mode & 0o111 != 0);
                write_file(&mut entry, &target, executable, budget)?
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| format!("a link has an unreadable target: {e}"))?
                    .ok_or_else(|| format!("the link {} has no target", path.display()))?
                    .into_owned();
                check_link(&relative, &link)?;
                make_link(&link, &target)?
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            other => {
                return Err(format!(
                    "the entry {} is a {other:?}, which a llama.cpp build never holds; refusing it",
                    path.display()
                ))
            }
        }
    }
    Ok(())
}

fn unpack_zip(file: std::fs::File, into: &Path, budget: &mut Budget) -> Result<(), String> {
    let mut archive =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| format!("not a zip archive: {e}"))?;
    if archive.len() > MAX_ENTRIES {
        return Err(format!("it holds more than {MAX_ENTRIES} entries; refusing it"));
    }
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| format!("the archive is damaged: {e}"))?;
        let name = entry.name().map_err(|e| format!("an entry has an unreadable name: {e}"))?.into_owned();
        let relative = safe_relative(Path::new(&name.replace('\\', "/")))?;
        if entry.enclosed_name().is_none() {
            return Err(format!("the entry {name} points outside the folder; refusing the archive"));
        }
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = into.join(&relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
        } else if entry.is_symlink() {
            let mut link = String::new();
            entry.by_ref().take(4096).read_to_string(&mut link).map_err(|e| format!("the archive is damaged: {e}"))?;
            check_link(&relative, Path::new(&link))?;
            make_link(Path::new(&link), &target)?;
        } else {
            let executable = entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0) || name.ends_with("llama-server");
            write_file(&mut entry, &target, executable, budget)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(path: &Path, build: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<std::fs::File>>)) {
        let encoder = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        build(&mut builder);
        builder.into_inner().unwrap().finish().unwrap();
    }

    fn file_header(size: u64, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(mode);
        header.set_entry_type(tar::EntryType::Regular);
        header
    }

    /// A header whose name is written raw, as an attacker would, past the tar crate's own checks.
    fn raw_name(header: &mut tar::Header, name: &str) {
        let bytes = &mut header.as_old_mut().name;
        bytes.fill(0);
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
    }

    #[test]
    fn a_release_layout_unpacks_with_its_modes_and_inner_links() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("llama-b1-bin-ubuntu-x64.tar.gz");
        tar_gz(&archive, |b| {
            b.append_data(&mut file_header(6, 0o755), "llama-b1/llama-server", &b"binary"[..]).unwrap();
            b.append_data(&mut file_header(3, 0o644), "llama-b1/libggml.so.0", &b"lib"[..]).unwrap();
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Symlink);
            link.set_size(0);
            b.append_link(&mut link, "llama-b1/libggml.so", "libggml.so.0").unwrap();
        });
        let into = dir.path().join("out");
        std::fs::create_dir(&into).unwrap();
        assert_eq!(unpack(&archive, &into).unwrap(), 9);
        assert_eq!(std::fs::read(into.join("llama-b1/libggml.so")).unwrap(), b"lib");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(into.join("llama-b1/llama-server")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755);
        }
    }

    #[test]
    fn entries_that_escape_the_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let into = dir.path().join("out");
        std::fs::create_dir(&into).unwrap();

        let traversal = dir.path().join("traversal.tar.gz");
        tar_gz(&traversal, |b| {
            let mut header = file_header(4, 0o644);
            raw_name(&mut header, "../escaped");
            b.append(&header, &b"evil"[..]).unwrap();
        });
        assert!(unpack(&traversal, &into).unwrap_err().contains("outside the folder"));
        assert!(!dir.path().join("escaped").exists());

        let absolute = dir.path().join("absolute.tar.gz");
        tar_gz(&absolute, |b| {
            let mut header = file_header(4, 0o644);
            raw_name(&mut header, "/tmp/burncloud-escaped");
            b.append(&header, &b"evil"[..]).unwrap();
        });
        assert!(unpack(&absolute, &into).unwrap_err().contains("outside the folder"));

        let link_out = dir.path().join("link.tar.gz");
        tar_gz(&link_out, |b| {
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Symlink);
            link.set_size(0);
            b.append_link(&mut link, "llama-b1/lib", "../../..").unwrap();
        });
        assert!(unpack(&link_out, &into).unwrap_err().contains("points outside"));

        let zip_path = dir.path().join("traversal.zip");
        {
            let mut writer = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
            writer.start_file("../escaped.dll", zip::write::SimpleFileOptions::default()).unwrap();
            writer.write_all(b"evil").unwrap();
            writer.finish().unwrap();
        }
        assert!(unpack(&zip_path, &into).unwrap_err().contains("outside the folder"));
        assert!(!dir.path().join("escaped.dll").exists());
    }

    #[test]
    fn a_zip_bomb_stops_at_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let bomb = dir.path().join("bomb.zip");
        {
            let mut writer = zip::ZipWriter::new(std::fs::File::create(&bomb).unwrap());
            let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            writer.start_file("ggml.dll", options).unwrap();
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..300 {
                writer.write_all(&zeros).unwrap();
            }
            writer.finish().unwrap();
        }
        assert!(std::fs::metadata(&bomb).unwrap().len() < 2 << 20);
        let into = dir.path().join("out");
        std::fs::create_dir(&into).unwrap();
        let error = unpack(&bomb, &into).unwrap_err();
        assert!(error.contains("zip bomb"), "{error}");
    }

    #[test]
    fn damaged_and_unknown_archives_are_refused_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let into = dir.path().join("out");
        std::fs::create_dir(&into).unwrap();
        let truncated = dir.path().join("cut.tar.gz");
        tar_gz(&truncated, |b| {
            b.append_data(&mut file_header(100_000, 0o755), "llama-b1/llama-server", &vec![7u8; 100_000][..]).unwrap();
        });
        let bytes = std::fs::read(&truncated).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        assert!(unpack(&truncated, &into).unwrap_err().contains("damaged"));
        let other = dir.path().join("llama.7z");
        std::fs::write(&other, b"7z").unwrap();
        assert!(unpack(&other, &into).unwrap_err().contains("neither"));
    }
}
