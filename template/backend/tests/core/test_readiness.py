"""Readiness checks leave time to answer within READINESS_TIMEOUT."""

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from app.core import readiness


@pytest.mark.parametrize(("seconds", "bound"), [(2.0, 1.95), (0.5, 0.45), (0.06, 0.03)])
def test_each_check_stops_before_the_timeout_to_leave_time_to_answer(
    seconds: float, bound: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    bounds: list[float] = []

    async def answers(check: Awaitable[None], within: float) -> bool:
        bounds.append(within)
        await check
        return True

    async def ping(_: Any) -> None:
        return None

    monkeypatch.setattr(readiness, "_answers", answers)
    monkeypatch.setattr(readiness, "ping_database", ping)
    monkeypatch.setattr(readiness, "ping_redis", ping)
    result = asyncio.run(readiness.check_readiness(engine=None, redis=None, seconds=seconds))  # type: ignore[arg-type]

    assert result.ok
    assert bounds == [pytest.approx(bound)] * 2
