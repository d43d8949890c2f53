"""Baseline instructors with SB3's ``predict``: uniform sampling, fixed sequences, the pack's exact
oracles (optimal, best fixed) and two text-reading baselines. :func:`make_baseline` builds one by
name (:mod:`~teams_rl.agents.baselines.registry`)."""
