"""A Daimon agent in Python, with nats-py: it publishes thoughts to noesis
through JetStream (a message id each), waits for each thought's verdict and
narrative, and checks every payload and its headers against the JSON Schemas
in docs/contract/schemas. The same contract and the same checks as the Node
example (docs/agents/node/agent.mjs), which CI runs.

    pip install -r requirements.txt
    NATS_USER=daimon-1 NATS_PASSWORD=... python agent.py

Settings (environment): NATS_URL (nats://127.0.0.1:4222); AGENT (daimon-1);
THOUGHTS (50); NATS_USER / NATS_PASSWORD, or NATS_NKEY_SEED_FILE (a seed from
`noesis agent add`); TIMEOUT_S (120); QUIET_S (2): how long to keep listening
after the last expected answer, to catch a duplicate. Exit status 0 only when
every thought got exactly one verdict and one narrative and every message
matched its schema.
"""

import asyncio
import json
import os
import pathlib
import sys
import time
from datetime import datetime, timezone

from jsonschema import Draft7Validator
from referencing import Registry, Resource

SCHEMAS = pathlib.Path(__file__).resolve().parent.parent.parent / "contract" / "schemas"
BASE = "https://noesis.dev/schemas/"


def load_validators():
    """One validator per schema file; $refs between them resolve by $id."""
    docs = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    registry = Registry().with_resources((BASE + name, Resource.from_contents(doc)) for name, doc in docs.items())
    return {
        name: Draft7Validator(doc, registry=registry, format_checker=Draft7Validator.FORMAT_CHECKER)
        for name, doc in docs.items()
    }


def problems_of(validator, value):
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(value)]


def check_schemas():
    """--check-schemas: the validators work without NATS (CI runs this; nats-py
    cannot be installed there): the contract's examples pass, broken ones fail."""
    validators = load_validators()
    doc = (SCHEMAS.parent.parent / "contract.md").read_text()
    examples = 0
    for part in doc.split("<!-- schema: ")[1:]:
        name, rest = part.split(" -->", 1)
        block = rest.split("```json\n", 1)[1].split("```", 1)[0]
        found = problems_of(validators[name + ".json"], json.loads(block))
        if found:
            raise SystemExit(f"contract.md example {name}: {found}")
        examples += 1
    bad = {"event_id": "e", "agent_id": "daimon 1", "content": {"user_input": "x", "depth": 9}}
    if len(problems_of(validators["thought.json"], bad)) != 2:
        raise SystemExit("a thought with a bad agent_id and depth passed")
    print(f"python: {len(validators)} schemas load; {examples} contract examples valid; a bad thought refused")
    return 0


async def main():
    import nats  # here, so --check-schemas runs without it

    env = os.environ
    agent = env.get("AGENT", "daimon-1")
    count = int(env.get("THOUGHTS", "50"))
    timeout_s = float(env.get("TIMEOUT_S", "120"))
    quiet_s = float(env.get("QUIET_S", "2"))
    validators = load_validators()

    # Under nats-auth.conf an agent may read replies only under its own inbox prefix.
    opts = {"servers": [env.get("NATS_URL", "nats://127.0.0.1:4222")], "inbox_prefix": f"_INBOX_{agent}",
            "name": f"python-agent-{agent}"}
    if env.get("NATS_NKEY_SEED_FILE"):
        opts["nkeys_seed"] = env["NATS_NKEY_SEED_FILE"]
    elif env.get("NATS_USER"):
        opts["user"], opts["password"] = env["NATS_USER"], env.get("NATS_PASSWORD", "")
    nc = await nats.connect(**opts)
    js = nc.jetstream()

    run = f"{int(time.time() * 1000):x}-{os.getpid()}"
    seen = {}  # event_id -> {"verdicts": n, "narratives": n}
    problems = []
    answered = 0
    last_answer = time.monotonic()

    def handler(stage, key, schema):
        async def on_message(msg):
            nonlocal answered, last_answer
            try:
                out = json.loads(msg.data)
            except ValueError as e:
                problems.append(f"{msg.subject}: not JSON: {e}")
                return
            headers = dict(msg.headers or {})
            for name, value in ((schema, out), ("output-headers.json", headers)):
                problems.extend(f"{out.get('event_id')} {name}: {p}" for p in problems_of(validators[name], value))
            if out.get("stage") != stage or headers.get("Noesis-Stage") != stage:
                problems.append(f"{out.get('event_id')}: stage {out.get('stage')} on {msg.subject}")
            counts = seen.get(out.get("event_id"))
            if counts is None:
                return  # another run's answer
            counts[key] += 1
            if counts[key] == 1:
                answered += 1
            last_answer = time.monotonic()
        return on_message

    # Subscribe before publishing, so no answer goes by unseen.
    await nc.subscribe(f"noesis.verdicts.{agent}", cb=handler("tribunal", "verdicts", "verdict.json"))
    await nc.subscribe(f"noesis.narratives.{agent}", cb=handler("narrative", "narratives", "narrative.json"))

    started = time.monotonic()
    for i in range(count):
        thought = {
            "event_id": f"py-{run}-{i}",
            "agent_id": agent,
            "content": {"user_input": f"Thought {i} of a Python agent: I will archive the logs of run {run}",
                        "depth": 2, "source": "python-example"},
            "coherence": 0.8,
            "timestamp": datetime.now(timezone.utc).isoformat(),
        }
        own = problems_of(validators["thought.json"], thought)
        if own:
            raise SystemExit(f"our own thought is invalid: {own}")
        seen[thought["event_id"]] = {"verdicts": 0, "narratives": 0}
        # No message id: the thoughts stream deduplicates none, and any agent
        # can read the stream's last one (docs/security.md).
        ack = await js.publish(f"noesis.thoughts.{agent}", json.dumps(thought).encode())
        if ack.stream != "NOESIS_THOUGHTS":
            problems.append(f"{thought['event_id']}: stored in {ack.stream}")
    print(f"published {count} thoughts in {(time.monotonic() - started) * 1000:.0f} ms")

    want = 2 * count
    while answered < want and time.monotonic() - started < timeout_s:
        await asyncio.sleep(0.05)
    # Keep listening until nothing has arrived for QUIET_S: a duplicate would show.
    while time.monotonic() - last_answer < quiet_s:
        await asyncio.sleep(0.05)
    await nc.drain()

    missing = duplicated = 0
    for event_id, counts in seen.items():
        for key, n in counts.items():
            if n == 0:
                missing += 1
                problems.append(f"{event_id}: no {key[:-1]}")
            elif n > 1:
                duplicated += 1
                problems.append(f"{event_id}: {n} {key}")
    print(f"{count} thoughts: {answered}/{want} answers, {missing} missing, {duplicated} duplicated, "
          f"{len(problems)} problems, {(time.monotonic() - started) * 1000:.0f} ms")
    for p in problems[:20]:
        print(f"  {p}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(check_schemas() if "--check-schemas" in sys.argv else asyncio.run(main()))
