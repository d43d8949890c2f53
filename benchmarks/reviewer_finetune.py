"""Does training the reviewer model itself read GOOD better than the shipped GOOD head?

The shipped GOOD head is a logistic regression on frozen features (the 135M reviewer's hidden state,
word counts and MiniLM features of the pair, the action). This benchmark fine-tunes the reviewer's
top layers, with a linear classification head on the reply's last token, to call the readers' GOOD
directly, and cross-validates it on the same labelled train rows and folds (grouped by seed) as
the shipped head's fit: nothing from the pack's held-out seeds is read. The model reads the
expert's own request (the action's method and the instruction) and the rewrite as its reply, so
what GOOD means for the action is in its input. It also reports how well the reviewer's own
log-probability of the rewrite (how fluent the 135M model finds it) ranks GOOD.

    python -m benchmarks.reviewer_finetune                 # top 4 layers, 2 epochs (about 25 min on 2 cores)
    python -m benchmarks.reviewer_finetune --layers 2 --epochs 3

The frozen lower layers run once per row; only the top ``--layers`` layers are trained, on each
fold's train rows (batches of 8, AdamW, the GOOD rows weighted up to balance the classes).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS_DIR, Timer, markdown_table, write_result
from teams_env.actions import ACTION_NAMES, ACTIONS, specialist_conversation
from teams_env.reward.review_head import ReviewHead
from teams_env.roc import roc_auc
from teams_rl.review_head_training import folds_by_group
from teams_rl.reviewer_commands import good_row_groups, good_training_rows

LABELS = [
    str(RESULTS_DIR / "reward_reading" / "prompted" / "labelled.jsonl"),
    str(RESULTS_DIR / "reward_reading" / "specialist" / "labelled.jsonl"),
]
"""The files the shipped GOOD head was fitted on (its training record names them)."""
BATCH = 8


def request_and_reply(tokenizer: Any, row: dict[str, Any]) -> tuple[list[int], int]:
    """Token ids of the chat (the action's request, the rewrite as the reply, ending at the reply's
    last token) and how many of them are the request."""
    request = specialist_conversation(ACTIONS[ACTION_NAMES.index(row["action"])], row["instruction"])
    prompt = tokenizer.apply_chat_template(request, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(
        [*request, {"role": "assistant", "content": row["rewrite"]}], tokenize=False
    )
    ids = tokenizer(full.rstrip(), add_special_tokens=False)["input_ids"]
    return ids, len(tokenizer(prompt, add_special_tokens=False)["input_ids"])


class TopLayers:
    """The reviewer's top ``count`` layers, its final norm and a linear GOOD head, trainable."""

    def __init__(self, model: Any, count: int) -> None:
        import torch

        self.layers = copy.deepcopy(model.model.layers[-count:])
        self.norm = copy.deepcopy(model.model.norm)
        self.rotary = model.model.rotary_emb
        self.head = torch.zeros(model.config.hidden_size + 1, requires_grad=True)

    def parameters(self) -> list[Any]:
        return [p for layer in self.layers for p in layer.parameters()] + list(self.norm.parameters())

    def logit(self, hidden: Any) -> Any:
        import torch

        x = hidden.unsqueeze(0)
        positions = torch.arange(x.shape[1]).unsqueeze(0)
        rotary = self.rotary(x, positions)
        for layer in self.layers:
            out = layer(x, attention_mask=None, position_ids=positions, position_embeddings=rotary)
            x = out[0] if isinstance(out, tuple) else out
        return self.norm(x)[0, -1] @ self.head[:-1] + self.head[-1]


def frozen_states(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]], top: int
) -> tuple[list[Any], np.ndarray]:
    """Each row's hidden states below the top ``top`` layers (all tokens), and the reviewer's mean
    log-probability of the reply's tokens given the request."""
    import torch
    from tqdm.auto import tqdm

    states, log_probs = [], []
    with torch.no_grad():
        for row in tqdm(rows, desc="frozen layers", unit="row"):
            ids, request = request_and_reply(tokenizer, row)
            out = model(torch.tensor([ids]), output_hidden_states=True)
            states.append(out.hidden_states[-1 - top][0].clone())
            token_log_probs = torch.log_softmax(out.logits[0, :-1], -1)[torch.arange(len(ids) - 1), ids[1:]]
            log_probs.append(float(token_log_probs[request - 1 :].mean()))
    return states, np.array(log_probs)


def cross_validate(
    model: Any, states: list[Any], good: np.ndarray, fold: np.ndarray, *, layers: int, epochs: int, lr: float
) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold scores after each epoch (epochs x rows), and each fold's AUC after the last."""
    import torch
    from tqdm.auto import tqdm

    scores = np.zeros((epochs, len(good)))
    fold_aucs = []
    for k in range(int(fold.max()) + 1):
        torch.manual_seed(k)
        rng = np.random.default_rng(k)
        top = TopLayers(model, layers)
        optimiser = torch.optim.AdamW(
            [{"params": top.parameters(), "lr": lr, "weight_decay": 0.01}, {"params": [top.head], "lr": 1e-3}]
        )
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        pos_weight = torch.tensor((1 - good[train].mean()) / good[train].mean())
        for epoch in range(epochs):
            top.layers.train()
            order = rng.permutation(train)
            for step, i in enumerate(tqdm(order, desc=f"fold {k} epoch {epoch}", unit="row", leave=False)):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    top.logit(states[i]), torch.tensor(float(good[i])), pos_weight=pos_weight
                )
                (loss / BATCH).backward()
                if step % BATCH == BATCH - 1 or step == len(order) - 1:
                    optimiser.step()
                    optimiser.zero_grad()
            top.layers.eval()
            with torch.no_grad():
                scores[epoch, test] = [float(top.logit(states[i])) for i in test]
        last = scores[-1, test]
        fold_aucs.append(roc_auc(last[good[test] == 1], last[good[test] == 0]))
    return scores, fold_aucs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=4, help="top layers to train (the rest stay frozen)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-5, help="learning rate of the layers (the head: 1e-3)")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from teams_env.llm.embedded import embedded_hf_dir

    shipped = ReviewHead.load()
    rows = good_training_rows(LABELS, shipped.rules)
    shipped_cv = shipped.training["good"]
    if shipped_cv["rows"] != len(rows):
        raise SystemExit(
            f"the shipped GOOD head was cross-validated on {shipped_cv['rows']} rows, these labels give "
            f"{len(rows)}: compare on the files it was fitted on"
        )
    good = np.array([row["label"] == "GOOD" for row in rows], dtype=float)
    fold = folds_by_group(good_row_groups(rows), args.folds)
    path = embedded_hf_dir()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    with Timer() as timer:
        states, log_probs = frozen_states(model, tokenizer, rows, args.layers)
        scores, fold_aucs = cross_validate(
            model, states, good, fold, layers=args.layers, epochs=args.epochs, lr=args.lr
        )
    positives, negatives = good == 1, good == 0
    per_epoch = [roc_auc(s[positives], s[negatives]) for s in scores]
    table = [
        ["shipped GOOD head (frozen features + action)", f"{shipped_cv['cv_auc']:.3f}", ""],
        *[
            [f"top {args.layers} layers fine-tuned, epoch {e + 1}", f"{auc:.3f}", ""]
            for e, auc in enumerate(per_epoch)
        ],
        [
            f"top {args.layers} layers fine-tuned, mean of folds",
            f"{np.mean(fold_aucs):.3f}",
            ", ".join(f"{a:.3f}" for a in fold_aucs),
        ],
        [
            "reviewer's log-probability of the rewrite (higher = GOOD)",
            f"{roc_auc(log_probs[positives], log_probs[negatives]):.3f}",
            "",
        ],
    ]
    markdown = (
        f"Cross-validated ({args.folds} folds by seed) on {len(rows)} labelled train rows "
        f"({int(good.sum())} GOOD), {timer.seconds:.0f} s.\n\n"
        + markdown_table(["GOOD read by", "CV ROC AUC", "per fold"], table)
    )
    print(markdown)
    write_result(
        "reviewer_finetune",
        {
            "rows": len(rows),
            "good": int(good.sum()),
            "labels": [str(Path(p).relative_to(RESULTS_DIR.parent.parent)) for p in LABELS],
            "layers": args.layers,
            "epochs": args.epochs,
            "lr": args.lr,
            "folds": args.folds,
            "seconds": timer.seconds,
            "shipped_head_cv_auc": shipped_cv["cv_auc"],
            "finetuned_cv_auc_per_epoch": per_epoch,
            "finetuned_fold_auc": fold_aucs,
            "log_probability_auc": roc_auc(log_probs[positives], log_probs[negatives]),
        },
        markdown,
    )


if __name__ == "__main__":
    main()
