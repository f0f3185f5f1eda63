"""schemas/asyncapi.yaml: parsed by the official AsyncAPI parser, and true to the code.

Every topic in schemas/topics.py is a channel and every channel a topic (or one of the Faust
app's internal topics); each service's operations name exactly the topics its code uses.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from schemas import topics
from services.aggregator.config import AggregatorSettings
from services.kit.kafka import topic_plan
from services.kit.settings import CommonSettings
from tests.deploy.tools import HERE, ROOT, run, tool

ASYNCAPI = ROOT / "schemas" / "asyncapi.yaml"
PARSER = HERE / "node_modules" / "@asyncapi" / "parser"
SERVICES = ("ingest", "aggregator", "api")
TOPIC_SETTINGS: dict[str, str] = {
    name: field.default
    for name, field in CommonSettings.model_fields.items()
    if name.endswith("_TOPIC")
}


def parse(path: str) -> dict[str, Any]:
    node = tool("node", "the machine's Node.js")
    if not PARSER.is_dir():
        tool("asyncapi-parser", "`make deploy-tools` (npm ci in tests/deploy)")
    out: dict[str, Any] = json.loads(run(node, HERE / "asyncapi_parse.mjs", path))
    return out


@pytest.fixture(scope="module")
def parsed() -> dict[str, Any]:
    return parse(str(ASYNCAPI))


def test_the_official_parser_accepts_the_document_without_warnings(
    parsed: dict[str, Any],
) -> None:
    problems = [d for d in parsed["diagnostics"] if d["severity"] in ("error", "warning")]
    assert problems == []
    assert "channels" in parsed, parsed["diagnostics"]


def test_the_parser_rejects_an_object_discriminator_in_the_default_schema_format(
    tmp_path: Path,
) -> None:
    """The check has teeth: the generated event schema's object `discriminator` (valid JSON
    Schema, invalid AsyncAPI Schema) fails unless the payload says it is JSON Schema."""
    text = ASYNCAPI.read_text()
    bad = re.sub(
        r"payload:\n\s+schemaFormat: application/schema\+json;version=draft-07\n\s+schema: ",
        "payload: ",
        text,
    )
    assert bad != text
    shutil.copytree(ROOT / "schemas" / "json", tmp_path / "json")
    (tmp_path / "asyncapi.yaml").write_text(bad)
    errors = [
        d["message"]
        for d in parse(str(tmp_path / "asyncapi.yaml"))["diagnostics"]
        if d["severity"] == "error"
    ]
    assert any("discriminator" in message for message in errors), errors


def test_every_topic_is_a_channel_and_every_channel_a_topic(parsed: dict[str, Any]) -> None:
    addresses = {c["address"] for c in parsed["channels"]}
    declared = {v for k, v in vars(topics).items() if k.isupper() and isinstance(v, str)}
    assert set(TOPIC_SETTINGS.values()) == declared
    app_id = "callpulse-aggregator"
    tables = set(
        re.findall(
            r'app\.Table\(\s*"(\w+)"',
            (ROOT / "services/aggregator").joinpath("worker.py").read_text(),
        )
    )
    assert tables == {"calls", "reps"}
    internal = {f"{app_id}-{t}-changelog" for t in tables} | {f"{app_id}-__assignor-__leader"}
    assert addresses == declared | internal
    assert not any("tick" in a for a in addresses)  # the aggregator judges time with timers
    for channel in parsed["channels"]:
        assert channel["messages"], channel["id"]


def topics_used_by(service: str) -> set[str]:
    """The topics a service's code names through its `*_TOPIC` settings."""
    text = "\n".join(p.read_text() for p in (ROOT / "services" / service).rglob("*.py"))
    used = set(re.findall(r"\b([A-Z][A-Z_]*_TOPIC)\b", text))
    return {TOPIC_SETTINGS[name] for name in used if name in TOPIC_SETTINGS}


def test_each_service_s_operations_name_the_topics_its_code_uses(parsed: dict[str, Any]) -> None:
    operations = parsed["operations"]
    assert all(len(op["tags"]) == 1 and op["tags"][0] in SERVICES for op in operations)
    by_service: dict[str, set[str]] = {s: set() for s in SERVICES}
    for op in operations:
        by_service[op["tags"][0]] |= set(op["channels"])
    declared = {v for k, v in vars(topics).items() if k.isupper() and isinstance(v, str)}
    for service in SERVICES:
        assert by_service[service] & declared == topics_used_by(service), service
    # both ends of every topic: somebody sends, somebody receives (dead letters: operators)
    for channel in parsed["channels"]:
        actions = {op["action"] for op in operations if channel["address"] in op["channels"]}
        expected = {"send"} if channel["address"] == topics.DEAD_LETTERS else {"send", "receive"}
        assert actions == expected, channel["address"]
    ids = {op["id"] for op in operations}
    assert {"ingestSendsCallEvents", "apiSendsRoster", "aggregatorReceivesRoster"} <= ids


def test_each_channel_s_kafka_binding_matches_the_topic_callpulse_creates() -> None:
    """cleanup.policy (and the leader topic's single partition) as `callpulse topics create`
    makes them (services.kit.kafka.topic_plan)."""
    document = yaml.safe_load(ASYNCAPI.read_text())
    settings = AggregatorSettings()
    plan = {spec.name: spec for spec in topic_plan(settings, app_id=settings.APP_ID)}
    channels = document["channels"]
    assert set(plan) <= {c["address"] for c in channels.values()}
    for name, channel in channels.items():
        spec = plan.get(channel["address"])
        if spec is None:  # a topic the plan does not make (yet): its binding says delete
            assert channel["bindings"]["kafka"]["topicConfiguration"] == {
                "cleanup.policy": ["delete"]
            }, name
            continue
        kafka = channel["bindings"]["kafka"]
        policy = kafka["topicConfiguration"]["cleanup.policy"]
        assert policy == (["compact"] if spec.compacted else ["delete"]), name
        if "partitions" in kafka:
            assert kafka["partitions"] == spec.partitions, name
