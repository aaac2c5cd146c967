"""--resume continues a run: the losses so far, the random-init probe, the same run folder."""
import pytest

from mimkernels.train.__main__ import main

from .common import TINY, metrics_of


def test_resume_continues_the_run(tmp_path):
    first = main(["--method", "mae", "--out", str(tmp_path), *TINY])
    resumed = main(["--resume", str(tmp_path), *TINY, "--epochs", "2"])   # into the same folder
    assert resumed["steps"] == 6 and resumed["losses"][:3] == first["losses"]
    assert resumed["random_init_probe_accuracy"] == first["random_init_probe_accuracy"]
    assert metrics_of(tmp_path)["steps"] == 6
    with pytest.raises(SystemExit):
        main(["--resume", str(tmp_path), *TINY, "--epochs", "3", "--dim", "16"])
