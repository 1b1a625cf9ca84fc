import pandas as pd

from ethoflow.cli import REPO, install_profile, main, make_cohort


def test_install_profile_links_where_snakemake_looks(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", "")
    dest = install_profile()
    assert dest == tmp_path / ".config/snakemake/slurm"
    assert (dest / "config.yaml").read_text().startswith("# Snakemake profile for SLURM")
    assert install_profile() == dest  # idempotent


def test_make_cohort_replicates_the_sheet(tmp_path):
    out = make_cohort(REPO / "config/sessions.tsv", 10, tmp_path / "s.tsv")
    df = pd.read_csv(out, sep="\t", dtype=str, keep_default_na=False)
    assert len(df) == 10 and not (df.subject + df.session).duplicated().any()
    assert (
        main(["make-cohort", str(REPO / "config/sessions.tsv"), "3", str(tmp_path / "t.tsv")]) == 0
    )
