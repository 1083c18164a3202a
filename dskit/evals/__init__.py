"""Evaluation: prompt sets and benchmark files, graders, statistics, comparisons and their
summaries, side by side, the arena, reports and plots (each module loads on first use)."""
