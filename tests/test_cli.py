"""The command line: doctor, fetch, release --check, grade on bad input."""
import pytest

from tlcourse.cli import main


def test_doctor_reports_every_offline_asset_verified(capsys):
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert "profile     quick" in out and "network     offline" in out
    for name in ("mobilenet_v2", "efficientnet_lite0", "minilm-l6", "smollm2-135m", "fashion-mnist-quick",
                 "mnist-5k", "digits", "rotten-tomatoes", "imagenet-samples"):
        assert any(line.split()[:2] == ["ok", name] for line in out.splitlines()), f"{name} not verified:\n{out}"
    assert "resnet18" in out and "online" in out
    assert code == 0


def test_doctor_names_the_fix_for_a_missing_asset(capsys, monkeypatch):
    import dataclasses

    from tlcourse.assets import registry
    from tlcourse.assets._types import PackageSource
    entry = registry.REGISTRY["rotten-tomatoes"]
    monkeypatch.setitem(registry.REGISTRY, "rotten-tomatoes",
                        dataclasses.replace(entry, sources=(PackageSource("no_such_package_xyz", "data"),)))
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 1 and "MISSING  rotten-tomatoes" in out and "requirements/assets.txt" in out


def test_fetch_verifies_offline_assets(capsys):
    assert main(["fetch", "digits", "mnist-5k"]) == 0
    assert main(["fetch", "resnet18"]) == 1
    out = capsys.readouterr().out
    assert "ok       digits" in out and "FAIL     resnet18" in out and "Offline alternatives" in out


def test_unknown_profile_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("TLCOURSE_PROFILE", "huge")
    main(["doctor"])
    assert "is not a profile" in capsys.readouterr().out


def test_grade_rejects_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="student"):
        main(["grade", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])


@pytest.mark.parametrize("cpus", ["0", "-1"])
def test_grade_rejects_a_cpu_quota_that_is_not_positive(tmp_path, capsys, cpus):
    (tmp_path / "subs").mkdir()
    assert main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--cpus", cpus]) == 2
    assert "cpus must be a positive number of cores" in capsys.readouterr().out
