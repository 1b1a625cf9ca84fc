"""One function per workflow rule: typed paths in, files out.

The modules mirror ``workflow/rules/*.smk``. A step reads its inputs through
:mod:`ethoflow.results` (or a domain reader), calls the domain functions and writes its
outputs through :mod:`ethoflow.results`; what it computes lives, and is tested, in the
domain modules. ``STEPS`` maps each rule to its module, so that a job imports only the
module of its own rule (and no torch unless that rule needs it).
"""

STEPS = {
    "pose_preprocess": "pose",
    "labels": "pose",
    "train_localizer": "localize",
    "localize": "localize",
    "evaluate_stage1": "localize",
    "clip_budget": "clips",
    "cut_clips": "clips",
    "build_demo_vlm": "vlm",
    "vlm_embed": "vlm",
    "vlm_describe": "vlm",
    "icl_exemplars": "vlm",
    "vlm_icl": "vlm",
    "train_kinematic": "classify",
    "train_classifier": "classify",
    "classify": "classify",
    "evaluate": "classify",
    "compare": "cohort",
    "summarize": "cohort",
    "discover": "cohort",
    "report": "cohort",
    "failed_sessions": "cohort",
}
