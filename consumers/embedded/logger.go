//go:build !noembed

package embedded

import "github.com/rs/zerolog"

// serverLogger sends nats-server's log to zerolog.
type serverLogger struct{ log zerolog.Logger }

func (l serverLogger) Noticef(f string, v ...any) { l.log.Debug().Msgf(f, v...) }
func (l serverLogger) Warnf(f string, v ...any)   { l.log.Warn().Msgf(f, v...) }
func (l serverLogger) Fatalf(f string, v ...any)  { l.log.Error().Msgf(f, v...) }
func (l serverLogger) Errorf(f string, v ...any)  { l.log.Error().Msgf(f, v...) }
func (l serverLogger) Debugf(f string, v ...any)  { l.log.Trace().Msgf(f, v...) }
func (l serverLogger) Tracef(f string, v ...any)  { l.log.Trace().Msgf(f, v...) }
