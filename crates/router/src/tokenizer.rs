//! A compact o200k_base byte-pair tokenizer that only counts: the vocabulary lives in one byte
//! arena with an open-addressing index (≈ 4 MB), where a general-purpose BPE keeps three hash maps
//! of owned vectors (≈ 50 MB resident) for the same ranks.

use fancy_regex::Regex;

/// OpenAI's o200k_base ranks (`<base64 token> <rank>` per line), as published by `tiktoken`.
const O200K_BASE: &str = include_str!("../assets/o200k_base.tiktoken");

/// The o200k_base pre-tokenizer: the text is split into pieces by this pattern before merging.
const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+(?!\S)",
    r"|\s+",
);

type Rank = u32;

/// Token byte strings by rank, and a hash index from bytes to rank.
struct Vocabulary {
    arena: Box<[u8]>,
    /// `ends[rank]` is where the token of that rank ends in `arena`; it starts at `ends[rank - 1]`.
    ends: Box<[u32]>,
    /// Open addressing: `rank + 1` per slot, 0 when empty.
    slots: Box<[u32]>,
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    // FxHash over 8-byte words: fast, and the vocabulary is fixed, so no need for DoS resistance.
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut hash = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"));
        hash = (hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    hash = (hash.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(SEED);
    hash ^ (hash >> 29)
}

impl Vocabulary {
    fn parse(text: &str) -> Result<Self, String> {
        let mut arena = Vec::with_capacity(text.len() / 2);
        let mut ends = Vec::with_capacity(text.len() / 16);
        for (line_index, line) in text.lines().enumerate() {
            let (encoded, rank) = line.split_once(' ').ok_or_else(|| format!("line {}: no rank", line_index + 1))?;
            if rank.parse::<usize>().ok() != Some(ends.len()) {
                return Err(format!("line {}: ranks are not consecutive", line_index + 1));
            }
            decode_base64(encoded, &mut arena).ok_or_else(|| format!("line {}: bad base64", line_index + 1))?;
            ends.push(u32::try_from(arena.len()).map_err(|_| "vocabulary too large".to_owned())?);
        }
        let slot_count = (ends.len() * 2).next_power_of_two();
        let mut vocabulary =
            Self { arena: arena.into_boxed_slice(), ends: ends.into_boxed_slice(), slots: vec![0; slot_count].into() };
        for rank in 0..vocabulary.ends.len() {
            let token = vocabulary.token(rank as Rank);
            let mut slot = hash_bytes(token) as usize & (slot_count - 1);
            while vocabulary.slots[slot] != 0 {
                slot = (slot + 1) & (slot_count - 1);
            }
            vocabulary.slots[slot] = rank as Rank + 1;
        }
        Ok(vocabulary)
    }

    fn token(&self, rank: Rank) -> &[u8] {
        let rank = rank as usize;
        let start = if rank == 0 { 0 } else { self.ends[rank - 1] as usize };
        &self.arena[start..self.ends[rank] as usize]
    }

    fn rank(&self, bytes: &[u8]) -> Option<Rank> {
        let mask = self.slots.len() - 1;
        let mut slot = hash_bytes(bytes) as usize & mask;
        loop {
            match self.slots[slot] {
                0 => return None,
                stored if self.token(stored - 1) == bytes => return Some(stored - 1),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// How many tokens byte-pair merging makes of one pre-tokenized piece.
    fn count_piece(&self, piece: &[u8], parts: &mut Vec<(usize, Rank)>) -> usize {
        if piece.len() <= 1 || self.rank(piece).is_some() {
            return piece.len().min(1);
        }
        // tiktoken's merge: `parts[i]` is (start of part i, rank of merging it with the next one);
        // the lowest-ranked pair merges first until no adjacent pair is in the vocabulary.
        let pair_rank = |parts: &[(usize, Rank)], i: usize| -> Rank {
            if i + 3 < parts.len() {
                self.rank(&piece[parts[i].0..parts[i + 3].0]).unwrap_or(Rank::MAX)
            } else {
                Rank::MAX
            }
        };
        parts.clear();
        for start in 0..piece.len() - 1 {
            parts.push((start, self.rank(&piece[start..start + 2]).unwrap_or(Rank::MAX)));
        }
        parts.push((piece.len() - 1, Rank::MAX));
        parts.push((piece.len(), Rank::MAX));
        while let Some((lowest, _)) = parts[..parts.len() - 1]
            .iter()
            .enumerate()
            .filter(|(_, part)| part.1 != Rank::MAX)
            .min_by_key(|(_, part)| part.1)
        {
            if lowest > 0 {
                parts[lowest - 1].1 = pair_rank(parts, lowest - 1);
            }
            parts[lowest].1 = pair_rank(parts, lowest);
            parts.remove(lowest + 1);
        }
        parts.len() - 1
    }
}

fn base64_value(byte: u8) -> Option<u32> {
    Some(match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Standard base64 with padding, appended to `out`; `None` on any malformed input.
fn decode_base64(encoded: &str, out: &mut Vec<u8>) -> Option<()> {
    let bytes = encoded.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    for (index, quad) in bytes.chunks_exact(4).enumerate() {
        let last = index == bytes.len() / 4 - 1;
        let padding = quad.iter().rev().take_while(|&&byte| byte == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut word = 0u32;
        for &byte in &quad[..4 - padding] {
            word = (word << 6) | base64_value(byte)?;
        }
        word <<= 6 * padding as u32;
        let decoded = [(word >> 16) as u8, (word >> 8) as u8, word as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(())
}

/// Counts tokens the way OpenAI's o200k_base encoding (GPT-4o and later) splits ordinary text.
pub struct TokenCounter {
    vocabulary: Vocabulary,
    pattern: Regex,
}

impl TokenCounter {
    pub fn o200k_base() -> Result<Self, String> {
        Ok(Self {
            vocabulary: Vocabulary::parse(O200K_BASE)?,
            pattern: Regex::new(O200K_PATTERN).map_err(|error| error.to_string())?,
        })
    }

    pub fn count(&self, text: &str) -> u64 {
        let mut parts = Vec::new();
        let mut total = 0u64;
        for piece in self.pattern.find_iter(text) {
            match piece {
                Ok(piece) => total += self.vocabulary.count_piece(piece.as_str().as_bytes(), &mut parts) as u64,
                // Only the regex engine's backtracking limit ends up here; an estimate of four
                // bytes to a token beats failing the call over a count.
                Err(_) => return (text.len() as u64).div_ceil(4),
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_and_rejects_garbage() {
        let mut out = Vec::new();
        decode_base64("aGVsbG8=", &mut out).unwrap();
        decode_base64("IQ==", &mut out).unwrap();
        decode_base64("YWJj", &mut out).unwrap();
        assert_eq!(out, b"hello!abc");
        for bad in ["", "abc", "a===", "ab=c", "IQ==IQ==", "a*bc"] {
            assert!(decode_base64(bad, &mut Vec::new()).is_none(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn counts_exactly_like_tiktoken_on_varied_text() {
        let ours = TokenCounter::o200k_base().unwrap();
        let reference = tiktoken_rs::o200k_base().unwrap();
        let samples = [
            "",
            "hello world",
            "Hello, World! It's 2026 and we've 12345678 tokens.",
            "    indented\n\n\tcode() { return x /= 2; }\r\n",
            "日本語のテキストと中文文本，还有한국어.",
            "emoji 🚀🔥 and combining e\u{301} marks",
            "https://example.com/path/to/file.gguf?download=true#x",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "   trailing spaces   ",
            "UPPERCASE words, CamelCaseWords and snake_case_words's",
            "zxqvbnmlkjhgfdsapoiuytrewq mnbvcxzlkjhgfdsapoiuytrewq",
            "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        ];
        for sample in samples {
            assert_eq!(ours.count(sample), reference.encode_ordinary(sample).len() as u64, "{sample:?}");
        }
        // A pseudo-random mix of scripts, digits, punctuation and whitespace exercises the merge
        // order far beyond the hand-picked samples.
        let alphabet: Vec<char> = "abcXYZ019 \n\t.,'-_/😀é中ñßΩж".chars().collect();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..300 {
            let text: String = (0..rng.usize(1..120)).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
            assert_eq!(ours.count(&text), reference.encode_ordinary(&text).len() as u64, "{text:?}");
        }
    }

    #[test]
    fn the_vendored_vocabulary_is_openais() {
        use sha2::{Digest, Sha256};
        // The digest tiktoken itself checks o200k_base.tiktoken against.
        assert_eq!(
            hex::encode(Sha256::digest(O200K_BASE.as_bytes())),
            "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
        );
    }
}
