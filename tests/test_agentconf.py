"""agent.yaml: parsed with libyaml's safe loader when PyYAML has it."""

from __future__ import annotations

import pytest
import yaml

from hive_tui.errors import BuildFailed
from hive_tui.host import agentconf
from hive_tui.host.agentconf import parse_agent_config


def test_agent_yaml_is_parsed_by_libyaml_and_each_config_is_its_own():
    assert agentconf._LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = b"run: [sh, -c, hi]\nbuild: [make]\n"
    first = parse_agent_config(text)
    first.run.append("changed")
    again = parse_agent_config(text)
    assert again.run == ["sh", "-c", "hi"] and again.build == ["make"]


@pytest.mark.parametrize("text, message", [
    (b"run: !!python/object/apply:os.system [id]\n", "could not determine a constructor"),
    (b"run: [a]\n\x00", "control characters are not allowed"),
    (b"run: [x]\nz: 1\n", "unknown keys z"),
])
def test_the_c_loader_is_as_safe_and_as_clear(text, message):
    with pytest.raises(BuildFailed, match=message):
        parse_agent_config(text)
