rule pose_preprocess:
    input:
        pose=lambda wc: row(wc)["pose"],
        video=lambda wc: row(wc)["video"] or [],
    output:
        pose_h5="results/pose/{subject}/{session}.h5",
        qc="results/qc/{subject}/{session}.tsv",
    log:
        "logs/pose_preprocess/{subject}/{session}.log",
    benchmark:
        "benchmarks/results/pose_preprocess/{subject}/{session}.tsv"
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("pose_preprocess"),
    params:
        fmt=lambda wc: row(wc)["pose_format"],
        setup=setup_pose_cfg,
        pose_cfg=config["pose"],
        features_cfg=config["features"],
        frames=frame_range,
        fps_tolerance=config["clips"]["fps_tolerance"],
        session=lambda wc: ethoflow_sheet.session_params(
            row(wc), row(wc)["setup"], setup_cfg(wc)
        ),
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
    log:
        "logs/labels/{subject}/{session}.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("labels"),
    params:
        rule=lambda wc: row(wc)["annotations"],
        behaviors=lambda wc: setup_cfg(wc)["behaviors"],
        setup=setup_pose_cfg,
        kinematic=config["kinematic_labels"],
        behavior_map=lambda wc: setup_cfg(wc)["behavior_map"],
        session=lambda wc: ethoflow_sheet.annotation_params(row(wc)),
    script:
        "../scripts/labels.py"
