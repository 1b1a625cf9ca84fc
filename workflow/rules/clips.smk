checkpoint clip_budget:
    input:
        localize_shards=manifests("localize", budget_keys()),
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
        stage1=expand_keys("results/stage1/{k}.h5", budget_keys()),
        proposals=expand_keys("results/proposals/{k}.tsv", budget_keys()),
        session_keys=budget_keys(),
        budget_gpu_hours=BUDGET_GPU_HOURS,
        seconds_per_clip=budget_seconds_per_clip(),
        clip_seconds=config["proposals"]["clip_seconds"],
    script:
        "../scripts/clip_budget.py"


rule cut_clips:
    input:
        **cut_clips_budget_input(),
        localize_shard=lambda wc: manifest("localize", wc.shard),
        files=shard_files("video", video=True),
    output:
        manifest=update("results/shards/cut_clips/{shard}.tsv"),
    log:
        "logs/cut_clips/{shard}.log",
    benchmark:
        "benchmarks/results/cut_clips/{shard}.tsv"
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
        sessions=shard_calls("cut_clips", cut_clips_call, video=True),
        cfg=config["clips"],
        clip_seconds=config["proposals"]["clip_seconds"],
    script:
        "../scripts/cut_clips.py"
