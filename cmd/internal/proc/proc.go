package proc

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Proc is one child process.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	// Log is the file its output goes to, when Logged started it.
	Log  string
	done chan struct{}
	err  error
}

// Start starts bin with args, the environment plus env, its output to out.
func Start(name string, out io.Writer, env []string, bin string, args ...string) (*Proc, error) {
	return start(name, out, nil, false, env, bin, args...)
}

// Logged starts bin like Start, its output to dir/<name>.log (Tail reads it),
// in a process group of its own, so a terminal's ^C reaches only the parent,
// which decides how each child ends.
func Logged(dir, name string, env []string, bin string, args ...string) (*Proc, error) {
	path := filepath.Join(dir, name+".log")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	p, err := start(name, f, f, true, env, bin, args...)
	if err != nil {
		return nil, err
	}
	p.Log = path
	return p, nil
}

func start(name string, out io.Writer, closer io.Closer, ownGroup bool, env []string, bin string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if ownGroup {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		if closer != nil {
			closer.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if closer != nil {
			closer.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Pid is the process's id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Kill9 kills the process at once, as a crash would, and waits for it.
func (p *Proc) Kill9() { _ = p.Cmd.Process.Signal(syscall.SIGKILL); <-p.done }

// Term asks the process to stop (SIGTERM) and waits up to d for it; then
// kills it and says so.
func (p *Proc) Term(d time.Duration) error {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.Kill9()
		return fmt.Errorf("%s did not stop within %s after SIGTERM", p.Name, d)
	}
}

// Stop ends the process, if it still runs, as Term does within d.
func (p *Proc) Stop(d time.Duration) {
	select {
	case <-p.done:
	default:
		_ = p.Term(d)
	}
}

// Tail returns the last n lines of the process's log (Logged only).
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
