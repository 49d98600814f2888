//! Managed llama.cpp runtimes: choosing a release asset for this machine from the GitHub releases
//! API (or a server that answers like it), and keeping installed builds under
//! `<data dir>/runtimes/<tag>-<variant>/`, each with a `runtime.json` written only after its
//! llama-server answered `--version`. One is active (a setting); the rest can be removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burncloud_database::now_ms;
use burncloud_service_api::{
    Download, DownloadFinisher, RemoteFailure, Runtime, RuntimeDevice, RuntimeVariant, ServiceError, ServiceResult,
    SettingsService, UrlFile, LLAMA_RUNTIME_SETTING,
};
use serde::{Deserialize, Serialize};

use crate::binary::EXECUTABLE;

/// A base URL that answers like `https://api.github.com/repos/ggml-org/llama.cpp/releases`.
pub const LLAMACPP_RELEASES_ENV: &str = "BURNCLOUD_LLAMACPP_RELEASES";
pub const DEFAULT_RELEASES_URL: &str = "https://api.github.com/repos/ggml-org/llama.cpp/releases";
const MANIFEST: &str = "runtime.json";

/// One release as the GitHub API lists it (the fields BurnCloud reads).
#[derive(Clone, Debug, Deserialize)]
pub struct Release {
    pub tag_name: String,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub assets: Vec<Asset>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Asset {
    pub name: String,
    pub size: u64,
    pub browser_download_url: String,
    /// `sha256:<hex>`; releases before mid-2025 have none.
    pub digest: Option<String>,
}

/// The OS and CPU the build must be for, as llama.cpp names them in asset names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform {
    pub windows: bool,
    /// `x64` or `arm64`.
    pub arch: &'static str,
}

impl Platform {
    pub fn current() -> Platform {
        Platform { windows: cfg!(windows), arch: if cfg!(target_arch = "aarch64") { "arm64" } else { "x64" } }
    }
}

/// The asset(s) of `release` for `variant` here: the build, and for CUDA its `cudart` companion.
/// `cuda_driver` (`12.4`) bounds the CUDA version chosen.
pub fn pick_assets(
    release: &Release,
    platform: Platform,
    variant: RuntimeVariant,
    cuda_driver: Option<&str>,
) -> Result<Vec<Asset>, String> {
    let tag = &release.tag_name;
    let arch = platform.arch;
    let find = |name: &str| release.assets.iter().find(|a| a.name == name).cloned();
    let wanted =
        match (platform.windows, variant) {
            (false, RuntimeVariant::Cpu) => format!("llama-{tag}-bin-ubuntu-{arch}.tar.gz"),
            (false, RuntimeVariant::Vulkan) => format!("llama-{tag}-bin-ubuntu-vulkan-{arch}.tar.gz"),
            (false, RuntimeVariant::Cuda) => return Err(
                "llama.cpp publishes no CUDA build for Linux; install the Vulkan build, which runs on NVIDIA GPUs too"
                    .into(),
            ),
            (true, RuntimeVariant::Cpu) => format!("llama-{tag}-bin-win-cpu-{arch}.zip"),
            (true, RuntimeVariant::Vulkan) => format!("llama-{tag}-bin-win-vulkan-{arch}.zip"),
            (true, RuntimeVariant::Cuda) => return pick_cuda(release, arch, cuda_driver),
        };
    find(&wanted).map(|asset| vec![asset]).ok_or_else(|| format!("release {tag} has no {wanted}"))
}

fn pick_cuda(release: &Release, arch: &str, cuda_driver: Option<&str>) -> Result<Vec<Asset>, String> {
    let tag = &release.tag_name;
    let prefix = format!("llama-{tag}-bin-win-cuda-");
    let suffix = format!("-{arch}.zip");
    let driver = cuda_driver.and_then(parse_version).unwrap_or((12, 9));
    let mut builds: Vec<((u32, u32), &Asset)> = release
        .assets
        .iter()
        .filter_map(|asset| {
            let version = asset.name.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
            Some((parse_version(version)?, asset))
        })
        .filter(|(version, _)| *version <= driver)
        .collect();
    builds.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    for ((major, minor), build) in builds {
        let companion = format!("cudart-llama-bin-win-cuda-{major}.{minor}-{arch}.zip");
        if let Some(cudart) = release.assets.iter().find(|a| a.name == companion) {
            return Ok(vec![build.clone(), cudart.clone()]);
        }
    }
    Err(format!(
        "release {tag} has no Windows CUDA build (with its cudart archive) that a CUDA {}.{} driver can run",
        driver.0, driver.1
    ))
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Which build an asset is, from its name.
pub fn variant_of_asset(name: &str) -> RuntimeVariant {
    if name.contains("-cuda-") {
        RuntimeVariant::Cuda
    } else if name.contains("-vulkan-") {
        RuntimeVariant::Vulkan
    } else {
        RuntimeVariant::Cpu
    }
}

/// The files to download for `assets`, each with its verified size and checksum, behind `prefix`
/// (a mirror) where one is set.
pub fn url_files(assets: &[Asset], prefix: &str) -> Result<Vec<UrlFile>, String> {
    assets
        .iter()
        .map(|asset| {
            let sha256 = asset
                .digest
                .as_deref()
                .and_then(|d| d.strip_prefix("sha256:"))
                .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| {
                    format!(
                        "{} comes without a sha256 digest, so it cannot be verified; choose a newer release",
                        asset.name
                    )
                })?;
            Ok(UrlFile {
                name: asset.name.clone(),
                url: format!("{}{}", prefix.trim(), asset.browser_download_url),
                size: asset.size,
                sha256: sha256.to_ascii_lowercase(),
            })
        })
        .collect()
}

/// Reads the release list (newest first), or the one release named `tag`.
pub async fn fetch_releases(client: &reqwest::Client, base: &str, tag: Option<&str>) -> ServiceResult<Vec<Release>> {
    let base = base.trim_end_matches('/');
    let url = match tag {
        Some(tag) => format!("{base}/tags/{tag}"),
        None => format!("{base}?per_page=20"),
    };
    let unreachable = |error: reqwest::Error| ServiceError::Remote {
        code: RemoteFailure::RuntimeSourceUnreachable,
        message: format!("cannot reach the llama.cpp releases at {base}: {error}"),
    };
    let response = client
        .get(&url)
        .header(reqwest::header::ACCEPT, "application/vnd.github+json")
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND && tag.is_some() {
        return Err(ServiceError::NotFound(format!("llama.cpp has no release {}", tag.unwrap_or_default())));
    }
    if !status.is_success() {
        let body: String = response.text().await.unwrap_or_default().chars().take(200).collect();
        let hint = if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            " (GitHub limits how often it is asked; try again in an hour)"
        } else {
            ""
        };
        return Err(ServiceError::Remote {
            code: RemoteFailure::RuntimeSourceError,
            message: format!("the llama.cpp releases answered {status}{hint}: {body}"),
        });
    }
    let text = response.text().await.map_err(unreachable)?;
    let releases = match tag {
        Some(_) => serde_json::from_str::<Release>(&text).map(|r| vec![r]),
        None => serde_json::from_str::<Vec<Release>>(&text),
    };
    releases.map_err(|error| ServiceError::Remote {
        code: RemoteFailure::RuntimeSourceError,
        message: format!("the llama.cpp releases sent an unreadable list: {error}"),
    })
}

/// What is written beside an installed build.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Manifest {
    tag: String,
    variant: RuntimeVariant,
    version: String,
    /// The llama-server, relative to the runtime's folder.
    server: String,
    devices: Vec<RuntimeDevice>,
    supports_fit: bool,
    installed_at_ms: i64,
    assets: Vec<String>,
}

/// The installed runtimes, on disk.
pub struct Runtimes {
    pub dir: PathBuf,
    settings: Arc<dyn SettingsService>,
}

impl Runtimes {
    pub fn new(dir: PathBuf, settings: Arc<dyn SettingsService>) -> Runtimes {
        Runtimes { dir, settings }
    }

    fn active_id(&self) -> Option<String> {
        self.settings.get_setting(LLAMA_RUNTIME_SETTING).ok().flatten().filter(|id| !id.is_empty())
    }

    fn read(&self, id: &str, active: Option<&str>) -> Option<Runtime> {
        let folder = self.dir.join(id);
        let manifest: Manifest = serde_json::from_slice(&std::fs::read(folder.join(MANIFEST)).ok()?).ok()?;
        Some(Runtime {
            id: id.to_string(),
            tag: manifest.tag,
            variant: manifest.variant,
            version: manifest.version,
            server_path: folder.join(&manifest.server).to_string_lossy().into_owned(),
            devices: manifest.devices,
            supports_fit: manifest.supports_fit,
            active: active == Some(id),
            installed_at_ms: manifest.installed_at_ms,
        })
    }

    pub fn list(&self) -> Vec<Runtime> {
        let active = self.active_id();
        let mut found: Vec<Runtime> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                (!name.starts_with('.')).then(|| self.read(&name, active.as_deref())).flatten()
            })
            .collect();
        found.sort_by(|a, b| b.installed_at_ms.cmp(&a.installed_at_ms).then(a.id.cmp(&b.id)));
        found
    }

    pub fn get(&self, id: &str) -> ServiceResult<Runtime> {
        check_id(id)?;
        self.read(id, self.active_id().as_deref())
            .ok_or_else(|| ServiceError::NotFound(format!("no installed runtime {id}")))
    }

    /// The active runtime's llama-server, if one is active and installed.
    pub fn active_server(&self) -> Option<PathBuf> {
        let id = self.active_id()?;
        self.read(&id, None).map(|runtime| PathBuf::from(runtime.server_path))
    }

    pub fn activate(&self, id: &str) -> ServiceResult<Runtime> {
        let runtime = self.get(id)?;
        crate::binary::version(Path::new(&runtime.server_path)).map_err(|reason| ServiceError::Remote {
            code: RemoteFailure::RuntimeBroken,
            message: format!("runtime {id} no longer runs ({reason}); remove it and install it again"),
        })?;
        self.settings.set_setting(LLAMA_RUNTIME_SETTING, id)?;
        self.get(id)
    }

    /// Removes a runtime that is not active and that no running instance uses.
    pub fn delete(&self, id: &str, in_use: impl Fn(&Path) -> bool) -> ServiceResult<()> {
        let runtime = self.get(id)?;
        if runtime.active {
            return Err(ServiceError::Conflict(format!(
                "runtime {id} is active: activate another one before removing it"
            )));
        }
        let folder = self.dir.join(id);
        if in_use(&folder) {
            return Err(ServiceError::Conflict(format!("a running instance uses runtime {id}: stop it first")));
        }
        std::fs::remove_dir_all(&folder)
            .map_err(|e| ServiceError::Storage(format!("cannot remove {}: {e}", folder.display())))
    }

    /// Unpacks verified archives into a new runtime, checks that its llama-server runs, and makes it
    /// active. On any failure nothing is left behind and the active runtime stays as it was.
    pub fn install(&self, tag: &str, archives: &[PathBuf]) -> ServiceResult<Runtime> {
        self.install_as(tag, archives, true)
    }

    /// `install`, making the new runtime active only when `activate` holds.
    fn install_as(&self, tag: &str, archives: &[PathBuf], activate: bool) -> ServiceResult<Runtime> {
        check_id(tag)?;
        if archives.is_empty() {
            return Err(ServiceError::invalid("no archive to install"));
        }
        let names: Vec<String> = archives
            .iter()
            .map(|a| a.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
            .collect();
        let variant = variant_of_asset(&names[0]);
        let id = format!("{tag}-{}", variant.as_str());
        let staging = self.dir.join(format!(".staging-{id}-{}", now_ms()));
        let failed = |message: String| {
            let _ = std::fs::remove_dir_all(&staging);
            ServiceError::Remote { code: RemoteFailure::RuntimeInstallFailed, message }
        };
        std::fs::create_dir_all(&staging).map_err(|e| failed(format!("cannot create {}: {e}", staging.display())))?;
        for archive in archives {
            crate::unpack::unpack(archive, &staging).map_err(&failed)?;
        }
        let server = find_server(&staging)
            .ok_or_else(|| failed(format!("{} holds no {EXECUTABLE}; is it a llama.cpp build?", names[0])))?;
        let version = crate::binary::version(&server)
            .map_err(|reason| failed(format!("its {EXECUTABLE} does not run on this machine: {reason}")))?;
        let devices = crate::hardware::list_devices(&server).unwrap_or_default();
        let supports_fit = crate::binary::supports_fit(&server);
        let relative = server.strip_prefix(&staging).unwrap_or(&server).to_string_lossy().replace('\\', "/");
        let manifest = Manifest {
            tag: tag.to_string(),
            variant,
            version,
            server: relative,
            devices,
            supports_fit,
            installed_at_ms: now_ms(),
            assets: names,
        };
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| failed(e.to_string()))?;
        std::fs::write(staging.join(MANIFEST), bytes).map_err(|e| failed(format!("cannot write the manifest: {e}")))?;
        let target = self.dir.join(&id);
        if target.exists() {
            // A reinstall of the same build replaces it; the old one goes only once the new is in place.
            let old = self.dir.join(format!(".old-{id}-{}", now_ms()));
            std::fs::rename(&target, &old).map_err(|e| failed(format!("cannot replace {}: {e}", target.display())))?;
            if let Err(error) = std::fs::rename(&staging, &target) {
                let _ = std::fs::rename(&old, &target);
                return Err(failed(format!("cannot move the runtime into place: {error}")));
            }
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&staging, &target)
                .map_err(|e| failed(format!("cannot move the runtime into place: {e}")))?;
        }
        if activate {
            self.activate(&id)
        } else {
            self.get(&id)
        }
    }

    /// Installs the llama.cpp archives shipped beside the program (the Windows installers carry
    /// one, `llama-<tag>-bin-<os>-<variant>-x64.zip` with a `.sha256` beside it) that are not
    /// installed yet, each only once its checksum matches; the first becomes active when none is.
    pub fn import_bundled(&self, folder: &Path) -> Vec<Result<Runtime, String>> {
        let mut archives: Vec<PathBuf> = std::fs::read_dir(folder)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                name.starts_with("llama-") && (name.ends_with(".zip") || name.ends_with(".tar.gz"))
            })
            .collect();
        archives.sort();
        archives
            .into_iter()
            .filter_map(|archive| {
                let name = archive.file_name()?.to_string_lossy().into_owned();
                let tag = name.strip_prefix("llama-")?.split_once("-bin-")?.0.to_string();
                let id = format!("{tag}-{}", variant_of_asset(&name).as_str());
                if self.dir.join(&id).join(MANIFEST).is_file() {
                    return None;
                }
                Some(self.import_one(&archive, &name, &tag))
            })
            .collect()
    }

    fn import_one(&self, archive: &Path, name: &str, tag: &str) -> Result<Runtime, String> {
        let mut sidecar = archive.as_os_str().to_owned();
        sidecar.push(".sha256");
        let expected = std::fs::read_to_string(&sidecar)
            .map_err(|e| format!("{name} has no readable .sha256 beside it ({e}); not installed"))?;
        let expected = expected.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        let actual = sha256_of(archive).map_err(|e| format!("cannot read {name}: {e}"))?;
        if expected != actual {
            return Err(format!(
                "{name} does not match its .sha256 (expected {expected}, got {actual}); not installed"
            ));
        }
        let activate = self.active_id().is_none();
        self.install_as(tag, &[archive.to_path_buf()], activate).map_err(|e| e.to_string())
    }

    /// Leftovers of installs that were interrupted (the app killed while unpacking).
    pub fn remove_leftovers(&self) {
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".staging-") || name.starts_with(".old-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Runtime ids and release tags: one plain path segment.
pub fn check_id(id: &str) -> ServiceResult<()> {
    let plain = id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if id.is_empty() || id.len() > 100 || !plain || id.starts_with('.') {
        return Err(ServiceError::invalid(format!("'{id}' is not a runtime id or release tag")));
    }
    Ok(())
}

/// The shallowest llama-server in the unpacked tree (release archives put it at the top, in a
/// `llama-<tag>/` folder, or in `build/bin/`).
fn find_server(root: &Path) -> Option<PathBuf> {
    let mut level = vec![root.to_path_buf()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for folder in level {
            let mut entries: Vec<_> = std::fs::read_dir(&folder).ok()?.flatten().collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let path = entry.path();
                if entry.file_name() == EXECUTABLE && path.is_file() {
                    return Some(path);
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    next.push(path);
                }
            }
        }
        level = next;
    }
    None
}

/// Turns a finished runtime download into an installed, active runtime.
pub struct RuntimeFinisher(pub Arc<Runtimes>);

impl DownloadFinisher for RuntimeFinisher {
    fn finish(&self, download: &Download, files: &[PathBuf]) -> ServiceResult<()> {
        self.0.install(&download.repo, files).map(|runtime| {
            tracing::info!(runtime = %runtime.id, version = %runtime.version, "llama.cpp runtime installed and active");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(tag: &str, names: &[&str]) -> Release {
        Release {
            tag_name: tag.into(),
            draft: false,
            assets: names
                .iter()
                .map(|name| Asset {
                    name: name.to_string(),
                    size: 1,
                    browser_download_url: format!(
                        "https://github.com/ggml-org/llama.cpp/releases/download/{tag}/{name}"
                    ),
                    digest: Some(format!("sha256:{}", "ab".repeat(32))),
                })
                .collect(),
        }
    }

    /// Asset names as llama.cpp's release workflow writes them (see shared/notes/llama-cpp-releases.md).
    const B7412: &[&str] = &[
        "llama-b7412-bin-ubuntu-x64.tar.gz",
        "llama-b7412-bin-ubuntu-vulkan-x64.tar.gz",
        "llama-b7412-bin-ubuntu-rocm-7.2-x64.tar.gz",
        "llama-b7412-bin-win-cpu-x64.zip",
        "llama-b7412-bin-win-cpu-arm64.zip",
        "llama-b7412-bin-win-vulkan-x64.zip",
        "llama-b7412-bin-win-cuda-12.4-x64.zip",
        "llama-b7412-bin-win-cuda-13.3-x64.zip",
        "cudart-llama-bin-win-cuda-12.4-x64.zip",
        "cudart-llama-bin-win-cuda-13.3-x64.zip",
        "llama-b7412-bin-win-hip-radeon-x64.zip",
        "llama-b7412-bin-macos-arm64.tar.gz",
    ];

    fn names(assets: Result<Vec<Asset>, String>) -> Vec<String> {
        assets.unwrap().into_iter().map(|a| a.name).collect()
    }

    #[test]
    fn each_machine_gets_its_build() {
        let r = release("b7412", B7412);
        let linux = Platform { windows: false, arch: "x64" };
        let windows = Platform { windows: true, arch: "x64" };
        assert_eq!(names(pick_assets(&r, linux, RuntimeVariant::Cpu, None)), ["llama-b7412-bin-ubuntu-x64.tar.gz"]);
        assert_eq!(
            names(pick_assets(&r, linux, RuntimeVariant::Vulkan, None)),
            ["llama-b7412-bin-ubuntu-vulkan-x64.tar.gz"]
        );
        assert!(pick_assets(&r, linux, RuntimeVariant::Cuda, Some("12.4"))
            .unwrap_err()
            .contains("no CUDA build for Linux"));
        assert_eq!(
            names(pick_assets(&r, windows, RuntimeVariant::Vulkan, None)),
            ["llama-b7412-bin-win-vulkan-x64.zip"]
        );
        assert_eq!(
            names(pick_assets(&r, Platform { windows: true, arch: "arm64" }, RuntimeVariant::Cpu, None)),
            ["llama-b7412-bin-win-cpu-arm64.zip"]
        );
        // The newest CUDA the driver can run, with its cudart companion.
        assert_eq!(
            names(pick_assets(&r, windows, RuntimeVariant::Cuda, Some("13.4"))),
            ["llama-b7412-bin-win-cuda-13.3-x64.zip", "cudart-llama-bin-win-cuda-13.3-x64.zip"]
        );
        assert_eq!(
            names(pick_assets(&r, windows, RuntimeVariant::Cuda, Some("12.8"))),
            ["llama-b7412-bin-win-cuda-12.4-x64.zip", "cudart-llama-bin-win-cuda-12.4-x64.zip"]
        );
        assert!(pick_assets(&r, windows, RuntimeVariant::Cuda, Some("11.8")).unwrap_err().contains("CUDA 11.8 driver"));
        let without_cudart = release("b1", &["llama-b1-bin-win-cuda-12.4-x64.zip"]);
        assert!(pick_assets(&without_cudart, windows, RuntimeVariant::Cuda, None).is_err());
        assert!(pick_assets(&release("b2", &[]), linux, RuntimeVariant::Cpu, None).unwrap_err().contains("has no"));
    }

    #[test]
    fn download_urls_carry_the_mirror_and_require_a_digest() {
        let r = release("b7412", &["llama-b7412-bin-ubuntu-x64.tar.gz"]);
        let files = url_files(&r.assets, "https://ghfast.top/").unwrap();
        assert_eq!(
            files[0].url,
            "https://ghfast.top/https://github.com/ggml-org/llama.cpp/releases/download/b7412/llama-b7412-bin-ubuntu-x64.tar.gz"
        );
        assert_eq!(files[0].sha256, "ab".repeat(32));
        let mut unsigned = r.assets.clone();
        unsigned[0].digest = None;
        assert!(url_files(&unsigned, "").unwrap_err().contains("without a sha256"));
        assert_eq!(variant_of_asset("llama-b1-bin-win-cuda-12.4-x64.zip"), RuntimeVariant::Cuda);
        assert_eq!(variant_of_asset("llama-b1-bin-ubuntu-vulkan-x64.tar.gz"), RuntimeVariant::Vulkan);
        assert_eq!(variant_of_asset("llama-b1-bin-ubuntu-x64.tar.gz"), RuntimeVariant::Cpu);
    }
}
