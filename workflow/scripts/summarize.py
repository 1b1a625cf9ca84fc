"""Snakemake entry point of rule summarize: all logic is in ethoflow.steps.summarize."""

from ethoflow.smk import run_step

run_step(snakemake, "summarize")  # noqa: F821
