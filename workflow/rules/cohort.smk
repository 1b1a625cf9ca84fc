def evaluated_pairs():
    """(setup, mode) pairs that have annotated sessions to evaluate on."""
    return [
        (s, m) for s in SETUPS for m in modes_for_setup(s) if eval_sessions(s, m)
    ]


def primary_mode(k):
    modes = modes_for_session(k)
    primary = config["classifier"]["primary"]
    return primary if primary in modes else modes[0]


def primary_behavior(keys):
    return [f"results/behavior/{primary_mode(k)}/{k}.csv" for k in keys]


def discover_keys():
    return sessions(video=True) if config.get("discover", {}).get("enabled", True) else []


rule compare:
    input:
        metrics=[f"results/metrics/{s}/{m}.tsv" for s, m in evaluated_pairs()],
        stage1=[
            f"results/metrics/{s}/stage1.tsv"
            for s in SETUPS
            if eval_sessions(s, "pose")
        ],
    output:
        table="results/metrics/comparison.tsv",
    params:
        pairs=evaluated_pairs(),
    log:
        "logs/compare.log",
    resources:
        **rule_resources("compare"),
    script:
        "../scripts/compare.py"


rule summarize:
    input:
        behavior=primary_behavior(list(SHEET.index)),
    output:
        table="results/summary/time_budget.tsv",
        plot="results/summary/group_comparison.png",
    params:
        session_keys=list(SHEET.index),
        sheet=SHEET[["subject", "session", "setup", "group"]].to_dict("records"),
        behaviors={s: config["setups"][s]["behaviors"] for s in SETUPS},
    log:
        "logs/summarize.log",
    resources:
        **rule_resources("summarize"),
    script:
        "../scripts/summarize.py"


rule discover:
    input:
        embeddings=expand_keys("results/embeddings/{k}.h5", discover_keys()),
        descriptions=expand_keys("results/descriptions/{k}.jsonl", discover_keys()),
        clips=expand_keys("results/clips/{k}.h5", discover_keys()),
        labels=[f"results/labels/{k}.csv" if has_labels(k) else [] for k in discover_keys()],
    output:
        clusters="results/discover/clusters.tsv",
        usage="results/discover/usage.tsv",
        novel="results/discover/candidates.tsv",
        stats="results/discover/group_tests.tsv",
        plot="results/discover/usage.png",
    params:
        session_keys=discover_keys(),
        sheet=SHEET[["subject", "session", "setup", "group"]].to_dict("records"),
        labelled=[has_labels(k) for k in discover_keys()],
        behaviors={s: config["setups"][s]["behaviors"] for s in SETUPS},
        cfg=config.get("discover", {}),
    log:
        "logs/discover.log",
    benchmark:
        "benchmarks/results/discover.tsv"
    resources:
        **rule_resources("discover"),
    script:
        "../scripts/discover.py"


def report_inputs(wc):
    keys = list(SHEET.index)
    out = {
        "behavior": primary_behavior(keys),
        "qc": expand_keys("results/qc/{k}.tsv", keys),
        "summary": "results/summary/time_budget.tsv",
        "group_plot": "results/summary/group_comparison.png",
    }
    if evaluated_pairs():
        out["comparison"] = "results/metrics/comparison.tsv"
        out["metrics"] = [f"results/metrics/{s}/{m}.tsv" for s, m in evaluated_pairs()]
        out["confusion"] = [
            f"results/metrics/{s}/{m}_confusion.png" for s, m in evaluated_pairs()
        ]
    if discover_keys():
        out["clusters"] = "results/discover/clusters.tsv"
        out["novel"] = "results/discover/candidates.tsv"
        out["usage_plot"] = "results/discover/usage.png"
        out["clips"] = expand_keys("results/clips/{k}.h5", discover_keys())
        out["embeddings"] = expand_keys("results/embeddings/{k}.h5", discover_keys())
    return out


rule report:
    input:
        unpack(report_inputs),
    output:
        html="results/report/index.html",
    params:
        session_keys=list(SHEET.index),
        sheet=SHEET[["subject", "session", "setup", "group", "annotations"]].to_dict("records"),
        behaviors={s: config["setups"][s]["behaviors"] for s in SETUPS},
        demo_model=vlm_is_demo(),
        model=config["vlm"]["model"],
    log:
        "logs/report.log",
    resources:
        **rule_resources("report"),
    script:
        "../scripts/report.py"
