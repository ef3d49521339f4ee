package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Critical values from printed Student-t tables (two-sided 5%, one-sided 5%, etc.).
func TestStudentTCDFTableValues(t *testing.T) {
	cases := []struct{ t, df, want float64 }{
		{2.228139, 10, 0.975},
		{2.015048, 5, 0.95},
		{2.042272, 30, 0.975},
		{5.840909, 3, 0.995},
		{2.527977, 20, 0.99},
		{12.706205, 1, 0.975},
		{1.644854, math.Inf(1), 0.95},
		{0, 7, 0.5},
		{-2.228139, 10, 0.025},
	}
	for _, c := range cases {
		if got := StudentTCDF(c.t, c.df); math.Abs(got-c.want) > 2e-6 {
			t.Errorf("StudentTCDF(%g, %g) = %.8f, want %.6f", c.t, c.df, got, c.want)
		}
	}
}

// df 1 (Cauchy) and df 2 have closed forms.
func TestStudentTCDFClosedForms(t *testing.T) {
	for _, x := range []float64{-30, -3, -1, -0.2, 0.1, 0.7, 2, 9, 100} {
		cauchy := 0.5 + math.Atan(x)/math.Pi
		if got := StudentTCDF(x, 1); math.Abs(got-cauchy) > 1e-12 {
			t.Errorf("df=1, t=%g: got %.15f want %.15f", x, got, cauchy)
		}
		df2 := 0.5 + x/(2*math.Sqrt(2+x*x))
		if got := StudentTCDF(x, 2); math.Abs(got-df2) > 1e-12 {
			t.Errorf("df=2, t=%g: got %.15f want %.15f", x, got, df2)
		}
	}
}

// For fractional degrees of freedom (Welch gives those), compare with Simpson integration of the density.
func TestStudentTCDFAgainstNumericIntegration(t *testing.T) {
	for _, df := range []float64{1.5, 3.7, 8, 17.25, 120} {
		lg1, _ := math.Lgamma((df + 1) / 2)
		lg2, _ := math.Lgamma(df / 2)
		norm := math.Exp(lg1-lg2) / math.Sqrt(df*math.Pi)
		pdf := func(x float64) float64 { return norm * math.Pow(1+x*x/df, -(df+1)/2) }
		for _, x := range []float64{0.3, 1.1, 2.5, 5} {
			// P(0 ≤ T ≤ x) by Simpson's rule, plus the half below zero.
			const n = 20000
			h := x / n
			sum := pdf(0) + pdf(x)
			for i := 1; i < n; i++ {
				w := 2.0
				if i%2 == 1 {
					w = 4
				}
				sum += w * pdf(float64(i)*h)
			}
			want := 0.5 + sum*h/3
			if got := StudentTCDF(x, df); math.Abs(got-want) > 1e-9 {
				t.Errorf("StudentTCDF(%g, df=%g) = %.12f, numeric integral %.12f", x, df, got, want)
			}
		}
	}
}

func TestRegIncBetaIdentities(t *testing.T) {
	for _, x := range []float64{0.01, 0.2, 0.5, 0.77, 0.99} {
		for _, a := range []float64{0.5, 1, 2.5, 7, 40} {
			if got, want := RegIncBeta(a, 1, x), math.Pow(x, a); math.Abs(got-want) > 1e-12 {
				t.Errorf("I_%g(%g,1) = %g, want x^a = %g", x, a, got, want)
			}
			if got, want := RegIncBeta(1, a, x), 1-math.Pow(1-x, a); math.Abs(got-want) > 1e-12 {
				t.Errorf("I_%g(1,%g) = %g, want 1-(1-x)^b = %g", x, a, got, want)
			}
			for _, b := range []float64{0.5, 3, 11} {
				if s := RegIncBeta(a, b, x) + RegIncBeta(b, a, 1-x); math.Abs(s-1) > 1e-12 {
					t.Errorf("symmetry broken at a=%g b=%g x=%g: sum %g", a, b, x, s)
				}
			}
		}
		if got, want := RegIncBeta(2, 2, x), 3*x*x-2*x*x*x; math.Abs(got-want) > 1e-12 {
			t.Errorf("I_%g(2,2) = %g, want %g", x, got, want)
		}
	}
	for _, a := range []float64{0.5, 3, 100} {
		if got := RegIncBeta(a, a, 0.5); math.Abs(got-0.5) > 1e-12 {
			t.Errorf("I_0.5(%g,%g) = %g, want 0.5", a, a, got)
		}
	}
	if !math.IsNaN(RegIncBeta(-1, 2, 0.5)) || !math.IsNaN(RegIncBeta(1, 2, 1.5)) {
		t.Error("RegIncBeta accepts invalid arguments")
	}
}

// I_p(k, n−k+1) = P(Binomial(n, p) ≥ k): check against a direct sum of the binomial pmf.
func TestRegIncBetaBinomialTail(t *testing.T) {
	for _, n := range []int{10, 37} {
		for _, p := range []float64{0.05, 0.3, 0.8} {
			for k := 1; k <= n; k += 3 {
				tail := 0.0
				for j := k; j <= n; j++ {
					lc, _ := math.Lgamma(float64(n + 1))
					lj, _ := math.Lgamma(float64(j + 1))
					lnj, _ := math.Lgamma(float64(n - j + 1))
					tail += math.Exp(lc - lj - lnj + float64(j)*math.Log(p) + float64(n-j)*math.Log1p(-p))
				}
				if got := RegIncBeta(float64(k), float64(n-k+1), p); math.Abs(got-tail) > 1e-11 {
					t.Errorf("n=%d p=%g k=%d: I=%.14f, binomial tail %.14f", n, p, k, got, tail)
				}
			}
		}
	}
}

func TestWelchKnownExample(t *testing.T) {
	// Means 3 and 8, both variances 2.5, n 5 each: se² = 0.5+0.5, t = −5, df = 1/(2·0.25/4) = 8.
	a := []float64{1, 2, 3, 4, 5}
	b := []float64{6, 7, 8, 9, 10}
	tt, df, p := Welch(a, b)
	if math.Abs(tt+5) > 1e-12 || math.Abs(df-8) > 1e-12 {
		t.Fatalf("Welch t=%g df=%g, want -5, 8", tt, df)
	}
	// P(T8 ≥ −5) = 1 − P(T8 ≥ 5); R's pt(-5, 8) = 0.0005264 (two-sided 0.001053).
	if math.Abs(p-(1-0.00052636)) > 1e-7 {
		t.Errorf("p(a > b) = %.8f, want %.8f", p, 1-0.00052636)
	}
	if _, _, p := Welch(b, a); math.Abs(p-0.00052636) > 1e-7 {
		t.Errorf("p(b > a) = %.8f, want 0.00052636", p)
	}
}

// Under the null hypothesis the one-sided p-value is uniform: about 5% of draws fall below 0.05.
// With a real shift it should almost always be small.
func TestWelchCalibration(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func(n int, mu, sigma float64) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = mu + sigma*rng.NormFloat64()
		}
		return xs
	}
	const trials = 2000
	below := 0
	for range trials {
		if _, _, p := Welch(draw(12, 0, 1), draw(30, 0, 3)); p < 0.05 {
			below++
		}
	}
	if rate := float64(below) / trials; rate < 0.035 || rate > 0.065 {
		t.Errorf("null rejection rate %.3f, want about 0.05", rate)
	}
	detected := 0
	for range 200 {
		if _, _, p := Welch(draw(50, 1, 1), draw(50, 0, 1)); p < 0.01 {
			detected++
		}
	}
	if detected < 190 {
		t.Errorf("a shift of one standard deviation with n=50 detected only %d/200 times", detected)
	}
}

func TestPermutationTestLess(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	low := make([]float64, 60)
	high := make([]float64, 60)
	for i := range low {
		low[i] = rng.Float64() * 0.3
		high[i] = 0.2 + rng.Float64()*0.3
	}
	if p := PermutationTestLess(low, high, 2000, 1); p > 0.001 {
		t.Errorf("clearly smaller group: p = %g", p)
	}
	if p := PermutationTestLess(high, low, 2000, 1); p < 0.99 {
		t.Errorf("clearly larger group: p = %g, want near 1", p)
	}
	// Same distribution: p-values should spread out, not pile up near 0.
	small := 0
	for s := range 100 {
		a, b := make([]float64, 20), make([]float64, 20)
		for i := range a {
			a[i], b[i] = rng.Float64(), rng.Float64()
		}
		if PermutationTestLess(a, b, 300, int64(s)) < 0.05 {
			small++
		}
	}
	if small > 15 {
		t.Errorf("null: %d/100 p-values below 0.05", small)
	}
}

func TestBootstrapMeanCI(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	// Coverage: the 95% interval should contain the true mean (0.5) in roughly 95% of samples.
	covered := 0
	const trials = 200
	for s := range trials {
		xs := make([]float64, 100)
		for i := range xs {
			xs[i] = rng.Float64()
		}
		lo, hi := BootstrapMeanCI(xs, 500, int64(s))
		if lo > Mean(xs) || hi < Mean(xs) {
			t.Fatalf("interval [%g, %g] excludes the sample mean %g", lo, hi, Mean(xs))
		}
		if lo <= 0.5 && 0.5 <= hi {
			covered++
		}
	}
	if covered < 180 {
		t.Errorf("coverage %d/%d, want about 95%%", covered, trials)
	}
	lo, hi := BootstrapMeanCI([]float64{0.25, 0.25, 0.25}, 100, 1)
	if lo != 0.25 || hi != 0.25 {
		t.Errorf("constant data: CI [%g, %g], want [0.25, 0.25]", lo, hi)
	}
}

func TestDescriptive(t *testing.T) {
	xs := []float64{0.1, 0.9, 0.6, 0.4}
	if m := Mean(xs); math.Abs(m-0.5) > 1e-15 {
		t.Errorf("Mean = %g", m)
	}
	// Deviations −0.4, 0.4, 0.1, −0.1: squares sum 0.34, over n−1 = 3.
	if v := Variance(xs); math.Abs(v-0.34/3) > 1e-15 {
		t.Errorf("Variance = %g", v)
	}
	if Max(xs) != 0.9 || FracAbove(xs, 0.5) != 0.5 {
		t.Errorf("Max %g FracAbove %g", Max(xs), FracAbove(xs, 0.5))
	}
	if !math.IsNaN(Mean(nil)) || !math.IsNaN(Variance([]float64{1})) {
		t.Error("empty inputs should give NaN")
	}
}
