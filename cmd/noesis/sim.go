package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/router/sim"
)

func newSimCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Serve the OpenAI-compatible model simulator over HTTP",
		Long: `Serve /v1/chat/completions (streaming or not) and /v1/models with the seed's
latency profiles, answers in the shape each noesis stage asks for, and faults on
demand. Point noesis at it with LLM_PROVIDER=sim NOESIS_SIM_URL=http://ADDR/v1.
Counters are at /sim/stats.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cli.LoadConfig(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			listen := cfg.SimListen
			if f.Changed("listen") {
				listen, _ = f.GetString("listen")
			}
			sc := cfg.Sim()
			if f.Changed("latency-scale") {
				sc.LatencyScale, _ = f.GetFloat64("latency-scale")
			}
			sc.ErrorRate, _ = f.GetFloat64("error-rate")
			sc.RateLimitRate, _ = f.GetFloat64("rate-limit-rate")
			sc.HangRate, _ = f.GetFloat64("hang-rate")
			sc.MalformedRate, _ = f.GetFloat64("malformed-rate")
			sc.RetryAfter, _ = f.GetDuration("retry-after")
			sc.ColdStart, _ = f.GetDuration("cold-start")
			sc.APIKey, _ = f.GetString("api-key")
			if f.Changed("lengths") {
				sc.Lengths, _ = f.GetString("lengths")
			}
			sc.RateLimitFirst, _ = f.GetInt("rate-limit-first")
			sc.Gullible, _ = f.GetBool("gullible")
			if f.Changed("response-format") {
				sc.ResponseFormat, _ = f.GetString("response-format")
			}
			switch sc.ResponseFormat {
			case sim.FormatHonour, sim.FormatRefuse, sim.FormatIgnore:
			default:
				return fmt.Errorf("--response-format %q: want honour, refuse or ignore", sc.ResponseFormat)
			}
			if err := sc.Faults.Validate(); err != nil {
				return fmt.Errorf("simulator faults: %w", err)
			}
			srv, err := sim.New(sc)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("simulator: %w", err)
			}
			log := cli.NewLogger(cfg, cmd.ErrOrStderr())
			log.Info().Str("url", "http://"+ln.Addr().String()+"/v1").Float64("latency_scale", sc.LatencyScale).Msg("simulator listening")
			return srv.Serve(cmd.Context(), ln)
		},
	}
	f := cmd.Flags()
	f.String("listen", "127.0.0.1:8090", "address to listen on (default NOESIS_SIM_LISTEN)")
	f.Float64("latency-scale", 1, "multiply the seed's latencies (0 answers at once; default NOESIS_SIM_LATENCY_SCALE)")
	f.Float64("error-rate", 0, "share of requests answered with HTTP 500")
	f.Float64("rate-limit-rate", 0, "share of requests answered with HTTP 429 and Retry-After")
	f.Float64("hang-rate", 0, "share of requests never answered")
	f.Float64("malformed-rate", 0, "share of answers in no readable shape")
	f.Duration("retry-after", 0, "Retry-After announced with a 429 (default 1s)")
	f.Duration("cold-start", 0, "delay of the first request, and of the first after 5 idle minutes")
	f.String("api-key", "", "require this bearer token")
	f.String("lengths", "realistic", "answer lengths: realistic (reasoning models think ~700 tokens first) or seed (default NOESIS_SIM_LENGTHS)")
	f.Int("rate-limit-first", 0, "answer the first N calls of every distinct request with 429: a rate-limit storm")
	f.Bool("gullible", false, "judges obey any order they find outside the quoted thought data")
	f.String("response-format", sim.FormatHonour, "what to do with a request's response_format json_schema: honour (as vLLM with a reasoning parser), refuse (HTTP 400) or ignore (answer text) (default NOESIS_SIM_RESPONSE_FORMAT)")
	return cmd
}
