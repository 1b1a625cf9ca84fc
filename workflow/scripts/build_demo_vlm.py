"""Snakemake entry point of rule build_demo_vlm: all logic is in ethoflow.steps.build_demo_vlm."""

from ethoflow.smk import run_step

run_step(snakemake, "build_demo_vlm")  # noqa: F821
