"""Snakemake entry point of rule pose_preprocess: all logic is in ethoflow.steps.pose_preprocess."""

from ethoflow.smk import run_step

run_step(snakemake, "pose_preprocess")  # noqa: F821
