rule build_demo_vlm:
    output:
        model=directory(vlm_model_dir()),
    log:
        "logs/build_demo_vlm.log",
    conda:
        "../../envs/vlm.yaml"
    resources:
        **rule_resources("build_demo_vlm"),
    script:
        "../scripts/build_demo_vlm.py"


rule vlm_embed:
    input:
        clips_shard=lambda wc: manifest("cut_clips", wc.shard),
        model_dir=vlm_model_input,
    output:
        manifest=update("results/shards/vlm_embed/{shard}.tsv"),
    log:
        "logs/vlm_embed/{shard}.log",
    benchmark:
        "benchmarks/results/vlm_embed/{shard}.tsv"
    group:
        "vlm"
    conda:
        "../../envs/vlm.yaml"
    threads: res("vlm_embed", "cpus")
    resources:
        **rule_resources("vlm_embed"),
    params:
        sessions=shard_calls(
            "vlm_embed",
            vlm_call({"embeddings": "results/embeddings/{k}.h5"}),
            video=True,
        ),
        vlm=lambda wc: vlm_settings("pooling", "layer", prompt=vlm_prompt(wc)),
    script:
        "../scripts/vlm_embed.py"


rule vlm_describe:
    input:
        clips_shard=lambda wc: manifest("cut_clips", wc.shard),
        model_dir=vlm_model_input,
    output:
        manifest=update("results/shards/vlm_describe/{shard}.tsv"),
    log:
        "logs/vlm_describe/{shard}.log",
    benchmark:
        "benchmarks/results/vlm_describe/{shard}.tsv"
    group:
        "vlm"
    conda:
        "../../envs/vlm.yaml"
    threads: res("vlm_describe", "cpus")
    resources:
        **rule_resources("vlm_describe"),
    params:
        sessions=shard_calls(
            "vlm_describe",
            vlm_call({"descriptions": "results/descriptions/{k}.jsonl"}),
            video=True,
        ),
        vlm=vlm_settings("describe_prompt", "max_new_tokens"),
    script:
        "../scripts/vlm_describe.py"


rule icl_exemplars:
    input:
        clips_shards=lambda wc: manifests("cut_clips", train_sessions(wc.setup, "icl")),
        labels_shards=lambda wc: manifests("labels", train_sessions(wc.setup, "icl")),
    output:
        exemplars="results/models/{setup}/icl_exemplars.h5",
    log:
        "logs/icl_exemplars/{setup}.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("icl_exemplars"),
    params:
        clips=lambda wc: expand_keys(
            "results/clips/{k}.h5", train_sessions(wc.setup, "icl")
        ),
        labels=lambda wc: expand_keys(
            "results/labels/{k}.csv", train_sessions(wc.setup, "icl")
        ),
        pose=lambda wc: expand_keys(
            "results/pose/{k}.h5", train_sessions(wc.setup, "icl")
        ),
        behaviors=lambda wc: config["setups"][wc.setup]["behaviors"],
        per_class=config["vlm"]["icl_exemplars_per_class"],
        seed=config["classifier"]["seed"],
    script:
        "../scripts/icl_exemplars.py"


rule vlm_icl:
    input:
        clips_shard=lambda wc: manifest("cut_clips", wc.shard),
        exemplars=lambda wc: f"results/models/{shard_setup(wc)}/icl_exemplars.h5",
        model_dir=vlm_model_input,
    output:
        manifest=update("results/shards/vlm_icl/{shard}.tsv"),
    log:
        "logs/vlm_icl/{shard}.log",
    benchmark:
        "benchmarks/results/vlm_icl/{shard}.tsv"
    group:
        "vlm"
    conda:
        "../../envs/vlm.yaml"
    threads: res("vlm_icl", "cpus")
    resources:
        **rule_resources("vlm_icl"),
    params:
        sessions=shard_calls("vlm_icl", vlm_icl_call, video=True),
        vlm=vlm_settings(),
        behaviors=lambda wc: config["setups"][shard_setup(wc)]["behaviors"],
        definitions=lambda wc: config["setups"][shard_setup(wc)]["definitions"],
    script:
        "../scripts/vlm_icl.py"
