"""Snakemake entry point of rule evaluate: all logic is in ethoflow.steps.evaluate."""

from ethoflow.smk import run_step

run_step(snakemake, "evaluate")  # noqa: F821
