// Package answer reads a judge's answer the way a person would: the tagged
// lines it was asked for, or the same four fields under their usual names,
// in markdown, JSON or tables, in English, Portuguese or Spanish (Read); the
// verdict schema's one JSON object, strictly (ReadSchema); and a reasoning
// model's thinking split from its answer (SplitThink). What could be read
// two ways is never guessed: it is ErrUnparseable, and the judge is asked
// again. A Memo remembers the readings of answers that come again from a
// cache.
//
// It knows nothing of the tribunal that asks (package pipeline): it is
// given the answer, the request's answer tag and the quoted thought, and
// returns the judge's JudgeAnswer. Every function is safe for concurrent use.
package answer
