"""--resume continues a run: the losses so far, the random-init probe, the same run folder, the
checkpoint's method when --method is left out."""
import pytest

from mimkernels.train.__main__ import main

from .common import TINY, metrics_of


def test_resume_continues_the_run(tmp_path):
    first = main(["--method", "mae", "--out", str(tmp_path), *TINY])
    resumed = main(["--resume", str(tmp_path), *TINY, "--epochs", "2"])   # into the same folder
    assert resumed["steps"] == 6 and resumed["losses"][:3] == first["losses"]
    assert len(resumed["trivial_losses"]) == 6 and resumed["trivial_losses"][:3] == first["trivial_losses"]
    assert resumed["random_init_probe_accuracy"] == first["random_init_probe_accuracy"]
    assert metrics_of(tmp_path)["steps"] == 6
    with pytest.raises(SystemExit):
        main(["--resume", str(tmp_path), *TINY, "--epochs", "3", "--dim", "16"])


def test_resume_takes_the_checkpoints_method_and_names_both_on_a_mismatch(tmp_path, capsys):
    first = main(["--method", "simmim", "--out", str(tmp_path), *TINY])
    resumed = main(["--resume", str(tmp_path / "checkpoint.pt"), *TINY, "--epochs", "2"])   # no --method
    assert resumed["method"] == "simmim" and resumed["steps"] == 6 and resumed["losses"][:3] == first["losses"]
    assert "resuming after epoch 1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["--resume", str(tmp_path), "--method", "mae", *TINY, "--epochs", "3", "--dim", "16"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "the checkpoint was trained with --method simmim, --dim 32, this run asks for --method mae, --dim 16" in err
