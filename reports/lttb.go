package reports

import (
	"math"

	"gonum.org/v1/plot/plotter"
)

// lttb downsamples xy (sorted by x) to at most n points with
// Largest-Triangle-Three-Buckets (Steinarsson 2013). Unlike keeping every k-th
// point it keeps the peaks and steps a reader looks for (a save that shrank
// the file, a burst of drops), so a long run's plots and report.html stay
// small without changing their shape. The first and last points are always
// kept, so the final value is exact. xy is returned as is when it already fits
// or n < 3.
func lttb(xy plotter.XYs, n int) plotter.XYs {
	if n < 3 || len(xy) <= n {
		return xy
	}
	out := make(plotter.XYs, 0, n)
	out = append(out, xy[0])
	// The points between the first and the last go into n-2 buckets of
	// (nearly) equal count.
	every := float64(len(xy)-2) / float64(n-2)
	a := 0 // index of the point chosen in the previous bucket
	for b := 0; b < n-2; b++ {
		lo := int(math.Floor(float64(b)*every)) + 1
		hi := int(math.Floor(float64(b+1)*every)) + 1
		hi = min(hi, len(xy)-1)
		// The next bucket's average is the third corner; for the last bucket
		// it is the last point.
		nlo, nhi := hi, int(math.Floor(float64(b+2)*every))+1
		nhi = min(nhi, len(xy)-1)
		if nlo >= nhi {
			nlo, nhi = len(xy)-1, len(xy)
		}
		var avgX, avgY float64
		for _, p := range xy[nlo:nhi] {
			avgX += p.X
			avgY += p.Y
		}
		cnt := float64(nhi - nlo)
		avgX /= cnt
		avgY /= cnt

		best, bestArea := lo, -1.0
		pa := xy[a]
		for i := lo; i < hi; i++ {
			area := math.Abs((pa.X-avgX)*(xy[i].Y-pa.Y) - (pa.X-xy[i].X)*(avgY-pa.Y))
			if area > bestArea {
				best, bestArea = i, area
			}
		}
		out = append(out, xy[best])
		a = best
	}
	return append(out, xy[len(xy)-1])
}
