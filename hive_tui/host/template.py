"""What a new agent's config repo starts with."""

from __future__ import annotations

import yaml

# The agent records its status and the model its config names where the hive
# reads them, then idles until its state folder goes away (a purge), so no
# process outlives its agent.
IDLE_AGENT = r"""
set -eu
model=$(head -n 1 model.txt)
printf '{"text": "idle", "model": "%s", "set_at": "%s"}\n' "$model" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    > "$HIVE_AGENT_STATE/status.json.tmp"
mv "$HIVE_AGENT_STATE/status.json.tmp" "$HIVE_AGENT_STATE/status.json"
while [ -d "$HIVE_AGENT_STATE" ]; do sleep 5; done
""".strip()

CONFIGURATION_NIX = """\
# The container's NixOS module, imported by the hive's meta flake.
{ agentName, ... }:
{
  system.stateVersion = "25.05";
}
"""


def agent_yaml(run: list[str], build: list[str] | None = None, parent: str | None = None) -> bytes:
    data: dict = {"run": run}
    if build:
        data["build"] = build
    if parent:
        data["parent"] = parent
    return yaml.safe_dump(data, sort_keys=False, width=1000).encode()


def new_agent_files(name: str) -> dict[str, bytes]:
    return {
        "agent.yaml": agent_yaml(["sh", "-c", IDLE_AGENT]),
        "configuration.nix": CONFIGURATION_NIX.encode(),
        # The model the agent runs; the template runs none until the manager picks one.
        "model.txt": b"none\n",
    }
