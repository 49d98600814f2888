//! What a GGUF file name says: its quantisation (`Q4_K_M`), whether it is one shard of a split model
//! (`-00001-of-00003`), and whether it is a multimodal projector (`mmproj`).

use burncloud_service_api::Shard;

/// The file name without its directories.
pub fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// `model-00002-of-00003.gguf` → shard 2 of 3.
pub fn shard(path: &str) -> Option<Shard> {
    let stem = file_name(path).strip_suffix(".gguf").or_else(|| file_name(path).strip_suffix(".GGUF"))?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (_, index) = rest.rsplit_once('-')?;
    if index.len() != 5 || count.len() != 5 {
        return None;
    }
    let index: u32 = index.parse().ok()?;
    let count: u32 = count.parse().ok()?;
    (index >= 1 && index <= count).then_some(Shard { index, count })
}

/// The path of shard `index` of the split model `path` belongs to.
pub fn shard_path(path: &str, shard: Shard, index: u32) -> String {
    let marker = format!("-{:05}-of-{:05}", shard.index, shard.count);
    match path.rfind(&marker) {
        Some(at) => format!("{}-{:05}-of-{:05}{}", &path[..at], index, shard.count, &path[at + marker.len()..]),
        None => path.to_string(),
    }
}

/// The first shard's path for a split model; the path itself otherwise.
pub fn group(path: &str) -> String {
    match shard(path) {
        Some(found) => shard_path(path, found, 1),
        None => path.to_string(),
    }
}

pub fn is_mmproj(path: &str) -> bool {
    file_name(path).to_ascii_lowercase().contains("mmproj")
}

/// What a model serves, by its file name alone (when its metadata cannot be read).
pub fn kind(file_name: &str) -> burncloud_service_api::InstanceKind {
    use burncloud_service_api::InstanceKind;
    let name = file_name.to_ascii_lowercase();
    if name.contains("rerank") {
        InstanceKind::Rerank
    } else if name.contains("embed") {
        InstanceKind::Embedding
    } else {
        InstanceKind::Chat
    }
}

/// A vision projector in the model's folder: the one whose quantisation matches the model's
/// (`F16` before others when none does), so that a repo's `mmproj` file loads with its model.
pub fn projector_beside(model: &std::path::Path) -> Option<String> {
    let folder = model.parent()?;
    let wanted = quant(&model.to_string_lossy());
    let mut projectors: Vec<String> = std::fs::read_dir(folder)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .map(|path| path.to_string_lossy().into_owned())
        .filter(|path| is_mmproj(path) && is_gguf(path))
        .collect();
    projectors.sort();
    projectors.into_iter().min_by_key(|path| projector_rank(wanted.as_deref(), path))
}

/// How well a projector goes with a model of quantisation `model_quant`: the same quantisation
/// first, then F16 (what most repos publish), then any other.
pub fn projector_rank(model_quant: Option<&str>, projector: &str) -> u8 {
    match quant(projector) {
        Some(q) if Some(q.as_str()) == model_quant => 0,
        Some(q) if q.eq_ignore_ascii_case("F16") => 1,
        _ => 2,
    }
}

pub fn is_gguf(path: &str) -> bool {
    file_name(path).to_ascii_lowercase().ends_with(".gguf")
}

/// The quantisation named in the file name, upper-cased: `Q4_K_M`, `IQ3_XXS`, `Q8_0`, `F16`, `BF16`.
pub fn quant(path: &str) -> Option<String> {
    let name = file_name(path);
    let stem = name.strip_suffix(".gguf").or_else(|| name.strip_suffix(".GGUF")).unwrap_or(name);
    stem.split(['-', '.']).map(str::to_ascii_uppercase).rfind(|token| is_quant(token))
}

fn is_quant(token: &str) -> bool {
    if matches!(token, "F16" | "BF16" | "F32" | "TQ1_0" | "TQ2_0" | "MXFP4" | "MXFP4_MOE") {
        return true;
    }
    let rest = token.strip_prefix('I').unwrap_or(token);
    let Some(rest) = rest.strip_prefix('Q') else { return false };
    let mut chars = rest.chars();
    let bits_ok = chars.next().is_some_and(|c| c.is_ascii_digit());
    let tail: String = chars.collect();
    bits_ok
        && tail.starts_with('_')
        && tail.len() > 1
        && tail[1..].chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quantisations_from_the_names_hubs_use() {
        let cases = [
            ("Qwen2.5-7B-Instruct-Q4_K_M.gguf", Some("Q4_K_M")),
            ("qwen2.5-0.5b-instruct-q4_k_m.gguf", Some("Q4_K_M")),
            ("Q8_0/model-Q8_0-00001-of-00002.gguf", Some("Q8_0")),
            ("Llama-3.2-1B-Instruct-IQ3_XXS.gguf", Some("IQ3_XXS")),
            ("gemma-3-4b-it-BF16.gguf", Some("BF16")),
            ("phi-2.Q5_K_S.gguf", Some("Q5_K_S")),
            ("mmproj-model-f16.gguf", Some("F16")),
            ("DeepSeek-R1-UD-Q2_K_XL-00001-of-00005.gguf", Some("Q2_K_XL")),
            ("README.md", None),
            ("tiny.gguf", None),
        ];
        for (path, want) in cases {
            assert_eq!(quant(path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn groups_shards_under_the_first_one() {
        let path = "Q8_0/model-Q8_0-00002-of-00003.gguf";
        assert_eq!(shard(path), Some(Shard { index: 2, count: 3 }));
        assert_eq!(group(path), "Q8_0/model-Q8_0-00001-of-00003.gguf");
        assert_eq!(shard_path(path, Shard { index: 2, count: 3 }, 3), "Q8_0/model-Q8_0-00003-of-00003.gguf");
        assert_eq!(shard("model-1-of-3.gguf"), None);
        assert_eq!(shard("model-00004-of-00003.gguf"), None);
        assert_eq!(group("plain.gguf"), "plain.gguf");
        assert!(is_mmproj("vision/mmproj-F16.gguf"));
        assert!(!is_mmproj("model.gguf"));
    }
}
