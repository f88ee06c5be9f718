"""Workers' skill values, read from Toloka at most every ``ttl_s`` per skill."""

from __future__ import annotations

from collections.abc import Callable

from toloka_client.client import TolokaClient


class SkillCache:
    """Every worker's value of a skill (exact value when Toloka gives one), cached for ``ttl_s`` seconds."""

    def __init__(self, client: TolokaClient, *, ttl_s: float, monotonic: Callable[[], float]) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.monotonic = monotonic
        self._cache: dict[str, tuple[float, dict[str, float]]] = {}

    async def values(self, skill_id: str) -> dict[str, float]:
        cached = self._cache.get(skill_id)
        if cached and self.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        values: dict[str, float] = {}
        async for user_skill in self.client.iter_user_skills(skill_id):
            score = user_skill.exact_value if user_skill.exact_value is not None else user_skill.value
            if user_skill.user_id and score is not None:
                values[user_skill.user_id] = float(score)
        self._cache[skill_id] = (self.monotonic(), values)
        return values
