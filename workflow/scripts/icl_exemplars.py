"""Snakemake entry point of rule icl_exemplars: all logic is in ethoflow.steps.icl_exemplars."""

from ethoflow.smk import run_step

run_step(snakemake, "icl_exemplars")  # noqa: F821
