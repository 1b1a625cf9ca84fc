"""The config schema is the one source of defaults and types; the conda envs add no dependencies."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from ethoflow import config as ethoflow_config
from ethoflow.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"

MINIMAL = {
    "sessions": "config/sessions.tsv",
    "setups": {
        "s": {"fps": 30, "animals": ["m"], "skeleton": ["nose", "tail"], "behaviors": ["b"]}
    },
    "pose": {"min_confidence": 0.4, "max_gap_frames": 15, "length_tolerance_frames": 3},
    "proposals": {"clip_seconds": 5.0},
    "clips": {"fps": 2.0, "frames_per_clip": 10, "size": 224},
    "vlm": {"model": "demo:tiny-qwen2.5-vl", "pooling": "video_mean", "layer": -1, "batch_size": 4},
    "classifier": {"modes": ["pose"], "primary": "pose"},
    "resources": {"default": {"runtime": 30, "mem_mb": 4000, "cpus": 1, "gpus": 0}},
}


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


@pytest.fixture
def filled() -> dict:
    cfg = copy.deepcopy(MINIMAL)
    validate(cfg, str(SCHEMA))
    return cfg


def test_minimal_config_gets_the_defaults_the_code_used(filled):
    # the values the rules and domain modules fell back to before the schema held them
    assert filled["vlm"]["dtype"] == "auto"
    assert filled["vlm"]["attn"] == "sdpa"
    assert filled["vlm"]["revision"] == ""
    assert filled["vlm"]["describe"] is True
    assert filled["vlm"]["max_new_tokens"] == 32
    assert filled["vlm"]["icl_exemplars_per_class"] == 1
    assert filled["vlm"]["describe_prompt"] == "Describe what the animals are doing in this video."
    assert filled["setups"]["s"]["prompt"] == "What are the animals doing in this video?"
    assert filled["setups"]["s"]["definitions"] == {}
    assert "head" not in filled["setups"]["s"]  # no default: found from keypoint names
    assert filled["features"] == {
        "allocentric": True,
        "normalize": True,
        "speed_smooth_frames": 5,
        "pairwise": True,
    }
    assert filled["kinematic_labels"]["contact_distance"] == 0.2
    assert filled["localizer"]["layers"] == 0
    assert filled["localizer"]["lr"] == pytest.approx(3e-3)
    assert filled["localizer"]["weight_decay"] == pytest.approx(1e-4)
    assert filled["localizer"]["seed"] == 0
    assert filled["proposals"]["on_threshold"] == 0.5
    assert filled["proposals"]["off_threshold"] == 0.3
    assert filled["proposals"]["pad_s"] == 0.5
    assert filled["clips"]["fps_tolerance"] == 0.01
    assert filled["clips"]["preview"] is False
    assert filled["classifier"]["smoothing_frames"] == 0
    assert (filled["classifier"]["knn_k"], filled["classifier"]["knn_shots"]) == (3, 8)
    assert (filled["classifier"]["knn_dim"], filled["classifier"]["fusion_emb_dim"]) == (16, 32)
    assert filled["discover"] == {
        "enabled": True,
        "min_cluster_size": 5,
        "n_components": 8,
        "max_labelled_fraction": 0.2,
        "seed": 0,
    }
    assert filled["slurm"] == {
        "cpu_partition": "standard",
        "gpu_partition": "gpu",
        "account": "",
        "gpu_gres": "gpu",
        "gpu_type": "",
    }


def test_user_values_win_over_defaults():
    cfg = copy.deepcopy(MINIMAL)
    cfg["vlm"]["dtype"] = "float32"
    cfg["discover"] = {"enabled": False}
    validate(cfg, str(SCHEMA))
    assert cfg["vlm"]["dtype"] == "float32"
    assert cfg["discover"]["enabled"] is False
    assert cfg["discover"]["n_components"] == 8


@pytest.mark.parametrize(
    "section",
    ["features", "kinematic_labels", "localizer", "proposals", "clips", "vlm", "classifier"]
    + ["discover", "slurm"],
)
def test_helper_defaults_equal_what_validate_fills(filled, section):
    got = ethoflow_config.defaults(section)
    assert got and all(filled[section][k] == v for k, v in got.items())
    assert got is not ethoflow_config.defaults(section)  # a fresh copy


def test_domain_defaults_come_from_the_schema():
    from ethoflow import classifiers, features, kinematic, localizer, proposals

    assert features.DEFAULTS == ethoflow_config.defaults("features")
    assert kinematic.DEFAULTS == ethoflow_config.defaults("kinematic_labels")
    assert localizer.DEFAULTS == ethoflow_config.defaults("localizer")
    assert proposals.DEFAULTS == ethoflow_config.defaults("proposals")
    assert classifiers.DEFAULTS == ethoflow_config.defaults("classifier")
    assert ethoflow_config.defaults("setups")["prompt"].startswith("What are the animals")


def test_shipped_config_validates():
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    validate(cfg, str(SCHEMA))
    assert cfg["vlm"]["dtype"] == "auto"


def _walk(node, path="#"):
    """Yield (path, property schema) of every property of every object in the schema."""
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{path}/properties/{name}", sub
        for key, sub in node.items():
            if key == "properties":
                for name, s in sub.items():
                    yield from _walk(s, f"{path}/properties/{name}")
            else:
                yield from _walk(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _walk(sub, f"{path}/{i}")


def test_every_property_is_typed():
    schema = _schema()
    props = list(_walk(schema))
    assert len(props) > 60
    untyped = [p for p, s in props if not ({"type", "enum", "$ref"} & set(s))]
    assert not untyped, untyped
    for name, sub in schema["definitions"].items():
        assert {"type", "enum"} & set(sub), name


def _keys_without_schema(value, schema, root, path=""):
    if "$ref" in schema:
        node = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = {**node, **schema}
    if not isinstance(value, dict):
        return []
    out = []
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for k, v in value.items():
        if k in props:
            out += _keys_without_schema(v, props[k], root, f"{path}.{k}")
        elif isinstance(extra, dict):
            out += _keys_without_schema(v, extra, root, f"{path}.{k}")
        else:
            out.append(f"{path}.{k}")
    return out


def test_every_key_of_the_shipped_config_is_in_the_schema():
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert _keys_without_schema(cfg, _schema(), _schema()) == []


def test_optional_sections_default_to_empty_objects():
    schema = _schema()
    required = set(schema["required"])
    for name, sub in schema["properties"].items():
        if sub.get("type") == "object" and name not in required:
            assert sub.get("default") == {}, name


@pytest.mark.parametrize("name", ["ethoflow", "vlm"])
def test_env_files_take_their_dependencies_from_pyproject(name):
    env = yaml.safe_load((ROOT / "envs" / f"{name}.yaml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip = [d for d in deps if isinstance(d, dict)]
    assert conda == ["python=3.11", "pip"]
    assert pip == [{"pip": ["-e ../.."]}]
    # conda runs pip next to Snakemake's copy of the env file, .snakemake/conda/<hash>.yaml
    # under the working directory (the repository root): ../.. from there is the project,
    # whose pyproject.toml is the one list of dependencies
    assert "dependencies" in (ROOT / "pyproject.toml").read_text()


def _config_problems(cfg) -> list[str]:
    with pytest.raises(InputError) as err:
        ethoflow_config.check_config(cfg, SCHEMA, source="my.yaml")
    lines = str(err.value).splitlines()
    assert lines[0] == f"bad config (my.yaml), {len(lines) - 1} problem{'s' * (len(lines) > 2)}:"
    return [ln.strip() for ln in lines[1:]]


def test_check_config_passes_the_shipped_and_minimal_configs():
    ethoflow_config.check_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    ethoflow_config.check_config(copy.deepcopy(MINIMAL), SCHEMA)


def test_unknown_keys_name_the_nearest_valid_key_all_at_once():
    cfg = copy.deepcopy(MINIMAL)
    cfg["localizer"] = {"epoch": 5}
    cfg["setups"]["s"]["fsp"] = 30
    cfg["resources"]["vlm_embed"] = {"gpu": 1}
    cfg["localiser"] = {}
    cfg["clips"]["size"] = "big"
    del cfg["proposals"]["clip_seconds"]
    assert _config_problems(cfg) == [
        "clips.size: 'big' is not of type 'integer'",
        "missing required key proposals.clip_seconds",
        "unknown key localiser (did you mean localizer?)",
        "unknown key localizer.epoch (did you mean localizer.epochs?)",
        "unknown key resources.vlm_embed.gpu (did you mean resources.vlm_embed.gpus?)",
        "unknown key setups.s.fsp (did you mean setups.s.fps?)",
    ]


def test_unknown_key_without_a_near_one_lists_the_valid_keys():
    cfg = copy.deepcopy(MINIMAL)
    cfg["slurm"] = {"qos": "normal"}
    (problem,) = _config_problems(cfg)
    assert problem == (
        "unknown key slurm.qos (valid keys of slurm: cpu_partition, gpu_partition, account, "
        "gpu_gres, gpu_type)"
    )


def test_free_keys_stay_free():
    cfg = copy.deepcopy(MINIMAL)
    cfg["setups"]["any_name"] = copy.deepcopy(cfg["setups"]["s"])
    cfg["setups"]["s"]["definitions"] = {"b": "a behavior"}
    cfg["resources"]["my_rule"] = {"runtime": 5}
    ethoflow_config.check_config(cfg)


def test_every_fixed_object_of_the_schema_rejects_unknown_keys():
    schema = _schema()
    objects = [(p, s) for p, s in [("#", schema), *_walk(schema)] if "properties" in s]
    assert len(objects) > 10
    open_ = [p for p, s in objects if s.get("additionalProperties") is not False]
    # resources: rule names are free keys (each entry is a definitions/resources object)
    assert open_ == ["#/properties/resources"], open_
    assert schema["definitions"]["resources"]["additionalProperties"] is False
    assert schema["properties"]["setups"]["additionalProperties"]["additionalProperties"] is False


@pytest.mark.parametrize(
    "override",
    [
        # the overrides the workflow and SLURM tests give with --configfile
        'slurm: {gpu_partition: spgpu, gpu_type: a40, account: "lab1"}',
        "classifier: {modes: [pose, linear, icl], primary: linear}\n"
        "discover: {enabled: false}\nlocalizer: {epochs: 5}",
    ],
)
def test_test_overrides_pass_the_key_check(override):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for section, values in yaml.safe_load(override).items():
        cfg[section] = {**cfg.get(section, {}), **values}
    ethoflow_config.check_config(cfg)
