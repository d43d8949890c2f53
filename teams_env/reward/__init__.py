"""The reward: the reviewer's verdict (label likelihood or the trained review head), the validity
rules a rewarded rewrite must pass, Evol-Instruct's elimination rules, and :func:`step_reward`, the
one formula both the live and the replay environment pay by."""
