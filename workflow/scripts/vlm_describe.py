"""Snakemake entry point of rule vlm_describe: all logic is in ethoflow.steps.vlm_describe."""

from ethoflow.smk import run_step

run_step(snakemake, "vlm_describe")  # noqa: F821
