def classify_inputs(wc):
    k = key(wc)
    setup = row(wc)["setup"]
    out = {"pose_h5": f"results/pose/{k}.h5", "stage1": f"results/stage1/{k}.h5"}
    if wc.mode in STAGE2_MODES:
        out["clips"] = f"results/clips/{k}.h5"
    if wc.mode in TRAINED_MODES:
        out["embeddings"] = f"results/embeddings/{k}.h5"
        out["model"] = f"results/models/{setup}/classifier_{wc.mode}.pkl"
    if wc.mode == "icl":
        out["icl"] = f"results/icl/{k}.h5"
    return out


def train_classifier_inputs(wc):
    keys = train_sessions(wc.setup, wc.mode)
    return {
        "pose": expand_keys("results/pose/{k}.h5", keys),
        "clips": expand_keys("results/clips/{k}.h5", keys),
        "embeddings": expand_keys("results/embeddings/{k}.h5", keys),
        "labels": expand_keys("results/labels/{k}.csv", keys),
    }


rule train_classifier:
    input:
        unpack(train_classifier_inputs),
    output:
        model="results/models/{setup}/classifier_{mode}.pkl",
    wildcard_constraints:
        mode="linear|pose\\+vlm|knn",
    params:
        mode=lambda wc: wc.mode,
        behaviors=lambda wc: config["setups"][wc.setup]["behaviors"],
        cfg=config["classifier"],
    log:
        "logs/train_classifier/{setup}_{mode}.log",
    benchmark:
        "benchmarks/results/train_classifier/{setup}_{mode}.tsv"
    resources:
        **rule_resources("train_classifier"),
    script:
        "../scripts/train_classifier.py"


rule classify:
    input:
        unpack(classify_inputs),
    output:
        behavior="results/behavior/{mode}/{subject}/{session}.csv",
        events="results/behavior/{mode}/{subject}/{session}.events.csv",
        nwb="results/behavior/{mode}/{subject}/{session}.nwb",
    params:
        mode=lambda wc: wc.mode,
        behaviors=lambda wc: setup_cfg(wc)["behaviors"],
        smoothing_frames=config["classifier"].get("smoothing_frames", 0),
        subject=lambda wc: wc.subject,
        session=lambda wc: wc.session,
    log:
        "logs/classify/{mode}/{subject}/{session}.log",
    resources:
        **rule_resources("classify"),
    script:
        "../scripts/classify.py"


rule evaluate:
    input:
        behavior=lambda wc: expand_keys(
            f"results/behavior/{wc.mode}/{{k}}.csv", eval_sessions(wc.setup, wc.mode)
        ),
        labels=lambda wc: expand_keys(
            "results/labels/{k}.csv", eval_sessions(wc.setup, wc.mode)
        ),
    output:
        metrics="results/metrics/{setup}/{mode}.tsv",
        confusion="results/metrics/{setup}/{mode}_confusion.png",
    params:
        behaviors=lambda wc: config["setups"][wc.setup]["behaviors"],
        split=lambda wc: (
            "test"
            if sessions(setup=wc.setup, splits=("test",), labels=True)
            else "all annotated (in-sample)"
        ),
    log:
        "logs/evaluate/{setup}_{mode}.log",
    resources:
        **rule_resources("evaluate"),
    script:
        "../scripts/evaluate.py"
