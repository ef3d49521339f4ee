// Package stats holds the few statistics the evaluation needs to tell an effect from noise:
// bootstrap confidence intervals of a mean, Welch's t-test with a real Student-t CDF (through the
// regularized incomplete beta function), and a permutation test of one mean being smaller.
package stats

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Mean of xs; NaN when xs is empty.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// Variance is the unbiased sample variance (divides by n−1); NaN for fewer than two values.
func Variance(xs []float64) float64 {
	if len(xs) < 2 {
		return math.NaN()
	}
	m := Mean(xs)
	ss := 0.0
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return ss / float64(len(xs)-1)
}

// Max of xs; NaN when empty.
func Max(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	m := xs[0]
	for _, x := range xs[1:] {
		m = math.Max(m, x)
	}
	return m
}

// FracAbove is the fraction of xs strictly above threshold (the paper's "num_hits" rate at 0.5).
func FracAbove(xs []float64, threshold float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	n := 0
	for _, x := range xs {
		if x > threshold {
			n++
		}
	}
	return float64(n) / float64(len(xs))
}

// BootstrapMeanCI is the 95% percentile-bootstrap interval of the mean: resample xs with
// replacement `resamples` times, take the 2.5% and 97.5% quantiles of the resampled means.
func BootstrapMeanCI(xs []float64, resamples int, seed int64) (lo, hi float64) {
	if len(xs) == 0 || resamples <= 0 {
		return math.NaN(), math.NaN()
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	means := make([]float64, resamples)
	for r := range means {
		sum := 0.0
		for range xs {
			sum += xs[rng.IntN(len(xs))]
		}
		means[r] = sum / float64(len(xs))
	}
	sort.Float64s(means)
	return quantile(means, 0.025), quantile(means, 0.975)
}

// quantile of sorted values with linear interpolation between order statistics.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(math.Floor(pos))
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(i)
	return sorted[i]*(1-frac) + sorted[i+1]*frac
}

// Welch compares the means of a and b without assuming equal variances.
// t = (mean a − mean b) / √(var a/na + var b/nb), with the Welch–Satterthwaite degrees of freedom;
// pGreater is the one-sided p-value of "mean a > mean b" = P(T ≥ t) under Student's t with df.
func Welch(a, b []float64) (t, df, pGreater float64) {
	if len(a) < 2 || len(b) < 2 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	va, vb := Variance(a)/float64(len(a)), Variance(b)/float64(len(b))
	se2 := va + vb
	diff := Mean(a) - Mean(b)
	if se2 == 0 {
		// No spread at all: the sign of the difference decides, there is no noise to test against.
		switch {
		case diff > 0:
			return math.Inf(1), math.Inf(1), 0
		case diff < 0:
			return math.Inf(-1), math.Inf(1), 1
		default:
			return 0, math.Inf(1), 0.5
		}
	}
	t = diff / math.Sqrt(se2)
	// Welch–Satterthwaite: df = (va+vb)² / (va²/(na−1) + vb²/(nb−1)).
	df = se2 * se2 / (va*va/float64(len(a)-1) + vb*vb/float64(len(b)-1))
	return t, df, 1 - StudentTCDF(t, df)
}

// PermutationTestLess is the one-sided p-value of "mean a < mean b": the share of random relabellings
// of the pooled values whose mean(b) − mean(a) is at least the observed one, counted as (k+1)/(n+1)
// so that p is never exactly zero.
func PermutationTestLess(a, b []float64, permutations int, seed int64) float64 {
	if len(a) == 0 || len(b) == 0 || permutations <= 0 {
		return math.NaN()
	}
	observed := Mean(b) - Mean(a)
	pooled := append(append([]float64{}, a...), b...)
	total := 0.0
	for _, x := range pooled {
		total += x
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x2545f4914f6cdd1d))
	na, nb := float64(len(a)), float64(len(b))
	// Tolerance so that relabellings equal to the observed split (up to rounding) count as "at least".
	eps := 1e-12 * (1 + math.Abs(observed))
	atLeast := 0
	for range permutations {
		// A partial Fisher–Yates shuffle: the first len(a) values become the new group a.
		sumA := 0.0
		for i := 0; i < len(a); i++ {
			j := i + rng.IntN(len(pooled)-i)
			pooled[i], pooled[j] = pooled[j], pooled[i]
			sumA += pooled[i]
		}
		stat := (total-sumA)/nb - sumA/na
		if stat >= observed-eps {
			atLeast++
		}
	}
	return float64(atLeast+1) / float64(permutations+1)
}

// StudentTCDF is P(T ≤ t) for Student's t with df degrees of freedom (df > 0, may be fractional).
// With x = df/(df+t²), the two tails together hold I_x(df/2, 1/2) (regularized incomplete beta).
func StudentTCDF(t, df float64) float64 {
	if math.IsNaN(t) || math.IsNaN(df) || df <= 0 {
		return math.NaN()
	}
	if math.IsInf(t, 1) {
		return 1
	}
	if math.IsInf(t, -1) {
		return 0
	}
	if math.IsInf(df, 1) {
		// The limit is the standard normal.
		return 0.5 * math.Erfc(-t/math.Sqrt2)
	}
	tail := 0.5 * RegIncBeta(df/2, 0.5, df/(df+t*t)) // P(T ≥ |t|)
	if t > 0 {
		return 1 - tail
	}
	return tail
}

// RegIncBeta is the regularized incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b) for
// a, b > 0 and 0 ≤ x ≤ 1. It evaluates the continued fraction of B(x; a, b) (modified Lentz method),
// on the side of the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) where the fraction converges fast.
func RegIncBeta(a, b, x float64) float64 {
	switch {
	case math.IsNaN(a) || math.IsNaN(b) || math.IsNaN(x) || a <= 0 || b <= 0 || x < 0 || x > 1:
		return math.NaN()
	case x == 0:
		return 0
	case x == 1:
		return 1
	}
	// Prefactor x^a (1−x)^b / (a B(a,b)), in logs to avoid overflow for large a, b.
	lga, _ := math.Lgamma(a)
	lgb, _ := math.Lgamma(b)
	lgab, _ := math.Lgamma(a + b)
	logFront := lgab - lga - lgb + a*math.Log(x) + b*math.Log1p(-x)
	// The fraction converges quickly for x < (a+1)/(a+b+2); otherwise use the symmetry.
	if x < (a+1)/(a+b+2) {
		return math.Exp(logFront) * betaContinuedFraction(a, b, x) / a
	}
	return 1 - math.Exp(logFront)*betaContinuedFraction(b, a, 1-x)/b
}

// betaContinuedFraction evaluates 1/(1+ d1/(1+ d2/(1+ ...))) with
// d_{2m+1} = −(a+m)(a+b+m)x / ((a+2m)(a+2m+1)) and d_{2m} = m(b−m)x / ((a+2m−1)(a+2m)).
func betaContinuedFraction(a, b, x float64) float64 {
	const (
		maxIter = 10000
		epsilon = 1e-15
		tiny    = 1e-300 // keeps the Lentz denominators away from zero
	)
	c := 1.0
	d := 1 - (a+b)*x/(a+1)
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= maxIter; m++ {
		fm := float64(m)
		// Even step.
		num := fm * (b - fm) * x / ((a + 2*fm - 1) * (a + 2*fm))
		d = 1 + num*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + num/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		// Odd step.
		num = -(a + fm) * (a + b + fm) * x / ((a + 2*fm) * (a + 2*fm + 1))
		d = 1 + num*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + num/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		delta := d * c
		h *= delta
		if math.Abs(delta-1) < epsilon {
			break
		}
	}
	return h
}
