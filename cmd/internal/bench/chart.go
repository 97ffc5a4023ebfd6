package bench

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writeChart draws the latency distributions (as cumulative curves) of a
// pipeline run to an SVG or PNG file, by the file's extension.
func writeChart(path string, r *PipelineFigures) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".svg" && ext != ".png" {
		return fmt.Errorf("chart %s: want a .svg or .png file", path)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("noesis end-to-end latency, mode %s, %d thoughts", r.Mode, r.Thoughts)
	p.X.Label.Text = "latency from publish to output (ms)"
	p.Y.Label.Text = "share of thoughts"
	var lines []any
	add := func(name string, xs []float64) {
		if len(xs) == 0 {
			return
		}
		s := slices.Clone(xs)
		slices.Sort(s)
		step := max(1, len(s)/400) // at most ~400 points a curve
		var pts plotter.XYs
		for i := 0; i < len(s); i += step {
			pts = append(pts, plotter.XY{X: s[i], Y: float64(i+1) / float64(len(s))})
		}
		pts = append(pts, plotter.XY{X: s[len(s)-1], Y: 1})
		lines = append(lines, name, pts)
	}
	add("narrative", r.samples["narrative"])
	add("verdict", r.samples["tribunal"])
	add("both outputs", r.samples["both"])
	add("seed sequential plan", r.sequentialSample)
	if err := plotutil.AddLines(p, lines...); err != nil {
		return err
	}
	p.Legend.Top, p.Legend.Left = false, false
	return p.Save(20*vg.Centimeter, 12*vg.Centimeter, path)
}
