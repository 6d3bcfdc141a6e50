package ui

import (
	"math"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// latencyWindow is the span the overview's delivery latency quantiles
// cover.
const latencyWindow = time.Minute

// histogram is a cumulative histogram: counts[i] observations were at most
// bounds[i]; the last bound is +Inf.
type histogram struct {
	bounds []float64
	counts []float64
}

// histogramOf reads a Prometheus histogram, adding its implicit +Inf bucket.
func histogramOf(h *dto.Histogram) *histogram {
	out := &histogram{}
	for _, b := range h.GetBucket() {
		if math.IsInf(b.GetUpperBound(), 1) {
			continue
		}
		out.bounds = append(out.bounds, b.GetUpperBound())
		out.counts = append(out.counts, float64(b.GetCumulativeCount()))
	}
	out.bounds = append(out.bounds, math.Inf(1))
	out.counts = append(out.counts, float64(h.GetSampleCount()))
	return out
}

// since is the histogram of the observations made after before; a nil
// before counts as empty. Buckets that do not match give nil.
func (h *histogram) since(before *histogram) *histogram {
	if before == nil {
		return h
	}
	if len(before.bounds) != len(h.bounds) {
		return nil
	}
	out := &histogram{bounds: h.bounds, counts: make([]float64, len(h.counts))}
	for i := range h.counts {
		if h.bounds[i] != before.bounds[i] || h.counts[i] < before.counts[i] {
			return nil // the buckets changed or the process restarted
		}
		out.counts[i] = h.counts[i] - before.counts[i]
	}
	return out
}

// quantile estimates the q-quantile as Prometheus' histogram_quantile does:
// it finds the bucket holding rank q*count and interpolates linearly inside
// it (the first bucket starts at 0; a rank in the +Inf bucket gives the
// highest finite bound). It returns NaN for an empty histogram.
func (h *histogram) quantile(q float64) float64 {
	if h == nil || len(h.counts) == 0 {
		return math.NaN()
	}
	total := h.counts[len(h.counts)-1]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	b := 0
	for b < len(h.counts)-1 && h.counts[b] < rank {
		b++
	}
	if b == len(h.counts)-1 {
		if b == 0 {
			return math.NaN()
		}
		return h.bounds[b-1]
	}
	if b == 0 && h.bounds[0] <= 0 {
		return h.bounds[0]
	}
	start, end, count := 0.0, h.bounds[b], h.counts[b]
	if b > 0 {
		start = h.bounds[b-1]
		count -= h.counts[b-1]
		rank -= h.counts[b-1]
	}
	return start + (end-start)*(rank/count)
}

// formatSeconds shows a latency in ms below a second, else in s; NaN
// (nothing observed) shows as "–".
func formatSeconds(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v < 1:
		return strconv.FormatFloat(v*1000, 'f', 1, 64) + " ms"
	default:
		return strconv.FormatFloat(v, 'f', 2, 64) + " s"
	}
}
