// Package retry is the one retry policy of noesis: how long to wait between
// tries (exponential from an initial wait, capped, with jitter), when to give
// up (after so many tries or so much time), and what stops at once (a
// Permanent error, the context's end). Every retry loop in the project runs
// through Do with a Policy, so each loop's waits are written down as data and
// read the same way. It is built on github.com/cenkalti/backoff/v5.
package retry
