"""Snakemake entry point of rule labels: all logic is in ethoflow.steps.labels."""

from ethoflow.smk import run_step

run_step(snakemake, "labels")  # noqa: F821
