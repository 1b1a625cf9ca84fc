rule train_kinematic:
    input:
        pose_shards=lambda wc: manifests("pose_preprocess", train_sessions(wc.setup)),
        labels_shards=lambda wc: manifests("labels", train_sessions(wc.setup)),
    output:
        model="results/models/{setup}/kinematic.json",
    log:
        "logs/train_kinematic/{setup}.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("train_kinematic"),
    params:
        pose=lambda wc: expand_keys("results/pose/{k}.h5", train_sessions(wc.setup)),
        labels=lambda wc: expand_keys(
            "results/labels/{k}.csv", train_sessions(wc.setup)
        ),
        behaviors=lambda wc: config["setups"][wc.setup]["behaviors"],
        px_per_cm=lambda wc: config["setups"][wc.setup].get("px_per_cm"),
        cfg=config["kinematic_baseline"],
    script:
        "../scripts/train_kinematic.py"


rule train_classifier:
    input:
        unpack(train_classifier_shards),
    output:
        model="results/models/{setup}/classifier_{mode}.pkl",
    log:
        "logs/train_classifier/{setup}_{mode}.log",
    benchmark:
        "benchmarks/results/train_classifier/{setup}_{mode}.tsv"
    wildcard_constraints:
        mode="|".join(re.escape(m) for m in TRAINED_MODES),
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("train_classifier"),
    params:
        **train_classifier_inputs(),
        mode=lambda wc: wc.mode,
        behaviors=lambda wc: config["setups"][wc.setup]["behaviors"],
        cfg=config["classifier"],
    script:
        "../scripts/train_classifier.py"


rule classify:
    input:
        unpack(classify_shard_inputs),
    output:
        manifest=update("results/shards/classify/{shard}.tsv"),
    log:
        "logs/classify/{shard}.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("classify"),
    params:
        sessions=shard_calls("classify", classify_call, by_mode=True),
        behaviors=lambda wc: config["setups"][shard_setup(wc)]["behaviors"],
        smoothing_frames=config["classifier"]["smoothing_frames"],
    script:
        "../scripts/classify.py"


rule evaluate:
    input:
        behavior_shards=lambda wc: manifests(
            "classify", eval_sessions(wc.setup, wc.mode)
        ),
        labels_shards=lambda wc: manifests("labels", eval_sessions(wc.setup, wc.mode)),
    output:
        metrics=report(
            "results/metrics/{setup}/{mode}.tsv",
            caption="../report/metrics.rst",
            category="Evaluation",
        ),
        confusion_plot=report(
            "results/metrics/{setup}/{mode}_confusion.png",
            caption="../report/confusion.rst",
            category="Evaluation",
        ),
    log:
        "logs/evaluate/{setup}_{mode}.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("evaluate"),
    params:
        behavior=lambda wc: expand_keys(
            f"results/behavior/{wc.mode}/{{k}}.csv", eval_sessions(wc.setup, wc.mode)
        ),
        labels=lambda wc: expand_keys(
            "results/labels/{k}.csv", eval_sessions(wc.setup, wc.mode)
        ),
        behaviors=lambda wc: config["setups"][wc.setup]["behaviors"],
        split=lambda wc: (
            "test"
            if sessions(setup=wc.setup, splits=("test",), labels=True)
            else "all annotated (in-sample)"
        ),
    script:
        "../scripts/evaluate.py"
