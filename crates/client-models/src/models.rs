//! Models: search Hugging Face / hf-mirror / ModelScope, a repository's files with size and quant,
//! downloads with live progress (pause, resume, cancel), and the local models (import, delete).

use burncloud_client::forms::{confirmed, settle, Feedback, FeedbackLine};
use burncloud_client::{bytes, count, eta, timestamp, use_i18n, use_refresh, use_services, Empty, ErrorNotice};
use burncloud_service_api::{
    Download, DownloadRequest, DownloadState, HubFileList, HubSearchPage, HubSearchQuery, HubSort, HubSource,
    ImportRequest,
};
use dioxus::prelude::*;

/// The setting that remembers the chosen hub.
const SOURCE_SETTING: &str = "hub_source";

fn source_label(source: HubSource) -> &'static str {
    match source {
        HubSource::Huggingface => "Hugging Face",
        HubSource::HfMirror => "hf-mirror",
        HubSource::Modelscope => "ModelScope",
        HubSource::LlamaCpp => "llama.cpp",
    }
}

fn state_badge(state: DownloadState) -> &'static str {
    match state {
        DownloadState::Done => "badge ok",
        DownloadState::Failed => "badge bad",
        DownloadState::Paused => "badge warn",
        _ => "badge",
    }
}

fn state_key(state: DownloadState) -> &'static str {
    match state {
        DownloadState::Queued => "models.state_queued",
        DownloadState::Running => "models.state_running",
        DownloadState::Paused => "models.state_paused",
        DownloadState::Verifying => "models.state_verifying",
        DownloadState::Done => "models.state_done",
        DownloadState::Failed => "models.state_failed",
    }
}

fn percent(download: &Download) -> f64 {
    if download.bytes_total == 0 {
        return 0.0;
    }
    (download.bytes_done as f64 * 100.0 / download.bytes_total as f64).clamp(0.0, 100.0)
}

/// What a download's buttons ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DownloadAction {
    Pause,
    Resume,
    Cancel,
}

#[component]
pub fn Models() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let settings = services.settings.clone();
    let source = use_signal(move || {
        settings
            .get_setting(SOURCE_SETTING)
            .ok()
            .flatten()
            .and_then(|s| HubSource::parse(&s))
            .unwrap_or(HubSource::Huggingface)
    });
    let files = use_signal(|| None::<Result<HubFileList, String>>);
    let feedback = use_signal(|| Feedback::Idle);

    rsx! {
        div { class: "page-head",
            div {
                h1 { class: "page-title", {i18n.t("models.title")} }
                div { class: "page-sub", {i18n.t("models.subtitle")} }
            }
        }
        FeedbackLine { feedback: feedback() }
        HubSearch { source, files }
        HubFiles { files, feedback }
        Downloads { feedback }
        LocalModels { feedback }
    }
}

/// The hub picker, the search box and its results; a result's "Files" fills `files`.
#[component]
fn HubSearch(source: Signal<HubSource>, files: Signal<Option<Result<HubFileList, String>>>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let mut query = use_signal(String::new);
    let mut sort = use_signal(|| "downloads".to_string());
    let mut results = use_signal(|| None::<Result<HubSearchPage, String>>);
    let mut searching = use_signal(|| false);

    let search_services = services.clone();
    let run_search = move |page: Option<String>| {
        let services = search_services.clone();
        let request =
            HubSearchQuery { source: Some(source()), q: query(), sort: HubSort::parse(&sort()), page: page.clone() };
        searching.set(true);
        spawn(async move {
            let answer = services.hub.search(request).await.map_err(|e| e.to_string());
            let merged = match (page.is_some(), answer, results.peek().clone()) {
                (true, Ok(mut more), Some(Ok(mut shown))) => {
                    shown.data.append(&mut more.data);
                    shown.next_page = more.next_page;
                    Ok(shown)
                }
                (_, answer, _) => answer,
            };
            results.set(Some(merged));
            searching.set(false);
        });
    };
    let mut search_first = run_search.clone();
    let files_services = services.clone();
    let open_files = move |repo: String| {
        let services = files_services.clone();
        let from = source();
        files.set(None);
        spawn(async move {
            let listing = services.hub.files(from, repo).await.map_err(|e| e.to_string());
            files.set(Some(listing));
        });
    };
    let settings = services.settings.clone();
    let pick_source = move |picked: HubSource| {
        source.set(picked);
        let _ = settings.set_setting(SOURCE_SETTING, picked.as_str());
        results.set(None);
        files.set(None);
    };

    rsx! {
        div { class: "card", id: "hub-search",
            div { class: "row",
                div { class: "tabs",
                    for option in HubSource::ALL {
                        button {
                            key: "{option.as_str()}",
                            class: if source() == option { "tab active" } else { "tab" },
                            "data-source": option.as_str(),
                            onclick: { let mut pick = pick_source.clone(); move |_| pick(option) },
                            {source_label(option)}
                        }
                    }
                }
                input { class: "spacer", name: "q", value: "{query}", placeholder: i18n.t("models.search_placeholder"),
                    oninput: move |e| query.set(e.value()),
                    onkeydown: move |e| if e.key() == Key::Enter { search_first(None) } }
                select { name: "sort", value: "{sort}", onchange: move |e| sort.set(e.value()),
                    option { value: "downloads", {i18n.t("models.sort_downloads")} }
                    option { value: "likes", {i18n.t("models.sort_likes")} }
                    option { value: "updated", {i18n.t("models.sort_updated")} }
                    option { value: "trending", {i18n.t("models.sort_trending")} }
                }
                button { class: "btn primary", id: "search", disabled: searching(),
                    onclick: { let mut search = run_search.clone(); move |_| search(None) },
                    {i18n.t("models.search")} }
            }
            div { class: "hint", {i18n.t("models.source_hint")} }
            match results() {
                None => rsx! {},
                Some(Err(message)) => rsx! { ErrorNotice { message } },
                Some(Ok(page)) if page.data.is_empty() => rsx! {
                    Empty { title: i18n.t("models.no_results").to_string(), hint: i18n.t("models.no_results_hint").to_string() }
                },
                Some(Ok(page)) => rsx! {
                    table { id: "hub-results",
                        thead { tr {
                            th { {i18n.t("models.repo")} }
                            th { class: "num", {i18n.t("models.downloads")} }
                            th { class: "num", {i18n.t("models.likes")} }
                            th { {i18n.t("models.updated")} }
                            th { {i18n.t("common.actions")} }
                        } }
                        tbody {
                            for repo in page.data.iter().cloned() {
                                tr { key: "{repo.repo}",
                                    td { class: "mono", "{repo.repo}" }
                                    td { class: "num", {count(repo.downloads)} }
                                    td { class: "num", {count(repo.likes)} }
                                    td { {repo.updated_at.as_deref().map(|d| d.get(..10).unwrap_or(d).to_string()).unwrap_or_else(|| "—".into())} }
                                    td { class: "actions",
                                        button { class: "btn small", onclick: { let mut open = open_files.clone(); let name = repo.repo.clone(); move |_| open(name.clone()) },
                                            {i18n.t("models.files")} }
                                    }
                                }
                            }
                        }
                    }
                    if page.next_page.is_some() {
                        div { class: "row",
                            button { class: "btn", disabled: searching(),
                                onclick: { let mut search = run_search.clone(); let next = page.next_page.clone(); move |_| search(next.clone()) },
                                {i18n.t("models.more")} }
                        }
                    }
                },
            }
        }
    }
}

/// A repository's GGUF files with their size, quantisation and fit, each one click from a download.
#[component]
fn HubFiles(files: Signal<Option<Result<HubFileList, String>>>, feedback: Signal<Feedback>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let download_services = services.clone();
    let start_download = move |(from, repo, path): (HubSource, String, String)| {
        let services = download_services.clone();
        feedback.set(Feedback::Busy);
        spawn(async move {
            let started = services.hub.start_download(DownloadRequest { source: from, repo, path }).await;
            match started {
                Ok(_) => feedback.set(Feedback::Done(i18n.t("models.download_started").to_string())),
                Err(error) => feedback.set(Feedback::Failed(error.to_string())),
            }
        });
    };
    rsx! {
        match files() {
            None => rsx! {},
            Some(Err(message)) => rsx! { div { class: "card", ErrorNotice { message } } },
            Some(Ok(listing)) => {
                let ggufs: Vec<_> = listing.files.iter().filter(|f| f.path.to_ascii_lowercase().ends_with(".gguf")).cloned().collect();
                let suggestion = crate::fit::suggested(&ggufs);
                rsx! {
                    div { class: "card", id: "hub-files",
                        div { class: "row",
                            h3 { class: "card-title spacer", "{listing.repo}" }
                            span { class: "badge", {source_label(listing.source)} }
                            button { class: "btn small", onclick: move |_| files.set(None), {i18n.t("common.close")} }
                        }
                        if ggufs.is_empty() {
                            p { class: "muted", {i18n.t("models.no_gguf")} }
                        }
                        table {
                            thead { tr {
                                th { {i18n.t("models.file")} }
                                th { class: "num", {i18n.t("models.size")} }
                                th { {i18n.t("models.quant")} }
                                th { {i18n.t("fit.needs")} }
                                th { {i18n.t("common.actions")} }
                            } }
                            tbody {
                                for file in ggufs.into_iter().filter(|f| f.shard.is_none_or(|s| s.index == 1)) {
                                    tr { key: "{file.path}",
                                        td { class: "mono wrap", "{file.path}"
                                            if let Some(shard) = file.shard { " " span { class: "badge", {format!("{} {}", shard.count, i18n.t("models.parts"))} } }
                                            if file.mmproj { " " span { class: "badge warn", "mmproj" } }
                                            if suggestion.as_ref() == Some(&file.path) { " " span { class: "badge ok", id: "suggested-file", {i18n.t("fit.suggested")} } }
                                        }
                                        td { class: "num", {bytes(shard_total(&listing, &file.group))} }
                                        td { {file.quant.clone().unwrap_or_else(|| "—".into())} }
                                        td { class: "fit",
                                            if let Some(needed) = file.estimated_bytes { span { class: "mono", {format!("≈ {} ", bytes(needed))} } }
                                            if !file.mmproj { crate::fit::FitBadge { fit: file.fit } }
                                        }
                                        td { class: "actions",
                                            button { class: "btn small primary",
                                                onclick: { let mut start = start_download.clone(); let target = (listing.source, listing.repo.clone(), file.path.clone()); move |_| start(target.clone()) },
                                                {i18n.t("models.download")} }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every download with its live progress, from the service's stream, and its pause, resume and
/// cancel buttons.
#[component]
fn Downloads(feedback: Signal<Feedback>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    // Downloads come live from the service's progress stream, not from polling.
    let watch_services = services.clone();
    let mut downloads = use_signal(Vec::<Download>::new);
    use_future(move || {
        let services = watch_services.clone();
        async move {
            let mut updates = services.hub.watch_downloads();
            loop {
                let latest = updates.borrow_and_update().clone();
                let finished = latest.iter().filter(|d| d.state == DownloadState::Done).count();
                let before = downloads.peek().iter().filter(|d| d.state == DownloadState::Done).count();
                downloads.set(latest);
                if finished != before {
                    refresh.bump();
                }
                if updates.changed().await.is_err() {
                    break;
                }
            }
        }
    });
    let control_services = services.clone();
    let control = move |(id, action): (i64, DownloadAction)| {
        let hub = control_services.hub.clone();
        let outcome = match action {
            DownloadAction::Pause => hub.pause_download(id).map(|_| ()),
            DownloadAction::Resume => hub.resume_download(id).map(|_| ()),
            DownloadAction::Cancel => hub.cancel_download(id),
        };
        settle(feedback, refresh, outcome, None);
    };
    rsx! {
        div { class: "card", id: "downloads",
            h3 { class: "card-title", {i18n.t("models.downloads_title")} }
            if downloads().is_empty() {
                p { class: "muted", {i18n.t("models.no_downloads")} }
            }
            for download in downloads() {
                div { class: "download", key: "{download.id}", "data-state": download.state.as_str(),
                    div { class: "row",
                        span { class: "mono spacer", {format!("{} · {}", download.repo, download.path)} }
                        span { class: state_badge(download.state), {i18n.t(state_key(download.state))} }
                    }
                    div { class: "hbar-track", div { class: "hbar-fill", style: format!("width: {:.1}%", percent(&download)) } }
                    div { class: "row hint",
                        span { {format!("{} / {}", bytes(download.bytes_done), bytes(download.bytes_total))} }
                        if download.state == DownloadState::Running {
                            span { {format!("{}/s", bytes(download.speed_bps))} }
                            if let Some(left) = download.eta_s { span { {format!("{} {}", i18n.t("models.eta"), eta(left))} } }
                        }
                        span { class: "spacer" }
                        if download.state.is_active() {
                            button { class: "btn small", onclick: { let control = control.clone(); let id = download.id; move |_| control((id, DownloadAction::Pause)) }, {i18n.t("models.pause")} }
                        }
                        if matches!(download.state, DownloadState::Paused | DownloadState::Failed) {
                            button { class: "btn small", onclick: { let control = control.clone(); let id = download.id; move |_| control((id, DownloadAction::Resume)) }, {i18n.t("models.resume")} }
                        }
                        if download.state != DownloadState::Done {
                            button { class: "btn small danger", onclick: { let control = control.clone(); let id = download.id; move |_| control((id, DownloadAction::Cancel)) }, {i18n.t("common.cancel")} }
                        }
                    }
                    if let Some(error) = download.error.clone() { div { class: "notice bad", "{error}" } }
                }
            }
        }
    }
}

/// The models on this machine: import a file from disk, see where each would run, delete.
#[component]
fn LocalModels(feedback: Signal<Feedback>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let mut import_path = use_signal(String::new);
    let confirm_delete = use_signal(|| None::<i64>);
    let local_services = services.clone();
    let local = use_resource(move || {
        let services = local_services.clone();
        refresh.track();
        async move { services.local_models.list_local_models() }
    });

    let import_services = services.clone();
    let import = move |_| {
        let services = import_services.clone();
        let path = import_path();
        feedback.set(Feedback::Busy);
        spawn(async move {
            match services.local_models.import_local_model(ImportRequest { path }).await {
                Ok(model) => {
                    import_path.set(String::new());
                    feedback.set(Feedback::Done(format!("{} {}", i18n.t("models.imported"), model.path)));
                    refresh.bump();
                }
                Err(error) => feedback.set(Feedback::Failed(error.to_string())),
            }
        });
    };
    let delete_services = services.clone();
    let delete = move |id: i64| {
        if confirmed(confirm_delete, id) {
            let outcome = delete_services.local_models.delete_local_model(id);
            settle(feedback, refresh, outcome, Some(i18n.t("common.deleted")));
        }
    };
    rsx! {
        div { class: "card", id: "local-models",
            div { class: "row",
                h3 { class: "card-title spacer", {i18n.t("models.local_title")} }
                input { name: "import_path", value: "{import_path}", placeholder: i18n.t("models.import_placeholder"), oninput: move |e| import_path.set(e.value()) }
                button { class: "btn", id: "import", onclick: import, {i18n.t("models.import")} }
            }
            match &*local.read() {
                None => rsx! { p { class: "muted", {i18n.t("common.loading")} } },
                Some(Err(error)) => rsx! { ErrorNotice { message: error.to_string() } },
                Some(Ok(list)) if list.is_empty() => rsx! {
                    Empty { title: i18n.t("models.local_empty").to_string(), hint: i18n.t("models.local_empty_hint").to_string() }
                },
                Some(Ok(list)) => rsx! {
                    table { id: "local-table",
                        thead { tr {
                            th { {i18n.t("models.file")} }
                            th { class: "num", {i18n.t("models.size")} }
                            th { {i18n.t("models.quant")} }
                            th { {i18n.t("models.source")} }
                            th { {i18n.t("models.added")} }
                            th { {i18n.t("logs.status")} }
                            th { {i18n.t("common.actions")} }
                        } }
                        tbody {
                            for model in list.iter().cloned() {
                                tr { key: "{model.id}",
                                    td { class: "mono wrap", title: "{model.path}", {model.path.rsplit(['/', '\\']).next().unwrap_or(&model.path).to_string()} }
                                    td { class: "num", {bytes(model.size)} }
                                    td { {model.quant.clone().unwrap_or_else(|| "—".into())} }
                                    td { {model.repo.clone().map(|r| format!("{} · {r}", model.source)).unwrap_or_else(|| model.source.to_string())} }
                                    td { {timestamp(model.added_at_ms)} }
                                    td {
                                        if model.in_use { span { class: "badge ok", {i18n.t("models.in_use")} } }
                                        else { span { class: "badge", {i18n.t("models.idle")} } }
                                        " "
                                        crate::fit::FitBadge { fit: model.fit }
                                    }
                                    td { class: "actions",
                                        button { class: "btn small danger", disabled: model.in_use,
                                            onclick: { let id = model.id; let delete = delete.clone(); move |_| delete(id) },
                                            if confirm_delete() == Some(model.id) { {i18n.t("models.confirm_delete_file")} } else { {i18n.t("common.delete")} } }
                                    }
                                }
                            }
                        }
                    }
                },
            }
        }
    }
}

/// A split model's size: all its shards.
fn shard_total(listing: &HubFileList, group: &str) -> u64 {
    listing.files.iter().filter(|f| f.group == group).map(|f| f.size).sum()
}
