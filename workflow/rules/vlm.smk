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
        model=vlm_model(),
        revision=config["vlm"].get("revision", ""),
        prompt=vlm_prompt,
        pooling=config["vlm"]["pooling"],
        layer=config["vlm"]["layer"],
        batch_size=config["vlm"]["batch_size"],
        dtype=config["vlm"].get("dtype", "auto"),
        attn=config["vlm"].get("attn", "sdpa"),
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
        model=vlm_model(),
        revision=config["vlm"].get("revision", ""),
        prompt=config["vlm"].get(
            "describe_prompt", "Describe what the animals are doing in this video."
        ),
        max_new_tokens=config["vlm"].get("max_new_tokens", 32),
        batch_size=config["vlm"]["batch_size"],
        dtype=config["vlm"].get("dtype", "auto"),
        attn=config["vlm"].get("attn", "sdpa"),
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
        per_class=config["vlm"].get("icl_exemplars_per_class", 1),
        seed=config["classifier"].get("seed", 0),
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
        model=vlm_model(),
        revision=config["vlm"].get("revision", ""),
        behaviors=lambda wc: setup_cfg(wc)["behaviors"],
        definitions=lambda wc: setup_cfg(wc).get("definitions", {}),
        batch_size=config["vlm"]["batch_size"],
        dtype=config["vlm"].get("dtype", "auto"),
        attn=config["vlm"].get("attn", "sdpa"),
    script:
        "../scripts/vlm_icl.py"
