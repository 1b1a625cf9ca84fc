"""Snakemake entry point of rule train_classifier: all logic is in ethoflow.steps.train_classifier."""

from ethoflow.smk import run_step

run_step(snakemake, "train_classifier")  # noqa: F821
