rule compare:
    input:
        metrics=[f"results/metrics/{s}/{m}.tsv" for s, m in evaluated_pairs()],
        stage1=[
            f"results/metrics/{s}/stage1.tsv"
            for s in SETUPS
            if eval_sessions(s, "pose")
        ],
    output:
        table=report(
            "results/metrics/comparison.tsv",
            caption="../report/comparison.rst",
            category="Evaluation",
        ),
    log:
        "logs/compare.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("compare"),
    params:
        pairs=evaluated_pairs(),
    script:
        "../scripts/compare.py"


rule summarize:
    input:
        behavior_shards=manifests("classify", list(SHEET.index)),
    output:
        table=report(
            "results/summary/time_budget.tsv",
            caption="../report/summary.rst",
            category="Cohort",
        ),
        plot=report(
            "results/summary/group_comparison.png",
            caption="../report/summary.rst",
            category="Cohort",
        ),
        bouts="results/summary/bouts.tsv",
    log:
        "logs/summarize.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("summarize"),
    params:
        behavior=primary_behavior(list(SHEET.index)),
        events=[
            f"results/behavior/{m}/{k}.events.csv"
            for k in SHEET.index
            for m in modes_for_session(k)
        ],
        session_keys=list(SHEET.index),
        event_keys=[(k, m) for k in SHEET.index for m in modes_for_session(k)],
        sheet=sheet_records("subject", "session", "setup", "group"),
        behaviors={s: config["setups"][s]["behaviors"] for s in SETUPS},
    script:
        "../scripts/summarize.py"


rule discover:
    input:
        embeddings_shards=manifests("vlm_embed", discover_keys()),
        descriptions_shards=manifests("vlm_describe", discover_keys()),
        labels_shards=manifests("labels", [k for k in discover_keys() if has_labels(k)]),
    output:
        clusters="results/discover/clusters.tsv",
        usage="results/discover/usage.tsv",
        novel="results/discover/candidates.tsv",
        stats="results/discover/group_tests.tsv",
        plot=report(
            "results/discover/usage.png",
            caption="../report/discover.rst",
            category="Discovery",
        ),
    log:
        "logs/discover.log",
    benchmark:
        "benchmarks/results/discover.tsv"
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("discover"),
    params:
        embeddings=expand_keys("results/embeddings/{k}.h5", discover_keys()),
        descriptions=expand_keys("results/descriptions/{k}.jsonl", discover_keys()),
        pose=expand_keys("results/pose/{k}.h5", discover_keys()),
        labels=[f"results/labels/{k}.csv" for k in discover_keys() if has_labels(k)],
        session_keys=discover_keys(),
        sheet=sheet_records("subject", "session", "setup", "group"),
        labelled=[has_labels(k) for k in discover_keys()],
        behaviors={s: config["setups"][s]["behaviors"] for s in SETUPS},
        cfg=config["discover"],
    script:
        "../scripts/discover.py"


rule failed_sessions:
    input:
        final_shards=final_manifests(),
    output:
        table="results/failed_sessions.tsv",
    log:
        "logs/failed_sessions.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("failed_sessions"),
    params:
        outputs=[path for _, path in session_final_outputs()],
        output_keys=[k for k, _ in session_final_outputs()],
        sheet=sheet_records("subject", "session", "setup"),
        excluded=EXCLUDED,
    script:
        "../scripts/failed_sessions.py"


rule report:
    input:
        unpack(report_inputs),
    output:
        html=report(
            "results/report/index.html",
            caption="../report/html.rst",
            category="Report",
        ),
    log:
        "logs/report.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("report"),
    params:
        **report_sessions(),
        session_keys=list(SHEET.index),
        sheet=sheet_records(
            "subject", "session", "setup", "group", "annotations", "video"
        ),
        behaviors={s: config["setups"][s]["behaviors"] for s in SETUPS},
        demo_model=vlm_is_demo(),
        model=config["vlm"]["model"],
    script:
        "../scripts/report.py"
