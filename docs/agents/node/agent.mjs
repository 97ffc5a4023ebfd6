// A Daimon agent in Node.js, with the official NATS client: it publishes
// thoughts to noesis with JetStream, waits for each thought's verdict and
// narrative, and checks every payload and its headers against the JSON
// Schemas in docs/contract/schemas. Then it gates actions with judge(): one
// thought, its verdict awaited, as `noesis judge` does (docs/gate.md).
//
//   npm ci && node agent.mjs            # 50 thoughts to nats://127.0.0.1:4222 as daimon-1
//
// Settings (environment): NATS_URL; AGENT (default daimon-1); THOUGHTS (50);
// NATS_USER / NATS_PASSWORD, or NATS_NKEY_SEED_FILE (a seed from `noesis agent add`);
// TIMEOUT_S (120): how long to wait for every answer; QUIET_S (2): how long to
// keep listening after the last expected answer, to catch a duplicate.
// JUDGE_TIMEOUT_S (180): judge()'s default wait for a verdict (NOESIS_TRIBUNAL_DEADLINE
// + 30 s: past its deadline the tribunal answers unavailable).
// Exit status 0 only when every thought got exactly one verdict and one
// narrative, every message matched its schema, and each gate got the
// decision it should (and the hung one timed out).
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const env = process.env;
const agent = env.AGENT ?? 'daimon-1';
const count = Number(env.THOUGHTS ?? 50);
const timeoutMs = Number(env.TIMEOUT_S ?? 120) * 1000;
const quietMs = Number(env.QUIET_S ?? 2) * 1000;
const judgeTimeoutMs = Number(env.JUDGE_TIMEOUT_S ?? 180) * 1000;

// The contract's schemas, by file name; $refs between them resolve by $id.
const schemaDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../contract/schemas');
const ajv = new Ajv({ allErrors: true, strict: true });
addFormats(ajv);
for (const f of readdirSync(schemaDir).filter((f) => f.endsWith('.json'))) {
  ajv.addSchema(JSON.parse(readFileSync(path.join(schemaDir, f), 'utf8')), f);
}
const check = (schema, value) => {
  const validate = ajv.getSchema(schema);
  return validate(value) ? null : ajv.errorsText(validate.errors);
};

// Under nats-auth.conf an agent may read replies only under its own inbox prefix.
const opts = { servers: env.NATS_URL ?? 'nats://127.0.0.1:4222', inboxPrefix: `_INBOX_${agent}`, name: `node-agent-${agent}` };
if (env.NATS_NKEY_SEED_FILE) {
  opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(readFileSync(env.NATS_NKEY_SEED_FILE, 'utf8').trim()));
} else if (env.NATS_USER) {
  opts.user = env.NATS_USER;
  opts.pass = env.NATS_PASSWORD;
}
const nc = await connect(opts);
const js = jetstream(nc);

// JudgeTimeout: no verdict came within judge()'s timeout.
class JudgeTimeout extends Error {}

// JudgeDeadLettered: noesis could not judge the thought (`noesis judge`'s
// status 7); notice is the dead-letter notice, with its stage and reason.
class JudgeDeadLettered extends Error {
  constructor(notice) {
    super(`${notice.event_id} was dead-lettered (stage ${notice.stage}): ${notice.reason}`);
    this.notice = notice;
  }
}

// judge publishes thought and resolves with its verdict, as `noesis judge`
// does: it subscribes to the agent's verdicts and flushes before it
// publishes (a verdict that comes back at once is not missed), and takes the
// verdict whose Nats-Msg-Id names this very thought: <event_id>:tribunal:<digest>,
// the digest being 16 hex digits of sha256(subject, a zero byte, the bytes
// published), so another thought under the same event_id is passed over. The
// thought asks for the tribunal only and is served in the critical band (an
// agent waits on it) unless it says otherwise. Rejects with JudgeTimeout
// when no verdict comes within timeoutMs of the thought being stored, and
// with JudgeDeadLettered when the agent's notice on
// noesis.deadletters.<agent_id> names this thought (its event_id and digest).
async function judge(nc, js, thought, { timeoutMs = judgeTimeoutMs } = {}) {
  const subject = `noesis.thoughts.${thought.agent_id}`;
  const data = new TextEncoder().encode(JSON.stringify({ stages: ['tribunal'], priority: 'critical', ...thought }));
  const digest = createHash('sha256').update(subject).update(new Uint8Array([0])).update(data).digest('hex').slice(0, 16);
  const want = `${thought.event_id}:tribunal:${digest}`;
  const sub = nc.subscribe(`noesis.verdicts.${thought.agent_id}`);
  const notices = nc.subscribe(`noesis.deadletters.${thought.agent_id}`);
  const verdict = (async () => {
    for await (const m of sub) {
      if (m.headers?.get('Nats-Msg-Id') === want) return m;
    }
    throw new Error('the subscription ended before the verdict came');
  })();
  const deadLettered = (async () => {
    for await (const m of notices) {
      const n = m.json();
      const err = check('dead-letter-notice.json', n);
      if (err) throw new Error(`dead-letter-notice.json: ${err}`);
      if (n.event_id === thought.event_id && n.thought_digest === digest && n.stage !== 'narrative') throw new JudgeDeadLettered(n);
    }
    return new Promise(() => {}); // unsubscribed: the verdict or the timeout decides
  })();
  verdict.catch(() => {}); // a failed publish below ends it; that error is the one to report
  deadLettered.catch(() => {});
  let timer;
  try {
    await nc.flush(); // the server holds the subscription before the thought goes out
    await js.publish(subject, data);
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new JudgeTimeout(`no verdict for ${thought.event_id} within ${timeoutMs} ms`)), timeoutMs);
    });
    return await Promise.race([verdict, deadLettered, timeout]);
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
    notices.unsubscribe();
  }
}

const run = `${Date.now().toString(36)}-${process.pid}`;
const events = new Map(); // event_id -> { verdicts, narratives }
const problems = [];
let answered = 0;
let lastAnswer = Date.now();

// Subscribe before publishing, so no answer goes by unseen.
for (const [stage, subject, schema] of [
  ['tribunal', `noesis.verdicts.${agent}`, 'verdict.json'],
  ['narrative', `noesis.narratives.${agent}`, 'narrative.json'],
]) {
  const sub = nc.subscribe(subject);
  (async () => {
    for await (const m of sub) {
      let out;
      try {
        out = m.json();
      } catch (e) {
        problems.push(`${subject}: not JSON: ${e.message}`);
        continue;
      }
      const headers = {};
      for (const k of m.headers?.keys() ?? []) headers[k] = m.headers.get(k);
      for (const [name, value] of [[schema, out], ['output-headers.json', headers]]) {
        const err = check(name, value);
        if (err) problems.push(`${out.event_id} ${name}: ${err}`);
      }
      if (headers['Noesis-Stage'] !== stage || out.stage !== stage) problems.push(`${out.event_id}: stage ${out.stage} on ${subject}`);
      const seen = events.get(out.event_id);
      if (!seen) continue; // another run's answer
      const key = stage === 'tribunal' ? 'verdicts' : 'narratives';
      seen[key]++;
      if (seen[key] === 1) answered++;
      lastAnswer = Date.now();
    }
  })();
}

const started = Date.now();
for (let i = 0; i < count; i++) {
  const thought = {
    event_id: `node-${run}-${i}`,
    agent_id: agent,
    content: { user_input: `Thought ${i} of a Node agent: I will archive the logs of run ${run}`, depth: 2, source: 'node-example' },
    coherence: 0.8,
    timestamp: new Date().toISOString(),
  };
  const err = check('thought.json', thought);
  if (err) throw new Error(`our own thought is invalid: ${err}`);
  events.set(thought.event_id, { verdicts: 0, narratives: 0 });
  // No message id: the thoughts stream deduplicates none, and any agent can
  // read the stream's last one (docs/security.md).
  const ack = await js.publish(`noesis.thoughts.${agent}`, JSON.stringify(thought));
  if (ack.stream !== 'NOESIS_THOUGHTS') problems.push(`${thought.event_id}: stored in ${ack.stream}`);
}
console.log(`published ${count} thoughts in ${Date.now() - started} ms`);

const want = 2 * count;
while (answered < want && Date.now() - started < timeoutMs) await new Promise((r) => setTimeout(r, 50));
// Keep listening until nothing has arrived for QUIET_S: a duplicate would show.
while (Date.now() - lastAnswer < quietMs) await new Promise((r) => setTimeout(r, 50));

// Gates: act only on a pass. The simulated judges fail an rm -rf; a judge
// that hangs (the simulator's sim:hang marker) keeps the verdict back past
// judge()'s timeout. A thought noesis cannot read (an unknown stage) is
// dead-lettered, and judge() hears it from the agent's own notice.
const gates = [
  { text: 'I will archive the logs of the last run', action: 'tar czf logs.tgz logs/', decision: 'pass' },
  { text: 'The disk is full: I will free space', action: 'rm -rf /backups/2025-*', decision: 'fail' },
  { text: 'I will tidy the archive sim:hang@sophia', action: 'mv archive archive.old', timeoutMs: 1500 },
  { text: 'I will write a sonnet about the archive', action: 'cat sonnet.txt', stages: ['poetry'], deadLettered: true },
];
for (const [i, g] of gates.entries()) {
  const thought = {
    event_id: `judge-${run}-${i}`,
    agent_id: agent,
    content: { user_input: g.text, depth: 1, source: 'node-example' },
    action: g.action,
    timestamp: new Date().toISOString(),
    ...(g.stages ? { stages: g.stages } : {}),
  };
  const t0 = Date.now();
  try {
    const m = await judge(nc, js, thought, g.timeoutMs ? { timeoutMs: g.timeoutMs } : {});
    const v = m.json();
    const err = check('verdict.json', v);
    if (err) problems.push(`${thought.event_id} verdict.json: ${err}`);
    if (v.event_id !== thought.event_id || v.decision !== g.decision) {
      problems.push(`judge(${thought.event_id}): ${v.event_id} ${v.decision}, want ${g.decision ?? (g.deadLettered ? 'a dead letter' : 'a timeout')}`);
    }
    console.log(`judge: ${g.action}: ${v.decision} (consensus ${v.consensus_score}) in ${Date.now() - t0} ms`);
    if (v.decision === 'pass') console.log(`  would run: ${g.action}`);
  } catch (e) {
    const expected = g.deadLettered ? e instanceof JudgeDeadLettered : e instanceof JudgeTimeout && !g.decision;
    if (!expected) problems.push(`judge(${thought.event_id}): ${e.message}`);
    console.log(`judge: ${g.action}: ${e.message}`);
  }
}
await nc.drain();

let missing = 0;
let duplicates = 0;
for (const [id, seen] of events) {
  for (const key of ['verdicts', 'narratives']) {
    if (seen[key] === 0) missing++, problems.push(`${id}: no ${key.slice(0, -1)}`);
    if (seen[key] > 1) duplicates++, problems.push(`${id}: ${seen[key]} ${key}`);
  }
}
console.log(`${count} thoughts: ${answered}/${want} answers, ${missing} missing, ${duplicates} duplicated, ` +
  `${problems.length} problems, ${Date.now() - started} ms`);
for (const p of problems.slice(0, 20)) console.log(`  ${p}`);
process.exit(problems.length === 0 ? 0 : 1);
