"""Rule icl_exemplars: calls ethoflow.steps.vlm.icl_exemplars."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "icl_exemplars")  # noqa: F821
