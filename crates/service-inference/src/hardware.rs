//! What this machine has for local models: CPU and its vector units, memory, every GPU with its
//! VRAM (NVML for NVIDIA, the system's adapter list for the rest), and what the active llama-server
//! itself can use. A probe that fails is reported with its reason, never an error.

use std::path::Path;
use std::time::Duration;

use burncloud_service_api::{
    CpuInfo, GpuInfo, GpuVendor, Hardware, MemoryInfo, ProbeNote, RuntimeDevice, RuntimeVariant,
};

/// Probes everything; blocks for as long as the probes take (NVML init, `--list-devices`).
pub fn probe(active_server: Option<&Path>) -> Hardware {
    let mut unknown = Vec::new();
    let (cpu, memory) = cpu_and_memory(&mut unknown);
    let mut gpus = nvidia_gpus(&mut unknown);
    let has_nvml = !gpus.is_empty();
    for gpu in system_gpus(&mut unknown) {
        // NVML already reported NVIDIA adapters, with free memory and the driver's CUDA version.
        if !(has_nvml && gpu.vendor == GpuVendor::Nvidia) {
            gpus.push(gpu);
        }
    }
    let runtime_devices = active_server.map(|server| match list_devices(server) {
        Ok(devices) => devices,
        Err(reason) => {
            unknown.push(ProbeNote { probe: "llama-server --list-devices".into(), reason });
            Vec::new()
        }
    });
    let (recommended_variant, recommendation) = recommend(std::env::consts::OS, &gpus);
    Hardware {
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        cpu,
        memory,
        gpus,
        recommended_variant,
        recommendation,
        runtime_devices,
        unknown,
    }
}

fn cpu_and_memory(unknown: &mut Vec<ProbeNote>) -> (CpuInfo, MemoryInfo) {
    let logical = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let (avx2, avx512) = vector_units();
    let mut cpu = CpuInfo { model: "unknown".into(), physical_cores: None, logical_cores: logical, avx2, avx512 };
    let mut memory = MemoryInfo { total_bytes: 0, available_bytes: 0 };
    match sysinfo::System::new() {
        Ok(mut system) => {
            system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
            system.refresh_memory();
            if let Some(first) = system.cpus().first() {
                cpu.model = first.brand().trim().to_string();
                cpu.logical_cores = system.cpus().len() as u32;
            }
            cpu.physical_cores = sysinfo::System::physical_core_count().ok().map(|n| n as u32);
            memory = MemoryInfo { total_bytes: system.total_memory(), available_bytes: system.available_memory() };
        }
        Err(error) => unknown.push(ProbeNote { probe: "cpu and memory".into(), reason: error.to_string() }),
    }
    (cpu, memory)
}

#[cfg(target_arch = "x86_64")]
fn vector_units() -> (bool, bool) {
    (std::arch::is_x86_feature_detected!("avx2"), std::arch::is_x86_feature_detected!("avx512f"))
}

#[cfg(not(target_arch = "x86_64"))]
fn vector_units() -> (bool, bool) {
    (false, false)
}

/// NVIDIA GPUs through NVML, which the driver installs; without it there is no CUDA GPU.
fn nvidia_gpus(unknown: &mut Vec<ProbeNote>) -> Vec<GpuInfo> {
    let nvml = match nvml_wrapper::Nvml::init() {
        Ok(nvml) => nvml,
        Err(error) => {
            unknown.push(ProbeNote {
                probe: "nvml".into(),
                reason: format!("no NVIDIA driver library ({error}); CUDA is not available"),
            });
            return Vec::new();
        }
    };
    let cuda_driver = nvml.sys_cuda_driver_version().ok().map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10));
    let count = match nvml.device_count() {
        Ok(count) => count,
        Err(error) => {
            unknown.push(ProbeNote { probe: "nvml".into(), reason: format!("cannot count GPUs: {error}") });
            return Vec::new();
        }
    };
    let mut gpus = Vec::new();
    for index in 0..count {
        match nvml.device_by_index(index) {
            Ok(device) => {
                let memory = device.memory_info().ok();
                gpus.push(GpuInfo {
                    vendor: GpuVendor::Nvidia,
                    name: device.name().unwrap_or_else(|_| format!("NVIDIA GPU {index}")),
                    total_vram_bytes: memory.as_ref().map(|m| m.total),
                    free_vram_bytes: memory.as_ref().map(|m| m.free),
                    backends: vec![RuntimeVariant::Cuda, RuntimeVariant::Vulkan],
                    cuda_driver: cuda_driver.clone(),
                    found_by: "nvml".into(),
                });
            }
            Err(error) => unknown.push(ProbeNote { probe: format!("nvml device {index}"), reason: error.to_string() }),
        }
    }
    gpus
}

/// Every adapter the system lists (DXGI on Windows, sysfs on Linux).
fn system_gpus(unknown: &mut Vec<ProbeNote>) -> Vec<GpuInfo> {
    let gpus = match sysinfo::Gpus::new_with_refreshed_list() {
        Ok(gpus) => gpus,
        Err(error) => {
            unknown.push(ProbeNote { probe: "graphics adapters".into(), reason: error.to_string() });
            return Vec::new();
        }
    };
    gpus.iter()
        .filter_map(|gpu| {
            let vendor_text = gpu.vendor().unwrap_or("").to_string();
            let vendor = vendor_of(&vendor_text);
            let name = gpu.model().map(str::to_string).unwrap_or_else(|| format!("{vendor_text} GPU"));
            // Software adapters (Microsoft Basic Render Driver, llvmpipe) cannot run a model.
            let software = ["basic render", "llvmpipe", "software"].iter().any(|s| name.to_lowercase().contains(s));
            (!software).then(|| GpuInfo {
                vendor,
                name,
                total_vram_bytes: gpu.total_memory(),
                free_vram_bytes: gpu.total_memory().zip(gpu.used_memory()).map(|(t, u)| t.saturating_sub(u)),
                backends: match vendor {
                    GpuVendor::Nvidia => vec![RuntimeVariant::Cuda, RuntimeVariant::Vulkan],
                    GpuVendor::Amd | GpuVendor::Intel => vec![RuntimeVariant::Vulkan],
                    GpuVendor::Other => Vec::new(),
                },
                cuda_driver: None,
                found_by: "system".into(),
            })
        })
        .collect()
}

fn vendor_of(text: &str) -> GpuVendor {
    let lower = text.to_lowercase();
    if lower.contains("nvidia") || lower.contains("10de") {
        GpuVendor::Nvidia
    } else if lower.contains("amd")
        || lower.contains("advanced micro")
        || lower.contains("ati")
        || lower.contains("1002")
    {
        GpuVendor::Amd
    } else if lower.contains("intel") || lower.contains("8086") {
        GpuVendor::Intel
    } else {
        GpuVendor::Other
    }
}

/// Which build to install: CUDA for an NVIDIA GPU on Windows (the only OS with an official CUDA
/// build), Vulkan for any other usable GPU, the CPU build otherwise.
pub fn recommend(os: &str, gpus: &[GpuInfo]) -> (RuntimeVariant, String) {
    let describe = |gpu: &GpuInfo| match gpu.total_vram_bytes {
        Some(bytes) => format!("{} {:.0} GB", gpu.name, bytes as f64 / 1e9),
        None => gpu.name.clone(),
    };
    let best = gpus.iter().filter(|gpu| !gpu.backends.is_empty()).max_by_key(|gpu| gpu.total_vram_bytes.unwrap_or(0));
    match best {
        Some(gpu) if os == "windows" && gpu.vendor == GpuVendor::Nvidia && gpu.cuda_driver.is_some() => {
            (RuntimeVariant::Cuda, format!("CUDA, detected: {}", describe(gpu)))
        }
        Some(gpu) => (RuntimeVariant::Vulkan, format!("Vulkan, detected: {}", describe(gpu))),
        None => (RuntimeVariant::Cpu, "CPU, no GPU detected".to_string()),
    }
}

/// What `llama-server --list-devices` says the build can use.
pub fn list_devices(server: &Path) -> Result<Vec<RuntimeDevice>, String> {
    let (status, text) = crate::binary::run(server, &["--list-devices"], Duration::from_secs(30))?;
    if !text.contains("Available devices") {
        return Err(format!("--list-devices answered no device list (exit {status}): {}", last_line(&text)));
    }
    Ok(parse_devices(&text))
}

fn last_line(text: &str) -> &str {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
}

/// Parses lines like `  Vulkan0: NVIDIA GeForce RTX 4070 (12282 MiB, 11567 MiB free)`.
pub fn parse_devices(text: &str) -> Vec<RuntimeDevice> {
    let Some((_, list)) = text.split_once("Available devices:") else { return Vec::new() };
    list.lines()
        .map(str::trim)
        .filter_map(|line| {
            let (name, rest) = line.split_once(": ")?;
            if name.contains(' ') || name.is_empty() {
                return None;
            }
            let mib = |text: &str| {
                text.trim().strip_suffix("MiB").and_then(|n| n.trim().parse::<u64>().ok()).map(|n| n << 20)
            };
            let (description, total, free) = match rest.rsplit_once(" (") {
                Some((description, sizes)) if sizes.ends_with("free)") => {
                    let sizes = sizes.trim_end_matches(')').trim_end_matches("free");
                    let (total, free) = sizes.split_once(',').unwrap_or((sizes, ""));
                    (description.to_string(), mib(total), mib(free))
                }
                _ => (rest.to_string(), None, None),
            };
            Some(RuntimeDevice { name: name.to_string(), description, total_bytes: total, free_bytes: free })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_lists_are_read_as_llama_server_prints_them() {
        let text = "ggml_vulkan: Found 1 Vulkan devices:\nAvailable devices:\n  Vulkan0: NVIDIA GeForce RTX 4070 (12282 MiB, 11567 MiB free)\n  CUDA0: NVIDIA H200 (143771 MiB, 142000 MiB free)\n";
        let devices = parse_devices(text);
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].name, "Vulkan0");
        assert_eq!(devices[0].description, "NVIDIA GeForce RTX 4070");
        assert_eq!(devices[0].total_bytes, Some(12282 << 20));
        assert_eq!(devices[0].free_bytes, Some(11567 << 20));
        assert_eq!(devices[1].name, "CUDA0");
        assert!(parse_devices("Available devices:\n  (none)\n").is_empty());
        assert!(parse_devices("error: unknown argument").is_empty());
    }

    #[test]
    fn the_recommended_build_follows_the_gpus() {
        let gpu = |vendor, cuda: Option<&str>| GpuInfo {
            vendor,
            name: "GPU".into(),
            total_vram_bytes: Some(12_000_000_000),
            free_vram_bytes: None,
            backends: match vendor {
                GpuVendor::Nvidia => vec![RuntimeVariant::Cuda, RuntimeVariant::Vulkan],
                GpuVendor::Other => vec![],
                _ => vec![RuntimeVariant::Vulkan],
            },
            cuda_driver: cuda.map(str::to_string),
            found_by: "nvml".into(),
        };
        assert_eq!(recommend("windows", &[gpu(GpuVendor::Nvidia, Some("12.4"))]).0, RuntimeVariant::Cuda);
        assert_eq!(recommend("linux", &[gpu(GpuVendor::Nvidia, Some("12.4"))]).0, RuntimeVariant::Vulkan);
        assert_eq!(recommend("windows", &[gpu(GpuVendor::Amd, None)]).0, RuntimeVariant::Vulkan);
        assert_eq!(recommend("windows", &[gpu(GpuVendor::Other, None)]).0, RuntimeVariant::Cpu);
        let (variant, why) = recommend("linux", &[]);
        assert_eq!((variant, why.as_str()), (RuntimeVariant::Cpu, "CPU, no GPU detected"));
        assert!(recommend("windows", &[gpu(GpuVendor::Intel, None)]).1.contains("GPU 12 GB"));
    }

    #[test]
    fn this_machine_is_probed_without_failing() {
        let hardware = probe(None);
        assert!(hardware.cpu.logical_cores >= 1);
        assert!(hardware.memory.total_bytes > 0, "{hardware:?}");
        assert!(hardware.runtime_devices.is_none());
        for note in &hardware.unknown {
            assert!(!note.reason.is_empty());
        }
    }
}
