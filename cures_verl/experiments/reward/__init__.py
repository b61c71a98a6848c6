"""The math reward measured: agreement with hand-written labels (``agreement``), latency under concurrent callers
with hanging responses (``latency``) and throughput (``throughput``), each against math-verify and verl's rewards.

Run each as a module, e.g. ``python -m cures_verl.experiments.reward.agreement``; docs/reward.md has the results.
"""
