checkpoint clip_budget:
    input:
        stage1=expand_keys("results/stage1/{k}.h5", budget_keys()),
        proposals=expand_keys("results/proposals/{k}.tsv", budget_keys()),
    output:
        selection="results/budget/selection.tsv",
        tradeoff="results/budget/tradeoff.tsv",
    log:
        "logs/clip_budget.log",
    benchmark:
        "benchmarks/results/clip_budget.tsv"
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("clip_budget"),
    params:
        session_keys=budget_keys(),
        budget_gpu_hours=BUDGET_GPU_HOURS,
        seconds_per_clip=budget_seconds_per_clip(),
        clip_seconds=config["proposals"]["clip_seconds"],
    script:
        "../scripts/clip_budget.py"


rule cut_clips:
    input:
        **cut_clips_budget_input(),
        video=lambda wc: row(wc)["video"],
        proposals="results/proposals/{subject}/{session}.tsv",
        pose_h5="results/pose/{subject}/{session}.h5",
    output:
        clips="results/clips/{subject}/{session}.h5",
    log:
        "logs/cut_clips/{subject}/{session}.log",
    benchmark:
        "benchmarks/results/cut_clips/{subject}/{session}.tsv"
    # with a SLURM profile: grouped with localize (stage1), except behind the budget
    # checkpoint, which a group cannot wrap (localize -> clip_budget -> cut_clips)
    group:
        CUT_CLIPS_GROUP
    conda:
        "../../envs/ethoflow.yaml"
    threads: res("cut_clips", "cpus")
    resources:
        **rule_resources("cut_clips"),
    params:
        **cut_clips_budget_params(),
        cfg=config["clips"],
        clip_seconds=config["proposals"]["clip_seconds"],
    script:
        "../scripts/cut_clips.py"
