//! The BERT encoder of all-MiniLM-L6-v2 and its forward pass over packed sequences.
//!
//! # Packed batches
//!
//! A batch is a list of token sequences laid end to end: a `(total tokens, hidden)` matrix
//! with no padding. Every token-wise step (the four linear layers, GELU, LayerNorm) runs
//! on that matrix; only attention looks at sequence boundaries, and it attends within a
//! sequence only. This computes exactly what PyTorch computes on a padded batch with an
//! attention mask — padded positions get weight `exp(finfo.min) = 0` there, and mean
//! pooling ignores them — without spending work on padding.
//!
//! # Where the time goes
//!
//! The matrix products (candle's CPU `matmul`, the `gemm` crate) take most of it; the rest
//! is the fused kernels of `ops.rs`, compiled for AVX2+FMA through [`pulp::Arch`].
//! Weights are stored transposed (`in × out`, row-major) and Q, K, V are one `hidden × 3·hidden`
//! product.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{CpuStorage, DType, Device, InplaceOp1, InplaceOp2, Layout, Storage, Tensor};

use crate::error::Error;
use crate::ops::{AttentionScratch, Heads, Kernels};

/// The hyperparameters read from `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub vocab_size: usize,
    pub layer_norm_eps: f64,
}

impl BertConfig {
    /// Parses a Hugging Face `config.json` and checks that it describes a BERT encoder with
    /// absolute positions and erf GELU.
    pub fn from_json(path: &Path, text: &str) -> Result<BertConfig, Error> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::corrupt(path, e))?;
        let string = |field: &'static str, expected: &str, default: Option<&str>| {
            let got = v.get(field).and_then(|x| x.as_str()).or(default);
            if got == Some(expected) {
                Ok(())
            } else {
                Err(Error::UnsupportedModel {
                    path: path.to_path_buf(),
                    field,
                    got: got.map_or_else(|| "missing".to_string(), |g| format!("{g:?}")),
                    expected: format!("{expected:?}"),
                })
            }
        };
        string("model_type", "bert", None)?;
        string("hidden_act", "gelu", None)?;
        string("position_embedding_type", "absolute", Some("absolute"))?;
        let number = |field: &'static str| {
            v.get(field)
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    Error::corrupt(
                        path,
                        format!("{field} is missing or not a positive integer"),
                    )
                })
        };
        let config = BertConfig {
            hidden_size: number("hidden_size")?,
            num_attention_heads: number("num_attention_heads")?,
            num_hidden_layers: number("num_hidden_layers")?,
            intermediate_size: number("intermediate_size")?,
            max_position_embeddings: number("max_position_embeddings")?,
            vocab_size: number("vocab_size")?,
            layer_norm_eps: v
                .get("layer_norm_eps")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(1e-12),
        };
        if config.heads().is_none() {
            return Err(Error::UnsupportedModel {
                path: path.to_path_buf(),
                field: "hidden_size",
                got: config.hidden_size.to_string(),
                expected: format!("{} heads of 32 or 64 values", config.num_attention_heads),
            });
        }
        Ok(config)
    }

    /// The attention heads, if the kernels support their width.
    fn heads(&self) -> Option<Heads> {
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return None;
        }
        Heads::new(
            self.num_attention_heads,
            self.hidden_size / self.num_attention_heads,
        )
    }
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// `hidden × 3·hidden`: Q, K, V side by side.
    qkv: Tensor,
    qkv_bias: Vec<f32>,
    /// `hidden × hidden`.
    attn_out: Tensor,
    attn_out_bias: Vec<f32>,
    attn_norm: Norm,
    /// `hidden × intermediate`.
    up: Tensor,
    up_bias: Vec<f32>,
    /// `intermediate × hidden`.
    down: Tensor,
    down_bias: Vec<f32>,
    out_norm: Norm,
}

/// The encoder with its weights in memory (about 90 MB for all-MiniLM-L6-v2).
pub(crate) struct Bert {
    config: BertConfig,
    kernels: Kernels,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type0: Vec<f32>,
    embed_norm: Norm,
    layers: Vec<Layer>,
}

/// The tensors of a safetensors file, by name, with an optional `bert.` prefix.
struct Weights<'a> {
    path: &'a Path,
    tensors: HashMap<String, Tensor>,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, Error> {
        let t = self
            .tensors
            .get(name)
            .or_else(|| self.tensors.get(&format!("bert.{name}")))
            .ok_or_else(|| Error::corrupt(self.path, format!("no tensor {name}")))?;
        if t.dims() != shape {
            return Err(Error::corrupt(
                self.path,
                format!("tensor {name} has shape {:?}, expected {shape:?}", t.dims()),
            ));
        }
        Ok(t.to_dtype(DType::F32)?)
    }

    fn vec(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, Error> {
        Ok(self.get(name, shape)?.flatten_all()?.to_vec1::<f32>()?)
    }

    fn norm(&self, prefix: &str, n: usize) -> Result<Norm, Error> {
        Ok(Norm {
            gamma: self.vec(&format!("{prefix}.weight"), &[n])?,
            beta: self.vec(&format!("{prefix}.bias"), &[n])?,
        })
    }

    /// A linear layer's `out × in` weight, transposed to a contiguous `in × out`.
    fn linear_t(&self, name: &str, out: usize, inp: usize) -> Result<Tensor, Error> {
        Ok(self.get(name, &[out, inp])?.t()?.contiguous()?)
    }
}

impl Bert {
    /// Reads `config.json` and `model.safetensors` from `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Bert, Error> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(Error::io(&config_path))?;
        let config = BertConfig::from_json(&config_path, &text)?;
        let path = dir.join("model.safetensors");
        let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| Error::corrupt(&path, e))?;
        drop(bytes);
        let w = Weights {
            path: &path,
            tensors,
        };
        let h = config.hidden_size;
        let i = config.intermediate_size;
        let token_type = w.vec("embeddings.token_type_embeddings.weight", &[2, h]);
        // Some exports keep a single token type.
        let token_type = match token_type {
            Ok(t) => t,
            Err(_) => w.vec("embeddings.token_type_embeddings.weight", &[1, h])?,
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let qkv = Tensor::cat(
                &[
                    w.get(&format!("{p}.attention.self.query.weight"), &[h, h])?,
                    w.get(&format!("{p}.attention.self.key.weight"), &[h, h])?,
                    w.get(&format!("{p}.attention.self.value.weight"), &[h, h])?,
                ],
                0,
            )?
            .t()?
            .contiguous()?;
            let mut qkv_bias = Vec::with_capacity(3 * h);
            for part in ["query", "key", "value"] {
                qkv_bias.extend(w.vec(&format!("{p}.attention.self.{part}.bias"), &[h])?);
            }
            layers.push(Layer {
                qkv,
                qkv_bias,
                attn_out: w.linear_t(&format!("{p}.attention.output.dense.weight"), h, h)?,
                attn_out_bias: w.vec(&format!("{p}.attention.output.dense.bias"), &[h])?,
                attn_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                up: w.linear_t(&format!("{p}.intermediate.dense.weight"), i, h)?,
                up_bias: w.vec(&format!("{p}.intermediate.dense.bias"), &[i])?,
                down: w.linear_t(&format!("{p}.output.dense.weight"), h, i)?,
                down_bias: w.vec(&format!("{p}.output.dense.bias"), &[h])?,
                out_norm: w.norm(&format!("{p}.output.LayerNorm"), h)?,
            });
        }
        Ok(Bert {
            word: w.vec("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position: w.vec(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type0: token_type.get(..h).unwrap_or_default().to_vec(),
            embed_norm: w.norm("embeddings.LayerNorm", h)?,
            layers,
            kernels: Kernels::detect(),
            config,
        })
    }

    pub(crate) fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Embeds a batch of token sequences (each at most `max_position_embeddings` long, ids
    /// below `vocab_size`; the caller guarantees both): mean of the last hidden states over
    /// each sequence's tokens, L2-normalised. Returns `seqs.len()` rows of `hidden_size`
    /// values, in the order of `seqs`; an empty sequence gives a zero row.
    pub(crate) fn embed_batch(&self, seqs: &[&[u32]]) -> Result<Vec<f32>, Error> {
        let h = self.config.hidden_size;
        let mut pooled = vec![0.0f32; seqs.len() * h];
        let Some(x) = self.hidden_states(seqs)? else {
            return Ok(pooled);
        };
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        with_f32(&x, |x| self.kernels.mean_pool(x, &lens, &mut pooled))?;
        Ok(pooled)
    }

    /// The last hidden state of every token of a batch (the same contract on `seqs` as
    /// [`Bert::embed_batch`]), sequences back to back: `Σ len × hidden_size` values, not
    /// normalised (late-interaction use normalises per token, e.g. a cosine multi-vector).
    pub(crate) fn token_batch(&self, seqs: &[&[u32]]) -> Result<Vec<f32>, Error> {
        match self.hidden_states(seqs)? {
            Some(x) => Ok(x.flatten_all()?.to_vec1::<f32>()?),
            None => Ok(Vec::new()),
        }
    }

    /// The encoder's output over a batch: `(Σ len, hidden_size)`; `None` without tokens.
    fn hidden_states(&self, seqs: &[&[u32]]) -> Result<Option<Tensor>, Error> {
        let h = self.config.hidden_size;
        let heads = self
            .config
            .heads()
            .ok_or_else(|| candle_core::Error::Msg("unsupported attention head width".into()))?;
        let eps = self.config.layer_norm_eps as f32;
        let total: usize = seqs.iter().map(|s| s.len()).sum();
        if total == 0 {
            return Ok(None);
        }

        // Embeddings: word + position + token type 0, LayerNorm.
        let mut sum_rows = Vec::with_capacity(total * h);
        for seq in seqs {
            for (pos, &id) in seq.iter().enumerate() {
                let word = self.word.get(id as usize * h..(id as usize + 1) * h);
                let position = self.position.get(pos * h..(pos + 1) * h);
                let (Some(word), Some(position)) = (word, position) else {
                    return Err(candle_core::Error::Msg(format!(
                        "token id {id} at position {pos} is outside the model's tables"
                    ))
                    .into());
                };
                sum_rows.extend(word.iter().zip(position).map(|(a, b)| a + b));
            }
        }
        let k = self.kernels;
        let norm = &self.embed_norm;
        k.add_layer_norm(
            &mut sum_rows,
            None,
            &self.token_type0,
            &norm.gamma,
            &norm.beta,
            eps,
        );
        let mut x = Tensor::from_vec(sum_rows, (total, h), &Device::Cpu)?;
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let mut scratch = AttentionScratch::default();
        for layer in &self.layers {
            let qkv = x.matmul(&layer.qkv)?;
            let mut ctx = vec![0.0f32; total * h];
            with_f32(&qkv, |qkv| {
                k.attention(qkv, &layer.qkv_bias, &lens, heads, &mut scratch, &mut ctx)
            })?;
            drop(qkv);
            let x1 = Tensor::from_vec(ctx, (total, h), &Device::Cpu)?.matmul(&layer.attn_out)?;
            x1.inplace_op2(
                &x,
                &AddNorm {
                    kernels: k,
                    bias: &layer.attn_out_bias,
                    norm: &layer.attn_norm,
                    eps,
                },
            )?;
            let act = x1.matmul(&layer.up)?;
            act.inplace_op1(&BiasGelu {
                kernels: k,
                bias: &layer.up_bias,
            })?;
            x = act.matmul(&layer.down)?;
            drop(act);
            x.inplace_op2(
                &x1,
                &AddNorm {
                    kernels: k,
                    bias: &layer.down_bias,
                    norm: &layer.out_norm,
                    eps,
                },
            )?;
        }
        Ok(Some(x))
    }
}

/// `x = gelu(x + bias)`, in place on a matrix product's output.
struct BiasGelu<'a> {
    kernels: Kernels,
    bias: &'a [f32],
}

impl InplaceOp1 for BiasGelu<'_> {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        self.kernels
            .bias_gelu(contiguous_mut(storage, layout)?, self.bias);
        Ok(())
    }
}

/// `x = LayerNorm(x + bias + residual)`, in place on a matrix product's output.
struct AddNorm<'a> {
    kernels: Kernels,
    bias: &'a [f32],
    norm: &'a Norm,
    eps: f32,
}

impl InplaceOp2 for AddNorm<'_> {
    fn name(&self) -> &'static str {
        "add-layer-norm"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_layout: &Layout,
        residual: &CpuStorage,
        residual_layout: &Layout,
    ) -> candle_core::Result<()> {
        let residual = contiguous(residual, residual_layout)?;
        self.kernels.add_layer_norm(
            contiguous_mut(dst, dst_layout)?,
            Some(residual),
            self.bias,
            &self.norm.gamma,
            &self.norm.beta,
            self.eps,
        );
        Ok(())
    }
}

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    layout
        .contiguous_offsets()
        .and_then(|(start, end)| data.get(start..end))
        .ok_or_else(|| candle_core::Error::Msg("expected a contiguous tensor".into()))
}

fn contiguous_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a mut [f32]> {
    let CpuStorage::F32(data) = storage else {
        return Err(candle_core::Error::Msg("expected an f32 tensor".into()));
    };
    layout
        .contiguous_offsets()
        .and_then(|(start, end)| data.get_mut(start..end))
        .ok_or_else(|| candle_core::Error::Msg("expected a contiguous tensor".into()))
}

/// Runs `f` on the values of a contiguous `f32` CPU tensor, without copying them.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R, Error> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(candle_core::Error::Msg("expected a CPU tensor".into()).into());
    };
    Ok(f(contiguous(cpu, layout)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_of_minilm_parses_and_others_are_refused() {
        let p = Path::new("config.json");
        let ok = r#"{"model_type": "bert", "hidden_act": "gelu", "hidden_size": 384,
            "num_attention_heads": 12, "num_hidden_layers": 6, "intermediate_size": 1536,
            "max_position_embeddings": 512, "vocab_size": 30522, "layer_norm_eps": 1e-12}"#;
        let c = BertConfig::from_json(p, ok).unwrap();
        assert_eq!(c.heads(), Heads::new(12, 32));
        assert!(c.heads().is_some());
        let roberta = ok.replace("\"bert\"", "\"roberta\"");
        assert!(matches!(
            BertConfig::from_json(p, &roberta),
            Err(Error::UnsupportedModel {
                field: "model_type",
                ..
            })
        ));
        let tanh = ok.replace("\"gelu\"", "\"gelu_new\"");
        assert!(BertConfig::from_json(p, &tanh).is_err());
        let odd = ok.replace("384", "385");
        assert!(BertConfig::from_json(p, &odd).is_err());
        assert!(matches!(
            BertConfig::from_json(p, "{"),
            Err(Error::CorruptModel { .. })
        ));
    }
}
