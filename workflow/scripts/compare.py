"""Snakemake entry point of rule compare: all logic is in ethoflow.steps.compare."""

from ethoflow.smk import run_step

run_step(snakemake, "compare")  # noqa: F821
