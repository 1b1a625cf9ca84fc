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
        clips="results/clips/{subject}/{session}.h5",
        model_dir=vlm_model_input,
    output:
        embeddings="results/embeddings/{subject}/{session}.h5",
    log:
        "logs/vlm_embed/{subject}/{session}.log",
    benchmark:
        "benchmarks/results/vlm_embed/{subject}/{session}.tsv"
    group:
        "vlm"
    conda:
        "../../envs/vlm.yaml"
    threads: res("vlm_embed", "cpus")
    resources:
        **rule_resources("vlm_embed"),
    params:
        vlm=lambda wc: vlm_settings("pooling", "layer", prompt=vlm_prompt(wc)),
    script:
        "../scripts/vlm_embed.py"


rule vlm_describe:
    input:
        clips="results/clips/{subject}/{session}.h5",
        model_dir=vlm_model_input,
    output:
        descriptions="results/descriptions/{subject}/{session}.jsonl",
    log:
        "logs/vlm_describe/{subject}/{session}.log",
    benchmark:
        "benchmarks/results/vlm_describe/{subject}/{session}.tsv"
    group:
        "vlm"
    conda:
        "../../envs/vlm.yaml"
    threads: res("vlm_describe", "cpus")
    resources:
        **rule_resources("vlm_describe"),
    params:
        vlm=vlm_settings("describe_prompt", "max_new_tokens"),
    script:
        "../scripts/vlm_describe.py"


rule icl_exemplars:
    input:
        clips=lambda wc: expand_keys(
            "results/clips/{k}.h5", train_sessions(wc.setup, "icl")
        ),
        labels=lambda wc: expand_keys(
            "results/labels/{k}.csv", train_sessions(wc.setup, "icl")
        ),
        pose=lambda wc: expand_keys(
            "results/pose/{k}.h5", train_sessions(wc.setup, "icl")
        ),
    output:
        exemplars="results/models/{setup}/icl_exemplars.h5",
    log:
        "logs/icl_exemplars/{setup}.log",
    conda:
        "../../envs/ethoflow.yaml"
    resources:
        **rule_resources("icl_exemplars"),
    params:
        behaviors=lambda wc: config["setups"][wc.setup]["behaviors"],
        per_class=config["vlm"]["icl_exemplars_per_class"],
        seed=config["classifier"]["seed"],
    script:
        "../scripts/icl_exemplars.py"


rule vlm_icl:
    input:
        clips="results/clips/{subject}/{session}.h5",
        exemplars=lambda wc: f"results/models/{row(wc)['setup']}/icl_exemplars.h5",
        model_dir=vlm_model_input,
    output:
        scores="results/icl/{subject}/{session}.h5",
    log:
        "logs/vlm_icl/{subject}/{session}.log",
    benchmark:
        "benchmarks/results/vlm_icl/{subject}/{session}.tsv"
    group:
        "vlm"
    conda:
        "../../envs/vlm.yaml"
    threads: res("vlm_icl", "cpus")
    resources:
        **rule_resources("vlm_icl"),
    params:
        vlm=vlm_settings(),
        behaviors=lambda wc: setup_cfg(wc)["behaviors"],
        definitions=lambda wc: setup_cfg(wc)["definitions"],
    script:
        "../scripts/vlm_icl.py"
