rule pose_preprocess:
    input:
        pose=lambda wc: row(wc)["pose"],
        video=lambda wc: row(wc)["video"] or [],
    output:
        pose_h5="results/pose/{subject}/{session}.h5",
        qc="results/qc/{subject}/{session}.tsv",
    params:
        fmt=lambda wc: row(wc)["pose_format"],
        setup=setup_cfg,
        pose_cfg=config["pose"],
        features_cfg=config.get("features", {}),
        frames=frame_range,
    log:
        "logs/pose_preprocess/{subject}/{session}.log",
    benchmark:
        "benchmarks/results/pose_preprocess/{subject}/{session}.tsv"
    resources:
        **rule_resources("pose_preprocess"),
    script:
        "../scripts/pose_preprocess.py"


rule labels:
    input:
        pose_h5="results/pose/{subject}/{session}.h5",
        annotations=lambda wc: (
            []
            if row(wc)["annotations"].startswith(ethoflow_sheet.RULE_PREFIX)
            else row(wc)["annotations"]
        ),
    output:
        labels="results/labels/{subject}/{session}.csv",
    params:
        rule=lambda wc: row(wc)["annotations"],
        behaviors=lambda wc: setup_cfg(wc)["behaviors"],
        setup=setup_cfg,
        kinematic=config.get("kinematic_labels", {}),
        frames=frame_range,
    log:
        "logs/labels/{subject}/{session}.log",
    resources:
        **rule_resources("labels"),
    script:
        "../scripts/labels.py"
