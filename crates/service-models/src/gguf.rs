//! Reading a GGUF file's header and metadata: the fixed header (so an import refuses anything
//! llama-server could not load), and the key-value section that says how big the model is inside
//! (layers, embedding size, heads, context, vocabulary), which sizes its KV cache.

use std::io::Read;
use std::path::Path;

use burncloud_service_api::InstanceKind;

/// What the header says.
#[derive(Debug, PartialEq, Eq)]
pub struct GgufHeader {
    pub version: u32,
    pub tensor_count: u64,
    pub metadata_count: u64,
}

/// Reads and checks the fixed header: magic `GGUF`, a known version, plausible counts.
pub fn read_header(path: &Path) -> Result<GgufHeader, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut header = [0u8; 24];
    file.read_exact(&mut header).map_err(|_| format!("{} is too short to be a GGUF model", path.display()))?;
    parse_header(&header).map_err(|reason| format!("{} is not a GGUF model: {reason}", path.display()))
}

pub fn parse_header(header: &[u8; 24]) -> Result<GgufHeader, String> {
    if &header[0..4] != b"GGUF" {
        return Err("the file does not start with the GGUF magic".into());
    }
    let version = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if !(2..=3).contains(&version) {
        return Err(format!("unsupported GGUF version {version}"));
    }
    let tensor_count = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
    let metadata_count = u64::from_le_bytes(header[16..24].try_into().unwrap_or_default());
    if tensor_count > 1_000_000 || metadata_count > 1_000_000 {
        return Err("the header's counts are implausible".into());
    }
    Ok(GgufHeader { version, tensor_count, metadata_count })
}

/// The shape of a model, from its metadata: what its memory needs follow from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelShape {
    pub architecture: String,
    pub block_count: u64,
    pub context_length: u64,
    pub embedding_length: u64,
    pub head_count: u64,
    /// Per layer where the file lists it per layer (the largest is kept).
    pub head_count_kv: u64,
    pub key_length: Option<u64>,
    pub value_length: Option<u64>,
    pub vocab_size: u64,
    /// `<arch>.pooling_type`: 0 none (a chat model), 1 mean, 2 CLS, 3 last (embedding models),
    /// 4 rank (rerankers).
    pub pooling_type: u64,
    /// `general.size_label`, the parameter count as llama.cpp's converter writes it (`8B`, `494M`).
    pub size_label: Option<String>,
}

/// llama.cpp's `LLAMA_POOLING_TYPE_RANK`: the model scores a query against a document.
const POOLING_RANK: u64 = 4;
/// Architectures that only embed (encoders without a language-model head).
const EMBEDDING_ARCHITECTURES: &[&str] =
    &["bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "neo-bert", "modern-bert", "eurobert"];

impl ModelShape {
    /// What a deployment of it serves: from its pooling type and architecture, and its file name.
    pub fn kind(&self, file_name: &str) -> InstanceKind {
        let embeds = self.pooling_type > 0 || EMBEDDING_ARCHITECTURES.contains(&self.architecture.as_str());
        match crate::names::kind(file_name) {
            _ if self.pooling_type == POOLING_RANK => InstanceKind::Rerank,
            InstanceKind::Chat if embeds => InstanceKind::Embedding,
            by_name => by_name,
        }
    }

    /// The width of one attention head.
    pub fn head_dim(&self) -> u64 {
        self.embedding_length.checked_div(self.head_count).unwrap_or(0)
    }

    /// KV heads (all heads where the model does not group them).
    pub fn kv_heads(&self) -> u64 {
        if self.head_count_kv == 0 {
            self.head_count
        } else {
            self.head_count_kv
        }
    }

    /// Bytes of K and V per token across all layers, in f16 (llama-server's default cache type).
    pub fn kv_bytes_per_token(&self) -> u64 {
        let key = self.key_length.unwrap_or_else(|| self.head_dim());
        let value = self.value_length.unwrap_or_else(|| self.head_dim());
        self.block_count * self.kv_heads() * (key + value) * 2
    }
}

/// Why the metadata could not be read from the bytes at hand.
#[derive(Debug, PartialEq, Eq)]
pub enum MetadataError {
    /// The key-value section runs past the bytes given: read more of the file.
    NeedMore,
    Invalid(String),
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, count: u64) -> Result<&[u8], MetadataError> {
        let count = usize::try_from(count).map_err(|_| MetadataError::Invalid("a length overflows".into()))?;
        let end = self.at.checked_add(count).ok_or_else(|| MetadataError::Invalid("a length overflows".into()))?;
        if end > self.bytes.len() {
            return Err(MetadataError::NeedMore);
        }
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, MetadataError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }

    fn u64(&mut self) -> Result<u64, MetadataError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }

    fn string(&mut self) -> Result<String, MetadataError> {
        let length = self.u64()?;
        if length > 64 << 20 {
            return Err(MetadataError::Invalid("a string longer than 64 MB".into()));
        }
        Ok(String::from_utf8_lossy(self.take(length)?).into_owned())
    }
}

/// A metadata value, as far as sizing needs it.
enum Value {
    Number(u64),
    Text(String),
    /// An array: its element count, and the largest number in it (per-layer head counts).
    Array {
        count: u64,
        largest: Option<u64>,
    },
    Other,
}

const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;

fn fixed_size(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn read_number(cursor: &mut Cursor<'_>, kind: u32) -> Result<Option<u64>, MetadataError> {
    let size = fixed_size(kind).ok_or_else(|| MetadataError::Invalid(format!("unknown value type {kind}")))?;
    let bytes = cursor.take(size)?;
    Ok(match kind {
        0 | 7 => Some(u64::from(bytes[0])),
        1 => u64::try_from(bytes[0] as i8).ok(),
        2 => Some(u64::from(u16::from_le_bytes([bytes[0], bytes[1]]))),
        3 => u64::try_from(i16::from_le_bytes([bytes[0], bytes[1]])).ok(),
        4 => Some(u64::from(u32::from_le_bytes(bytes.try_into().unwrap_or_default()))),
        5 => u64::try_from(i32::from_le_bytes(bytes.try_into().unwrap_or_default())).ok(),
        10 => Some(u64::from_le_bytes(bytes.try_into().unwrap_or_default())),
        11 => u64::try_from(i64::from_le_bytes(bytes.try_into().unwrap_or_default())).ok(),
        _ => None,
    })
}

fn read_value(cursor: &mut Cursor<'_>, kind: u32) -> Result<Value, MetadataError> {
    match kind {
        TYPE_STRING => Ok(Value::Text(cursor.string()?)),
        TYPE_ARRAY => {
            let element = cursor.u32()?;
            let count = cursor.u64()?;
            if count > 100_000_000 {
                return Err(MetadataError::Invalid("an array of more than 100 million values".into()));
            }
            let mut largest = None;
            if element == TYPE_STRING {
                for _ in 0..count {
                    let length = cursor.u64()?;
                    cursor.take(length)?;
                }
            } else if element == TYPE_ARRAY {
                return Err(MetadataError::Invalid("nested arrays are not GGUF metadata llama.cpp writes".into()));
            } else {
                for _ in 0..count {
                    if let Some(number) = read_number(cursor, element)? {
                        largest = Some(largest.map_or(number, |l: u64| l.max(number)));
                    }
                }
            }
            Ok(Value::Array { count, largest })
        }
        kind => Ok(read_number(cursor, kind)?.map(Value::Number).unwrap_or(Value::Other)),
    }
}

/// Reads the model's shape from the start of a GGUF file (as many bytes as are at hand).
pub fn parse_shape(bytes: &[u8]) -> Result<ModelShape, MetadataError> {
    let header: &[u8; 24] = bytes.get(..24).and_then(|b| b.try_into().ok()).ok_or(MetadataError::NeedMore)?;
    let header = parse_header(header).map_err(MetadataError::Invalid)?;
    let mut cursor = Cursor { bytes, at: 24 };
    let mut values: Vec<(String, Value)> = Vec::new();
    for _ in 0..header.metadata_count {
        let key = cursor.string()?;
        let kind = cursor.u32()?;
        let value = read_value(&mut cursor, kind)?;
        values.push((key, value));
    }
    let text = |name: &str| {
        values.iter().find(|(key, _)| key == name).and_then(|(_, value)| match value {
            Value::Text(text) => Some(text.clone()),
            _ => None,
        })
    };
    let architecture = text("general.architecture")
        .ok_or_else(|| MetadataError::Invalid("the metadata names no general.architecture".into()))?;
    let number = |suffix: &str| {
        let name = format!("{architecture}.{suffix}");
        values.iter().find(|(key, _)| *key == name).and_then(|(_, value)| match value {
            Value::Number(number) => Some(*number),
            Value::Array { largest, .. } => *largest,
            _ => None,
        })
    };
    let vocab_size = values
        .iter()
        .find(|(key, _)| key == "tokenizer.ggml.tokens")
        .and_then(|(_, value)| match value {
            Value::Array { count, .. } => Some(*count),
            _ => None,
        })
        .or_else(|| number("vocab_size"))
        .unwrap_or(0);
    let shape = ModelShape {
        block_count: number("block_count").unwrap_or(0),
        context_length: number("context_length").unwrap_or(0),
        embedding_length: number("embedding_length").unwrap_or(0),
        head_count: number("attention.head_count").unwrap_or(0),
        head_count_kv: number("attention.head_count_kv").unwrap_or(0),
        key_length: number("attention.key_length"),
        value_length: number("attention.value_length"),
        vocab_size,
        pooling_type: number("pooling_type").unwrap_or(0),
        size_label: text("general.size_label").filter(|label| !label.is_empty()),
        architecture,
    };
    if shape.block_count == 0 || shape.embedding_length == 0 {
        return Err(MetadataError::Invalid(format!(
            "the {} metadata lacks its layer count or width",
            shape.architecture
        )));
    }
    Ok(shape)
}

/// Reads the shape of a GGUF on disk, reading more of its start until the metadata is complete.
pub fn read_shape(path: &Path) -> Result<ModelShape, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    let mut want = 1usize << 20;
    loop {
        let have = bytes.len();
        (&mut file).take((want - have) as u64).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        match parse_shape(&bytes) {
            Ok(shape) => return Ok(shape),
            Err(MetadataError::NeedMore) if bytes.len() == want && want < MAX_METADATA => want *= 4,
            Err(MetadataError::NeedMore) => return Err("the metadata section is cut short".into()),
            Err(MetadataError::Invalid(reason)) => return Err(reason),
        }
    }
}

/// Metadata larger than this is not read (the biggest vocabularies take a few MB).
pub const MAX_METADATA: usize = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: &[u8; 4], version: u32, tensors: u64, metadata: u64) -> [u8; 24] {
        let mut bytes = [0u8; 24];
        bytes[0..4].copy_from_slice(magic);
        bytes[4..8].copy_from_slice(&version.to_le_bytes());
        bytes[8..16].copy_from_slice(&tensors.to_le_bytes());
        bytes[16..24].copy_from_slice(&metadata.to_le_bytes());
        bytes
    }

    #[test]
    fn accepts_gguf_and_refuses_the_rest() {
        assert_eq!(
            parse_header(&header(b"GGUF", 3, 20, 25)),
            Ok(GgufHeader { version: 3, tensor_count: 20, metadata_count: 25 })
        );
        assert!(parse_header(&header(b"GGML", 3, 1, 1)).unwrap_err().contains("magic"));
        assert!(parse_header(&header(b"GGUF", 9, 1, 1)).unwrap_err().contains("version 9"));
        assert!(parse_header(&header(b"GGUF", 3, u64::MAX, 1)).unwrap_err().contains("implausible"));
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short.gguf");
        std::fs::write(&short, b"GGUF").unwrap();
        assert!(read_header(&short).unwrap_err().contains("too short"));
    }

    /// A metadata section written as llama.cpp's gguf writer does.
    struct Writer(Vec<u8>, u64);

    impl Writer {
        fn key(&mut self, key: &str, kind: u32) {
            self.0.extend((key.len() as u64).to_le_bytes());
            self.0.extend(key.as_bytes());
            self.0.extend(kind.to_le_bytes());
            self.1 += 1;
        }
        fn u32(&mut self, key: &str, value: u32) {
            self.key(key, 4);
            self.0.extend(value.to_le_bytes());
        }
        fn string(&mut self, key: &str, value: &str) {
            self.key(key, TYPE_STRING);
            self.0.extend((value.len() as u64).to_le_bytes());
            self.0.extend(value.as_bytes());
        }
        fn tokens(&mut self, count: u64) {
            self.key("tokenizer.ggml.tokens", TYPE_ARRAY);
            self.0.extend(TYPE_STRING.to_le_bytes());
            self.0.extend(count.to_le_bytes());
            for i in 0..count {
                let token = format!("t{i}");
                self.0.extend((token.len() as u64).to_le_bytes());
                self.0.extend(token.as_bytes());
            }
        }
        fn finish(self) -> Vec<u8> {
            let mut bytes = header(b"GGUF", 3, 0, self.1).to_vec();
            bytes.extend(self.0);
            bytes
        }
    }

    #[test]
    fn the_shape_is_read_from_the_metadata_and_more_bytes_are_asked_for() {
        let mut w = Writer(Vec::new(), 0);
        w.string("general.architecture", "llama");
        w.u32("llama.block_count", 32);
        w.u32("llama.context_length", 32768);
        w.u32("llama.embedding_length", 4096);
        w.u32("llama.attention.head_count", 32);
        w.u32("llama.attention.head_count_kv", 8);
        w.tokens(32000);
        let bytes = w.finish();
        let shape = parse_shape(&bytes).unwrap();
        assert_eq!(
            (shape.block_count, shape.context_length, shape.head_count_kv, shape.vocab_size),
            (32, 32768, 8, 32000)
        );
        // Mistral 7B: 32 layers × 8 KV heads × (128 + 128) × 2 bytes = 128 KiB per token.
        assert_eq!(shape.kv_bytes_per_token(), 128 << 10);
        assert_eq!(parse_shape(&bytes[..bytes.len() - 10]), Err(MetadataError::NeedMore));
        assert!(matches!(
            parse_shape(b"GGML\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
            Err(MetadataError::Invalid(_))
        ));
    }

    #[test]
    fn the_tiny_test_model_is_read_from_disk() {
        let Some(model) = std::env::var_os("BURNCLOUD_TEST_GGUF") else {
            eprintln!("SKIPPED: BURNCLOUD_TEST_GGUF is not set (./scripts/test makes the tiny model)");
            return;
        };
        let shape = read_shape(Path::new(&model)).unwrap();
        assert_eq!(shape.architecture, "llama");
        assert_eq!((shape.block_count, shape.embedding_length, shape.context_length), (2, 64, 4096));
    }
}
