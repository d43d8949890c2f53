"""teams-rl: the command line that drives every stage (train, generate, sft, eval, bench, pipeline)."""

__version__ = "0.1.0"
