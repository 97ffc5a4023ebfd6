package reviewui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// DefaultListen is where the page listens unless told otherwise.
const DefaultListen = "127.0.0.1:8380"

//go:embed assets
var assets embed.FS

var pages = template.Must(template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html"))

// Config is what the page needs.
type Config struct {
	// Listen is the address to listen on; default DefaultListen.
	Listen string
	// NATSURL is the NATS server reviewers log in to.
	NATSURL string
	// NATSOptions are connection options other than credentials (TLS, a
	// name); the credentials are each reviewer's own.
	NATSOptions []nats.Option
	// MaxSessions bounds the reviewers logged in at once (a NATS connection
	// each); default 64.
	MaxSessions int
}

// Page serves the review page. Run it once.
type Page struct {
	cfg      Config
	log      zerolog.Logger
	sessions *sessions
	ln       net.Listener
}

// New listens on cfg.Listen; Run serves. It fails when the address cannot
// be listened on.
func New(cfg Config, log zerolog.Logger) (*Page, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 64
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("review page: listen on %s: %w", cfg.Listen, err)
	}
	s := &Page{cfg: cfg, log: log.With().Str("component", "review-page").Logger(), ln: ln}
	s.sessions = newSessions(cfg, s.log)
	return s, nil
}

// Addr is the address the page listens on.
func (s *Page) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then closes the reviewers' connections and
// waits for what they run.
func (s *Page) Run(ctx context.Context) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // event streams end with ctx
	}()
	s.log.Info().Str("addr", s.Addr()).Msg("review page listening")
	err := srv.Serve(s.ln)
	wg.Wait()
	s.sessions.closeAll()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler is the page's routes, every one behind the reviewer's login and
// the security headers.
func (s *Page) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.authed(s.queuePage))
	mux.HandleFunc("GET /queue", s.authed(s.queueFragment))
	mux.HandleFunc("GET /events", s.authed(s.events))
	mux.HandleFunc("GET /review/{id}", s.authed(s.reviewPage))
	mux.HandleFunc("POST /review/{id}/decision", s.authed(s.decide))
	return secure(mux)
}

// secure sets the headers every answer carries.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// authed runs h with the request's reviewer session, or answers 401 or 403.
func (s *Page) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="noesis review", charset="UTF-8"`)
			http.Error(w, "log in with your NATS reviewer user and password", http.StatusUnauthorized)
			return
		}
		sess, err := s.sessions.get(r.Context(), user, pass)
		switch {
		case errors.Is(err, errLogin):
			w.Header().Set("WWW-Authenticate", `Basic realm="noesis review", charset="UTF-8"`)
			http.Error(w, "NATS refused this login", http.StatusUnauthorized)
			return
		case errors.Is(err, errNotReviewer):
			http.Error(w, "this NATS login may not read the review queue", http.StatusForbidden)
			return
		case errors.Is(err, errTooMany):
			http.Error(w, "too many reviewers are logged in; try again later", http.StatusServiceUnavailable)
			return
		case err != nil:
			http.Error(w, "NATS is not reachable; the log says why", http.StatusServiceUnavailable)
			return
		}
		h(w, r, sess)
	}
}
