# ethoflow: fast pose localization, slow video-language classification of behavior.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/pose.smk"
include: "workflow/rules/localize.smk"
include: "workflow/rules/clips.smk"
include: "workflow/rules/vlm.smk"
include: "workflow/rules/classify.smk"
include: "workflow/rules/cohort.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
