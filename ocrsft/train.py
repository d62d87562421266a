"""`ocrsft train CONFIG [--resume] [--overwrite] [key=value ...]`: plan, check, launch.

Read top to bottom: resolve the recipe (config.py) and print the plan
(plan.py); run the checks a user would otherwise meet an hour into a GPU job
(model folder, data readable, samples longer than max_seq_len, image tokens,
output folder); write resolved.yaml and plan.json into the run folder; hand the
config to the engine named by `engine:`; then report the loss curve, the eval
loss and, with packing, the measured fill next to the planned one.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import engines
from models import model_folder
from samples.errors import UserError
from training import device
from training.plan import Plan, TokenCounter, length_problem, profile_dataset, resolve_and_plan
from training.recipe import dataset_paths, evaluates, resolve
from training.run_folder import PLAN_FILES, checkpoints, step_of, write_run_files


def detected_gpus() -> int | None:
    """GPUs the launcher will use, all nodes together; None on a machine without one."""
    from training.distributed import visible_gpus

    if not device.has_gpu():
        return None
    return visible_gpus() * int(os.environ.get("NNODES", "1"))


def world(nproc_per_node: int | None = None):
    """The run's process layout (distributed.layout): the flag, the environment, else one
    process per visible GPU (GPUs are only probed when no count is given)."""
    from training.distributed import layout

    return layout(nproc_per_node)


def check_data(cfg: dict, allow_long: bool = False) -> None:
    """Every dataset is readable; say how many samples max_seq_len cuts and what images cost.

    Stops before launch when no training sample fits max_seq_len, or most do not
    (unless allow_long_samples): PaddleFormers would loop with 0 steps."""
    limit = cfg.get("max_seq_len", 4096)
    counter = TokenCounter(cfg.get("model_name_or_path"))
    dropped = cfg.get("truncation_strategy", "delete") == "delete"
    keys = ("train_dataset_path", "eval_dataset_path") if evaluates(cfg) else ("train_dataset_path",)
    for key in keys:
        for path in dataset_paths(cfg.get(key)):
            if not path.is_file():
                raise UserError(key, f"{path} not found")
            prof = profile_dataset(path, counter, limit)
            head = f"the first {prof.n}" if prof.capped else f"{prof.n}"
            print(f"check: {path.name}: {head} samples read, ~{prof.image_tokens / prof.n:.0f} image "
                  f"tokens and ~{prof.mean:.0f} tokens per sample, longest {prof.longest} "
                  f"(max_seq_len {limit}; text counted {'exactly' if counter.exact_text else 'as bytes/3'})")
            text, fatal = length_problem(prof, path, limit, allow_long)
            if fatal and dropped and key == "train_dataset_path":
                raise UserError("max_seq_len", text)
            if text:
                print(f"check: WARNING {text}; they will be "
                      f"{'dropped' if dropped else 'truncated'} (truncation_strategy "
                      f"{cfg.get('truncation_strategy', 'delete')})")


def check_version(recipe) -> None:
    """The folder's PaddleOCR-VL version picks the template; a recipe naming another
    version's template stops here, at its own line, not as garbage output after training."""
    cfg = recipe.cfg
    if recipe.engine == "erniekit":
        version, why = model_folder.detect_version(cfg["model_name_or_path"], recipe.ours["model_version"])
        if version.name != "1":
            # ERNIEKit's OCR-VL-SFT data path hard-codes v1's "\nAssistant: "
            # (data_processor/steps/input_ids_messaging/chat_template_utils.py): ERNIE #1440, #1442.
            raise recipe.fail("engine", f"erniekit builds PaddleOCR-VL v1's prompt (\"Assistant: \"), "
                              f"but {cfg['model_name_or_path']} is PaddleOCR-VL {version.name} ({why}), "
                              f"served with {version.generation_prompt!r}: use engine: paddleformers")
        return
    try:
        version, why = model_folder.check_template(cfg.get("template"), cfg["model_name_or_path"],
                                                   recipe.ours["model_version"])
    except UserError as e:
        if e.where in ("template", "model_version"):
            raise recipe.fail(e.where, e.reason) from None
        raise
    cfg.setdefault("template", version.train_template)
    print(f"check: PaddleOCR-VL {version.name} ({why}): template {cfg['template']}, "
          f"served as {version.paddlex_model_name}")


def output_dir(cfg: dict, resume: bool, overwrite: bool) -> tuple[Path, bool]:
    """(the run folder, whether it must be cleared); refuses to mix a new run into an old one."""
    out = Path(str(cfg.get("output_dir") or ""))
    if not str(cfg.get("output_dir") or "") or str(out) == ".":
        raise UserError("output_dir", "is not set")
    leftovers = [p for p in out.iterdir() if p.name not in PLAN_FILES] if out.is_dir() else []
    if not leftovers or resume:
        return out, False
    if not overwrite:
        raise UserError(str(out), "exists and is not empty; pass --resume to continue it "
                                  "or --overwrite to start over")
    if not any((out / f).is_file() for f in PLAN_FILES):
        raise UserError(str(out), "--overwrite only clears folders ocrsft created "
                                  "(with resolved.yaml); choose another output_dir")
    return out, True


def report(cfg: dict, plan: Plan, out: Path) -> None:
    from training.monitor import plot_loss, read_scalars

    logdir = cfg["logging_dir"]
    # ERNIEKit's OCR-VL-SFT stage logs multimodal batches as mm_train/*.
    tag = next((t for t in ("train/loss", "mm_train/loss") if read_scalars(logdir, t)), "train/loss")
    png = plot_loss(logdir, out / "loss.png", tag=tag)
    loss = read_scalars(logdir, tag)
    if loss:
        print(f"train: loss {loss[0][1]:.3f} at step {loss[0][0]} -> {loss[-1][1]:.3f} "
              f"at step {loss[-1][0]}")
    from evaluation.during_training import logged_names

    for tag in ["eval/loss", *(f"eval/{name}" for name in logged_names())]:
        evals = read_scalars(logdir, tag)
        if evals:
            print(f"train: {tag} {' -> '.join(f'{v:.3f}' for _, v in evals[-4:])} "
                  f"(last at step {evals[-1][0]})")
    measured = out / "data_seen.json"
    if plan.fill is not None and measured.is_file():
        m = json.loads(measured.read_text())
        print(f"train: packing fill {m['fill']:.0%} measured vs {plan.fill:.0%} planned; "
              f"{m['samples_per_sequence']:.1f} vs {plan.samples_per_seq:.1f} samples per sequence")
    print(f"train: done -> {out}\ntrain: TensorBoard: tensorboard --logdir {logdir}"
          + (f"\ntrain: loss curve {png}" if png else ""))


def run(config: Path, overrides=(), resume: bool = False, overwrite: bool = False,
        gpus: int | None = None, nproc_per_node: int | None = None) -> Path:
    from training.distributed import node_rank_from_env

    lead = node_rank_from_env() == 0  # node 0 owns the run folder; other nodes only launch workers
    # The output folder first: refusing takes no imports and no data reading.
    if lead:
        output_dir(resolve(config, overrides, check=False).cfg, resume, overwrite)
    lay = world(nproc_per_node)
    # G is the world size: every process trains on its own share of each step.
    launched = lay.world_size if lay.distributed or detected_gpus() else None
    recipe, plan = resolve_and_plan(config, overrides, gpus or launched)
    if lead:
        print(plan.table(), flush=True)
    cfg = recipe.cfg
    for key in ("model_name_or_path", "output_dir"):
        if not cfg.get(key):
            raise recipe.fail(key, "is not set")
    if recipe.engine != "torch":  # bridge models are other families; the bridge checks them
        model_folder.check_model_folder(cfg["model_name_or_path"])
    if recipe.engine in ("paddleformers", "erniekit"):
        check_version(recipe)
    out = Path(str(cfg["output_dir"]))
    if lead:
        try:
            check_data(cfg, recipe.ours["allow_long_samples"])
        except UserError as e:
            if e.where in recipe.cfg or e.where in recipe.lines:
                raise recipe.fail(e.where, e.reason) from None
            raise
        out, clear = output_dir(cfg, resume, overwrite)
        if clear:
            shutil.rmtree(out)
    cfg.setdefault("logging_dir", str(out / "tensorboard"))
    cfg.setdefault("report_to", "tensorboard")
    if lead:
        write_run_files(cfg, plan, out, recipe.ours)
        steps = [step_of(p) for p in checkpoints(out)]
        if resume and not steps:
            print(f"train: no checkpoint in {out} yet; starting at step 0")
        elif resume and Path(cfg["logging_dir"]).is_dir():
            from training.monitor import purge_after

            purged = purge_after(cfg["logging_dir"], max(steps))
            if purged:
                print(f"train: resuming at step {max(steps)}; dropped {purged} TensorBoard points "
                      f"logged after it (they are logged again)")
    if lay.distributed:
        print(f"train: {lay.nproc_per_node} process(es) on each of {lay.nnodes} node(s), "
              f"world size {lay.world_size}; this is node {lay.node_rank}", flush=True)
    engines.launch(recipe, cfg, out, resume=resume, lay=lay, nproc_per_node=nproc_per_node)
    if lead:
        report(cfg, plan, out)
    return out


def add_args(p) -> None:
    p.add_argument("config", type=Path)
    p.add_argument("overrides", nargs="*", help="key=value, applied on top of the YAML")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="delete a previous run in output_dir and start over")
    p.add_argument("--gpus", type=int, help="plan for this many GPUs, all nodes together "
                   "(default: the world size, --nproc-per-node times NNODES)")
    p.add_argument("--nproc-per-node", type=int, default=None,
                   help="worker processes on this node (default: NPROC_PER_NODE, else one per "
                        "visible GPU, else 1); several nodes: NNODES, NODE_RANK, MASTER_ADDR, "
                        "MASTER_PORT")


def main(args) -> int:
    run(args.config, args.overrides, args.resume, args.overwrite, args.gpus,
        args.nproc_per_node)
    return 0
