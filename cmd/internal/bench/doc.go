// Package bench is noesis's measuring harness: `noesis bench models` times
// the providers' models, `bench pipeline` runs a whole stack (embedded NATS,
// the simulator, workers as child processes) under an offered load, `bench
// tribunal` runs a labelled corpus through the judges, and `bench shadow`
// replays stored thoughts through a candidate chain. cmd/noesis links it
// unless built with the nobench tag.
package bench
