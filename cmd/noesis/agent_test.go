package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// agent add writes the seed outside the working directory by default, prints
// a reload command that names the server by its pid file, and refuses ids
// that name NATS's or noesis's own accounts.
func TestAgentAddDefaults(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("HOME", home)
	t.Setenv("NOESIS_AGENT_DIR", "")
	shipped, err := os.ReadFile(filepath.Join(repoRoot(t), "nats-auth.conf"))
	work := t.TempDir()
	t.Chdir(work)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("nats-auth.conf", shipped, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "", "agent", "add", "carol")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	seed := filepath.Join(home, "config", "noesis", "agents", "carol.nk")
	info, err := os.Stat(seed)
	if err != nil {
		t.Fatalf("no seed at %s: %v\n%s", seed, err, out)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("seed mode %v, want 0600", info.Mode().Perm())
	}
	if entries, _ := os.ReadDir(work); len(entries) != 1 {
		t.Errorf("agent add wrote into the working directory: %v", entries)
	}
	if !strings.Contains(out, "nats-server --signal reload=./nats-server.pid") {
		t.Errorf("no reload command by pid file in:\n%s", out)
	}
	for _, id := range []string{"NOESIS", "noesis", "SYS", "a.b", "*", "include", "Include"} {
		if _, err := runCLI(t, "", "agent", "add", id); err == nil {
			t.Errorf("agent add %q was accepted", id)
		}
	}
	if _, err := runCLI(t, "", "agent", "remove", "nobody"); err == nil {
		t.Error("removing an agent that is not there was accepted")
	}
	// Through a symbolic link, the file it points to gets the agent; the link stays.
	if err := os.Symlink("nats-auth.conf", "link.conf"); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "", "agent", "add", "dave", "--conf", "link.conf"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if fi, err := os.Lstat("link.conf"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link.conf is no longer a link (%v)", err)
	}
	if text, _ := os.ReadFile("nats-auth.conf"); !strings.Contains(string(text), "# agent dave") {
		t.Error("the file behind the link did not get the agent")
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// agent remove takes the agent's account out and deletes its seed; after the
// reload the server closes its connection and refuses its key, and the other
// agents stay.
func TestAgentRemoveShutsTheAgentOut(t *testing.T) {
	ns, seeds, conf := authServer(t)
	closed := make(chan struct{})
	alice, err := nats.Connect(ns.ClientURL(), agentAuth(t, seeds, "alice"), nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()

	kept := filepath.Join(t.TempDir(), "alice.nk") // the key alice still holds after her removal
	seed, err := os.ReadFile(filepath.Join(seeds, "alice.nk"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kept, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "", "agent", "remove", "alice", "--conf", conf, "--dir", seeds)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(seeds, "alice.nk")); !os.IsNotExist(err) {
		t.Errorf("alice's seed is still there (%v)", err)
	}
	text, _ := os.ReadFile(conf)
	if strings.Contains(string(text), "alice") {
		t.Errorf("the config still names alice:\n%s", text)
	}
	if !strings.Contains(string(text), "# agent bob") {
		t.Error("removing alice removed bob too")
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.Port = ns.Addr().(*net.TCPAddr).Port
	// The store directory as given: the server reports it with its "jetstream" folder.
	opts.StoreDir, opts.NoLog, opts.NoSigs, opts.PidFile = filepath.Dir(ns.StoreDir()), true, true, ""
	if err := ns.ReloadOptions(opts); err != nil {
		t.Fatalf("reload: %v", err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("alice's connection was not closed by the reload")
	}
	if nc, err := nats.Connect(ns.ClientURL(), agentAuth(t, filepath.Dir(kept), "alice")); err == nil {
		nc.Close()
		t.Error("alice's key still logs in")
	}
	bob, err := nats.Connect(ns.ClientURL(), agentAuth(t, seeds, "bob"))
	if err != nil {
		t.Fatalf("bob cannot log in after alice's removal: %v", err)
	}
	bob.Close()
}
