"""The one flags module: every flag documented, every flagfile in configs/ valid."""

from __future__ import annotations

import glob
import os

import pytest
from absl import flags
from tests_support import PROJECT_ROOT

from xplore_tf import flags as xflags


def _own_flags():
    return flags.FLAGS.get_flags_for_module(xflags.__name__)


def test_every_flag_has_help_text():
    for flag in _own_flags():
        assert flag.help and len(flag.help) >= 15, f"--{flag.name} lacks help text"


def test_every_flag_is_in_one_section_and_some_stages_help():
    own = sorted(flag.name for flag in _own_flags())
    sectioned = [name for names in xflags.SECTIONS.values() for name in names]
    assert sorted(sectioned) == own  # each flag in exactly one section
    shown = {s for sections in xflags.STAGE_SECTIONS.values() for s in sections}
    assert shown == set(xflags.SECTIONS)
    assert "cluster" in xflags.SECTIONS["translate"] and "port" in xflags.SECTIONS["explore"]


def test_a_binarys_help_lists_its_stages_flags():
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    usage = subprocess.run(
        [sys.executable, "-m", "xplore_tf.translate", "--help"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
    ).stdout
    assert "--cluster: `xplore_tf.translate`: target cluster" in usage
    assert "--paste_feather" in usage and "--num_steps" not in usage


def test_one_default_per_setting():
    """Every Config field is set by one flag (its own name, or FLAG_OF_FIELD's), and that flag
    has the field's default: tests and tools build Configs directly, so two defaults would be
    two programs."""
    import dataclasses
    import typing

    from xplore_tf import config as config_lib

    def same(flag_default, field_default) -> bool:
        if isinstance(field_default, tuple):
            return [str(v) for v in flag_default or []] == [str(v) for v in field_default]
        if isinstance(flag_default, list):
            return [str(v) for v in flag_default] == [str(field_default)]
        return flag_default == field_default or not flag_default and not field_default

    derived = {("data", "dataset"), ("cluster", "k_sweep")}  # from several flags
    differ = []
    for section, cls in typing.get_type_hints(config_lib.Config).items():
        if not dataclasses.is_dataclass(cls):
            continue
        for field in dataclasses.fields(cls):
            if (section, field.name) in derived:
                continue
            flag = flags.FLAGS[xflags.flag_of_field(section, field.name)]
            if not same(flag.default, field.default):
                differ.append((section, field.name, flag.name, flag.default, field.default))
    assert differ == []


@pytest.fixture
def fresh_flags():
    """FLAGS parsed by the test, then reset to defaults for the next one."""
    yield flags.FLAGS
    flags.FLAGS.unparse_flags()


@pytest.mark.parametrize(
    "flagfile", sorted(glob.glob(os.path.join(PROJECT_ROOT, "configs", "*.cfg")))
)
def test_configs_parse_with_known_flags_only(flagfile, fresh_flags):
    with open(flagfile, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip() and not line.strip().startswith("#")]
    assert lines, f"{flagfile} is empty"
    assert all(line.startswith("--") for line in lines), f"{flagfile}: a line is not a flag"
    # absl rejects unknown flags, bad enum values and out-of-range numbers here.
    fresh_flags(["prog", f"--flagfile={flagfile}"])
    cfg = xflags.config_from_flags()
    assert cfg.cluster.num_clusters >= 2


def test_config_from_flags_and_resolved_flags(tmp_path, fresh_flags):
    fresh_flags(["prog", f"--workdir={tmp_path}", "--num_clusters=7", "--attributes=a,b"])
    cfg = xflags.config_from_flags()
    assert cfg.cluster.num_clusters == 7 and cfg.report.attributes == ("a", "b")
    assert cfg.images_dir == os.path.join(str(tmp_path), "synthetic")
    path = xflags.write_resolved_flags(str(tmp_path), "cluster")
    text = open(path).read()
    assert "--num_clusters=7" in text and "--attributes=a,b" in text


def test_a_flagfile_comment_after_a_path_is_refused_in_one_line(tmp_path, fresh_flags):
    """absl keeps everything after '=': `--workdir=/path/run   # the base run` must not
    become a folder named `run   # the base run`."""
    flagfile = tmp_path / "run.cfg"
    flagfile.write_text(f"--workdir={tmp_path}/run   # the base run\n")
    fresh_flags(["prog", f"--flagfile={flagfile}"])
    with pytest.raises(flags.ValidationError) as info:
        xflags.config_from_flags()
    assert str(info.value).startswith(f"--workdir='{tmp_path}/run   # the base run': a path")
    assert not (tmp_path / "run   # the base run").exists()
    fresh_flags.unparse_flags()
    fresh_flags(["prog", f"--workdir={tmp_path}/run", "--labels_csv=labels.csv  "])
    with pytest.raises(flags.ValidationError, match="--labels_csv='labels.csv  '"):
        xflags.config_from_flags()
    fresh_flags.unparse_flags()
    fresh_flags(["prog", f"--workdir={tmp_path}/run#2"])  # a '#' inside a name is a name
    assert xflags.config_from_flags().workdir == f"{tmp_path}/run#2"


def test_real_photos_with_the_synthetic_sets_extractor_are_warned_about(
    tmp_path, fresh_flags, monkeypatch
):
    warnings = []
    monkeypatch.setattr(xflags.logging, "warning", lambda msg, *a: warnings.append(msg % a))
    fresh_flags(["prog", f"--workdir={tmp_path}", f"--images_dir={tmp_path}"])
    assert xflags.resolve_dataset() == "folder"
    assert any("default --feature_extractor=pixels" in w for w in warnings)
    warnings.clear()
    fresh_flags.unparse_flags()
    fresh_flags(["prog", f"--images_dir={tmp_path}", "--feature_extractor=pixels"])
    xflags.resolve_dataset()
    assert warnings == []  # chosen on purpose


def test_unknown_flag_value_is_rejected(fresh_flags):
    with pytest.raises(flags.IllegalFlagValueError):
        fresh_flags(["prog", "--workdir=/tmp/x", "--feature_extractor=vgg"])


# The paper's configs build the paper's generator: parameter counts pinned from the code
# before the identity-preserving options existed (MLP depth 7 for FFHQ/EmotioNet).
PAPER_GENERATORS = {
    "celeba128.cfg": 17_275_011,
    "emotionet128.cfg": 17_538_179,
    "ffhq256.cfg": 17_538_179,
}


@pytest.mark.parametrize("name", sorted(PAPER_GENERATORS))
def test_paper_config_builds_the_papers_generator(name, fresh_flags):
    import numpy as np

    from xplore_tf import checkpoints
    from xplore_tf.clustering import artifacts

    fresh_flags(["prog", f"--flagfile={os.path.join(PROJECT_ROOT, 'configs', name)}"])
    cfg = xflags.config_from_flags()
    m = cfg.model
    assert (m.output_mode, m.skip_connections, m.hf_bypass) == ("direct", "none", False)
    assert (cfg.train.lambda_self, cfg.train.lambda_mask) == (0.0, 0.0)
    k, d = cfg.cluster.num_clusters, cfg.cluster.pca_dim
    stats = artifacts.ClusterStats(
        centroids=np.zeros((k, d), "float32"),
        stds=np.ones((k, d), "float32"),
        sizes=np.ones(k, "int64"),
        pca_mean=np.zeros(8, "float32"),
        pca_matrix=np.zeros((8, d), "float32"),
        extractor="bagnet17",
        image_size=224,
        crop_size=0,
    )
    generator = checkpoints.build_generator(cfg, stats)
    assert generator.count_params() == PAPER_GENERATORS[name]
