// Package shared keeps the state every noesis worker process shares, in NATS
// key-value buckets: the shared level of the answer cache (Answers: one
// bucket per tier, with claims so identical requests in different processes
// make one model call), the limits that hold across processes (Limits:
// requests and tokens per window, spend per month, agents' quotas) and the
// registry of live workers (Registry). The delivery core (consumers) reads
// the registry; the router uses the cache and the limits through its own
// small interfaces.
package shared
