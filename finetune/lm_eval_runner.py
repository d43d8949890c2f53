"""``teams-rl eval``: benchmark a model with lm-evaluation-harness, at the paper's shot counts.

The model is loaded once and handed to the harness; tasks are run in groups of equal shot count
(the harness takes one ``num_fewshot`` per call). Task names are checked against the harness's
index, plus the tasks shipped in ``finetune/tasks``, before any model loads.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teams_rl.finetune.commands import EvalConfig
from teams_rl.finetune.device import resolve_device
from teams_rl.finetune.models import load_causal_lm, load_tokenizer, resolve_model
from teams_rl.finetune.outputs import output_folder

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

logger = logging.getLogger(__name__)

SHIPPED_TASKS = Path(__file__).with_name("tasks")
RESULTS_FILE = "lm_eval_results.json"


def parse_shots(items: list[str]) -> dict[str, int]:
    """``["arc_challenge=25", ...]`` as ``{"arc_challenge": 25, ...}``."""
    shots = {}
    for item in items:
        task, separator, count = item.partition("=")
        if not separator or not task.strip() or not count.strip().isdigit():
            raise ValueError(f"shots: expected TASK=N (N >= 0), got '{item}'")
        shots[task.strip()] = int(count)
    return shots


def task_manager(include_path: str) -> TaskManager:
    from lm_eval.tasks import TaskManager

    paths = [str(SHIPPED_TASKS)]
    if include_path:
        folder = Path(include_path).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"include_path {folder}: no such folder")
        paths.append(str(folder))
    return TaskManager(include_path=paths)


def check_tasks(tasks: list[str], known: list[str]) -> None:
    """Unknown task names are one error naming the closest known ones."""
    for task in tasks:
        if task not in known:
            close = difflib.get_close_matches(task, known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown lm-eval task '{task}'{hint} (list them with: lm-eval ls tasks)")


def group_by_shots(tasks: list[str], shots: dict[str, int]) -> dict[int | None, list[str]]:
    """Tasks per shot count; ``None``: the task's own default."""
    groups: dict[int | None, list[str]] = defaultdict(list)
    for task in tasks:
        groups[shots.get(task)].append(task)
    return dict(groups)


def results_table(results: dict[str, dict[str, Any]], shots: dict[str, Any]) -> str:
    """A Markdown table: one row per task and metric, with its standard error."""
    lines = ["| task | shots | metric | value | stderr |", "| --- | ---: | --- | ---: | ---: |"]
    for task, metrics in sorted(results.items()):
        for key, value in sorted(metrics.items()):
            metric, comma, filter_name = key.partition(",")
            # metric keys are "metric,filter"; others (alias, sample_len) describe the task
            if not comma or metric.endswith("_stderr") or not isinstance(value, (int, float)):
                continue
            stderr = metrics.get(f"{metric}_stderr,{filter_name}")
            shown = f"{stderr:.4f}" if isinstance(stderr, (int, float)) else "-"
            lines.append(f"| {task} | {shots.get(task, '-')} | {metric} | {value:.4f} | {shown} |")
    return "\n".join(lines)


def evaluate(config: EvalConfig) -> dict[str, Any]:
    """The harness's results per task, the shots used, and what was evaluated."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    shots = parse_shots(config.shots)
    manager = task_manager(config.include_path)
    check_tasks(config.tasks, manager.all_tasks)
    model_path = resolve_model(config.model)
    device = resolve_device(config.device)
    model = load_causal_lm(model_path, device=device)
    model.eval()
    lm = HFLM(pretrained=model, tokenizer=load_tokenizer(model_path), batch_size=config.batch_size)
    results: dict[str, dict[str, Any]] = {}
    used_shots: dict[str, Any] = {}
    for count, tasks in group_by_shots(config.tasks, shots).items():
        logger.info("evaluating %s with %s shots", ", ".join(tasks), "default" if count is None else count)
        output = lm_eval.simple_evaluate(
            model=lm,
            tasks=tasks,
            num_fewshot=count,
            task_manager=manager,
            limit=config.limit or None,
            apply_chat_template=config.apply_chat_template,
            log_samples=False,
            random_seed=config.seed,
            numpy_random_seed=config.seed,
            torch_random_seed=config.seed,
            fewshot_random_seed=config.seed,
        )
        if output is None:  # a non-zero rank under a distributed launcher
            continue
        results.update(output["results"])
        used_shots.update(output.get("n-shot", {}))
    return {
        "model": config.model,
        "model_path": model_path,
        "device": device,
        "limit": config.limit or None,
        "n_shot": used_shots,
        "results": results,
    }


def run(config: EvalConfig) -> int:
    report = evaluate(config)
    out = output_folder(config.out, config.model) / RESULTS_FILE
    out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(results_table(report["results"], report["n_shot"]))
    print(f"\nresults written to {out}")
    return 0
