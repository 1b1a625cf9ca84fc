"""Snakemake entry point of rule discover: all logic is in ethoflow.steps.discover."""

from ethoflow.smk import run_step

run_step(snakemake, "discover")  # noqa: F821
