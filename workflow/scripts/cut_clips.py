"""Snakemake entry point of rule cut_clips: all logic is in ethoflow.steps.cut_clips."""

from ethoflow.smk import run_step

run_step(snakemake, "cut_clips")  # noqa: F821
