"""`ocrsft plan CONFIG`: the step arithmetic seed 002 leaves to the user.

    max_steps = ceil(D x E / (G x B x A))          warmup_steps = ceil(1% of max_steps)

D training samples, E epochs, G GPUs (all nodes together), B samples per GPU per
micro-step, A gradient-accumulation steps. Seed 002's worked example: D=29605,
E=2, G=1, B=8, A=8 -> ceil(59210 / 64) = 926 steps, warmup 10.

B is `per_device_train_batch_size`. ERNIEKit's `packing_size: 8` (8 samples
packed into one sequence) is PaddleFormers' `per_device_train_batch_size: 8`
with `padding_free: true`. With `packing: true` PaddleFormers instead bin-packs
samples into sequences of up to max_seq_len and a batch slot holds one such
sequence, so B = per_device_train_batch_size x samples per sequence; that
number is estimated by packing the dataset's token counts the way PaddleFormers
does (the `binpacking` library, 1000 samples at a time).

Recipes are tuned for `recipe_gpus` GPUs (1 in seed 002). On N times as many:
  keep-batch  keep G x B x A: B/x and A/y with x*y = N, shrinking A first
              (per-GPU memory stays as tuned); on fewer GPUs, A grows.
  scale-lr    keep B and A; multiply learning_rate (and min_lr) by N.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from samples.errors import SampleError, UserError
from samples.jsonl import iter_lines
from samples.sample import jsonl_image
from training import run_folder
from training.recipe import dataset_paths

PACKING_INTERVAL = 1000   # PaddleFormers packs this many samples at a time
PROFILE_LIMIT = 20000     # samples read to estimate lengths; enough for a stable mean


def count_samples(dataset: str | Path) -> tuple[int, str]:
    """D for one JSONL: the converter's stats file when it is current, else a streamed count."""
    dataset = Path(dataset)
    if not dataset.is_file():
        raise UserError("train_dataset_path", f"{dataset} not found")
    stats = dataset.with_suffix(".stats.json")
    if stats.is_file() and stats.stat().st_mtime >= dataset.stat().st_mtime:
        try:
            return int(json.loads(stats.read_text())["written"]), stats.name
        except (ValueError, KeyError, TypeError):
            pass  # not a converter stats file: count instead
    return sum(1 for _ in iter_lines(dataset)), f"{dataset.name} (counted)"


MIX_STRATEGIES = ("concat", "interleave_under", "interleave_over", "random")


def mixed_samples(cfg: dict, paths: list[Path], sizes: list[int]) -> tuple[int, str | None]:
    """(samples per epoch, what the mix draws from each dataset) as PaddleFormers' mixer
    (paddleformers/datasets/reader/mix_datasets.py) builds an epoch from
    `train_dataset_path: a,b` and `train_dataset_prob: 0.8,0.2`:

        concat            every sample of every dataset once; the weights are ignored
        interleave_under  draw a source by weight until one dataset is used up: ~min(n_i / p_i)
        interleave_over   ... until every dataset was used up at least once: ~max(n_i / p_i)
        random            int(p_i x num_samples_each_epoch) from each, with repetition

    The interleaved counts are expectations (the trainer draws sources at random)."""
    strategy = str(cfg.get("mix_strategy") or "concat")
    if strategy not in MIX_STRATEGIES:
        raise UserError("mix_strategy", f"{strategy!r} is not one of {', '.join(MIX_STRATEGIES)}")
    if len(sizes) < 2:
        return sum(sizes), None
    raw = [w.strip() for w in str(cfg.get("train_dataset_prob") or "").split(",") if w.strip()]
    try:
        weights = [float(w) for w in raw] if raw else [1.0] * len(sizes)
    except ValueError:
        raise UserError("train_dataset_prob", f"{cfg['train_dataset_prob']!r}: weights are numbers") \
            from None
    if len(weights) != len(sizes) or any(w < 0 for w in weights) or not sum(weights):
        raise UserError("train_dataset_prob", f"needs {len(sizes)} non-negative weights, one per "
                                              f"dataset, got {cfg.get('train_dataset_prob')!r}")
    probs = [w / sum(weights) for w in weights]
    if strategy == "concat":
        D, draws = sum(sizes), list(sizes)
        if len(set(probs)) > 1:
            return D, (f"mix concat: train_dataset_prob {cfg['train_dataset_prob']} is IGNORED; every "
                       "sample of each dataset is used once (mix_strategy: interleave_under mixes "
                       "by weight)")
    elif strategy == "random":
        n = int(cfg.get("num_samples_each_epoch", 6000000))
        draws = [int(p * n) for p in probs]
        D = sum(draws)
    else:
        per_source = [size / p for size, p in zip(sizes, probs) if p > 0]
        D = round(min(per_source) if strategy == "interleave_under" else max(per_source))
        draws = [round(p * D) for p in probs]
    parts = [f"{path.name} {d} ({p:.0%}, {d / size:.2f} passes over its {size})"
             for path, d, p, size in zip(paths, draws, probs, sizes)]
    approx = "~" if strategy.startswith("interleave") else ""
    return D, f"mix {strategy}: D {approx}{D} = " + " + ".join(parts)


# --- token lengths --------------------------------------------------------------------------

class TokenCounter:
    """Sample -> sequence length as the paddleocr_vl template builds it.

    Text is counted with the model's own sentencepiece model when the folder has
    one, else with the converters' bytes/3 estimate; images with the model's
    min/max pixels (samples/image_tokens.py). The template adds
    <|begin_of_sentence|>, then per turn "User: {q}\\nAssistant: {a}" + EOS.
    """

    def __init__(self, model_dir: str | Path | None):
        from samples import image_tokens

        self._image_tokens = image_tokens.image_tokens
        model = Path(str(model_dir or ""))
        pre = model / "preprocessor_config.json"
        pre = json.loads(pre.read_text()) if pre.is_file() else {}
        self.min_pixels = pre.get("min_pixels", image_tokens.MIN_PIXELS)
        self.max_pixels = pre.get("max_pixels", image_tokens.MAX_PIXELS)
        self.exact_text = (model / "tokenizer.model").is_file()
        if self.exact_text:
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=str(model / "tokenizer.model"))
            self.text = lambda s: len(sp.encode(s)) if s else 0
        else:
            self.text = image_tokens.text_tokens

    def image(self, width: int, height: int) -> int:
        return self._image_tokens(width, height, self.min_pixels, self.max_pixels)

    def sample(self, texts: list[str], sizes: list[tuple[int, int]]) -> int:
        from samples.image_tokens import sample_tokens

        return sample_tokens(texts, sizes, self.text, self.min_pixels, self.max_pixels)


@dataclass
class Profile:
    """Estimated lengths of the first `n` samples of a dataset."""
    n: int = 0
    capped: bool = False          # stopped at PROFILE_LIMIT
    longest: int = 0
    over_limit: int = 0           # longer than max_seq_len
    image_tokens: int = 0
    lengths: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return sum(self.lengths) / self.n if self.n else 0.0


def profile_dataset(path: Path, counter: TokenCounter, max_seq_len: int,
                    limit: int = PROFILE_LIMIT) -> Profile:
    """Stream a JSONL, reading only image headers; a bad line or image names file and line."""
    from PIL import Image

    prof = Profile()
    for line_no, line in iter_lines(path):
        if prof.n >= limit:
            prof.capped = True
            break
        try:
            sample = json.loads(line)
            texts = [t.get("text", "") for t in sample["text_info"]]
            images = [im["image_url"] for im in sample.get("image_info", [])]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise UserError(f"{path}:{line_no}", "not an ERNIEKit sample (run `ocrsft validate`)") \
                from None
        sizes = []
        for ref in images:
            try:
                ref = jsonl_image(ref, path)
                with Image.open(ref) as img:
                    sizes.append(img.size)
                    cost = counter.image(*img.size)
            except SampleError as e:
                raise UserError(f"{path}:{line_no}", e.reason) from None
            except (OSError, ValueError) as e:
                raise UserError(f"{path}:{line_no}", f"image {ref} cannot be used ({e})") from None
            prof.image_tokens += cost
        tokens = counter.sample(texts, sizes)
        prof.n += 1
        prof.longest = max(prof.longest, tokens)
        prof.over_limit += tokens > max_seq_len
        prof.lengths.append(tokens)
    if prof.n == 0:
        raise UserError(str(path), "holds no samples")
    return prof


def length_problem(prof: Profile, path: Path, max_seq_len: int,
                   allow_long: bool = False) -> tuple[str | None, bool]:
    """(one line about samples too long for max_seq_len or None, whether training must stop).

    PaddleFormers drops a sample longer than max_seq_len (truncation_strategy delete) and
    loops forever, 0 steps, when none is left; so none fitting always stops, and most
    not fitting stops unless `allow_long_samples: true`. `plan` prints the same line."""
    if not prof.over_limit:
        return None, False
    head = f"the first {prof.n}" if prof.capped else f"{prof.n}"
    text = (f"{prof.over_limit} of {head} samples in {path.name} are longer than max_seq_len "
            f"{max_seq_len} (longest {prof.longest} tokens); max_seq_len {prof.longest} fits them all")
    if prof.over_limit == prof.n:
        return text, True
    if prof.over_limit * 2 > prof.n and not allow_long:
        return text + " (or set allow_long_samples: true to drop them)", True
    return text, False


def pack_estimate(lengths: list[int], max_seq_len: int) -> tuple[float, float]:
    """(samples per packed sequence, fill of max_seq_len) with PaddleFormers' bin packing."""
    import binpacking

    fits = [n for n in lengths if n <= max_seq_len]
    if not fits:
        return 0.0, 0.0
    bins = 0
    for start in range(0, len(fits), PACKING_INTERVAL):
        bins += len(binpacking.to_constant_volume(fits[start:start + PACKING_INTERVAL], max_seq_len))
    return len(fits) / bins, sum(fits) / (bins * max_seq_len)


# --- the plan -------------------------------------------------------------------------------

@dataclass
class Plan:
    D: int
    E: float
    G: int
    B: float                       # samples per GPU per micro-step
    A: int
    max_steps: int
    warmup_steps: int
    learning_rate: float
    per_device: int                # per_device_train_batch_size as resolved
    samples_per_seq: float | None = None   # packing: true only
    fill: float | None = None
    notes: list[str] = field(default_factory=list)
    computed: bool = True          # False when max_steps was set in the config

    @property
    def samples_per_step(self) -> float:
        return self.G * self.B * self.A

    def table(self) -> str:
        b = (f"{self.per_device} x ~{self.samples_per_seq:.1f} packed = {self.B:.1f}"
             if self.samples_per_seq else f"{self.per_device}")
        rows = [("D  training samples", self.D), ("E  epochs", f"{self.E:g}"),
                ("G  GPUs (world size: processes x nodes)", self.G),
                ("B  samples per GPU per micro-step", b),
                ("A  gradient accumulation", self.A),
                ("G x B x A  samples per step", f"{self.samples_per_step:g}"),
                ("max_steps = ceil(D x E / (G x B x A))",
                 f"ceil({self.D * self.E:g} / {self.samples_per_step:g}) = {self.max_steps}"
                 if self.computed else f"{self.max_steps} (set in the config)"),
                ("warmup_steps", self.warmup_steps), ("learning_rate", f"{self.learning_rate:g}")]
        if self.fill is not None:
            rows.append(("packing fill of max_seq_len (expected)", f"{self.fill:.0%}"))
        width = max(len(k) for k, _ in rows)
        lines = ["plan:"] + [f"  {k.ljust(width)}  {v}" for k, v in rows]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])

    def as_dict(self) -> dict:
        keys = ("D", "E", "G", "B", "A", "max_steps", "warmup_steps", "learning_rate",
                "per_device", "samples_per_seq", "fill", "notes", "computed")
        return {k: getattr(self, k) for k in keys}


def positive(cfg: dict, key: str, default):
    value = cfg.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise UserError(key, f"must be a positive number, got {value!r}")
    return value


def split_for_gpus(B: int, A: int, n: int) -> tuple[int, int]:
    """(x, y) with x*y = n, B % x == 0 and A % y == 0, dividing A as much as possible."""
    for y in sorted((d for d in range(1, n + 1) if n % d == 0), reverse=True):
        if A % y == 0 and B % (n // y) == 0:
            return n // y, y
    raise UserError("per_device_train_batch_size",
                    f"cannot keep G x B x A on {n}x the GPUs: B={B} and A={A} have no split "
                    f"x*y={n} (use --scale scale-lr, or make B or A divisible)")


def rescale(cfg: dict, G: int, recipe_gpus: int, scale: str, notes: list[str]) -> None:
    """Seed 002's rules for running a recipe on G GPUs instead of recipe_gpus (in place)."""
    if G == recipe_gpus:
        return
    B, A = cfg.get("per_device_train_batch_size", 1), cfg.get("gradient_accumulation_steps", 1)
    if scale == "scale-lr":
        n = G / recipe_gpus
        for key in ("learning_rate", "min_lr"):
            if key in cfg:
                cfg[key] = cfg[key] * n
        notes.append(f"scale-lr: {G} GPUs for a {recipe_gpus}-GPU recipe: learning rate x {n:g}")
    elif scale == "keep-batch":
        if G % recipe_gpus == 0:
            x, y = split_for_gpus(B, A, G // recipe_gpus)
            cfg["per_device_train_batch_size"], cfg["gradient_accumulation_steps"] = B // x, A // y
            notes.append(f"keep-batch: B / {x} and A / {y} keep G x B x A for {G} GPUs")
        elif recipe_gpus % G == 0:
            cfg["gradient_accumulation_steps"] = A * (recipe_gpus // G)
            notes.append(f"keep-batch: A x {recipe_gpus // G} keeps G x B x A on {G} GPUs")
        else:
            raise UserError("--gpus", f"{G} is neither a multiple nor a divisor of recipe_gpus "
                                      f"{recipe_gpus}; use --scale scale-lr")
    else:
        raise UserError("--scale", f"{scale!r} is not keep-batch or scale-lr")


def plan_for(cfg: dict, gpus: int | None = None, scale: str | None = None,
             dataset: str | Path | None = None, *, recipe_gpus: int = 1) -> Plan:
    """Compute the plan and write max_steps, warmup_steps and any rescaling into cfg."""
    if dataset:
        cfg["train_dataset_path"] = str(dataset)
    paths = dataset_paths(cfg.get("train_dataset_path"))
    if not paths:
        raise UserError("train_dataset_path", "is not set")
    counts = [count_samples(p) for p in paths]
    D, mix_note = mixed_samples(cfg, paths, [n for n, _ in counts])
    notes = [f"D from {', '.join(src for _, src in counts)}"] + ([mix_note] if mix_note else [])
    G = int(gpus or recipe_gpus)
    if G < 1:
        raise UserError("--gpus", f"must be >= 1, got {G}")
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        if int(positive(cfg, key, 1)) != cfg.get(key, 1):
            raise UserError(key, f"must be a whole number, got {cfg[key]!r}")
    positive(cfg, "learning_rate", 1e-5)
    rescale(cfg, G, recipe_gpus, scale or "keep-batch", notes)
    per_device = cfg.get("per_device_train_batch_size", 1)
    A = cfg.get("gradient_accumulation_steps", 1)
    max_seq_len = int(positive(cfg, "max_seq_len", 4096))

    B, spp, fill = float(per_device), None, None
    if cfg.get("packing"):
        prof = profile_dataset(paths[0], TokenCounter(cfg.get("model_name_or_path")), max_seq_len)
        spp, fill = pack_estimate(prof.lengths, max_seq_len)
        if not spp:
            raise UserError("max_seq_len", f"{max_seq_len} is shorter than every profiled sample")
        B = per_device * spp
        notes.append(f"packing: ~{spp:.1f} samples per sequence, from the lengths of "
                     f"{'the first ' if prof.capped else ''}{prof.n} samples")
    elif cfg.get("padding_free"):
        notes.append("padding_free: the B samples of a micro-step share one sequence "
                     "(ERNIEKit's packing_size)")

    explicit = cfg.get("max_steps", -1)
    computed = not (isinstance(explicit, int) and explicit > 0)
    if not computed:
        max_steps = explicit
        E = max_steps * G * B * A / D
        notes.append(f"max_steps is set in the config; it amounts to {E:.3g} epochs")
    else:
        E = positive(cfg, "num_train_epochs", 1)
        max_steps = max(1, math.ceil(D * E / (G * B * A)))

    warmup = cfg.get("warmup_steps")
    if not isinstance(warmup, int) or warmup <= 0:
        ratio = cfg.pop("warmup_ratio", None) or 0.01
        warmup = math.ceil(ratio * max_steps)
    if warmup >= max_steps and max_steps > 1:
        raise UserError("warmup_steps", f"{warmup} is not below max_steps {max_steps}")
    cfg.update(max_steps=max_steps, warmup_steps=warmup)
    return Plan(D, E, G, B, A, max_steps, warmup, cfg["learning_rate"] if "learning_rate" in cfg
                else 1e-5, per_device, spp, fill, notes, computed)


def resolve_and_plan(config: Path, overrides=(), gpus: int | None = None,
                     scale: str | None = None, dataset: Path | None = None):
    """The shared front half of `plan` and `train`: recipe -> validated cfg + plan."""
    from training.recipe import resolve

    recipe = resolve(config, overrides)
    if gpus:
        recipe.ours["gpus"] = gpus
    if scale:
        recipe.ours["scale"] = scale
    try:
        plan = plan_for(recipe.cfg, recipe.ours["gpus"], recipe.ours["scale"], dataset,
                        recipe_gpus=recipe.ours["recipe_gpus"])
    except UserError as e:  # point at the recipe line when the key is one of its keys
        if e.where in recipe.cfg or e.where in recipe.lines:
            raise recipe.fail(e.where, e.reason) from None
        raise
    return recipe, plan


def add_args(p) -> None:
    p.add_argument("config", type=Path)
    p.add_argument("overrides", nargs="*", help="key=value, applied on top of the YAML")
    p.add_argument("--gpus", type=int, help="GPUs to plan for, all nodes together "
                   "(default: the recipe's recipe_gpus, 1 for seed 002's recipes)")
    p.add_argument("--dataset", type=Path, help="override train_dataset_path")
    p.add_argument("--scale", choices=("keep-batch", "scale-lr"),
                   help="how to adapt to a different GPU count (default keep-batch)")
    p.add_argument("--out", type=Path, help="run folder to write resolved.yaml and plan.json "
                   "into (default: the recipe's output_dir)")
    p.add_argument("--no-write", action="store_true", help="print the plan only")


def length_warnings(cfg: dict, allow_long: bool = False) -> list[tuple[str, bool]]:
    """length_problem for each training dataset, with the model's own token counts."""
    counter = TokenCounter(cfg.get("model_name_or_path"))
    limit = int(cfg.get("max_seq_len", 4096))
    out = []
    for path in dataset_paths(cfg.get("train_dataset_path")):
        if path.is_file():
            text, fatal = length_problem(profile_dataset(path, counter, limit), path, limit,
                                         allow_long)
            if text:
                out.append((text, fatal))
    return out


def main(args) -> int:
    recipe, plan = resolve_and_plan(args.config, args.overrides, args.gpus, args.scale,
                                    args.dataset)
    print(plan.table())
    try:
        found = length_warnings(recipe.cfg, recipe.ours.get("allow_long_samples", False))
    except UserError as e:  # the plan stands; `ocrsft train` stops on the same problem
        found = []
        print(f"plan: note: sample lengths not checked ({e})")
    for text, fatal in found:
        print(f"plan: WARNING {text}" + ("; `ocrsft train` refuses this" if fatal else ""))
    if not args.no_write:
        run_dir = args.out or Path(str(recipe.cfg.get("output_dir") or ""))
        if not str(run_dir) or str(run_dir) == ".":
            raise UserError("output_dir", "is not set; pass --out DIR or --no-write")
        print(f"plan: wrote {run_folder.write_run_files(recipe.cfg, plan, run_dir, recipe.ours)}")
    return 0
