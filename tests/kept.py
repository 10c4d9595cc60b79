"""The scripted hive with one more agent, kestrel: destroyed, its repos kept."""

from __future__ import annotations

from .scripted import ScriptedClient, row


class KeptClient(ScriptedClient):
    async def request(self, message):
        answer = await super().request(message)
        if message["cmd"] == "agent_status":
            kept = row("kestrel", running=False, kept=True, deployed_sha=None, active_model=None, status_text=None)
            answer = {**answer, "agent_statuses": [*answer["agent_statuses"], kept]}
        return answer
