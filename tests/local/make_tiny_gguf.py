#!/usr/bin/env python3
"""Write a tiny llama-architecture GGUF with random weights and an in-file SPM tokenizer (about 550 KB).

Usage: python make_tiny_gguf.py OUT.gguf [--seed N]        (pip install -r tests/local/requirements.txt)

The output is byte-identical run to run for a given seed. llama.cpp loads it as arch `llama` with a ChatML chat
template; at temperature 0 it answers the same gibberish words to every prompt and never emits EOS, so callers
should set max_tokens (finish_reason is then "length").
"""
import sys

import gguf
import numpy as np

out = sys.argv[1]
seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 0
rng = np.random.default_rng(seed)
n_embd, n_head, n_head_kv, n_ff, n_layer, n_ctx = 64, 4, 4, 128, 2, 4096
T = gguf.TokenType
tokens, scores, types = [], [], []


def add(tok, score=0.0, typ=T.NORMAL):
    tokens.append(tok)
    scores.append(score)
    types.append(typ)


add("<unk>", 0.0, T.UNKNOWN)
add("<s>", 0.0, T.CONTROL)
add("</s>", 0.0, T.CONTROL)
add("<|im_start|>", 0.0, T.CONTROL)
add("<|im_end|>", 0.0, T.CONTROL)
for b in range(256):  # byte fallback: any text can be tokenized
    add(f"<0x{b:02X}>", 0.0, T.BYTE)
words = ("the a an of to in is it and or on for with as by at be this that page pages document "
         "answer question cite source warranty month months day days return returns accepted "
         "within hello world yes no system user assistant").split()
# SPM merges pairwise, so every prefix of a word piece must exist too
pieces = sorted({"▁" + w[:k] for w in words for k in range(1, len(w) + 1)}
                | set("abcdefghijklmnopqrstuvwxyz0123456789.,?!:;'-") | {"▁"})
for i, p in enumerate(pieces):
    add(p, -float(i) * 0.01 - (0.0 if p.startswith("▁") and len(p) > 1 else 5.0))
n_vocab = len(tokens)

w = gguf.GGUFWriter(out, "llama")
w.add_name("tiny-random-llama")
w.add_context_length(n_ctx)
w.add_embedding_length(n_embd)
w.add_block_count(n_layer)
w.add_feed_forward_length(n_ff)
w.add_head_count(n_head)
w.add_head_count_kv(n_head_kv)
w.add_rope_dimension_count(n_embd // n_head)
w.add_layer_norm_rms_eps(1e-5)
w.add_file_type(gguf.LlamaFileType.ALL_F32)
w.add_tokenizer_model("llama")
w.add_token_list(tokens)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_bos_token_id(1)
w.add_eos_token_id(4)
w.add_unk_token_id(0)
w.add_add_bos_token(True)
w.add_chat_template(
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def r(*shape, scale=0.02):  # numpy shape is (out, in); GGUF stores it reversed
    return (rng.standard_normal(shape) * scale).astype(np.float32)


w.add_tensor("token_embd.weight", r(n_vocab, n_embd, scale=1.0))
for i in range(n_layer):
    p = f"blk.{i}."
    w.add_tensor(p + "attn_norm.weight", np.ones(n_embd, np.float32))
    w.add_tensor(p + "attn_q.weight", r(n_embd, n_embd))
    w.add_tensor(p + "attn_k.weight", r(n_embd * n_head_kv // n_head, n_embd))
    w.add_tensor(p + "attn_v.weight", r(n_embd * n_head_kv // n_head, n_embd))
    w.add_tensor(p + "attn_output.weight", r(n_embd, n_embd))
    w.add_tensor(p + "ffn_norm.weight", np.ones(n_embd, np.float32))
    w.add_tensor(p + "ffn_gate.weight", r(n_ff, n_embd))
    w.add_tensor(p + "ffn_up.weight", r(n_ff, n_embd))
    w.add_tensor(p + "ffn_down.weight", r(n_embd, n_ff))
w.add_tensor("output_norm.weight", np.ones(n_embd, np.float32))
outw = r(n_vocab, n_embd, scale=1.0)
outw[5:261] *= 0.1  # byte tokens unlikely: the gibberish is mostly words
outw[4] *= 0.5
w.add_tensor("output.weight", outw)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(f"wrote {out}: vocab={n_vocab} embd={n_embd} layers={n_layer}")
