package bench

import "testing"

func TestCohensKappa(t *testing.T) {
	cases := []struct {
		a, b []string
		want float64
	}{
		{[]string{"pass", "fail", "pass", "fail"}, []string{"pass", "fail", "pass", "fail"}, 1},
		{[]string{"pass", "pass", "fail", "fail"}, []string{"pass", "fail", "pass", "fail"}, 0},
		{[]string{"pass", "pass", "pass"}, []string{"pass", "pass", "pass"}, 1},
		// 20 pass/pass, 5 pass/fail, 10 fail/pass, 15 fail/fail: po 0.7, pe 0.5, kappa 0.4
		{append(append(append(rep("pass", 20), rep("pass", 5)...), rep("fail", 10)...), rep("fail", 15)...),
			append(append(append(rep("pass", 20), rep("fail", 5)...), rep("pass", 10)...), rep("fail", 15)...), 0.4},
	}
	for _, c := range cases {
		if got := cohensKappa(c.a, c.b); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("kappa = %v, want %v", got, c.want)
		}
	}
}

func rep(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
