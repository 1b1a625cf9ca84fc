"""Rule failed_sessions: calls ethoflow.steps.cohort.failed_sessions."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "failed_sessions")  # noqa: F821
