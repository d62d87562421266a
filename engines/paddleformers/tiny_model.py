"""`ocrsft tiny-model OUT`: a PaddleOCR-VL folder with the real architecture and random weights.

Nothing can be downloaded here, so every test and the demo start from a folder
this module builds: config, weights (paddleformers' own model class, saved in
HF layout), a sentencepiece tokenizer trained offline on the spot, the image
processor config, the version's chat template and `inference.yml` (`--version
1|1.5|1.6`, model_folder.VERSIONS). The result loads in paddleformers (training)
and in paddlex / `paddleocr doc_parser --pipeline_version v1|v1.5|v1.6` (serving).

The tokenizer is character-level (pieces of one character, digits split, bytes
as fallback). Tiny models learn far faster when one token is one glyph, and it
makes train/serve token ids agree however a prompt is segmented.
"""
from __future__ import annotations

import json
import string
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from models import model_folder
from samples.errors import UserError
from samples.image_tokens import IMAGE_BLOCK, IMAGE_TOKEN
from samples.tasks import TASKS

SPECIAL_TOKENS = ("<|begin_of_sentence|>", "<|end_of_sentence|>", "<|IMAGE_START|>",
                  "<|IMAGE_END|>", IMAGE_TOKEN, "<|video_pad|>")
# `--for erniekit`: ERNIE's data processor looks its system-prompt markers up in the
# vocabulary (data_processor/steps/input_ids_messaging/example_to_feature.py:223)
# and its tokenizer adds <mask:0> (its mask token) when missing; its workflow freezes the
# vision head (workflow.py:467), so the model needs one.
ERNIEKIT_TOKENS = ("<mask:0>", "<mask:4>", "<mask:5>")


@dataclass(frozen=True)
class Preset:
    lm_hidden: int
    lm_layers: int
    lm_heads: int
    lm_kv_heads: int
    lm_ffn: int
    mrope_section: tuple[int, int, int]  # must sum to head_dim / 2
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    vision_ffn: int
    min_pixels: int
    max_pixels: int
    charset: str = field(default=string.digits + string.ascii_letters + string.punctuation + " ")

    @property
    def head_dim(self) -> int:
        return self.lm_hidden // self.lm_heads


PRESETS = {
    # The fixture for tests: fast to build and to step.
    "test": Preset(64, 2, 4, 2, 128, (2, 3, 3), 32, 2, 2, 64, 28 * 28, 28 * 28 * 64),
    # The demo's reader (see ../shared/notes/demo-calibration.md): 2 LM layers beat 3 or 4 here.
    "demo": Preset(128, 2, 4, 2, 256, (4, 6, 6), 64, 2, 2, 256, 28 * 28, 28 * 28 * 64),
}


def chat_template(version: str = "1") -> str:
    """The version's serving template: the text its training template builds
    (v1 `paddleocr_vl`: "Assistant: "; 1.5/1.6 `paddleocr_vl_v15`: "Assistant:\\n")."""
    prompt = json.dumps(model_folder.get_version(version).generation_prompt)
    return (
        '{%- if not add_generation_prompt is defined -%}{%- set add_generation_prompt = true -%}{%- endif -%}\n'
        '{{- "<|begin_of_sentence|>" -}}\n'
        '{%- for message in messages -%}\n'
        '{%- if message["role"] == "user" -%}\n'
        '{{- "User: " -}}\n'
        '{%- for c in message["content"] if c["type"] == "image" -%}'
        '{{- "' + IMAGE_BLOCK + '" -}}{%- endfor -%}\n'
        '{%- for c in message["content"] if c["type"] == "text" -%}{{- c["text"] -}}{%- endfor -%}\n'
        '{{- "\\n" -}}\n'
        '{%- elif message["role"] == "assistant" -%}\n'
        "{{- " + prompt + " -}}\n"
        '{%- for c in message["content"] if c["type"] == "text" -%}{{- c["text"] -}}{%- endfor -%}\n'
        '{{- "</s>" -}}\n'
        '{%- endif -%}\n'
        '{%- endfor -%}\n'
        '{%- if add_generation_prompt -%}{{- ' + prompt + ' -}}{%- endif -%}\n'
    )


def train_tokenizer(out_dir: Path, charset: str, extra: tuple[str, ...] = ()) -> int:
    """Train a one-character-per-piece sentencepiece model; return its size."""
    import sentencepiece as spm

    chars = sorted(set(charset) | set("".join(t.prompt for t in TASKS.values())) | set("UserAssistant:\n"))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        # Each character in many contexts so the trainer keeps every one of them.
        line = "".join(chars)
        corpus.write_text("\n".join(line[i:] + line[:i] for i in range(len(line))) + "\n")
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(out_dir / "tokenizer"), model_type="unigram",
            vocab_size=len(chars) + 256 + len(SPECIAL_TOKENS + extra) + 3, hard_vocab_limit=False,
            max_sentencepiece_length=1, split_digits=True, byte_fallback=True,
            character_coverage=1.0, normalization_rule_name="identity",
            add_dummy_prefix=False, remove_extra_whitespaces=False, split_by_whitespace=False,
            user_defined_symbols=list(SPECIAL_TOKENS + extra), unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            minloglevel=2,
        )
    (out_dir / "tokenizer.vocab").unlink(missing_ok=True)
    sp = spm.SentencePieceProcessor(model_file=str(out_dir / "tokenizer.model"))
    return sp.get_piece_size()


def token_ids(out_dir: Path) -> dict[str, int]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(out_dir / "tokenizer.model"))
    return {t: sp.piece_to_id(t) for t in SPECIAL_TOKENS}


def model_config(p: Preset, vocab_size: int, ids: dict[str, int]) -> dict:
    return {
        "architectures": ["PaddleOCRVLForConditionalGeneration"],
        "model_type": "paddleocr_vl",
        "vocab_size": vocab_size,
        "hidden_size": p.lm_hidden,
        "intermediate_size": p.lm_ffn,
        "num_hidden_layers": p.lm_layers,
        "num_attention_heads": p.lm_heads,
        "num_key_value_heads": p.lm_kv_heads,
        "head_dim": p.head_dim,
        "max_position_embeddings": 4096,
        "rope_theta": 500000,
        "rope_scaling": {"mrope_section": list(p.mrope_section), "rope_type": "default",
                         "type": "default"},
        "use_3d_rope": True,
        "rope_is_neox_style": True,
        "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
        "image_token_id": ids[IMAGE_TOKEN],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|IMAGE_START|>"],
        "vision_end_token_id": ids["<|IMAGE_END|>"],
        "fuse_rms_norm": False,  # compat 5: no fused kernel on CPU
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "vision_config": {
            "model_type": "paddleocr_vl",
            "hidden_size": p.vision_hidden,
            "intermediate_size": p.vision_ffn,
            "num_hidden_layers": p.vision_layers,
            "num_attention_heads": p.vision_heads,
            "patch_size": 14,
            # The real model's 384 (a 27x27 position grid, interpolated per image).
            "image_size": 384,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "hidden_act": "gelu_pytorch_tanh",
            "layer_norm_eps": 1e-6,
            # Without this paddlex builds a pooling head that training never saves.
            "vision_use_head": False,
        },
    }


def processor_files(p: Preset) -> dict[str, dict]:
    return {
        "preprocessor_config.json": {
            "image_processor_type": "PaddleOCRVLImageProcessor",
            "processor_class": "PaddleOCRVLProcessor",
            "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
            "rescale_factor": 1 / 255, "resample": 3,
            "patch_size": 14, "merge_size": 2, "temporal_patch_size": 1,
            "min_pixels": p.min_pixels, "max_pixels": p.max_pixels,
        },
        "tokenizer_config.json": {
            "tokenizer_class": "LlamaTokenizer",
            "processor_class": "PaddleOCRVLProcessor",
            # The template writes <|begin_of_sentence|> itself; a second BOS breaks parity.
            "add_bos_token": False, "add_eos_token": False,
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>",
            "cls_token": "<|begin_of_sentence|>", "sep_token": "<|end_of_sentence|>",
            "additional_special_tokens": list(SPECIAL_TOKENS[2:]),
            "legacy": True, "add_prefix_space": False, "clean_up_tokenization_spaces": False,
            "model_max_length": 4096,
        },
        "special_tokens_map.json": {
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>",
            "cls_token": "<|begin_of_sentence|>", "sep_token": "<|end_of_sentence|>",
            "additional_special_tokens": list(SPECIAL_TOKENS[2:]),
        },
        "generation_config.json": {"eos_token_id": 2, "pad_token_id": 0, "bos_token_id": 1,
                                   "do_sample": False},
    }


def save_random_weights(config: dict, out_dir: Path, seed: int) -> None:
    from engines.paddleformers import compat

    compat.apply()
    import paddle
    from paddleformers.transformers import PaddleOCRVLForConditionalGeneration
    from paddleformers.transformers.paddleocr_vl.configuration import PaddleOCRVLConfig

    paddle.seed(seed)
    model = PaddleOCRVLForConditionalGeneration(PaddleOCRVLConfig(**config))
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        model.save_pretrained(tmp)
        for f in Path(tmp).iterdir():
            if f.suffix == ".safetensors" or f.name == "model.safetensors.index.json":
                f.replace(out_dir / f.name)
    model_folder.consolidate_safetensors(out_dir)


def build_tiny_model(out_dir: str | Path, preset: str = "test", seed: int = 0,
                     charset: str | None = None, version: str = "1",
                     for_engine: str = "paddleformers") -> Path:
    if preset not in PRESETS:
        raise UserError("--preset", f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    p = PRESETS[preset]
    version = model_folder.get_version(version).name
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ernie = for_engine == "erniekit"
    vocab_size = train_tokenizer(out_dir, charset or p.charset, ERNIEKIT_TOKENS if ernie else ())
    config = model_config(p, vocab_size, token_ids(out_dir))
    config["vision_config"]["vision_use_head"] = ernie
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name, obj in processor_files(p).items():
        (out_dir / name).write_text(json.dumps(obj, indent=2) + "\n")
    (out_dir / "chat_template.jinja").write_text(chat_template(version))
    model_folder.write_inference_yml(out_dir, version)
    save_random_weights(config, out_dir, seed)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return model_folder.check_model_folder(out_dir, for_serving=True)


def add_args(p) -> None:
    p.add_argument("out", type=Path, help="folder to write")
    p.add_argument("--preset", default="test", choices=sorted(PRESETS))
    p.add_argument("--family", help="instead of PaddleOCR-VL, a tiny PyTorch-bridge model: "
                   "llava-clip, llava-chinese-clip, llava-siglip, llava-onevision, internvl, "
                   "qwen2-vl, qwen2.5-vl (needs `make setup-torch`)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--version", default="1", choices=sorted(model_folder.VERSIONS),
                   help="PaddleOCR-VL version: its chat template and paddlex model name")
    p.add_argument("--charset", help="characters the tokenizer must cover (default: the preset's)")
    p.add_argument("--for", dest="for_engine", default="paddleformers",
                   choices=("paddleformers", "erniekit"),
                   help="erniekit: add ERNIE's special tokens and the vision head its stage needs")


def main(args) -> int:
    if args.family:
        from engines.bridge import tiny

        if args.family not in tiny.BUILDERS:
            raise UserError("--family", f"{args.family!r} is not one of {', '.join(tiny.BUILDERS)}")
        out = tiny.build(args.family, args.out, args.seed)
        print(f"tiny-model: wrote {out} ({sum(1 for _ in out.iterdir())} files, "
              f"family {args.family})")
        return 0
    out = build_tiny_model(args.out, args.preset, args.seed, args.charset, version=args.version,
                           for_engine=args.for_engine)
    n = sum(1 for _ in out.iterdir())
    print(f"tiny-model: wrote {out} ({n} files, preset {args.preset}, PaddleOCR-VL "
          f"{args.version} as {model_folder.get_version(args.version).paddlex_model_name})")
    return 0
