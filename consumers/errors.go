package consumers

import "errors"

// ErrNotReplayable is Replay's error for a letter that has no thought
// subject to go back to, or keeps only the first bytes of its thought.
var ErrNotReplayable = errors.New("dead letter cannot be replayed")

// ErrStreamFull is wrapped by the errors of a publish a stream refused for
// want of room: it holds its max bytes (or messages), or the account or the
// server has no storage left for it. Check with errors.Is; the error is a
// *FullError naming the stream.
var ErrStreamFull = errors.New("stream full")

// errSubjectTaken is a publish that expected an empty subject and found a
// message there.
var errSubjectTaken = errors.New("subject already holds a message")

// errNotSourcedYet is a replayed thought not in NOESIS_THOUGHTS yet.
var errNotSourcedYet = errors.New("not sourced yet")
