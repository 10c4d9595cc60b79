#!/bin/sh
# Writes the agent's status.json from the first lines of status.txt and
# model.txt, as a well-behaved agent does: valid JSON whatever the lines
# hold, written whole (a temporary file, then a rename).
set -eu

# A JSON string's contents: control characters dropped (JSON cannot hold
# them raw), then backslashes and quotes escaped. Bytewise, in the C locale.
json_text() {
    head -n 1 "$1" | LC_ALL=C tr -d '\000-\037' | LC_ALL=C sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}

text=$(json_text status.txt)
model=$(json_text model.txt)
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '{"text": "%s", "set_at": "%s", "model": "%s"}\n' "$text" "$now" "$model" \
    > "$HIVE_AGENT_STATE/status.json.tmp"
mv "$HIVE_AGENT_STATE/status.json.tmp" "$HIVE_AGENT_STATE/status.json"
