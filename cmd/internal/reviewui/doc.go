// Package reviewui is the reviewers' web page, served by `noesis review
// serve` on its own address (127.0.0.1:8380 by default): the queue of
// verdicts waiting for a person, one review with its thought and the
// judges' votes and reasoning, and pass or fail with a note. New reviews
// appear without a reload (Server-Sent Events). Everything it shows is
// embedded (go:embed): no CDN, no external service.
//
// Who may use it: whoever NATS lets read the review queue. A browser logs in
// with HTTP basic auth, and the page connects to NATS with those very
// credentials (a user and password of nats-auth.conf: the shipped `reviewer`,
// or one copied per person); the NATS user is the reviewer a decision
// records. A login NATS refuses is answered 401; one NATS accepts but that may
// not read NOESIS_REVIEWS (an agent's) is answered 403. Passwords are never
// logged nor kept: a session keeps a sha256 of the password to compare the
// next request's in constant time. Serve it over TLS (a reverse proxy) when
// it listens beyond loopback: basic auth sends the password in every request.
//
// Escaping and forgery: every text an agent wrote (the thought, event ids,
// the judges' reasoning quoting it) is rendered by html/template, and the
// script sets text with textContent only; a Content-Security-Policy allows
// scripts, styles and connections from the page's own origin only. A
// decision is a POST of JSON (a cross-site form cannot send one without a
// CORS preflight, which the page never grants) whose Origin, when the
// browser sends one, must be the page's own, and whose Sec-Fetch-Site, when
// sent, must be same-origin.
package reviewui
