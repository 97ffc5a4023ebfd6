package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

type options struct {
	noesis, natsServer string
	n                  int
	only               string
	keep               bool
	// auth, when set, is a NATS config (nats-auth.conf) whose accounts block
	// every server of the scenarios gets: the workers run as its worker user,
	// the harness as its admin.
	auth     string
	accounts string // the accounts block read from auth
}

// Passwords of the users in the auth config, for the scenarios' processes.
const (
	chaosWorkerPassword = "chaos-worker-pw"
	chaosAdminPassword  = "chaos-admin-pw"
)

func main() {
	var o options
	flag.StringVar(&o.noesis, "noesis", "bin/noesis", "the noesis binary")
	flag.StringVar(&o.natsServer, "nats-server", "", "the nats-server binary (default: from PATH or GOPATH/bin)")
	flag.IntVar(&o.n, "n", 5000, "thoughts per scenario")
	flag.StringVar(&o.only, "only", "", "run only the scenarios whose name contains this")
	flag.BoolVar(&o.keep, "keep", false, "keep the scenario directories (logs, data)")
	flag.StringVar(&o.auth, "auth", "", "run every server with this config's accounts block (nats-auth.conf): workers as worker, the harness as admin")
	flag.Parse()
	if o.auth != "" {
		text, err := os.ReadFile(o.auth)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		i := strings.Index(string(text), "\naccounts {")
		if i < 0 {
			fmt.Fprintf(os.Stderr, "%s has no accounts block\n", o.auth)
			os.Exit(2)
		}
		o.accounts = string(text[i:])
		// The servers expand these from their environment, which they inherit.
		os.Setenv("NOESIS_WORKER_PASSWORD", chaosWorkerPassword)
		os.Setenv("NOESIS_ADMIN_PASSWORD", chaosAdminPassword)
		os.Setenv("NOESIS_AGENT_PASSWORD", "chaos-agent-pw")
		os.Setenv("NOESIS_REVIEWER_PASSWORD", "chaos-reviewer-pw")
	}
	if o.natsServer == "" {
		o.natsServer = findBinary("nats-server")
	}
	results, failed := run(o)
	printTable(os.Stdout, results)
	if failed {
		os.Exit(1)
	}
}

func findBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	return filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
}

func run(o options) ([]result, bool) {
	scenarios := []scenario{
		{name: "kill -9 one of two workers", nodes: 1, thoughts: plainThoughts,
			disrupt: func(s *stage) error { s.workers[0].Kill9(); return nil }},
		{name: "SIGTERM one of two workers", nodes: 1, thoughts: plainThoughts,
			disrupt: func(s *stage) error { return s.workers[0].Term(60 * time.Second) }},
		{name: "restart the NATS server", nodes: 1, thoughts: plainThoughts,
			disrupt: func(s *stage) error {
				s.nats[0].p.Kill9()
				time.Sleep(time.Second)
				return s.nats[0].start(o.natsServer, s.dir)
			}},
		{name: "kill the stream leader (3 nodes, R3)", nodes: 3, thoughts: plainThoughts, disrupt: killLeader},
		{name: "provider faults", nodes: 1, thoughts: faultThoughts, disrupt: stormOver, early: true, check: checkFaults},
		{name: "50 identical thoughts, cold cache", nodes: 1, thoughts: identicalThoughts, check: checkCoalesced},
	}
	var results []result
	failed := false
	for _, sc := range scenarios {
		if o.only != "" && !strings.Contains(sc.name, o.only) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", sc.name)
		r := runScenario(o, sc)
		fmt.Fprintf(os.Stderr, "   sent %d, outputs %d, lost %d, duplicates %d, dead letters %d, upstream calls %d, %s (%s)\n",
			r.Sent, r.Outputs, r.Lost, r.Duplicates, r.DeadLetters, r.Upstream, r.Check, r.Took.Round(time.Millisecond))
		failed = failed || r.Failed
		results = append(results, r)
	}
	return results, failed
}
