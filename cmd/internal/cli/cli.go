// Package cli holds what noesis's commands share: reading the config named
// by --env-file, the logger, tables and the terminal check.
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

// NewLogger builds the process's logger from the config.
func NewLogger(cfg config.Config, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	console := cfg.LogFormat == "console" || (cfg.LogFormat == "auto" && IsTerminal(w))
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
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
