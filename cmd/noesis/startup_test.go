package main

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// A second noesis serve on the address of one already running (make run in
// two terminals) stops at once and says what to do, before its embedded
// server opens the data directory the running one writes.
func TestServeSaysTheListenAddressIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	data := t.TempDir()
	t.Setenv("NATS_URL", "")
	t.Setenv("NOESIS_NATS_LISTEN", taken.Addr().String())
	t.Setenv("NOESIS_DATA_DIR", data)
	t.Setenv("LLM_PROVIDER", "sim")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := newRootCmd()
	cmd.SetArgs([]string{"serve", "--env-file", "/dev/null"})
	cmd.SetOut(&syncBuffer{})
	cmd.SetErr(&syncBuffer{})
	start := time.Now()
	err = cmd.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "NOESIS_NATS_LISTEN "+taken.Addr().String()+" is taken: is another noesis serve (make run)") {
		t.Fatalf("err = %v; want it to say the address is taken", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("it took %s to say so", took)
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Errorf("the data directory was opened: %v", entries)
	}
}

// A command that cannot connect says what to do: start noesis, or log in.
func TestConnectSaysWhatToDo(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free.Close()
	t.Setenv("NATS_URL", "")
	t.Setenv("NOESIS_NATS_LISTEN", free.Addr().String())
	if _, err := runCLI(t, "", "status"); err == nil || !strings.Contains(err.Error(), "is noesis serve running, for example with make run? Else set NATS_URL") {
		t.Errorf("nothing listening: err = %v", err)
	}
	ns, _, _ := authServer(t)
	t.Setenv("NATS_URL", ns.ClientURL())
	if _, err := runCLI(t, "", "status"); err == nil || !strings.Contains(err.Error(), "Authorization Violation: this server wants a login: set NATS_USER and NATS_PASSWORD") {
		t.Errorf("no login: err = %v", err)
	}
	t.Setenv("NATS_USER", "admin")
	t.Setenv("NATS_PASSWORD", "wrong")
	if _, err := runCLI(t, "", "status"); err == nil || !strings.Contains(err.Error(), "the server refused this login") {
		t.Errorf("a wrong password: err = %v", err)
	}
}
