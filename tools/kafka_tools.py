"""Apache Kafka's own command-line tools (console producer, ...) beside the local stack.

The stack runs the broker from Maven Central's jars, without Kafka's
``bin/`` scripts; ``kafka-tools`` (the console producer and consumer) is a
separate artifact. ``classpath()`` resolves it once, at the broker's version,
into ``.stack/kafka/tools-<version>/`` and returns the classpath to run a tool
with, e.g. (what ``kafka-console-producer.sh`` runs)::

    java -cp "$(python -m tools stack tools)" org.apache.kafka.tools.ConsoleProducer \\
        --bootstrap-server 127.0.0.1:9092 --topic rudder-events \\
        --reader-property parse.key=true --reader-property key.separator=$'\\t'
"""

from __future__ import annotations

from stream_app.config import REPO_ROOT
from tools.devstack import StackSettings, kafka_version, resolve_jars

TOOLS_POM = REPO_ROOT / "infra" / "kafka" / "tools-pom.xml"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"


def classpath(cfg: StackSettings | None = None) -> str:
    """``<stack dir>/kafka/tools-<version>/*``, resolved from Maven Central the first time."""
    cfg = cfg or StackSettings()
    version = kafka_version()
    lib = cfg.dir / "kafka" / f"tools-{version}"
    resolve_jars(
        TOOLS_POM, lib, f"Apache Kafka's tools {version}", version, f"-Dkafka.version={version}"
    )
    return f"{lib}/*"
