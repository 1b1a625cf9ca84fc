"""Snakemake entry point of rule vlm_icl: all logic is in ethoflow.steps.vlm_icl."""

from ethoflow.smk import run_step

run_step(snakemake, "vlm_icl")  # noqa: F821
