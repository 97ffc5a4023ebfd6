package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "noesis",
		Short:         "Turn AI agents' thoughts on NATS JetStream into narratives, verdicts and analyses",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("env-file", ".env", "read settings from this .env file when it exists (the environment wins)")
	root.AddCommand(newServeCmd(), newSimCmd(), newPublishCmd(), newJudgeCmd(), newDLQCmd(), newStatusCmd(), newVersionCmd(), newAgentCmd(), newWatchCmd(), newReviewCmd())
	root.AddCommand(benchCommands()...)
	return root
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
