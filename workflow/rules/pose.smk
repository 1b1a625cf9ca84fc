rule pose_preprocess:
    input:
        files=shard_files("pose", "video"),
    output:
        manifest=update("results/shards/pose_preprocess/{shard}.tsv"),
    log:
        "logs/pose_preprocess/{shard}.log",
    benchmark:
        "benchmarks/results/pose_preprocess/{shard}.tsv"
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("pose_preprocess"),
    params:
        sessions=shard_calls("pose_preprocess", pose_preprocess_call),
        pose_cfg=config["pose"],
        features_cfg=config["features"],
        fps_tolerance=config["clips"]["fps_tolerance"],
    script:
        "../scripts/pose_preprocess.py"


rule labels:
    input:
        pose_shard=lambda wc: manifest("pose_preprocess", wc.shard),
        files=shard_files("annotations", labels=True),
    output:
        manifest=update("results/shards/labels/{shard}.tsv"),
    log:
        "logs/labels/{shard}.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("labels"),
    params:
        sessions=shard_calls("labels", labels_call, labels=True),
        kinematic=config["kinematic_labels"],
    script:
        "../scripts/labels.py"
