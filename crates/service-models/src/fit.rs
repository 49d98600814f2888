//! The memory a GGUF model needs, from its shape and file size, and a cache of shapes read from
//! local files so listing models does not read their metadata every time.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use burncloud_service_api::ModelEstimate;

use crate::gguf::{read_shape, ModelShape};

/// The tokens in one batch llama-server computes (its `--ubatch-size` default).
const UBATCH: u64 = 512;

/// llama.cpp's compute buffer: activations of one micro-batch, about five rows of the embedding
/// width and two of the K/V width per token, in f32. Checked against what llama-server b10434
/// reports (`sched_reserve: … compute buffer size`) for one-layer models of each shape in
/// the table in this file's tests; within 8% of each.
pub fn compute_bytes(shape: &ModelShape) -> u64 {
    let head_dim = shape.key_length.unwrap_or_else(|| shape.head_dim());
    UBATCH * 4 * (5 * shape.embedding_length + 2 * shape.kv_heads() * head_dim)
}

/// The estimate for a model of `shape` whose files hold `weights_bytes`.
pub fn estimate(shape: &ModelShape, weights_bytes: u64) -> ModelEstimate {
    ModelEstimate {
        weights_bytes,
        block_count: shape.block_count,
        context_length: shape.context_length,
        kv_bytes_per_token: shape.kv_bytes_per_token(),
        compute_bytes: compute_bytes(shape),
    }
}

/// A file's shape as read at its modification time (none if unreadable).
type ReadShape = (Option<SystemTime>, Option<ModelShape>);

/// Shapes of local files, read once per file version.
#[derive(Default)]
pub struct ShapeCache {
    read: Mutex<HashMap<String, ReadShape>>,
}

impl ShapeCache {
    pub fn shape(&self, path: &str) -> Option<ModelShape> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if let Some((when, shape)) = self.read.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
            if *when == modified {
                return shape.clone();
            }
        }
        let shape = read_shape(Path::new(path)).ok();
        self.read.lock().unwrap_or_else(|p| p.into_inner()).insert(path.to_string(), (modified, shape.clone()));
        shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burncloud_service_api::{Fit, MemoryBudget};

    const MIB: u64 = 1 << 20;
    const GB: u64 = 1_000_000_000;

    fn shape(layers: u64, embedding: u64, heads: u64, kv_heads: u64, vocab: u64) -> ModelShape {
        ModelShape {
            architecture: "llama".into(),
            block_count: layers,
            context_length: 32768,
            embedding_length: embedding,
            head_count: heads,
            head_count_kv: kv_heads,
            key_length: None,
            value_length: None,
            vocab_size: vocab,
            pooling_type: 0,
            size_label: None,
        }
    }

    /// Well-known 7–8B models at Q4_K_M and 4096 context. "Reported" is what llama-server (b10434,
    /// the build `./scripts/test` installs; CPU, flash attention on by its `auto`) allocates:
    /// the model buffer (the file's tensor data, within 0.1% of the file size Hugging Face lists),
    /// the KV cache (`llama_kv_cache: size = … MiB` for a one-layer model of the same shape, times
    /// the layers) and the compute buffer (`sched_reserve: CPU compute buffer size`). The one-layer
    /// models were written with the same attention, FFN and vocabulary sizes as the real ones.
    ///
    /// | model (file)                                   | file    | layers | KV/layer | compute   |
    /// |------------------------------------------------|---------|--------|----------|-----------|
    /// | Llama-2-7B `llama-2-7b.Q4_K_M.gguf` (TheBloke)  | 4.08 GB | 32     | 64 MiB   | 52.01 MiB |
    /// | Mistral-7B-Instruct-v0.2 Q4_K_M (TheBloke)      | 4.37 GB | 32     | 16 MiB   | 44.01 MiB |
    /// | Qwen2.5-7B-Instruct Q4_K_M (bartowski)          | 4.68 GB | 28     | 8 MiB    | 39.01 MiB |
    /// | Llama-3.1-8B-Instruct Q4_K_M (bartowski)        | 4.92 GB | 32     | 16 MiB   | 44.01 MiB |
    #[test]
    fn estimates_match_what_llama_server_allocates_for_well_known_models() {
        let table = [
            ("llama-2-7b", shape(32, 4096, 32, 32, 32000), 4_080_000_000, 64 * MIB, 52 * MIB),
            ("mistral-7b-v0.2", shape(32, 4096, 32, 8, 32000), 4_370_000_000, 16 * MIB, 44 * MIB),
            ("qwen2.5-7b", shape(28, 3584, 28, 4, 152064), 4_680_000_000, 8 * MIB, 39 * MIB),
            ("llama-3.1-8b", shape(32, 4096, 32, 8, 128256), 4_920_000_000, 16 * MIB, 44 * MIB),
        ];
        for (name, shape, file, kv_per_layer, compute) in table {
            let estimate = estimate(&shape, file);
            let reported = file + kv_per_layer * shape.block_count + compute;
            let estimated = estimate.bytes_at(4096);
            let error = (estimated as f64 - reported as f64).abs() / reported as f64;
            assert!(error < 0.15, "{name}: estimated {estimated}, reported {reported} ({:.1}% off)", error * 100.0);
            // The parts, each close: the KV cache exactly, the compute buffer within 10%.
            assert_eq!(estimate.kv_bytes_per_token * 4096, kv_per_layer * shape.block_count, "{name}");
            let compute_error = (estimate.compute_bytes as f64 - compute as f64).abs() / compute as f64;
            assert!(compute_error < 0.10, "{name}: compute {} vs {compute}", estimate.compute_bytes);
        }
    }

    #[test]
    fn where_a_model_runs_and_what_is_proposed() {
        let mistral = estimate(&shape(32, 4096, 32, 8, 32000), 4_370_000_000);
        let needs = mistral.bytes_at(4096);
        assert!((4_900_000_000..5_000_000_000).contains(&needs), "{needs}");
        let rtx_4070 = MemoryBudget { gpu_free_bytes: Some(11 * GB), ram_bytes: 32 * GB };
        let small_gpu = MemoryBudget { gpu_free_bytes: Some(3 * GB), ram_bytes: 16 * GB };
        let no_gpu = MemoryBudget { gpu_free_bytes: None, ram_bytes: 16 * GB };
        let tiny_laptop = MemoryBudget { gpu_free_bytes: None, ram_bytes: 4 * GB };
        assert_eq!(mistral.fit(4096, &rtx_4070), Fit::Gpu);
        assert_eq!(mistral.fit(4096, &small_gpu), Fit::Partial);
        assert_eq!(mistral.fit(4096, &no_gpu), Fit::Cpu);
        assert_eq!(mistral.fit(4096, &tiny_laptop), Fit::TooBig);

        // 11 GB free: 4.4 GB of weights leave room for 32768 tokens of KV (4 GiB) on the GPU.
        assert_eq!(mistral.proposal(&rtx_4070), (32768, 33));
        let (context, layers) = mistral.proposal(&small_gpu);
        assert_eq!(context, 4096);
        assert!((5..32).contains(&layers), "a share of the layers: {layers}");
        assert_eq!(mistral.proposal(&no_gpu).1, 0);
        let short = ModelEstimate { context_length: 2048, ..mistral.clone() };
        assert_eq!(short.proposal(&rtx_4070).0, 2048, "never more than the model's own context");
    }
}
