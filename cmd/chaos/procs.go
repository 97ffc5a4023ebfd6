package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/noesis-dev/noesis/cmd/internal/proc"
)

// freePort asks the kernel for a free loopback port.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitPort waits until something listens on addr.
func waitPort(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, d)
}

// natsNode is one nats-server of a scenario, restartable on the same store.
type natsNode struct {
	name, dir, conf string
	port            int
	p               *proc.Proc
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsNode) start(bin, logDir string) error {
	p, err := proc.Logged(logDir, n.name, nil, bin, "-c", n.conf)
	if err != nil {
		return err
	}
	n.p = p
	return waitPort(fmt.Sprintf("127.0.0.1:%d", n.port), 15*time.Second)
}

// newNATS writes the configs of a single server (size 1) or a cluster, each
// with the accounts block, when there is one.
func newNATS(dir string, size int, accounts string) ([]*natsNode, error) {
	nodes := make([]*natsNode, size)
	clusterPorts := make([]int, size)
	for i := range nodes {
		nodes[i] = &natsNode{name: fmt.Sprintf("nats-%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("nats-%d", i+1)), port: freePort()}
		clusterPorts[i] = freePort()
	}
	for i, n := range nodes {
		var b strings.Builder
		fmt.Fprintf(&b, "server_name: %s\nlisten: 127.0.0.1:%d\njetstream { store_dir: %q }\n", n.name, n.port, n.dir)
		if size > 1 {
			var routes []string
			for j, p := range clusterPorts {
				if j != i {
					routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
				}
			}
			fmt.Fprintf(&b, "cluster { name: noesis-chaos\n listen: 127.0.0.1:%d\n routes: [%s]\n}\n", clusterPorts[i], strings.Join(routes, ", "))
		}
		b.WriteString(accounts)
		n.conf = filepath.Join(dir, n.name+".conf")
		if err := os.WriteFile(n.conf, []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
	}
	return nodes, nil
}
