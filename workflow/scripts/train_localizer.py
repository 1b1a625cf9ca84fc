"""Snakemake entry point of rule train_localizer: all logic is in ethoflow.steps.train_localizer."""

from ethoflow.smk import run_step

run_step(snakemake, "train_localizer")  # noqa: F821
