package reports

import (
	"math"
	"testing"

	"gonum.org/v1/plot/plotter"
)

func TestLTTB(t *testing.T) {
	flat := func(n int) plotter.XYs {
		xy := make(plotter.XYs, n)
		for i := range xy {
			xy[i] = plotter.XY{X: float64(i), Y: math.Sin(float64(i) / 50)}
		}
		return xy
	}
	t.Run("small input unchanged", func(t *testing.T) {
		in := flat(10)
		if got := lttb(in, 10); len(got) != 10 {
			t.Fatalf("len %d, want 10", len(got))
		}
		if got := lttb(in, 2); len(got) != 10 {
			t.Fatalf("n < 3 must return the input, got %d points", len(got))
		}
		if got := lttb(nil, 100); got != nil {
			t.Fatalf("nil input gave %v", got)
		}
	})
	for _, tc := range []struct{ len, n int }{{100_000, 2000}, {2001, 2000}, {5, 3}, {1000, 7}} {
		in := flat(tc.len)
		got := lttb(in, tc.n)
		if len(got) != tc.n {
			t.Errorf("lttb(%d points, %d) kept %d", tc.len, tc.n, len(got))
		}
		if got[0] != in[0] || got[len(got)-1] != in[len(in)-1] {
			t.Errorf("lttb(%d, %d) lost the first or last point", tc.len, tc.n)
		}
		for i := 1; i < len(got); i++ {
			if got[i].X <= got[i-1].X {
				t.Fatalf("lttb(%d, %d): x not increasing at %d: %v then %v", tc.len, tc.n, i, got[i-1], got[i])
			}
		}
	}
	t.Run("keeps a lone spike", func(t *testing.T) {
		// Thinning by stride would miss a one-sample spike; LTTB keeps the
		// point that makes the largest triangle, which is the spike.
		in := make(plotter.XYs, 10_000)
		for i := range in {
			in[i] = plotter.XY{X: float64(i), Y: 1}
		}
		in[4321].Y = 500
		got := lttb(in, 100)
		found := false
		for _, p := range got {
			if p.Y == 500 {
				found = true
			}
		}
		if !found {
			t.Fatal("the spike was dropped")
		}
	})
	t.Run("keeps a step's both sides", func(t *testing.T) {
		in := make(plotter.XYs, 10_000)
		for i := range in {
			in[i] = plotter.XY{X: float64(i), Y: 0}
			if i >= 6000 {
				in[i].Y = 1e6
			}
		}
		got := lttb(in, 50)
		lo, hi := false, false
		for _, p := range got {
			lo = lo || (p.Y == 0 && p.X > 5000)
			hi = hi || (p.Y == 1e6 && p.X < 7000)
		}
		if !lo || !hi {
			t.Fatalf("the step at x=6000 is blurred: %v", got)
		}
	})
}

func BenchmarkLTTB(b *testing.B) {
	in := make(plotter.XYs, 1_000_000)
	for i := range in {
		in[i] = plotter.XY{X: float64(i), Y: float64(i % 977)}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lttb(in, maxPlotPoints)
	}
}
