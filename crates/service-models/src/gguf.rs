//! Recognising a GGUF file by its header, so an import refuses anything llama-server could not load.

use std::io::Read;
use std::path::Path;

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
}
