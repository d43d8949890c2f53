"""Training the instructor: SB3 / sb3-contrib algorithms on the live env or a recorded pack, their
hyperparameters, callbacks and logs, and the run directory they write."""
