"""Snakemake entry point of rule report: all logic is in ethoflow.steps.report."""

from ethoflow.smk import run_step

run_step(snakemake, "report")  # noqa: F821
