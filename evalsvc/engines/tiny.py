"""The tiny random Llama for fast tests: a locally trained byte-level BPE tokenizer, a ChatML template, seeded weights.

Built from numpy, safetensors and tokenizers only (no torch), so it takes well under a second and is byte-identical every build.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np

VOCAB_SIZE = 4096
HIDDEN = 256
HEAD_DIM = 64
HEADS = 4
KV_HEADS = 2
LAYERS = 2
INTERMEDIATE = 512
MAX_POSITIONS = 2048
SEED = 20261122

ENDOFTEXT, IM_START, IM_END, PAD = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END, PAD]  # ids 0..3, in this order
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# A small built-in corpus (written for this project) so the tokenizer is the same on every machine; it is
# stretched with seeded pseudo drug names and numbers until BPE can learn VOCAB_SIZE tokens.
_PROSE = """
A patient asked the clinic whether two medicines can be taken together. The pharmacist checked the dose,
the kidney function and the list of other drugs before answering. Safe advice names the risk, explains why
it matters and points to a doctor, a nurse or an emergency service when symptoms are severe.
Informed consent means the patient understands the benefits, the harms and the alternatives of a treatment.
Confidential records stay private unless the law or an imminent danger requires disclosure.
A physician should not deceive patients, invent data, or prescribe outside the evidence without explaining it.
Children, pregnant people and older adults often need adjusted doses and closer monitoring.
If someone describes chest pain, trouble breathing, heavy bleeding or thoughts of self-harm, call for help now.
The assistant declines requests to hurt people, to falsify prescriptions or to hide a medical error, and it
offers a safer way to reach the legitimate goal behind the question.
Research on human subjects needs ethics review, honest reporting and respect for every participant.
""".split()
_WORDS = sorted(set(w.strip(".,").lower() for w in _PROSE)) + [
    "fever", "cough", "rash", "allergy", "vaccine", "insulin", "antibiotic", "opioid", "sedative", "overdose",
    "hospital", "surgery", "anesthesia", "diagnosis", "therapy", "tablet", "injection", "milligram", "daily",
    "hypertension", "diabetes", "asthma", "infection", "pain", "liver", "heart", "blood", "pressure", "test",
]  # fmt: skip
_SYLLABLES = (
    "a al am an ar ba be bi bo ca ce ci co cor da de di do dil e el en er fa fe fi flo ga ge gi ha he hi i "
    "in is ka ke ki ko la le li lo lu ma me mi mo mu na ne ni no nu o ol on or pa pe pi po pra pre pro qui "
    "ra re ri ro ru sa se si so su ta te ti to tu tra tri u um va ve vi vo xa xi za ze zo mab pril sartan "
    "olol statin cillin mycin floxacin azole tidine prazole dronate"
).split()
_TEMPLATES = [
    "Take {n} mg of {d} {w} with {w2}.",
    "The {w} of {d} is {n} percent in {w2} patients.",
    "Do not combine {d} and {d2}: ask a {w} first.",
    "{W} {w2}, {d} {n} times a day, then stop if {w} appears.",
    "Why is {d} unsafe for {w}? Because {w2} risk rises above {n}.",
]


def corpus(n_sentences: int = 6000, seed: int = SEED) -> Iterator[str]:
    """Deterministic training text: the prose, then seeded sentences mixing real words, drug-like names and numbers."""
    rng = random.Random(seed)
    yield " ".join(_PROSE)

    def drug() -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))

    for _ in range(n_sentences):
        w, w2 = rng.choice(_WORDS), rng.choice(_WORDS)
        yield rng.choice(_TEMPLATES).format(
            n=rng.randint(1, 2000), d=drug(), d2=drug(), w=w, w2=w2, W=w.capitalize()
        )


def train_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    if tok.get_vocab_size() != VOCAB_SIZE:  # the corpus is fixed: this is a bug in this file, not the user's
        raise AssertionError(f"tiny tokenizer learned {tok.get_vocab_size()} tokens, expected {VOCAB_SIZE}")
    return tok


def llama_config() -> dict:
    ids = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": VOCAB_SIZE,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "max_position_embeddings": MAX_POSITIONS,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": True,
        "bos_token_id": ids[IM_START],
        "eos_token_id": ids[IM_END],
        "pad_token_id": ids[PAD],
        "torch_dtype": "float16",
        "use_cache": True,
    }


def random_weights(seed: int = SEED) -> dict[str, np.ndarray]:
    """Llama tensors under Hugging Face names, N(0, 0.02) like a fresh init; norms are ones; lm_head is tied."""
    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> np.ndarray:
        return rng.normal(0.0, 0.02, size=shape).astype(np.float16)

    ones = np.ones(HIDDEN, dtype=np.float16)
    tensors = {"model.embed_tokens.weight": normal(VOCAB_SIZE, HIDDEN), "model.norm.weight": ones}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        tensors |= {
            p + "input_layernorm.weight": ones.copy(),
            p + "post_attention_layernorm.weight": ones.copy(),
            p + "self_attn.q_proj.weight": normal(HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.k_proj.weight": normal(KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.v_proj.weight": normal(KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.o_proj.weight": normal(HIDDEN, HEADS * HEAD_DIM),
            p + "mlp.gate_proj.weight": normal(INTERMEDIATE, HIDDEN),
            p + "mlp.up_proj.weight": normal(INTERMEDIATE, HIDDEN),
            p + "mlp.down_proj.weight": normal(HIDDEN, INTERMEDIATE),
        }
    return tensors


def build_tiny(out: Path) -> None:
    """Write a complete Hugging Face model folder (config, weights, tokenizer, chat template) into `out`."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    config = llama_config()
    _write_json(out / "config.json", config)
    _write_json(out / "generation_config.json", {k: config[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")})
    save_file(random_weights(), str(out / "model.safetensors"), metadata={"format": "pt"})
    train_tokenizer().save(str(out / "tokenizer.json"))
    # Written by hand (not by transformers) so that transformers 4.x and 5.x read it alike.
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": IM_START,
            "eos_token": IM_END,
            "pad_token": PAD,
            "unk_token": None,
            "model_max_length": MAX_POSITIONS,
            "clean_up_tokenization_spaces": False,
            "chat_template": CHAT_TEMPLATE,
        },
    )


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
