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

import shutil
import subprocess

from stream_app.config import REPO_ROOT
from tools.devstack import StackSettings, _apt_install, kafka_version, say
from tools.errors import StackError

TOOLS_POM = REPO_ROOT / "infra" / "kafka" / "tools-pom.xml"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"


def classpath(cfg: StackSettings | None = None) -> str:
    """``<stack dir>/kafka/tools-<version>/*``, resolved from Maven Central the first time."""
    cfg = cfg or StackSettings()
    version = kafka_version()
    lib = cfg.dir / "kafka" / f"tools-{version}"
    marker = lib / ".complete"
    if not marker.exists():
        if shutil.which("mvn") is None:
            _apt_install("maven")  # as the stack does for the broker's jars
        say(f"resolving Apache Kafka's tools {version} from Maven Central into {lib}")
        lib.mkdir(parents=True, exist_ok=True)
        argv = [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(TOOLS_POM),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-DoutputDirectory={lib}",
            "-DincludeScope=runtime",
        ]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(
                f"mvn could not resolve Kafka's tools {version} (exit {result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )
        marker.write_text(version)
    return f"{lib}/*"
