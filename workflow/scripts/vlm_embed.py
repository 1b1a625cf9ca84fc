"""Rule vlm_embed: calls ethoflow.steps.vlm.vlm_embed."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "vlm_embed")  # noqa: F821
