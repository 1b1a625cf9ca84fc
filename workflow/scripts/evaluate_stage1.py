"""Snakemake entry point of rule evaluate_stage1: all logic is in ethoflow.steps.evaluate_stage1."""

from ethoflow.smk import run_step

run_step(snakemake, "evaluate_stage1")  # noqa: F821
