package consumers

import "errors"

// ErrNotReplayable is Replay's error for a letter that has no thought
// subject to go back to, or keeps only the first bytes of its thought.
var ErrNotReplayable = errors.New("dead letter cannot be replayed")
