//go:build race

package consumers

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocations are not measured.
const raceEnabled = true
