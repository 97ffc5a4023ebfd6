package cli

import (
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/config"
)

// LoadConfig reads the .env file named by --env-file, then the environment.
func LoadConfig(cmd *cobra.Command) (config.Config, error) {
	file, _ := cmd.Flags().GetString("env-file")
	return config.Load(file, cmd.Flags().Changed("env-file"))
}

// NewLogger builds the process's logger from the config. What agents wrote
// never reaches a terminal raw: JSON lines go through EscapeJSON, and the
// console format's messages through Escape (its fields are quoted by
// zerolog, which escapes them).
func NewLogger(cfg config.Config, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	console := cfg.LogFormat == "console" || (cfg.LogFormat == "auto" && IsTerminal(w))
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, FormatPrepare: escapeMessage}
	} else {
		w = jsonLogWriter{w}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// escapeMessage escapes a console log line's message, which zerolog's
// console writer prints as it is.
func escapeMessage(evt map[string]any) error {
	if m, ok := evt[zerolog.MessageFieldName].(string); ok {
		evt[zerolog.MessageFieldName] = Escape(m)
	}
	return nil
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// Clip cuts s to n runes, marking the cut with an ellipsis.
func Clip(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
