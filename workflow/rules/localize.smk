rule train_localizer:
    input:
        pose_shards=lambda wc: manifests("pose_preprocess", train_sessions(wc.setup)),
        labels_shards=lambda wc: manifests("labels", train_sessions(wc.setup)),
    output:
        model="results/models/{setup}/localizer.pt",
        metrics="results/models/{setup}/localizer_training.json",
    log:
        "logs/train_localizer/{setup}.log",
    benchmark:
        "benchmarks/results/train_localizer/{setup}.tsv"
    conda:
        "../../envs/ethoflow.yaml"
    threads: res("train_localizer", "cpus")
    resources:
        **rule_resources("train_localizer"),
    params:
        pose=lambda wc: expand_keys("results/pose/{k}.h5", train_sessions(wc.setup)),
        labels=lambda wc: expand_keys(
            "results/labels/{k}.csv", train_sessions(wc.setup)
        ),
        behaviors=lambda wc: config["setups"][wc.setup]["behaviors"],
        cfg=config["localizer"],
        px_per_cm=lambda wc: config["setups"][wc.setup].get("px_per_cm"),
        proposals=config["proposals"],
        head=lambda wc: config["setups"][wc.setup].get("head"),
        tail=lambda wc: config["setups"][wc.setup].get("tail"),
    script:
        "../scripts/train_localizer.py"


rule localize:
    input:
        pose_shard=lambda wc: manifest("pose_preprocess", wc.shard),
        model=lambda wc: f"results/models/{shard_setup(wc)}/localizer.pt",
    output:
        manifest=update("results/shards/localize/{shard}.tsv"),
    log:
        "logs/localize/{shard}.log",
    benchmark:
        "benchmarks/results/localize/{shard}.tsv"
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("localize"),
    params:
        sessions=shard_calls("localize", localize_call),
        cfg=config["proposals"],
    script:
        "../scripts/localize.py"


rule evaluate_stage1:
    input:
        stage1_shards=lambda wc: manifests("localize", eval_sessions(wc.setup, "pose")),
        labels_shards=lambda wc: manifests("labels", eval_sessions(wc.setup, "pose")),
    output:
        metrics="results/metrics/{setup}/stage1.tsv",
        sweep="results/metrics/{setup}/stage1_threshold_sweep.tsv",
    log:
        "logs/evaluate_stage1/{setup}.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("evaluate_stage1"),
    params:
        stage1=lambda wc: expand_keys(
            "results/stage1/{k}.h5", eval_sessions(wc.setup, "pose")
        ),
        proposals=lambda wc: expand_keys(
            "results/proposals/{k}.tsv", eval_sessions(wc.setup, "pose")
        ),
        labels=lambda wc: expand_keys(
            "results/labels/{k}.csv", eval_sessions(wc.setup, "pose")
        ),
        behaviors=lambda wc: config["setups"][wc.setup]["behaviors"],
        cfg=config["proposals"],
    script:
        "../scripts/evaluate_stage1.py"
