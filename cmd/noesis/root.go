package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/config"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "noesis",
		Short:         "Turn AI agents' thoughts on NATS JetStream into narratives, verdicts and analyses",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("env-file", ".env", "read settings from this .env file when it exists (the environment wins)")
	root.AddCommand(newServeCmd(), newSimCmd(), newPublishCmd(), newDLQCmd(), newStatusCmd(), newVersionCmd(), newAgentCmd())
	root.AddCommand(benchCommands()...)
	return root
}

// loadConfig reads the .env file named by --env-file, then the environment.
func loadConfig(cmd *cobra.Command) (config.Config, error) {
	file, _ := cmd.Flags().GetString("env-file")
	return config.Load(file, cmd.Flags().Changed("env-file"))
}

// newLogger builds the process's logger from the config.
func newLogger(cfg config.Config, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	console := cfg.LogFormat == "console" || (cfg.LogFormat == "auto" && isTerminal(w))
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "noesis %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
