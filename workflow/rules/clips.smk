rule cut_clips:
    input:
        video=lambda wc: row(wc)["video"],
        proposals="results/proposals/{subject}/{session}.tsv",
        pose_h5="results/pose/{subject}/{session}.h5",
    output:
        clips="results/clips/{subject}/{session}.h5",
    log:
        "logs/cut_clips/{subject}/{session}.log",
    benchmark:
        "benchmarks/results/cut_clips/{subject}/{session}.tsv"
    conda:
        "../../envs/ethoflow.yaml"
    threads: res("cut_clips", "cpus")
    resources:
        **rule_resources("cut_clips"),
    params:
        cfg=config["clips"],
        clip_seconds=config["proposals"]["clip_seconds"],
    script:
        "../scripts/cut_clips.py"
