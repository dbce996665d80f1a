"""A missing server skips a test on a developer machine and fails it under CI=true, never the reverse."""

from __future__ import annotations

import pytest

from tests.servers.fixtures import unavailable


@pytest.mark.parametrize("ci", ["", "false", "0"])
def test_a_developer_machine_skips(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="no java on PATH"):
        unavailable("no java on PATH")


@pytest.mark.parametrize("ci", ["true", "1", "TRUE", "yes"])
def test_ci_fails_loudly(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    """GitHub Actions sets CI=true, other CI systems CI=1: both must fail rather than skip."""
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="CI=true and a test server is unavailable: no java on PATH"):
        unavailable("no java on PATH")
