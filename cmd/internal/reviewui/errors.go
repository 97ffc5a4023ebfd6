package reviewui

import "errors"

var (
	// errLogin: NATS refused the user and password.
	errLogin = errors.New("NATS refused the login")
	// errNotReviewer: NATS took the login, which may not read the queue.
	errNotReviewer = errors.New("this login may not read the review queue")
	// errTooMany: MaxSessions reviewers are logged in.
	errTooMany = errors.New("too many reviewers logged in")
)
