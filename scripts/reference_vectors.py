#!/usr/bin/env python3
"""Reference sentence vectors for frontdesk's local embedder (all-MiniLM-L6-v2).

frontdesk embeds help-doc chunks and customer questions in-process with a Rust BERT
implementation. To check that those vectors are right, this script computes the same
embeddings independently: a plain numpy forward pass of the BERT encoder (embeddings,
six encoder layers, mean pooling over tokens, L2 normalisation) in float64, reading the
weights with the `safetensors` numpy API and tokenising with the `tokenizers` package.
No torch or transformers is involved, so a bug in either implementation shows up as a
disagreement. Each sentence is run on its own (no padding), which also makes the Rust
side's batch padding and attention masking testable against it.

The output, tests/fixtures/minilm_reference.json, is read by tests/it/embedder.rs.

To regenerate it:

    pip install numpy safetensors tokenizers        # wheels only; no torch needed
    frontdesk models fetch                          # or any folder holding the model files
    python3 scripts/reference_vectors.py ~/.cache/frontdesk/models/all-MiniLM-L6-v2

The model directory must contain model.safetensors, tokenizer.json and config.json.
Use --output to write somewhere else. Vectors are stored rounded to 6 decimals.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MODEL_ID = "all-MiniLM-L6-v2"
# sentence-transformers' max_seq_length for this model; longer inputs are truncated.
MAX_TOKENS = 256

LONG_TEXT = (
    "Our team switched to the annual plan last month, and since then the monthly usage "
    "report has stopped arriving in the finance inbox. We checked the notification "
    "settings twice: the report is enabled, the recipients are correct, and nothing is "
    "in the spam folder. The dashboard still shows the usage numbers, so the data itself "
    "seems fine. Could the plan change have reset a scheduling option somewhere? We need "
    "the report for the quarterly review next Tuesday, so a workaround such as a manual "
    "export in CSV would also help. Please let me know which account details you need "
    "from us to look into this."
)

SENTENCES = [
    "Reset my password.",
    "Why do I get error TH-4012 when I export invoices?",
    "Refund?! I was charged TWICE ($49.99 + $49.99) on 03/14... please fix ASAP!!! :(",
    "Der Export schlägt fehl – Fehlercode TH-4012 beim Öffnen der Rechnung.",
    "How can I add a teammate to my workspace without giving them admin rights?",
    LONG_TEXT,
    # Longer than MAX_TOKENS, so truncation is part of what gets checked.
    " ".join([LONG_TEXT] * 3),
]


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf-based) GELU that BERT's "gelu" activation means."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


class MiniLM:
    """A BERT encoder computed with numpy, in float64."""

    def __init__(self, model_dir: Path) -> None:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        if config.get("hidden_act") != "gelu":
            raise SystemExit(f"unexpected activation {config.get('hidden_act')!r}")
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        raw = load_file(str(model_dir / "model.safetensors"))
        # Some exports prefix every name with "bert."; accept both.
        self.w = {
            (k[len("bert."):] if k.startswith("bert.") else k): v.astype(np.float64)
            for k, v in raw.items()
            if v.dtype.kind == "f"
        }
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The shipped tokenizer pads everything to 128 and truncates at 128; frontdesk
        # truncates at the model's real limit and this script never pads.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)

    def linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def embed(self, text: str) -> np.ndarray:
        ids = np.array(self.token_ids(text), dtype=np.int64)
        n = len(ids)
        x = (
            self.w["embeddings.word_embeddings.weight"][ids]
            + self.w["embeddings.position_embeddings.weight"][:n]
            + self.w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self.norm(x, "embeddings.LayerNorm")
        head_dim = self.hidden // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(n, self.heads, head_dim).transpose(1, 0, 2)

            q = split(self.linear(x, f"{p}.attention.self.query"))
            k = split(self.linear(x, f"{p}.attention.self.key"))
            v = split(self.linear(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(head_dim)
            context = (softmax(scores) @ v).transpose(1, 0, 2).reshape(n, self.hidden)
            attended = self.norm(
                self.linear(context, f"{p}.attention.output.dense") + x,
                f"{p}.attention.output.LayerNorm",
            )
            inner = gelu(self.linear(attended, f"{p}.intermediate.dense"))
            x = self.norm(
                self.linear(inner, f"{p}.output.dense") + attended,
                f"{p}.output.LayerNorm",
            )
        pooled = x.mean(axis=0)
        return pooled / np.linalg.norm(pooled)


def main() -> int:
    repo = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="directory with the MiniLM model files")
    parser.add_argument(
        "--output",
        type=Path,
        default=repo / "tests" / "fixtures" / "minilm_reference.json",
        help="where to write the fixture (default: %(default)s)",
    )
    args = parser.parse_args()

    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        if not (args.model_dir / name).is_file():
            print(f"error: {args.model_dir / name} not found", file=sys.stderr)
            return 1

    model = MiniLM(args.model_dir)
    vectors = []
    for sentence in SENTENCES:
        vector = model.embed(sentence)
        vectors.append([round(float(x), 6) for x in vector])
        print(f"{len(model.token_ids(sentence)):4d} tokens  {sentence[:60]!r}", file=sys.stderr)

    fixture = {"model": MODEL_ID, "sentences": SENTENCES, "vectors": vectors}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(fixture, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(vectors)} vectors to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
