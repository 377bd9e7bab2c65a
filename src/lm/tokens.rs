//! Byte-level tokens: every byte is its own token (0..=255) and [`BOS`] starts each file, so no
//! tokenizer is needed and bits per byte are directly comparable across corpora.

/// The beginning-of-file token.
pub const BOS: u16 = 256;

/// Vocabulary size: 256 bytes plus [`BOS`].
pub const VOCAB: usize = 257;

/// The tokens of one file: [`BOS`] then its bytes.
pub fn encode(bytes: &[u8]) -> Vec<u16> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(BOS);
    out.extend(bytes.iter().map(|&b| u16::from(b)));
    out
}

/// The bytes of a token stream, [`BOS`] tokens dropped.
pub fn decode(tokens: &[u16]) -> Vec<u8> {
    tokens
        .iter()
        .filter_map(|&t| u8::try_from(t).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips_and_bos_leads() {
        let bytes: Vec<u8> = (0..=255u8).chain([0, 255, 10]).collect();
        let t = encode(&bytes);
        assert_eq!(t[0], BOS);
        assert_eq!(t.len(), bytes.len() + 1);
        assert!(t[1..].iter().all(|&x| x < BOS));
        assert_eq!(decode(&t), bytes);
        assert_eq!(decode(&encode(b"")), b"");
    }
}
