package reviewui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers/review"
)

// session is one reviewer logged in: their own NATS connection, and the
// queue as that connection reads it.
type session struct {
	user  string
	hash  [sha256.Size]byte // of the password, to compare the next request's
	nc    *nats.Conn
	desk  *review.Desk
	index *review.Index
	stop  context.CancelFunc
	done  chan struct{}
}

// sessions are the reviewers logged in, by NATS user. Safe for concurrent use.
type sessions struct {
	cfg Config
	log zerolog.Logger
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(cfg Config, log zerolog.Logger) *sessions {
	return &sessions{cfg: cfg, log: log, m: map[string]*session{}}
}

// get returns the session of user when pass is theirs, logging in to NATS
// with them the first time (and again when the password is not the one the
// session was opened with).
func (ss *sessions) get(ctx context.Context, user, pass string) (*session, error) {
	hash := sha256.Sum256([]byte(pass))
	ss.mu.Lock()
	s, ok := ss.m[user]
	ss.mu.Unlock()
	if ok && subtle.ConstantTimeCompare(s.hash[:], hash[:]) == 1 {
		return s, nil
	}
	s, err := ss.open(ctx, user, pass, hash)
	if err != nil {
		if !errors.Is(err, errLogin) {
			ss.log.Warn().Err(err).Str("user", user).Msg("reviewer not logged in")
		}
		return nil, err
	}
	ss.mu.Lock()
	old := ss.m[user]
	if old == nil && len(ss.m) >= ss.cfg.MaxSessions {
		ss.mu.Unlock()
		s.close()
		return nil, errTooMany
	}
	ss.m[user] = s
	ss.mu.Unlock()
	if old != nil {
		old.close()
	}
	ss.log.Info().Str("user", user).Msg("reviewer logged in")
	return s, nil
}

// open logs user in to NATS and checks the login may read the queue.
func (ss *sessions) open(ctx context.Context, user, pass string, hash [sha256.Size]byte) (*session, error) {
	opts := append([]nats.Option{nats.Name("noesis-review-page"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}, ss.cfg.NATSOptions...)
	nc, err := nats.Connect(ss.cfg.NATSURL, append(opts, nats.UserInfo(user, pass))...)
	if err != nil {
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || strings.Contains(strings.ToLower(err.Error()), "authorization") {
			return nil, errLogin
		}
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := js.Stream(pctx, review.Stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errNotReviewer
	}
	ictx, stop := context.WithCancel(context.Background())
	s := &session{user: user, hash: hash, nc: nc, desk: review.NewDesk(js), index: review.NewIndex(js), stop: stop, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.index.Run(ictx); err != nil {
			ss.log.Warn().Err(err).Str("user", user).Msg("review queue not followed")
		}
	}()
	return s, nil
}

// close stops the session's index and closes its connection.
func (s *session) close() {
	s.stop()
	<-s.done
	s.nc.Close()
}

// closeAll closes every session.
func (ss *sessions) closeAll() {
	ss.mu.Lock()
	all := ss.m
	ss.m = map[string]*session{}
	ss.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}
