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
	usageInErrors(root)
	return root
}

// usageInErrors makes a bad flag or argument say where the usage is: with
// SilenceUsage, cobra's own words ("unknown flag: --agnet", "accepts 2
// arg(s), received 0") say what is wrong but not what is right.
func usageInErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (%s --help lists the flags)", err, cmd.CommandPath())
	})
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return fmt.Errorf("%w; usage: %s", err, cmd.UseLine())
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
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
