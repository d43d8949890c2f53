"""``teams-rl privacy``: a loss-based membership-inference attack (the paper's privacy check).

The attacker scores each example by minus its loss under the model: training examples
(members) tend to have lower loss than unseen ones. The ROC AUC of that score separating members
from non-members measures the leak: 0.5 is no leak (the paper: 0.47 for its model, 0.72 for a
baseline trained on 44k examples).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from teams_env.roc import bootstrap_auc_interval, roc_auc, roc_curve
from teams_rl.finetune.commands import PrivacyConfig
from teams_rl.finetune.device import resolve_device
from teams_rl.finetune.example_loss import example_losses
from teams_rl.finetune.figures import save_line_plot
from teams_rl.finetune.models import load_causal_lm, load_tokenizer, resolve_model
from teams_rl.finetune.outputs import output_folder
from teams_rl.finetune.records import read_examples

REPORT_FILE = "privacy.json"
ROC_FILE = "roc_curve.png"


@dataclass
class AttackResult:
    auc: float
    auc_low: float
    auc_high: float
    confidence: float
    members: int
    non_members: int
    mean_loss_members: float
    mean_loss_non_members: float


def attack(
    member_losses: np.ndarray,
    non_member_losses: np.ndarray,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AttackResult:
    """AUC of the score ``-loss`` (members positive) with its bootstrap interval."""
    members, non_members = -np.asarray(member_losses), -np.asarray(non_member_losses)
    low, high = bootstrap_auc_interval(
        members, non_members, resamples=resamples, confidence=confidence, seed=seed
    )
    return AttackResult(
        auc=roc_auc(members, non_members),
        auc_low=low,
        auc_high=high,
        confidence=confidence,
        members=int(members.size),
        non_members=int(non_members.size),
        mean_loss_members=float(np.mean(member_losses)),
        mean_loss_non_members=float(np.mean(non_member_losses)),
    )


def run(config: PrivacyConfig) -> int:
    members = read_examples(config.members)
    non_members = read_examples(config.non_members)
    model_path = resolve_model(config.model)
    model = load_causal_lm(model_path, device=resolve_device(config.device))
    tokenizer = load_tokenizer(model_path)
    options = {"loss_on": config.loss_on, "max_length": config.max_length, "batch_size": config.batch_size}
    member_losses = example_losses(model, tokenizer, members, **options)
    non_member_losses = example_losses(model, tokenizer, non_members, **options)
    result = attack(
        member_losses,
        non_member_losses,
        resamples=config.bootstrap,
        confidence=config.confidence,
        seed=config.seed,
    )
    folder = output_folder(config.out, config.model)
    fpr, tpr = roc_curve(-member_losses, -non_member_losses)
    save_line_plot(
        folder / ROC_FILE,
        {f"loss attack (AUC {result.auc:.3f})": (fpr.tolist(), tpr.tolist())},
        title=f"Membership inference on {Path(config.model).name or config.model}",
        xlabel="false-positive rate (non-members flagged)",
        ylabel="true-positive rate (members found)",
        diagonal=True,
    )
    report = {
        "model": config.model,
        "members_file": config.members,
        "non_members_file": config.non_members,
        "loss_on": config.loss_on,
        "bootstrap": config.bootstrap,
        **asdict(result),
        "losses": {"members": member_losses.tolist(), "non_members": non_member_losses.tolist()},
    }
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"membership-inference AUC {result.auc:.3f} "
        f"({result.confidence:.0%} CI {result.auc_low:.3f}-{result.auc_high:.3f}; 0.5 = no leak)\n"
        f"mean loss: members {result.mean_loss_members:.3f} ({result.members}), "
        f"non-members {result.mean_loss_non_members:.3f} ({result.non_members})\n"
        f"report: {folder / REPORT_FILE}, ROC curve: {folder / ROC_FILE}"
    )
    return 0
