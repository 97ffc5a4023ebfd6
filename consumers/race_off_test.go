//go:build !race

package consumers

const raceEnabled = false
