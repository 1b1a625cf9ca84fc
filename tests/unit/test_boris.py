"""BORIS exports in (tabular and aggregated events, as BORIS 8 and older versions write them)
and out (aggregated events of the workflow's events table)."""

import numpy as np
import pandas as pd
import pytest

from ethoflow import boris
from ethoflow.annotations import load_annotations
from ethoflow.classifiers import frames_to_events
from ethoflow.errors import InputError
from ethoflow.results import read_events, write_events

FPS = 30.0
N = 1800  # a 60 s observation
BEHAVIORS = ["attack", "investigation", "jump"]
BMAP = {"Attack": "attack", "Sniffing": "investigation", "Jump": "jump", "Grooming": "other"}

# BORIS 8 headers (boris/export_observation.py export_tabular_events, export_events.py)
TABULAR_HEAD = [
    "Observation id", "Observation date", "Description", "Observation duration",
    "Observation type", "Source", "Time offset (s)", "Media duration (s)", "FPS", "Subject",
    "Behavior", "Behavioral category", "Behavior type", "Time", "Media file name",
    "Image index", "Image file path", "Comment",
]  # fmt: skip


def coded_events(seed: int = 0) -> pd.DataFrame:
    """Bouts of two mice as a coder scores them: states that never overlap within a subject
    and behavior, times to the millisecond, and POINT jumps."""
    rng = np.random.default_rng(seed)
    rows = []
    for subject in ("resident", "intruder"):
        for behavior in ("Attack", "Sniffing", "Grooming"):
            t = rng.uniform(0, 5)
            while True:
                dur = rng.uniform(0.4, 4.0)
                if t + dur > 59:
                    break
                rows.append((subject, behavior, round(t, 3), round(t + dur, 3), False))
                t += dur + rng.uniform(2, 12)
        for t in rng.uniform(1, 58, 3):
            rows.append((subject, "Jump", round(t, 3), round(t, 3), True))
    return pd.DataFrame(rows, columns=["subject", "behavior", "start_s", "stop_s", "point"])


def expected_labels(ev: pd.DataFrame, subjects=None) -> np.ndarray:
    """Independent reference: per frame, the set of mapped behaviors, first listed wins."""
    on = np.zeros((N, len(BEHAVIORS)), bool)
    for r in ev.itertuples():
        if subjects and r.subject not in subjects:
            continue
        name = BMAP[r.behavior]
        if name == "other":
            continue
        a = int(round(r.start_s * FPS))
        b = a + 1 if r.point else int(round(r.stop_s * FPS))
        on[a:b, BEHAVIORS.index(name)] = True
    return np.where(on.any(1), on.argmax(1) + 1, 0)


def write_tabular(ev: pd.DataFrame, path, status_col="Behavior type", sep=","):
    rows = []
    for r in ev.itertuples():
        if r.point:
            rows.append((r.start_s, r.subject, r.behavior, "POINT"))
        else:
            rows.append((r.start_s, r.subject, r.behavior, "START"))
            rows.append((r.stop_s, r.subject, r.behavior, "STOP"))
    rows.sort(key=lambda x: x[0])
    head = [status_col if c == "Behavior type" else c for c in TABULAR_HEAD]
    out = []
    for t, subj, beh, status in rows:
        d = dict.fromkeys(head, "")
        d.update(
            {
                "Observation id": "cage3_day2",
                "Observation date": "2024-03-05 10:12:00",
                "Observation duration": "60.000",
                "Observation type": "Media file(s)",
                "Source": "player #1:/data/cage3_day2.mp4",
                "Time offset (s)": "0.000",
                "Media duration (s)": "60.033",
                "FPS": "30.000",
                "Subject": subj,
                "Behavior": beh,
                status_col: status,
                "Time": f"{t:.3f}",
                "Media file name": "/data/cage3_day2.mp4",
                "Image index": str(int(round(t * FPS))),
                "Image file path": "NA",
            }
        )
        out.append(d)
    pd.DataFrame(out, columns=head).to_csv(path, index=False, sep=sep)
    return path


def write_old_tabular(ev: pd.DataFrame, path):
    """Older BORIS TSV: a few key/value lines, then Time, ..., Subject, Behavior, Status."""
    lines = [
        "Observation id\tcage3_day2",
        "",
        "Media file(s)",
        "",
        "Player #1\t/data/cage3_day2.mp4",
        "",
        "Observation date\t2019-05-02T10:12:00",
        "",
        "",
        "Description\t",
        "",
        "Time offset (s)\t0.000",
        "",
        "",
        "Time\tMedia file path\tTotal length\tFPS\tSubject\tBehavior\tBehavioral category"
        "\tComment\tStatus",
    ]
    events = []
    for r in ev.itertuples():
        if r.point:
            events.append((r.start_s, r.subject, r.behavior, "POINT"))
        else:
            events += [(r.start_s, r.subject, r.behavior, "START")]
            events += [(r.stop_s, r.subject, r.behavior, "STOP")]
    for t, subj, beh, status in sorted(events):
        lines.append(f"{t:.3f}\t/data/cage3_day2.mp4\t60.03\t30.0\t{subj}\t{beh}\t\t\t{status}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_aggregated_export(ev: pd.DataFrame, path, observation="cage3_day2"):
    rows = []
    for r in ev.itertuples():
        d = dict.fromkeys(boris.AGGREGATED_COLUMNS, "")
        d.update(
            {
                "Observation id": observation,
                "Observation type": "Media file",
                "Subject": r.subject,
                "Behavior": r.behavior,
                "Behavior type": "POINT" if r.point else "STATE",
                "Start (s)": f"{r.start_s:.3f}",
                "Stop (s)": "NA" if r.point else f"{r.stop_s:.3f}",
                "Duration (s)": "NA" if r.point else f"{r.stop_s - r.start_s:.3f}",
            }
        )
        rows.append(d)
    pd.DataFrame(rows, columns=boris.AGGREGATED_COLUMNS).to_csv(path, index=False)
    return path


@pytest.fixture
def ev():
    return coded_events()


def test_every_export_gives_the_same_labels(tmp_path, ev):
    want = expected_labels(ev)
    files = {
        "boris_tabular": write_tabular(ev, tmp_path / "tab.csv"),
        "boris_tabular_tsv": write_tabular(ev, tmp_path / "tab.tsv", sep="\t"),
        "old_tabular": write_old_tabular(ev, tmp_path / "old.tsv"),
        "boris_aggregated": write_aggregated_export(ev, tmp_path / "agg.csv"),
    }
    assert boris.sniff(files["boris_tabular"]) == "boris_tabular"
    assert boris.sniff(files["old_tabular"]) == "boris_tabular"
    assert boris.sniff(files["boris_aggregated"]) == "boris_aggregated"
    for name, path in files.items():
        y = load_annotations(path, N, BEHAVIORS, FPS, behavior_map=BMAP)
        np.testing.assert_array_equal(y, want, err_msg=name)
    assert set(np.unique(want)) == {0, 1, 2, 3}
    back = boris.read_events(files["boris_tabular"])
    assert len(back) == len(ev) and back.point.sum() == 6


def test_one_subject_and_explicit_format(tmp_path, ev):
    path = write_aggregated_export(ev, tmp_path / "agg.csv")
    y = load_annotations(
        path, N, BEHAVIORS, FPS, "boris_aggregated", behavior_map=BMAP, subjects=["intruder"]
    )
    np.testing.assert_array_equal(y, expected_labels(ev, subjects=["intruder"]))
    with pytest.raises(InputError, match=r"agg.csv: no events of subject\(s\) \['mouse9'\]"):
        load_annotations(path, N, BEHAVIORS, FPS, behavior_map=BMAP, subjects=["mouse9"])


def test_unmapped_behavior_names_the_file_and_the_map(tmp_path, ev):
    path = write_tabular(ev, tmp_path / "tab.csv")
    with pytest.raises(InputError, match="behavior_map") as err:
        load_annotations(path, N, BEHAVIORS, FPS)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "not in the behavior vocabulary" in msg
    assert "'grooming'" in msg  # the unknown names are listed


def test_bad_boris_files_are_refused(tmp_path, ev):
    good = write_tabular(ev, tmp_path / "tab.csv")
    text = good.read_text().splitlines()

    def case(name, content, *match, fmt="auto"):
        p = tmp_path / name
        p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
        with pytest.raises(InputError) as err:
            load_annotations(p, N, BEHAVIORS, FPS, fmt, behavior_map=BMAP)
        msg = str(err.value)
        assert msg.startswith(str(p)), msg
        for m in match:
            assert m in msg, msg

    case("empty.csv", "", "empty file")
    case("head.csv", text[0] + "\n", "no events", fmt="boris_tabular")
    # cut off: the last START has no STOP (keep the header and the first 11 rows)
    case("cut.csv", "\n".join(text[:12]) + "\n", "never stop")
    # a row cut mid-line (fewer cells than the header)
    case("cut2.csv", "\n".join(text[:5] + [text[5][:40]]) + "\n", "line 6", "truncated")
    agg = write_aggregated_export(ev, tmp_path / "a.csv").read_text()
    mislabelled = "labelled 'boris_tabular' but the content is 'boris_aggregated'"
    case("agg_as_tab.csv", agg, mislabelled, fmt="boris_tabular")
    bad_time = text[:3] + [text[3].replace(text[3].split(",")[13], "12:00:01", 1)]
    case("time.csv", "\n".join(bad_time) + "\n", "line 4", "not a number of seconds")
    case("xlsx.csv", b"PK\x03\x04" + b"\0" * 64, "export the BORIS events as TSV or CSV",
         fmt="boris_tabular")  # fmt: skip
    stop_first = [text[0], text[1].replace("START", "STOP")]
    case("stop.csv", "\n".join(stop_first) + "\n", "stops but never started")
    two = write_aggregated_export(ev, tmp_path / "o1.csv").read_text().splitlines()
    two += [two[1].replace("cage3_day2", "cage4_day2")]
    case("two_obs.csv", "\n".join(two) + "\n", "holds 2 observations")


def test_observation_of_a_grouped_export(tmp_path, ev):
    a = write_aggregated_export(ev, tmp_path / "a.csv", "obs_a").read_text().splitlines()
    b = write_aggregated_export(ev.iloc[:3], tmp_path / "b.csv", "obs_b").read_text().splitlines()
    path = tmp_path / "grouped.csv"
    path.write_text("\n".join(a + b[1:]) + "\n")
    got = boris.read_events(path, observation="obs_b")
    assert len(got) == 3


def test_events_out_as_boris_aggregated_and_back(tmp_path):
    """The classify step's events table -> BORIS aggregated CSV -> the same labels."""
    rng = np.random.default_rng(3)
    y = np.repeat(rng.integers(0, 4, 60), rng.integers(5, 60, 60))[:N]
    y = np.r_[y, np.zeros(N - len(y), int)]
    events_csv = tmp_path / "s1.events.csv"
    write_events(frames_to_events(y, FPS, BEHAVIORS), events_csv)
    out = tmp_path / "s1.boris.csv"
    boris.write_aggregated(
        read_events(events_csv), out, observation="m1_s1", subject="m1", media="m1.mp4", fps=FPS
    )
    df = pd.read_csv(out)
    assert list(df.columns) == boris.AGGREGATED_COLUMNS
    assert set(df["Behavior type"]) == {"STATE"} and set(df.Subject) == {"m1"}
    np.testing.assert_allclose(df["Duration (s)"], df["Stop (s)"] - df["Start (s)"], atol=2e-3)
    back = load_annotations(out, N, BEHAVIORS, FPS)
    np.testing.assert_array_equal(back, y)
    empty = tmp_path / "none.boris.csv"
    boris.write_aggregated(read_events(events_csv).iloc[:0], empty, observation="x")
    assert pd.read_csv(empty).empty


def test_labels_step_maps_boris_behaviors(tmp_path):
    """The labels rule on a real session (BehaviorDEPOT, 6000 frames at 50 fps) with BORIS
    annotations in the coder's vocabulary, mapped by the setup's behavior_map."""
    from pathlib import Path

    import yaml

    from ethoflow.results import read_labels
    from ethoflow.steps import pose as steps

    repo = Path(__file__).resolve().parents[2]
    cfg = yaml.safe_load((repo / "config/config.yaml").read_text())
    setup = cfg["setups"]["fearcond"]
    pose_h5 = tmp_path / "pose.h5"
    steps.pose_preprocess(
        pose=str(repo / "tests/data/behaviordepot_freezing/demo1_tracking.csv"),
        video=[],
        pose_h5=str(pose_h5),
        qc=str(tmp_path / "qc.tsv"),
        fmt="auto",
        setup=setup,
        pose_cfg=cfg["pose"],
        features_cfg=cfg["features"],
        frames={"start": 1000, "end": 5000},
        fps_tolerance=0.01,
    )
    ev = pd.DataFrame(
        [("m1", "Freeze", 30.0, 32.5, False), ("m1", "Rear", 40.0, 41.0, False)],
        columns=["subject", "behavior", "start_s", "stop_s", "point"],
    )
    ann = write_aggregated_export(ev, tmp_path / "boris.csv")
    out = tmp_path / "labels.csv"
    steps.labels(
        pose_h5=str(pose_h5),
        annotations=str(ann),
        labels=str(out),
        rule="",
        behaviors=setup["behaviors"],
        setup=setup,
        kinematic=cfg["kinematic_labels"],
        behavior_map={"Freeze": "freezing", "Rear": "other"},
    )
    y = read_labels(out, setup["behaviors"])
    assert len(y) == 4000  # frames 1000..4999 of the recording
    assert np.flatnonzero(y).tolist() == list(range(1500 - 1000, 1625 - 1000))


def test_the_session_subject_picks_its_events(tmp_path, ev):
    """Several subjects in one file: the sheet's subject (case aside) takes its own events; a
    one-animal session whose subject the file lacks is an error; a multi-animal one takes all."""
    path = write_aggregated_export(ev, tmp_path / "agg.csv")

    def load(**kw):
        return load_annotations(path, N, BEHAVIORS, FPS, behavior_map=BMAP, **kw)

    want = expected_labels(ev, subjects=["resident"])
    np.testing.assert_array_equal(load(subject="resident", n_animals=1), want)
    np.testing.assert_array_equal(load(subject="Resident", n_animals=1), want)
    np.testing.assert_array_equal(load(subject="cage3", n_animals=2), expected_labels(ev))
    np.testing.assert_array_equal(
        load(subject="resident", subjects=["*"], n_animals=1), expected_labels(ev)
    )
    with pytest.raises(InputError) as err:
        load(subject="cage3", n_animals=1)
    assert str(err.value) == (
        f"{path}: holds the events of 2 subjects ['intruder', 'resident'], none named like the "
        "session's subject 'cage3': name the ones of this session in the sheet's "
        "annotation_subjects column (';'-separated, '*' for all)"
    )
