"""Snakemake entry point of rule classify: all logic is in ethoflow.steps.classify."""

from ethoflow.smk import run_step

run_step(snakemake, "classify")  # noqa: F821
