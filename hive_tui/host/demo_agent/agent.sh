#!/bin/sh
# A demo agent: reports the status and model its config names, then idles
# until its state folder goes away.
set -eu
text=$(head -n 1 status.txt)
model=$(head -n 1 model.txt)
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '{"text": "%s", "set_at": "%s", "model": "%s"}\n' "$text" "$now" "$model" \
    > "$HIVE_AGENT_STATE/status.json.tmp"
mv "$HIVE_AGENT_STATE/status.json.tmp" "$HIVE_AGENT_STATE/status.json"
echo "$HIVE_AGENT up: $text ($model)"
while [ -d "$HIVE_AGENT_STATE" ]; do sleep 5; done
