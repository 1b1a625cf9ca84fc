"""Snakemake entry point of rule localize: all logic is in ethoflow.steps.localize."""

from ethoflow.smk import run_step

run_step(snakemake, "localize")  # noqa: F821
