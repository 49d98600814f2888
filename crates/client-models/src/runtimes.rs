//! The llama.cpp runtime on the Deployments page: what this machine has, which llama-server runs
//! local models, the installed builds (use one, remove the others), and on a fresh install one
//! button that fetches the build fit for the detected hardware, with its progress.

use burncloud_client::forms::{Feedback, FeedbackLine};
use burncloud_client::{bytes, use_i18n, use_refresh, use_services, ErrorNotice};
use burncloud_service_api::{
    Download, DownloadState, GpuInfo, Hardware, HubSource, Runtime, RuntimeInstallRequest, RuntimeVariant,
    LLAMACPP_MIRROR_SETTING, LLAMACPP_MIRROR_SUGGESTION,
};
use dioxus::prelude::*;

const LIVE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

fn variant_label(variant: RuntimeVariant) -> &'static str {
    match variant {
        RuntimeVariant::Cpu => "CPU",
        RuntimeVariant::Vulkan => "Vulkan",
        RuntimeVariant::Cuda => "CUDA",
    }
}

/// The GPU the recommendation is for: the one with the most memory that a build can use.
fn best_gpu(hardware: &Hardware) -> Option<&GpuInfo> {
    hardware.gpus.iter().filter(|gpu| !gpu.backends.is_empty()).max_by_key(|gpu| gpu.total_vram_bytes.unwrap_or(0))
}

fn gpu_line(gpu: &GpuInfo) -> String {
    match gpu.total_vram_bytes {
        Some(total) => format!("{} {}", gpu.name, bytes(total)),
        None => gpu.name.clone(),
    }
}

/// The newest runtime download, if any.
fn latest_install(downloads: &[Download]) -> Option<Download> {
    downloads.iter().filter(|d| d.source == HubSource::LlamaCpp).max_by_key(|d| d.id).cloned()
}

#[component]
pub fn RuntimeCard() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let tick = burncloud_client::use_ticker(LIVE_TICK);
    let mut feedback = use_signal(|| Feedback::Idle);
    let mut mirror = use_signal(String::new);
    let mut seen_done = use_signal(|| None::<i64>);

    let found_services = services.clone();
    let llama = use_resource(move || {
        let services = found_services.clone();
        refresh.track();
        async move { services.inference.llama_server() }
    });
    let hardware_services = services.clone();
    let hardware = use_resource(move || {
        let services = hardware_services.clone();
        refresh.track();
        async move { services.inference.hardware().await }
    });
    let list_services = services.clone();
    let runtimes = use_resource(move || {
        let services = list_services.clone();
        refresh.track();
        async move { services.inference.list_runtimes() }
    });
    let download_services = services.clone();
    let install = use_resource(move || {
        let services = download_services.clone();
        tick.read();
        async move { services.hub.list_downloads().ok().and_then(|list| latest_install(&list)) }
    });
    let setting_services = services.clone();
    use_effect(move || {
        let saved = setting_services.settings.get_setting(LLAMACPP_MIRROR_SETTING).ok().flatten().unwrap_or_default();
        mirror.set(saved);
    });
    // An install that has just finished changes what runs models: read everything again.
    use_effect(move || {
        if let Some(Some(download)) = &*install.read() {
            if download.state == DownloadState::Done && seen_done() != Some(download.id) {
                seen_done.set(Some(download.id));
                refresh.bump();
            }
        }
    });

    let install_services = services.clone();
    let start_install = move |variant: Option<RuntimeVariant>| {
        let inference = install_services.inference.clone();
        feedback.set(Feedback::Busy);
        spawn(async move {
            match inference.install_runtime(RuntimeInstallRequest { variant, tag: None }).await {
                Ok(_) => feedback.set(Feedback::Idle),
                Err(error) => feedback.set(Feedback::Failed(error.to_string())),
            }
        });
    };
    let act_services = services.clone();
    let act = move |(id, remove): (String, bool)| {
        let inference = act_services.inference.clone();
        let outcome = if remove { inference.delete_runtime(&id) } else { inference.activate_runtime(&id).map(|_| ()) };
        match outcome {
            Ok(()) => feedback.set(Feedback::Idle),
            Err(error) => feedback.set(Feedback::Failed(error.to_string())),
        }
        refresh.bump();
    };
    let save_services = services.clone();
    let save_mirror =
        move |value: String| match save_services.settings.set_setting(LLAMACPP_MIRROR_SETTING, value.trim()) {
            Ok(()) => {
                mirror.set(value.trim().to_string());
                feedback.set(Feedback::Done(i18n.t("runtime.source_saved").to_string()));
            }
            Err(error) => feedback.set(Feedback::Failed(error.to_string())),
        };

    let installing = matches!(&*install.read(), Some(Some(d)) if d.state.is_active());
    let install_label = match &*hardware.read() {
        Some(Ok(hw)) => {
            let detected = match best_gpu(hw) {
                Some(gpu) => format!("{}: {}", i18n.t("runtime.detected"), gpu_line(gpu)),
                None => i18n.t("runtime.no_gpu").to_string(),
            };
            format!("{} ({}, {detected})", i18n.t("runtime.install"), variant_label(hw.recommended_variant))
        }
        _ => i18n.t("runtime.install").to_string(),
    };

    rsx! {
        div { class: "card", id: "llama-server",
            match &*llama.read() {
                None => rsx! { p { class: "muted", {i18n.t("common.loading")} } },
                Some(Ok(found)) => rsx! {
                    div { class: "row",
                        span { class: "badge ok", "llama-server" }
                        span { class: "mono", "{found.version}" }
                        span { class: "badge", {found.found_in.clone()} }
                        span { class: "mono muted spacer", "{found.path}" }
                    }
                },
                Some(Err(_)) => rsx! {
                    div { class: "row", id: "no-runtime",
                        span { class: "badge warn", {i18n.t("runtime.missing")} }
                        span { class: "muted spacer", {i18n.t("runtime.missing_hint")} }
                        button { class: "btn primary", id: "install-runtime", disabled: installing,
                            onclick: {
                                let mut start_install = start_install.clone();
                                move |_| start_install(None)
                            },
                            {install_label.clone()} }
                    }
                },
            }
            if let Some(Some(download)) = &*install.read() {
                InstallProgress { download: download.clone() }
            }
            FeedbackLine { feedback: feedback() }
            match &*hardware.read() {
                Some(Ok(hw)) => rsx! { HardwareSummary { hardware: hw.clone() } },
                Some(Err(error)) => rsx! { ErrorNotice { message: error.to_string() } },
                None => rsx! {},
            }
            if let Some(Ok(list)) = &*runtimes.read() {
                if !list.is_empty() {
                    table { class: "table", id: "runtimes",
                        thead { tr {
                            th { {i18n.t("runtime.build")} }
                            th { {i18n.t("runtime.version")} }
                            th { {i18n.t("runtime.devices")} }
                            th {}
                        } }
                        tbody {
                            for runtime in list.iter().cloned() {
                                RuntimeRow { key: "{runtime.id}", runtime, on_action: act.clone() }
                            }
                        }
                    }
                }
            }
            details { class: "hint",
                summary { {i18n.t("runtime.source")} }
                div { class: "row",
                    input { class: "input mono", id: "llamacpp-mirror", value: "{mirror}",
                        placeholder: "https://github.com (direct)",
                        oninput: move |event| mirror.set(event.value()) }
                    button { class: "btn small", onclick: {
                            let mut save_mirror = save_mirror.clone();
                            move |_| save_mirror(mirror())
                        }, {i18n.t("common.save")} }
                    button { class: "btn small", onclick: {
                            let mut save_mirror = save_mirror.clone();
                            move |_| save_mirror(LLAMACPP_MIRROR_SUGGESTION.to_string())
                        }, {i18n.t("runtime.use_mirror")} }
                }
                div { {i18n.t("runtime.source_hint")} }
            }
        }
    }
}

#[component]
fn InstallProgress(download: Download) -> Element {
    let i18n = use_i18n();
    let percent = download.bytes_done as f64 * 100.0 / download.bytes_total.max(1) as f64;
    rsx! {
        match download.state {
            DownloadState::Failed => rsx! {
                ErrorNotice { message: format!("{} {}: {}", i18n.t("runtime.install_failed"), download.repo, download.error.clone().unwrap_or_default()) }
            },
            DownloadState::Done => rsx! {},
            state => rsx! {
                div { id: "runtime-progress",
                    div { class: "row",
                        span { {format!("{} {} · {}", i18n.t("runtime.installing"), download.repo, download.path)} }
                        span { class: "muted spacer", {format!("{:.0}% · {}", percent, if state == DownloadState::Verifying { i18n.t("runtime.unpacking") } else { "" })} }
                    }
                    div { class: "hbar-track", div { class: "hbar-fill", style: format!("width: {percent:.1}%") } }
                }
            },
        }
    }
}

#[component]
fn HardwareSummary(hardware: Hardware) -> Element {
    let i18n = use_i18n();
    let cpu = &hardware.cpu;
    let units = [(cpu.avx2, "AVX2"), (cpu.avx512, "AVX-512")]
        .iter()
        .filter(|(has, _)| *has)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(" / ");
    let gpus: Vec<String> = hardware
        .gpus
        .iter()
        .map(|gpu| {
            let free =
                gpu.free_vram_bytes.map(|b| format!(", {} {}", bytes(b), i18n.t("runtime.free"))).unwrap_or_default();
            let backends: Vec<&str> = gpu.backends.iter().map(|b| variant_label(*b)).collect();
            format!("{}{free} · {}", gpu_line(gpu), backends.join(" / "))
        })
        .collect();
    rsx! {
        dl { class: "detail", id: "hardware",
            dt { "CPU" }
            dd { {format!("{} · {} {} {}", cpu.model, cpu.logical_cores, i18n.t("runtime.threads"), units)} }
            dt { {i18n.t("runtime.memory")} }
            dd { {format!("{} ({} {})", bytes(hardware.memory.total_bytes), bytes(hardware.memory.available_bytes), i18n.t("runtime.free"))} }
            dt { "GPU" }
            dd {
                if gpus.is_empty() { {i18n.t("runtime.no_gpu")} } else { {gpus.join("; ")} }
            }
            if let Some(devices) = &hardware.runtime_devices {
                dt { {i18n.t("runtime.uses")} }
                dd {
                    if devices.is_empty() { {i18n.t("runtime.cpu_only")} } else {
                        {devices.iter().map(|d| format!("{} {}", d.name, d.description)).collect::<Vec<_>>().join("; ")}
                    }
                }
            }
            for note in hardware.unknown.iter() {
                dt { class: "muted", {note.probe.clone()} }
                dd { class: "muted", {format!("{}: {}", i18n.t("runtime.unknown"), note.reason)} }
            }
        }
    }
}

#[component]
fn RuntimeRow(runtime: Runtime, on_action: EventHandler<(String, bool)>) -> Element {
    let i18n = use_i18n();
    let devices = if runtime.devices.is_empty() {
        i18n.t("runtime.cpu_only").to_string()
    } else {
        runtime.devices.iter().map(|d| d.name.clone()).collect::<Vec<_>>().join(", ")
    };
    let (use_id, remove_id) = (runtime.id.clone(), runtime.id.clone());
    rsx! {
        tr {
            td { class: "mono", {runtime.id.clone()} }
            td { class: "mono", {runtime.version.clone()} }
            td { {devices} }
            td { class: "row",
                if runtime.active {
                    span { class: "badge ok", {i18n.t("runtime.active")} }
                } else {
                    button { class: "btn small", onclick: move |_| on_action.call((use_id.clone(), false)), {i18n.t("runtime.use")} }
                    button { class: "btn small danger", onclick: move |_| on_action.call((remove_id.clone(), true)), {i18n.t("common.delete")} }
                }
            }
        }
    }
}
