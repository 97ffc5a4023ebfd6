package answer

import "errors"

// ErrUnparseable marks a model answer from which no verdict can be read, or
// whose verdict is ambiguous. A judge whose answer is unparseable abstains.
var ErrUnparseable = errors.New("unparseable answer")

// errNoNumber marks a confidence value with no number in it at all ("high").
var errNoNumber = errors.New("not a number")
