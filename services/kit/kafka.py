"""Kafka connections and topics shared by the services.

`connection(settings)` is the one place where the security settings become client arguments:
`client_kwargs` for aiokafka (producers, consumers, the admin client) and `faust_kwargs` for
the Faust app. `topic_plan` says which topics a service needs and how each is made;
`create_topics` makes them and `check_topics` refuses a start against missing or wrong ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError
from aiokafka.helpers import create_ssl_context

from services.kit.settings import CommonSettings, kafka_security_problem

log = structlog.get_logger(__name__)

COMPACTED_CONFIG = {"cleanup.policy": "compact", "segment.ms": "600000"}
TOPIC_ALREADY_EXISTS = 36
FIX_COMMAND = "callpulse topics create"
SETTLE_SECONDS = 3

Service = Literal["ingest", "aggregator", "api"]


@dataclass(frozen=True)
class KafkaConnection:
    """Where and how to connect: the bootstrap servers and aiokafka's security arguments."""

    bootstrap: str
    security: Mapping[str, Any] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        """aiokafka client arguments (bootstrap_servers and security)."""
        return {"bootstrap_servers": self.bootstrap, **self.security}


Target = str | KafkaConnection
"""A bare bootstrap string is a PLAINTEXT connection (tests, tools)."""


class KafkaSetupError(Exception):
    """The cluster refused us or a topic is wrong: one line saying what and how to fix it."""


def client_kwargs(target: Target) -> dict[str, Any]:
    """aiokafka client arguments for a connection or a bare bootstrap string."""
    if isinstance(target, KafkaConnection):
        return target.kwargs()
    return {"bootstrap_servers": target}


def connection(settings: CommonSettings, bootstrap: str | None = None) -> KafkaConnection:
    """The settings' Kafka connection (one SSL context, shared by every client made from it)."""
    address = bootstrap or settings.KAFKA_BOOTSTRAP
    if not address:
        raise ValueError("CALLPULSE_KAFKA_BOOTSTRAP is not set")
    problem = kafka_security_problem(settings)
    if problem is not None:  # settings built with model_construct skip the validator
        raise ValueError(problem)
    protocol = settings.KAFKA_SECURITY_PROTOCOL
    security: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        security["ssl_context"] = _ssl_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        assert settings.KAFKA_SASL_PASSWORD is not None  # the validator said so
        security |= {
            "sasl_mechanism": settings.KAFKA_SASL_MECHANISM,
            "sasl_plain_username": settings.KAFKA_SASL_USERNAME,
            "sasl_plain_password": settings.KAFKA_SASL_PASSWORD.get_secret_value(),
        }
    return KafkaConnection(address, security)


def _ssl_context(settings: CommonSettings) -> ssl.SSLContext:
    def text(path: object) -> str | None:
        return None if path is None else str(path)

    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=text(settings.KAFKA_SSL_CAFILE),
            certfile=text(settings.KAFKA_SSL_CERTFILE),
            keyfile=text(settings.KAFKA_SSL_KEYFILE),
        )
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"the Kafka TLS files could not be loaded: {exc}") from exc
    context.check_hostname = settings.KAFKA_SSL_CHECK_HOSTNAME
    return context


def faust_kwargs(settings: CommonSettings) -> dict[str, Any]:
    """faust.App arguments for the broker, its credentials and the topics Faust creates."""
    import faust  # only the aggregator runs Faust

    conn = connection(settings)
    sec = conn.security
    credentials: Any = None
    if "sasl_mechanism" in sec:
        credentials = faust.SASLCredentials(
            username=sec["sasl_plain_username"],
            password=sec["sasl_plain_password"],
            mechanism=sec["sasl_mechanism"],
            ssl_context=sec.get("ssl_context"),
        )
    elif "ssl_context" in sec:
        credentials = faust.SSLCredentials(sec["ssl_context"])
    brokers = ";".join(f"kafka://{host.strip()}" for host in conn.bootstrap.split(","))
    return {
        "broker": brokers,
        "broker_credentials": credentials,
        "topic_replication_factor": max(settings.REPLICATION_FACTOR, 1),
    }


@dataclass(frozen=True)
class TopicSpec:
    """One topic as callpulse wants it."""

    name: str
    partitions: int
    compacted: bool = False
    keyed: bool = True
    """Its partition count matters (records placed by key, co-partitioned with others); the
    dead-letters topic is read by people, any count will do."""


def topic_plan(
    settings: CommonSettings, service: Service | None = None, *, app_id: str | None = None
) -> list[TopicSpec]:
    """The topics a service needs (all of them for None), each with its partitions and policy;
    with `app_id`, the aggregator's internal topics too (`internal_topics`)."""
    s, n = settings, settings.PARTITIONS
    events = TopicSpec(s.EVENTS_TOPIC, n)
    facts = TopicSpec(s.FACTS_TOPIC, n)
    kpis = TopicSpec(s.KPIS_TOPIC, n, compacted=True)
    calls = TopicSpec(s.CALLS_TOPIC, n, compacted=True)
    alerts = TopicSpec(s.ALERTS_TOPIC, n)
    roster = TopicSpec(s.ROSTER_TOPIC, n, compacted=True)
    dead_letters = TopicSpec(s.DEAD_LETTERS_TOPIC, n, keyed=False)
    internal = internal_topics(settings, app_id) if app_id else []
    if service == "ingest":
        return [events]
    if service == "api":
        return [kpis, calls, alerts, roster]
    return [events, facts, kpis, calls, alerts, roster, dead_letters, *internal]


def internal_topics(settings: CommonSettings, app_id: str) -> list[TopicSpec]:
    """The aggregator's own topics: its Faust tables' changelogs (`<app id>-<table>-changelog`,
    compacted, one partition per source partition) and Faust's leader topic (one partition).
    Made by us, not Faust, so their replication and min.insync.replicas follow the settings."""
    n = settings.PARTITIONS
    return [
        TopicSpec(f"{app_id}-calls-changelog", n, compacted=True),
        TopicSpec(f"{app_id}-reps-changelog", n, compacted=True),
        TopicSpec(f"{app_id}-__assignor-__leader", 1),
    ]


async def _admin(target: Target, wait_seconds: float) -> AIOKafkaAdminClient:
    """A started admin client. A cluster that refuses connections (still starting, say) is
    tried again until `wait_seconds`; refused credentials or certificates fail at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        admin = AIOKafkaAdminClient(
            **client_kwargs(target),
            client_id="callpulse-topics",
            request_timeout_ms=int(wait_seconds * 1000),
        )
        try:
            async with asyncio.timeout(max(deadline - loop.time(), 1.0)):
                await admin.start()
        except TimeoutError:
            await admin.close()
            raise KafkaSetupError(
                f"Kafka at {_address(target)} did not answer within {wait_seconds:g} s"
            ) from None
        except Exception as exc:
            await admin.close()
            # The admin client only says it could not bootstrap; one direct connection says why.
            cause = await _probe(target, min(wait_seconds, 10.0)) or exc
            if _refused_us(cause) or loop.time() + 1 >= deadline:
                raise KafkaSetupError(_connect_failure(target, cause)) from exc
            await asyncio.sleep(1)
            continue
        return admin


def _refused_us(exc: BaseException) -> bool:
    """A TLS or SASL failure: trying again cannot help."""
    chain = [exc, exc.__cause__, exc.__context__]
    text = f"{type(exc).__name__}: {exc}".lower()
    return any(isinstance(e, ssl.SSLError) for e in chain) or "authentication" in text


async def _probe(target: Target, wait_seconds: float) -> BaseException | None:
    """Why a connection to the first bootstrap server fails (None if it does not)."""
    kwargs = client_kwargs(target)
    host, _, port = str(kwargs.pop("bootstrap_servers")).split(",")[0].strip().rpartition(":")
    try:
        async with asyncio.timeout(wait_seconds):
            conn = await create_conn(
                host, int(port), request_timeout_ms=int(wait_seconds * 1000), **kwargs
            )
    except Exception as exc:  # the reason is the point here
        return exc
    conn.close()
    return None


def _address(target: Target) -> str:
    return target.bootstrap if isinstance(target, KafkaConnection) else target


def _connect_failure(target: Target, exc: BaseException) -> str:
    """One line for a refused connection: bad credentials, an untrusted certificate, ..."""
    where = f"Kafka at {_address(target)}"
    text = f"{type(exc).__name__}: {exc}".strip()
    chain = [exc, exc.__cause__, exc.__context__]
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return (
            f"{where}: TLS handshake failed ({text}); check CALLPULSE_KAFKA_SSL_CAFILE, "
            "CALLPULSE_KAFKA_SSL_CHECK_HOSTNAME, CALLPULSE_KAFKA_SECURITY_PROTOCOL and, for "
            "brokers that require a client certificate, CALLPULSE_KAFKA_SSL_CERTFILE and _KEYFILE"
        )
    lowered = text.lower()
    if "authentication" in lowered or "sasl" in lowered:
        return (
            f"{where}: SASL authentication failed ({text}); check CALLPULSE_KAFKA_SASL_USERNAME, "
            "CALLPULSE_KAFKA_SASL_PASSWORD and CALLPULSE_KAFKA_SASL_MECHANISM"
        )
    if isinstance(exc, KafkaConnectionError):
        return (
            f"{where}: cannot connect ({text}); check CALLPULSE_KAFKA_BOOTSTRAP and "
            "CALLPULSE_KAFKA_SECURITY_PROTOCOL"
        )
    return f"{where}: {text}"


async def create_topics(
    target: Target,
    specs: Sequence[TopicSpec],
    *,
    replication_factor: int = -1,
    min_insync_replicas: int | None = None,
    wait_seconds: float = 30.0,
) -> list[str]:
    """Create the missing topics (idempotent); returns the names it created."""
    admin = await _admin(target, wait_seconds)
    try:
        existing = set(await admin.list_topics())
        wanted = [spec for spec in specs if spec.name not in existing]
        if not wanted:
            return []
        response = await admin.create_topics(
            [_new_topic(spec, replication_factor, min_insync_replicas) for spec in wanted]
        )
        for error in response.topic_errors:
            name, code = error[0], error[1]
            message = error[2] if len(error) > 2 else ""
            if code not in (0, TOPIC_ALREADY_EXISTS):  # already there: another service was first
                raise KafkaSetupError(f"topic {name}: Kafka refused to create it ({message})")
        log.info("topics_created", topics=[s.name for s in wanted])
        return [s.name for s in wanted]
    finally:
        await admin.close()


def _new_topic(spec: TopicSpec, replication: int, min_insync: int | None) -> NewTopic:
    configs = dict(COMPACTED_CONFIG) if spec.compacted else {}
    if min_insync is not None:
        configs["min.insync.replicas"] = str(min_insync)
    topic = NewTopic(
        spec.name, num_partitions=spec.partitions, replication_factor=1, topic_configs=configs
    )
    # -1 asks for the broker's default.replication.factor (CreateTopics v4+, Kafka 2.4+);
    # NewTopic's own check only allows -1 together with an explicit replica assignment.
    topic.replication_factor = replication
    return topic


async def check_topics(
    target: Target,
    specs: Sequence[TopicSpec],
    *,
    replication_factor: int = -1,
    wait_seconds: float = 30.0,
) -> list[str]:
    """What is wrong with the topics, one line each (empty: all there as specified)."""
    admin = await _admin(target, wait_seconds)
    try:
        # Every topic's metadata: asking for named topics may auto-create them on old brokers.
        found = {t["topic"]: t for t in await admin.describe_topics()}
        # A topic just created may not have reached every broker's metadata yet.
        for _ in range(SETTLE_SECONDS):
            if all(spec.name in found for spec in specs):
                break
            await asyncio.sleep(1)
            found = {t["topic"]: t for t in await admin.describe_topics()}
        compacted = [spec.name for spec in specs if spec.compacted and spec.name in found]
        policies = await _cleanup_policies(admin, compacted) if compacted else {}
    finally:
        await admin.close()
    problems = []
    for spec in specs:
        topic = found.get(spec.name)
        if topic is None:
            problems.append(f"topic {spec.name} is missing; run `{FIX_COMMAND}`")
            continue
        partitions = topic["partitions"]
        if spec.keyed and len(partitions) != spec.partitions:
            problems.append(
                f"topic {spec.name} has {len(partitions)} partitions, callpulse needs "
                f"{spec.partitions}: set CALLPULSE_PARTITIONS={len(partitions)}, or delete the "
                f"topic and run `{FIX_COMMAND}`"
            )
            continue
        replicas = min(len(p["replicas"]) for p in partitions) if partitions else 0
        if replication_factor > 0 and replicas < replication_factor:
            problems.append(
                f"topic {spec.name} has {replicas} replicas, CALLPULSE_REPLICATION_FACTOR asks "
                f"for {replication_factor}: reassign its partitions, or delete the topic and run "
                f"`{FIX_COMMAND}`"
            )
            continue
        policy = policies.get(spec.name, "compact")
        if spec.compacted and "compact" not in policy.split(","):
            problems.append(
                f"topic {spec.name} has cleanup.policy={policy}, callpulse needs compact: set it "
                "(kafka-configs --alter --add-config cleanup.policy=compact), or delete the topic "
                f"and run `{FIX_COMMAND}`"
            )
    return problems


async def _cleanup_policies(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, str]:
    """cleanup.policy of each named topic (those the broker could describe)."""
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, name, configs={"cleanup.policy": None})
        for name in names
    ]
    policies: dict[str, str] = {}
    for response in await admin.describe_configs(resources):
        for error_code, _message, _type, name, entries, *_ in response.resources:
            if error_code == 0:
                values = {entry[0]: entry[1] for entry in entries}
                policies[name] = values.get("cleanup.policy", "delete")
    return policies


async def prepare_topics(
    settings: CommonSettings, specs: Sequence[TopicSpec], *, own: Sequence[TopicSpec] = ()
) -> None:
    """At a service's start: create missing topics if CREATE_TOPICS (and always the `own`
    ones, which nothing else uses: the aggregator's changelogs, that Faust would create
    itself), then check them all.

    Raises KafkaSetupError with one line (the first problem) so the service refuses to start.
    """
    target = connection(settings)
    create = [*specs, *own] if settings.CREATE_TOPICS else list(own)
    if create:
        await create_topics(
            target,
            create,
            replication_factor=settings.REPLICATION_FACTOR,
            min_insync_replicas=settings.MIN_INSYNC_REPLICAS,
        )
    problems = await check_topics(
        target, [*specs, *own], replication_factor=settings.REPLICATION_FACTOR
    )
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise KafkaSetupError(problems[0] + more)


def refuse_start(
    service: str,
    settings: CommonSettings,
    specs: Sequence[TopicSpec],
    *,
    own: Sequence[TopicSpec] = (),
) -> None:
    """Entry-point helper: prepare the topics or exit with one line naming the problem."""
    try:
        with quiet_client_logs():
            asyncio.run(prepare_topics(settings, specs, own=own))
    except (KafkaSetupError, ValueError) as exc:
        raise SystemExit(f"callpulse {service}: {exc}") from None


@contextlib.contextmanager
def quiet_client_logs() -> Iterator[None]:
    """aiokafka logs each failed connection on its own; KafkaSetupError says what it means."""
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        client_log.setLevel(level)


async def ensure_topics(
    bootstrap: Target,
    topics: Iterable[str],
    *,
    partitions: int,
    compacted: Iterable[str] = (),
    wait_seconds: float = 30.0,
) -> None:
    """Create the missing topics (idempotent); compacted ones with cleanup.policy=compact."""
    compact = set(compacted)
    specs = [TopicSpec(name, partitions, name in compact) for name in topics]
    await create_topics(bootstrap, specs, wait_seconds=wait_seconds)
