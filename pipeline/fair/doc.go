// Package fair shares a queue, or a few slots, between agents: by priority
// band, most urgent first, and within a band in turn between agents, so one
// agent's flood waits behind itself and not in front of the others. The
// worker pools queue pulled thoughts with it (consumers) and the model
// targets queue calls waiting for a slot (router).
package fair
