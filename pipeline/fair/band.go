package fair

// Priority bands of the fair queue, most urgent first. A thought's band comes
// from its priority: "critical" (an agent waits on it: an action about to
// run), "normal" (the default), "batch" (background work).
const (
	Critical = iota
	Normal
	Batch
	bands
)

// Band is the band of a thought's priority field; anything else is Normal
// (a bad priority is refused when the thought is decoded).
func Band(priority string) int {
	switch priority {
	case "critical":
		return Critical
	case "batch":
		return Batch
	}
	return Normal
}
