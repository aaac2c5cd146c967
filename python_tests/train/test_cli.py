"""The command line: bad inputs fail with a clear message, --help lists the methods."""
import pytest

from mimkernels.train.__main__ import main, parser
from mimkernels.train.methods import METHODS

from .common import TINY


@pytest.mark.parametrize("argv, message", [
    (["--method", "beit"], "unknown method 'beit'"),
    (["--img-size", "18"], "--img-size 18 is not divisible by --patch-size 4"),
    (["--data", "/nonexistent/images"], "not a folder"),
    (["--batch-size", "64"], "do not fill one global batch"),
    (["--resume", "/nonexistent/run"], "no checkpoint there"),
])
def test_bad_arguments_fail_with_a_clear_message(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main([*TINY, "--out", str(tmp_path), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_help_lists_each_method_and_the_ops_it_calls():
    text = " ".join(parser().format_help().split())
    for name, cls in METHODS.items():
        assert f" {name} {cls.__doc__.split()[0]} " in text                     # "mae He et al. 2022: ..."
        assert "Ops: " + ", ".join(cls.needs) + "." in text
