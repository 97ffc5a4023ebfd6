package main

import (
	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the worker pools (and, with NATS_URL unset, an embedded NATS server)",
		Long: `Run the tier worker pools. With NATS_URL unset, noesis starts an embedded
JetStream server on NOESIS_NATS_LISTEN storing under NOESIS_DATA_DIR. With no
NEBIUS_API_KEY and LLM_PROVIDER=auto it answers with the built-in simulator,
but only on the embedded NATS: pointed at an external NATS it refuses to start
until a provider is set (or LLM_PROVIDER=sim asks for the simulator).
Stops on SIGINT or SIGTERM, letting in-flight thoughts finish within NOESIS_DRAIN_TIMEOUT.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cli.LoadConfig(cmd)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("tiers") {
				cfg.Tiers, _ = cmd.Flags().GetStringSlice("tiers")
				if err := cfg.Validate(); err != nil {
					return err
				}
			}
			out := cmd.ErrOrStderr()
			if !cli.IsTerminal(out) { // JSON lines for a collector: written in batches (cli.LineBuffer)
				lines := cli.NewLineBuffer(out, cli.FlushEvery)
				defer lines.Close()
				out = lines
			}
			log := cli.NewLogger(cfg, out)
			svc, err := service.Start(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			return svc.Wait()
		},
	}
	cmd.Flags().StringSlice("tiers", nil, "run only these tier pools: fast, reasoning, deep (default NOESIS_TIERS, all three)")
	return cmd
}
