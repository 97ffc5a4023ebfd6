package modal

import (
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The deploy apps must at least compile; Modal itself cannot be reached from tests.
func TestPythonAppsCompile(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	files, _ := filepath.Glob("*.py")
	if len(files) < 2 {
		t.Fatalf("apps missing: %v", files)
	}
	dir := t.TempDir()
	for _, f := range files {
		// compile into a temporary cache dir, leaving no __pycache__ behind
		cmd := exec.Command(py, "-c", "import py_compile,sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)", f, filepath.Join(dir, filepath.Base(f)+"c"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
	}
}

func TestHeadersAndCost(t *testing.T) {
	if Headers("", "") != nil {
		t.Error("headers without a token")
	}
	h := Headers("wk-1", "ws-2")
	if h["Modal-Key"] != "wk-1" || h["Modal-Secret"] != "ws-2" {
		t.Errorf("headers %v", h)
	}
	if c, ok := Cost("H100", 2, 90*time.Minute); !ok || math.Abs(c-13.5) > 1e-9 {
		t.Errorf("2 x H100 for 1.5 h = %v, want 13.5", c)
	}
	if _, ok := Cost("TPU", 1, time.Hour); ok {
		t.Error("an unknown GPU has a price")
	}
}
