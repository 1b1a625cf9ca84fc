"""Snakemake entry point of rule vlm_embed: all logic is in ethoflow.steps.vlm_embed."""

from ethoflow.smk import run_step

run_step(snakemake, "vlm_embed")  # noqa: F821
