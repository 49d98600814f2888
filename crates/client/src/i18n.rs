//! Every string the window shows, in English and Simplified Chinese, switchable at run time.

use dioxus::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn from_code(code: &str) -> Lang {
        if code.starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }
}

/// The current language, from context; `t` looks a key up in it.
#[derive(Clone, Copy, PartialEq)]
pub struct I18n {
    pub lang: Signal<Lang>,
}

impl I18n {
    pub fn t(&self, key: &'static str) -> &'static str {
        lookup((self.lang)(), key)
    }

    pub fn current(&self) -> Lang {
        (self.lang)()
    }
}

pub fn use_i18n() -> I18n {
    use_context::<I18n>()
}

fn lookup(lang: Lang, key: &'static str) -> &'static str {
    match STRINGS.iter().find(|(k, _, _)| *k == key) {
        Some((_, en, zh)) => match lang {
            Lang::En => en,
            Lang::Zh => zh,
        },
        // A missing key shows itself, and the test below fails for it.
        None => key,
    }
}

/// (key, English, 简体中文)
pub const STRINGS: &[(&str, &str, &str)] = &[
    ("app.tagline", "Local LLM gateway", "本地大模型网关"),
    ("nav.dashboard", "Dashboard", "仪表盘"),
    ("nav.logs", "Logs", "调用日志"),
    ("nav.channels", "Channels", "渠道"),
    ("nav.tokens", "Tokens", "令牌"),
    ("nav.prices", "Prices", "模型价格"),
    ("nav.settings", "Settings", "设置"),
    ("shell.endpoint", "Endpoint", "接口地址"),
    ("shell.theme_dark", "Dark theme", "深色主题"),
    ("shell.theme_light", "Light theme", "浅色主题"),
    ("common.loading", "Loading…", "加载中…"),
    ("common.save", "Save", "保存"),
    ("common.saving", "Saving…", "保存中…"),
    ("common.cancel", "Cancel", "取消"),
    ("common.delete", "Delete", "删除"),
    ("common.edit", "Edit", "编辑"),
    ("common.copy", "Copy", "复制"),
    ("common.copied", "Copied", "已复制"),
    ("common.close", "Close", "关闭"),
    ("common.enabled", "Enabled", "已启用"),
    ("common.disabled", "Disabled", "已停用"),
    ("common.enable", "Enable", "启用"),
    ("common.disable", "Disable", "停用"),
    ("common.name", "Name", "名称"),
    ("common.models", "Models", "模型"),
    ("common.all", "All", "全部"),
    ("common.none", "None", "无"),
    ("common.unlimited", "Unlimited", "不限"),
    ("common.never", "Never", "永不"),
    ("common.error", "Something went wrong", "出错了"),
    ("common.saved", "Saved", "已保存"),
    ("common.deleted", "Deleted", "已删除"),
    ("common.confirm_delete", "Click again to delete", "再次点击以确认删除"),
    ("common.actions", "Actions", "操作"),
    ("dash.title", "Dashboard", "仪表盘"),
    ("dash.subtitle", "Spend and traffic through your local endpoint", "本地接口的花费与流量"),
    ("dash.balance", "Balance", "余额"),
    ("dash.spent", "Spent in total", "累计花费"),
    ("dash.today", "Today", "今天"),
    ("dash.7d", "Last 7 days", "近 7 天"),
    ("dash.30d", "Last 30 days", "近 30 天"),
    ("dash.requests", "requests", "次请求"),
    ("dash.tokens", "tokens", "tokens"),
    ("dash.cache_hits", "of prompt tokens from cache", "的输入 tokens 命中缓存"),
    ("dash.by_day", "Requests by day", "每日请求"),
    ("dash.by_model", "Cost by model, 30 days", "近 30 天各模型花费"),
    ("dash.recent", "Recent calls", "最近调用"),
    ("dash.no_calls", "No calls yet", "还没有调用"),
    (
        "dash.no_calls_hint",
        "Add a channel, create a token, and point any OpenAI client at the endpoint.",
        "添加渠道、创建令牌，然后把任意 OpenAI 客户端指向本地接口。",
    ),
    ("logs.title", "Logs", "调用日志"),
    ("logs.subtitle", "Every call, with its usage, cost and timing", "每次调用的用量、花费与耗时"),
    ("logs.time", "Time", "时间"),
    ("logs.model", "Model", "模型"),
    ("logs.token", "Token", "令牌"),
    ("logs.channel", "Channel", "渠道"),
    ("logs.status", "Status", "状态"),
    ("logs.tokens", "Tokens in / out", "输入 / 输出 tokens"),
    ("logs.cached", "Cached / cache writes", "缓存命中 / 缓存写入"),
    ("logs.reasoning", "Reasoning tokens", "推理 tokens"),
    ("logs.images", "Images", "图片"),
    ("logs.audio", "Audio", "音频时长"),
    ("logs.characters", "Characters spoken", "合成字符"),
    ("logs.cost", "Cost", "花费"),
    ("logs.latency", "Latency", "耗时"),
    ("logs.filter_model", "Model name", "模型名称"),
    ("logs.status_ok", "Succeeded", "成功"),
    ("logs.status_error", "Failed", "失败"),
    ("logs.range", "Time range", "时间范围"),
    ("logs.range_all", "All time", "全部时间"),
    ("logs.range_1h", "Last hour", "近 1 小时"),
    ("logs.range_24h", "Last 24 hours", "近 24 小时"),
    ("logs.range_7d", "Last 7 days", "近 7 天"),
    ("logs.older", "Older", "更早"),
    ("logs.newest", "Newest", "最新"),
    ("logs.detail", "Call details", "调用详情"),
    ("logs.request_id", "Request ID", "请求 ID"),
    ("logs.endpoint", "Endpoint", "接口"),
    ("logs.upstream_model", "Upstream model", "上游模型"),
    ("logs.stream", "Streamed", "流式"),
    ("logs.first_token", "First token", "首字耗时"),
    ("logs.usage_source", "Usage from", "用量来源"),
    ("logs.usage_upstream", "the upstream", "上游返回"),
    ("logs.usage_estimated", "an estimate (tokenizer)", "分词器估算"),
    ("logs.priced", "Priced", "已定价"),
    ("logs.unpriced", "no price set for this model", "该模型未设置价格"),
    ("logs.end_reason", "Ended", "结束原因"),
    ("logs.attempts", "Attempts", "尝试次数"),
    ("logs.error", "Error", "错误"),
    ("logs.empty", "No calls match these filters", "没有符合筛选条件的调用"),
    (
        "logs.empty_filtered_hint",
        "Change or clear the filters above to see more calls.",
        "修改或清除上方的筛选条件以查看更多调用。",
    ),
    ("logs.yes", "yes", "是"),
    ("logs.no", "no", "否"),
    ("end.completed", "completed", "完成"),
    ("end.client_cancelled", "cancelled by the caller", "调用方取消"),
    ("end.upstream_error", "upstream error", "上游错误"),
    ("end.upstream_cut", "cut off by the upstream", "上游中断"),
    ("end.rejected", "rejected", "已拒绝"),
    ("channels.title", "Channels", "渠道"),
    ("channels.subtitle", "The upstreams your calls go to", "调用转发到的上游"),
    ("channels.add", "Add channel", "添加渠道"),
    ("channels.edit", "Edit channel", "编辑渠道"),
    ("channels.kind", "Provider", "提供方"),
    ("channels.base_url", "Base URL", "接口地址"),
    ("channels.base_url_hint", "Leave empty to use the provider's default.", "留空则使用提供方的默认地址。"),
    (
        "channels.base_url_openai_hint",
        "Include /v1, for example http://127.0.0.1:8080/v1",
        "需包含 /v1，例如 http://127.0.0.1:8080/v1",
    ),
    ("channels.api_key", "API key", "API 密钥"),
    ("channels.api_key_keep", "Leave empty to keep the current key.", "留空则保留当前密钥。"),
    ("channels.models_hint", "One model name per line or comma-separated.", "每行一个模型名，或用逗号分隔。"),
    ("channels.mapping", "Model mapping", "模型映射"),
    ("channels.mapping_hint", "requested=upstream, one per line", "请求名=上游名，每行一条"),
    ("channels.priority", "Priority", "优先级"),
    ("channels.weight", "Weight", "权重"),
    ("channels.key", "Key", "密钥"),
    ("channels.empty", "No channels yet", "还没有渠道"),
    (
        "channels.empty_hint",
        "Add OpenAI, DeepSeek, Qwen or any OpenAI-compatible server to start routing calls.",
        "添加 OpenAI、DeepSeek、通义千问或任意 OpenAI 兼容服务即可开始转发调用。",
    ),
    ("channels.health", "Health", "健康状态"),
    ("channels.test", "Test", "测试"),
    ("channels.testing", "Testing…", "测试中…"),
    ("channels.test_ok", "Answered in", "响应耗时"),
    ("breaker.closed", "healthy", "正常"),
    ("breaker.open", "resting", "熔断中"),
    ("breaker.half_open", "probing", "探测中"),
    ("nav.groups", "Groups", "分组"),
    ("groups.title", "Groups", "分组"),
    (
        "groups.subtitle",
        "Which channels a token's calls go to, and how they are shared",
        "令牌的调用去往哪些渠道、如何分配",
    ),
    ("groups.add", "Add group", "添加分组"),
    ("groups.edit", "Edit group", "编辑分组"),
    ("groups.strategy", "Strategy", "策略"),
    ("groups.members", "Members", "成员渠道"),
    ("groups.member", "Member", "成员"),
    ("groups.all_channels", "Every enabled channel (no members yet)", "全部已启用渠道（尚未添加成员）"),
    (
        "groups.empty_hint",
        "Pick the channels of this group; weights share traffic, priorities order failover.",
        "选择该分组的渠道；权重决定流量比例，优先级决定故障切换顺序。",
    ),
    ("strategy.round_robin", "Round robin", "轮询"),
    ("strategy.weighted", "Weighted", "按权重"),
    ("strategy.priority", "Priority with failover", "优先级与故障切换"),
    ("kind.openai", "OpenAI-compatible", "OpenAI 兼容"),
    ("kind.deepseek", "DeepSeek", "DeepSeek 深度求索"),
    ("kind.qwen", "Qwen (DashScope)", "通义千问（百炼）"),
    ("kind.anthropic", "Anthropic Claude", "Anthropic Claude"),
    ("kind.gemini", "Google Gemini", "Google Gemini"),
    ("kind.local", "Local model (llama-server)", "本地模型（llama-server）"),
    ("tokens.title", "Tokens", "令牌"),
    ("tokens.subtitle", "Keys your apps use to call the endpoint", "应用调用接口所用的密钥"),
    ("tokens.add", "Create token", "创建令牌"),
    ("tokens.group", "Group", "分组"),
    ("tokens.quota", "Quota", "额度"),
    ("tokens.used", "Used", "已用"),
    ("tokens.rpm", "Requests / min", "每分钟请求数"),
    ("tokens.tpm", "Tokens / min", "每分钟 tokens"),
    ("tokens.expires", "Expires", "过期时间"),
    ("tokens.expires_days", "Expires in (days)", "有效期（天）"),
    ("tokens.models_allowed", "Allowed models", "允许的模型"),
    ("tokens.models_hint", "Empty means every model.", "留空表示全部模型。"),
    ("tokens.keyless", "Keyless from this machine", "本机免密钥"),
    ("tokens.keyless_allow", "Allow keyless local calls", "允许本机免密钥调用"),
    ("tokens.keyless_stop", "Require a key", "改为需要密钥"),
    (
        "tokens.keyless_hint",
        "Ollama clients on this machine that send no key are charged to this token (one token at most).",
        "本机未带密钥的 Ollama 客户端调用计入此令牌（最多一个令牌）。",
    ),
    ("tokens.created", "Your new key — copy it now, it is shown only once", "新密钥——请立即复制，它只显示这一次"),
    ("tokens.prefix", "Key", "密钥"),
    ("tokens.empty", "No tokens yet", "还没有令牌"),
    (
        "tokens.empty_hint",
        "Create a token and use it as the API key in any OpenAI client.",
        "创建令牌后，把它作为任意 OpenAI 客户端的 API Key 使用。",
    ),
    ("tokens.limit_hint", "Empty means no limit.", "留空表示不限。"),
    ("channels.native_responses", "Send /v1/responses calls to this server's own Responses API (turn off for OpenAI-compatible servers that lack it)", "把 /v1/responses 调用直接交给该服务自己的 Responses API（不支持它的 OpenAI 兼容服务请关闭）"),
    ("prices.title", "Prices", "模型价格"),
    ("prices.subtitle", "What a million tokens cost, per model", "各模型每百万 tokens 的价格"),
    ("prices.model", "Model", "模型"),
    ("prices.input", "Input / 1M tokens", "输入 / 百万 tokens"),
    ("prices.output", "Output / 1M tokens", "输出 / 百万 tokens"),
    ("prices.cache_read", "Cache read / 1M (blank: as input)", "缓存读取 / 百万（留空按输入计）"),
    ("prices.cache_write", "Cache write / 1M (blank: as input)", "缓存写入 / 百万（留空按输入计）"),
    ("prices.cache_write_1h", "1-hour cache write / 1M", "1 小时缓存写入 / 百万"),
    ("prices.as_input", "as input", "按输入计"),
    ("prices.per_image", "Per image (blank: not charged)", "每张图片（留空不计费）"),
    ("prices.per_audio_second", "Per second of audio", "每秒音频"),
    ("prices.per_million_characters", "Per 1M characters spoken", "每百万字符（语音合成）"),
    ("prices.units", "Per unit", "按单位计费"),
    ("prices.unit_image", "image", "张"),
    ("prices.unit_second", "s", "秒"),
    ("prices.unit_mchars", "1M chars", "百万字符"),
    ("prices.set", "Set price", "设置价格"),
    ("prices.schedule", "Long prompts / peak hours", "长提示 / 高峰时段"),
    ("prices.prompt_tokens", "prompt tokens", "提示 tokens"),
    ("prices.peak", "peak", "高峰"),
    ("prices.weekdays", "Mon–Fri", "周一至周五"),
    ("prices.every_day", "every day", "每天"),
    ("prices.keeps_schedule", "Saving keeps this price's other rates:", "保存时保留该价格的其他费率："),
    ("presets.title", "Published prices", "官方公布价格"),
    (
        "presets.hint",
        "Each provider's own prices, with cache rates, long-prompt tiers and peak hours, in the account's currency. The date links to the page each was read from: providers change prices often, so check it before you rely on one.",
        "各厂商官方公布的价格（含缓存价格、长提示阶梯和高峰时段），按账户币种显示。日期链接到价格出处：厂商经常调价，使用前请核对。",
    ),
    ("prices.cache_read_column", "Cache read / 1M", "缓存读取 / 百万"),
    ("prices.cache_write_column", "Cache write / 1M", "缓存写入 / 百万"),
    ("presets.checked", "Checked", "核对日期"),
    ("presets.use", "Use", "使用"),
    ("presets.use_all", "Use all from", "全部使用："),
    ("presets.in_use", "In use", "已使用"),
    (
        "presets.served",
        "Your channels serve models that have no price yet but a published one:",
        "渠道提供的以下模型尚未定价，但有官方公布价格：",
    ),
    ("presets.use_served", "Use their published prices", "使用官方公布价格"),
    ("presets.applied", "Prices set:", "已设置价格："),
    (
        "presets.other_currency",
        "This provider publishes these prices in another currency than the account's:",
        "该厂商公布的价格币种与账户币种不同：",
    ),
    ("prices.empty", "No prices yet", "还没有设置价格"),
    (
        "prices.empty_hint",
        "Calls to unpriced models cost nothing and are marked unpriced in the logs.",
        "未定价模型的调用不计费，并在日志中标记为未定价。",
    ),
    ("nav.models", "Models", "模型"),
    ("models.title", "Models", "模型"),
    (
        "models.subtitle",
        "Find GGUF models on Hugging Face or ModelScope, download them, and keep them on this computer",
        "在 Hugging Face 或魔搭社区查找 GGUF 模型，下载并保存在本机",
    ),
    ("models.search", "Search", "搜索"),
    ("models.search_placeholder", "Model name, e.g. qwen2.5 7b", "模型名称，例如 qwen2.5 7b"),
    (
        "models.source_hint",
        "Hugging Face slow or blocked? hf-mirror and ModelScope serve the same kind of models from China.",
        "Hugging Face 访问缓慢或无法访问？hf-mirror 与魔搭社区可在国内提供同类模型。",
    ),
    ("models.sort_downloads", "Most downloaded", "下载最多"),
    ("models.sort_likes", "Most liked", "点赞最多"),
    ("models.sort_updated", "Recently updated", "最近更新"),
    ("models.sort_trending", "Trending", "热门"),
    ("models.no_results", "No GGUF models found", "未找到 GGUF 模型"),
    ("models.no_results_hint", "Try a shorter name or another source.", "试试更短的名称或换一个来源。"),
    ("models.repo", "Repository", "仓库"),
    ("models.downloads", "Downloads", "下载量"),
    ("models.likes", "Likes", "点赞"),
    ("models.updated", "Updated", "更新时间"),
    ("models.files", "Files", "文件"),
    ("models.more", "Load more", "加载更多"),
    ("models.no_gguf", "This repository has no GGUF files.", "该仓库没有 GGUF 文件。"),
    ("models.file", "File", "文件"),
    ("models.size", "Size", "大小"),
    ("models.quant", "Quantization", "量化"),
    ("models.parts", "parts", "个分片"),
    ("models.download", "Download", "下载"),
    ("models.download_started", "Download started", "已开始下载"),
    ("models.downloads_title", "Downloads", "下载任务"),
    ("models.no_downloads", "Nothing is downloading.", "当前没有下载任务。"),
    ("models.state_queued", "Queued", "排队中"),
    ("models.state_running", "Downloading", "下载中"),
    ("models.state_paused", "Paused", "已暂停"),
    ("models.state_verifying", "Verifying", "校验中"),
    ("models.state_done", "Done", "已完成"),
    ("models.state_failed", "Failed", "失败"),
    ("models.eta", "about", "剩余约"),
    ("models.pause", "Pause", "暂停"),
    ("models.resume", "Resume", "继续"),
    ("models.local_title", "On this computer", "本机模型"),
    ("models.import", "Import", "导入"),
    ("models.import_placeholder", "/path/to/model.gguf", "/path/to/model.gguf"),
    ("models.imported", "Imported", "已导入"),
    ("models.local_empty", "No local models yet", "还没有本机模型"),
    (
        "models.local_empty_hint",
        "Download one above, or import a .gguf file you already have.",
        "可在上方下载，或导入已有的 .gguf 文件。",
    ),
    ("models.source", "Source", "来源"),
    ("models.added", "Added", "添加时间"),
    ("models.in_use", "In use", "使用中"),
    ("models.idle", "Idle", "空闲"),
    ("models.confirm_delete_file", "Click again: deletes the file", "再次点击：将删除文件"),
    ("nav.deployments", "Deployments", "部署"),
    ("nav.playground", "Playground", "试用"),
    ("play.title", "Playground", "试用"),
    (
        "play.subtitle",
        "Talk to any model BurnCloud serves, in the cloud or on this computer",
        "与 BurnCloud 提供的任意模型对话，云端或本机均可",
    ),
    ("play.model", "Model", "模型"),
    ("play.no_models", "No model yet: add a channel or deploy a local model first.", "还没有模型：请先添加渠道或部署本地模型。"),
    ("play.system", "System prompt", "系统提示词"),
    ("play.system_hint", "Optional: how the model should behave", "可选：希望模型如何回答"),
    ("play.temperature", "Temperature", "温度"),
    ("play.max_tokens", "Max tokens", "最大输出 token"),
    ("play.default", "model default", "模型默认值"),
    ("play.empty", "Send a message to start. The conversation stays in this window only.", "发送一条消息开始。对话只保存在当前窗口中。"),
    ("play.you", "You", "你"),
    ("play.assistant", "Model", "模型"),
    ("play.placeholder", "Message (Ctrl+Enter sends)", "输入消息（Ctrl+Enter 发送）"),
    ("play.send", "Send", "发送"),
    ("play.stop", "Stop", "停止"),
    ("play.clear", "Clear", "清空"),
    ("play.copy_curl", "Copy as curl", "复制为 curl"),
    ("play.copy_python", "Copy as Python", "复制为 Python"),
    ("play.copied", "Copied; set BURNCLOUD_TOKEN to one of your tokens", "已复制；请把 BURNCLOUD_TOKEN 设为你的令牌"),
    (
        "play.logged",
        "Calls go through the gateway with the built-in Playground token: they appear in the logs and are charged like any other.",
        "调用通过网关使用内置的 Playground 令牌发出：会出现在日志中，并像其他调用一样计费。",
    ),
    ("play.waiting", "Waiting for the first token (a local model may be loading)…", "等待首个 token（本地模型可能正在加载）…"),
    ("play.stopped", "Stopped", "已停止"),
    ("play.first_token", "First token", "首 token"),
    ("play.tokens_per_s", "tokens/s", "token/秒"),
    ("play.tokens", "tokens", "token"),
    ("play.cost", "Cost", "费用"),
    ("play.unpriced", "no price set", "未设置价格"),
    ("deploy.title", "Deployments", "部署"),
    (
        "deploy.subtitle",
        "Run local models on llama-server and call them through the gateway like any other model",
        "用 llama-server 运行本地模型，并像其他模型一样通过网关调用",
    ),
    ("deploy.new", "Deploy a model", "部署模型"),
    ("deploy.deploy", "Deploy", "部署"),
    ("deploy.started", "Starting", "正在启动"),
    ("deploy.model", "Model", "模型"),
    ("deploy.choose_model", "Choose a local model", "选择本机模型"),
    ("deploy.alias", "Model name", "模型名称"),
    (
        "deploy.alias_hint",
        "The name clients send as \"model\"; empty uses the file name.",
        "客户端在 \"model\" 中使用的名称；留空则使用文件名。",
    ),
    ("deploy.ctx_size", "Context size", "上下文长度"),
    ("deploy.gpu_layers", "GPU layers", "GPU 层数"),
    (
        "deploy.gpu_hint",
        "Empty: chosen to fit this computer's memory (by llama-server's --fit where it has it); 999 puts every layer on the GPU; 0 runs on the CPU only.",
        "留空：按本机内存自动选择（llama-server 支持时由其 --fit 决定）；999 表示全部放到 GPU；0 表示只用 CPU。",
    ),
    ("deploy.empty", "Nothing deployed yet", "还没有部署"),
    ("runtime.install", "Install llama.cpp", "安装 llama.cpp"),
    ("fit.gpu", "Fits in GPU", "可完全放入显存"),
    ("fit.partial", "Partly on GPU", "部分放入显存"),
    ("fit.cpu", "CPU only", "仅 CPU"),
    ("fit.too_big", "Too big for this computer", "超出本机内存"),
    ("fit.unknown", "Fit unknown", "无法估算"),
    ("fit.needs", "Needs", "需要内存"),
    ("fit.suggested", "Suggested", "推荐"),
    ("fit.tokens", "tokens of context", "上下文"),
    ("fit.auto", "auto", "自动"),
    ("runtime.detected", "detected", "检测到"),
    ("runtime.no_gpu", "no GPU detected", "未检测到 GPU"),
    ("runtime.missing", "No llama.cpp yet", "尚未安装 llama.cpp"),
    (
        "runtime.missing_hint",
        "Local models run on llama.cpp. BurnCloud installs the build that fits this computer.",
        "本地模型运行在 llama.cpp 上。BurnCloud 会安装适合这台电脑的版本。",
    ),
    ("runtime.installing", "Installing llama.cpp", "正在安装 llama.cpp"),
    ("runtime.unpacking", "verifying and unpacking", "正在校验并解压"),
    ("runtime.install_failed", "Installing llama.cpp failed", "安装 llama.cpp 失败"),
    ("runtime.build", "Build", "版本"),
    ("runtime.version", "Version", "版本号"),
    ("runtime.devices", "Devices", "设备"),
    ("runtime.active", "Active", "使用中"),
    ("runtime.use", "Use", "使用"),
    ("runtime.cpu_only", "CPU only", "仅 CPU"),
    ("runtime.memory", "Memory", "内存"),
    ("runtime.free", "free", "可用"),
    ("runtime.threads", "threads", "线程"),
    ("runtime.uses", "llama.cpp uses", "llama.cpp 可用设备"),
    ("runtime.unknown", "unknown", "未知"),
    ("runtime.source", "Download source", "下载源"),
    ("runtime.use_mirror", "Use a mirror (China)", "使用镜像（中国大陆）"),
    ("runtime.source_saved", "Download source saved", "下载源已保存"),
    (
        "runtime.source_hint",
        "Empty downloads llama.cpp from GitHub; a prefix such as https://ghfast.top/ is put before each GitHub link. Every file is checked against GitHub's sha256 either way.",
        "留空则从 GitHub 下载；填写前缀（如 https://ghfast.top/）会加在每个 GitHub 链接前。无论哪种方式，每个文件都会按 GitHub 公布的 sha256 校验。",
    ),
    (
        "deploy.empty_hint",
        "Download or import a GGUF model on the Models page, then deploy it here.",
        "先在「模型」页面下载或导入 GGUF 模型，再在这里部署。",
    ),
    ("deploy.state_starting", "Starting", "启动中"),
    ("deploy.state_ready", "Ready", "运行中"),
    ("deploy.state_stopping", "Stopping", "停止中"),
    ("deploy.state_stopped", "Stopped", "已停止"),
    ("deploy.state_failed", "Failed", "失败"),
    ("deploy.port", "Port", "端口"),
    ("deploy.started_at", "Started", "启动时间"),
    ("deploy.restarts", "Restarts after crashes", "崩溃后重启次数"),
    (
        "deploy.snippet_hint",
        "Call it through BurnCloud with any of your tokens:",
        "使用任一令牌通过 BurnCloud 调用：",
    ),
    ("deploy.log", "Log", "日志"),
    ("deploy.hide_log", "Hide log", "隐藏日志"),
    ("deploy.stop", "Stop", "停止"),
    ("deploy.restart", "Restart", "重启"),
    ("deploy.start", "Start", "启动"),
    ("deploy.state_loading", "Loading", "加载中"),
    ("deploy.limits", "Memory and loading", "内存与加载"),
    ("deploy.memory_budget", "Memory for local models (MiB)", "本地模型可用内存（MiB）"),
    (
        "deploy.memory_budget_hint",
        "Models loaded together stay within it: loading another first unloads the least recently used idle one. Empty: the free GPU memory, or RAM without a GPU.",
        "同时加载的模型总量不超过此值：加载新模型前会先卸载最久未用的空闲模型。留空：使用空闲显存，无 GPU 时使用内存。",
    ),
    ("deploy.detected", "detected", "自动检测"),
    ("deploy.load_timeout", "A call waits for loading (s)", "调用等待加载的时间（秒）"),
    ("deploy.limits_saved", "Saved", "已保存"),
    ("deploy.kind", "Serves", "用途"),
    ("deploy.kind_auto", "From the model", "按模型自动判断"),
    ("deploy.kind_chat", "Chat", "对话"),
    ("deploy.kind_embedding", "Embeddings", "向量嵌入"),
    ("deploy.kind_rerank", "Rerank", "重排序"),
    ("deploy.vision", "Images (vision projector)", "图像（视觉投影）"),
    ("deploy.idle_ttl", "Unload when idle for", "空闲多久后卸载"),
    (
        "deploy.idle_ttl_hint",
        "Seconds without a call before the model leaves memory; empty: 600; 0: never. A call loads it again.",
        "多少秒没有调用后释放内存；留空为 600；0 表示从不卸载。再次调用时会自动加载。",
    ),
    ("deploy.pinned", "Keep loaded", "常驻内存"),
    ("deploy.pin", "Pin", "固定"),
    ("deploy.unpin", "Unpin", "取消固定"),
    ("deploy.never", "never", "从不"),
    ("deploy.seconds", "s", "秒"),
    ("deploy.last_used", "Last used", "最近调用"),
    ("deploy.in_flight", "Calls now", "进行中的调用"),
    ("deploy.memory", "Memory", "内存"),
    ("deploy.start_now", "Start now (otherwise on the first call)", "立即启动（否则在首次调用时启动）"),
    (
        "deploy.loads_on_call",
        "Not loaded: the first call that names it loads it.",
        "未加载：首次调用该模型时会自动加载。",
    ),
    ("settings.title", "Settings", "设置"),
    ("settings.subtitle", "Language, money and how BurnCloud runs", "语言、货币与运行方式"),
    ("settings.language", "Language", "语言"),
    ("settings.theme", "Theme", "主题"),
    ("settings.theme_light", "Light", "浅色"),
    ("settings.theme_dark", "Dark", "深色"),
    ("settings.currency", "Currency", "货币"),
    ("settings.balance", "Balance", "余额"),
    ("settings.top_up", "Top up", "充值"),
    (
        "settings.top_up_hint",
        "Topping up an unlimited account starts a balance of that amount.",
        "为不限额账户充值后，余额即为充值金额。",
    ),
    ("settings.make_unlimited", "Make unlimited", "设为不限额"),
    ("settings.amount", "Amount", "金额"),
    ("settings.endpoint", "Gateway address", "网关地址"),
    ("settings.data_dir", "Data folder", "数据目录"),
    ("settings.admin_key", "Console admin key", "控制台管理密钥"),
    ("settings.reveal", "Reveal", "显示"),
    ("settings.hide", "Hide", "隐藏"),
    ("settings.version", "Version", "版本"),
    ("settings.rotate", "Rotate", "更换"),
    ("settings.rotate_confirm", "Click again: the old key stops working", "再次点击确认：旧密钥将立即失效"),
    ("settings.rotated", "A new admin key is in place; the old one no longer works", "已更换管理密钥，旧密钥已失效"),
    ("settings.close_to_tray", "Closing the window", "关闭窗口时"),
    ("settings.close_to_tray_hint", "keeps BurnCloud running in the tray", "最小化到托盘，BurnCloud 继续运行"),
    ("settings.log_retention", "Keep call logs", "调用日志保留"),
    ("settings.log_retention_forever", "forever", "永久"),
    ("settings.log_retention_days", "days", "天"),
    (
        "settings.log_retention_hint",
        "older calls are removed every hour; dashboard totals stay",
        "每小时删除更早的调用记录；仪表盘的统计总数保留",
    ),
    ("settings.hub_title", "Model hub access", "模型仓库访问"),
    ("settings.llama_title", "Local inference", "本地推理"),
    ("settings.llama_path", "llama-server path", "llama-server 路径"),
    ("settings.llama_auto", "Empty: find it automatically", "留空：自动查找"),
    ("settings.llama_saved", "Saved; new deployments use it", "已保存，新的部署将使用它"),
    ("settings.llama_found", "In use", "当前使用"),
    ("settings.hub_token_saved", "Access token saved", "访问令牌已保存"),
    ("settings.hub_token_set", "Token set", "已设置令牌"),
    ("settings.hub_token_unset", "No token", "未设置令牌"),
    (
        "settings.hub_token_hint",
        "Needed only for gated or private models. Tokens go to the hub's own site, never to download mirrors. Save an empty field to remove one.",
        "仅受限或私有模型需要。令牌只发送给模型仓库自身的站点，不会发送给下载镜像。保存空值即可删除。",
    ),
    (
        "settings.restart_hint",
        "Change the address with --listen or BURNCLOUD_LISTEN.",
        "可通过 --listen 或 BURNCLOUD_LISTEN 修改地址。",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `t("key")` in the client crates has both translations, and no key is listed twice.
    #[test]
    fn every_used_key_is_translated() {
        let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut used = Vec::new();
        for name in ["client", "client-dashboard", "client-settings", "client-models"] {
            collect_keys(&crates.join(name).join("src"), &mut used);
        }
        assert!(used.len() > 20, "found only {} keys: is the scan broken?", used.len());
        for key in &used {
            let entry = STRINGS.iter().find(|(k, _, _)| k == key);
            let (_, en, zh) = entry.unwrap_or_else(|| panic!("no translation for {key:?}"));
            assert!(!en.is_empty() && !zh.is_empty(), "{key:?} is empty in a language");
        }
        for (i, (key, _, _)) in STRINGS.iter().enumerate() {
            assert!(!STRINGS[..i].iter().any(|(k, _, _)| k == key), "{key:?} is listed twice");
        }
    }

    fn collect_keys(dir: &std::path::Path, keys: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                collect_keys(&path, keys);
            } else if path.extension().is_some_and(|e| e == "rs") {
                // Keys inside rsx format strings are written t(\"key\"); read both forms.
                let text = std::fs::read_to_string(&path).unwrap().replace("t(\\\"", "t(\"");
                for piece in text.split("t(\"").skip(1) {
                    if let Some(end) = piece.find(['"', '\\']) {
                        let key = &piece[..end];
                        if key.contains('.') && !key.contains(' ') {
                            keys.push(key.to_string());
                        }
                    }
                }
            }
        }
    }
}
