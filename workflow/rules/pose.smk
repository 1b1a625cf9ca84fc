def pose_preprocess_call(wc):
    k, r = key(wc), row(wc)
    return {
        "input": {"pose": r["pose"], "video": r["video"] or []},
        "output": {"pose_h5": f"results/pose/{k}.h5", "qc": f"results/qc/{k}.tsv"},
        "params": {
            "fmt": r["pose_format"],
            "setup": setup_pose_cfg(wc),
            "frames": frame_range(wc),
            "session": ethoflow_sheet.session_params(r, r["setup"], setup_cfg(wc)),
        },
    }


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


def labels_call(wc):
    k, r = key(wc), row(wc)
    rule_labels = r["annotations"].startswith(ethoflow_sheet.RULE_PREFIX)
    return {
        "input": {
            "pose_h5": f"results/pose/{k}.h5",
            "annotations": [] if rule_labels else r["annotations"],
        },
        "output": {"labels": f"results/labels/{k}.csv"},
        "params": {
            "rule": r["annotations"],
            "behaviors": setup_cfg(wc)["behaviors"],
            "setup": setup_pose_cfg(wc),
            "behavior_map": setup_cfg(wc)["behavior_map"],
            "session": ethoflow_sheet.annotation_params(r),
        },
    }


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
