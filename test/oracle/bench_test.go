package oracle

import (
	"testing"

	"github.com/netsleuth/netsleuth/probes/policy"
)

var sink bool

// BenchmarkOursBuild measures Compile on the benchmark workload.
func BenchmarkOursBuild(b *testing.B) {
	w := Generate(Bench)
	b.ReportAllocs()
	for b.Loop() {
		policy.Compile(w.Pods, w.Namespaces, w.Policies)
	}
}

// BenchmarkOursMatrix measures the full 5M-verdict matrix (build excluded).
func BenchmarkOursMatrix(b *testing.B) {
	w := Generate(Bench)
	e := policy.Compile(w.Pods, w.Namespaces, w.Policies)
	b.ReportAllocs()
	for b.Loop() {
		e.Matrix(BenchPorts, nil)
	}
	b.ReportMetric(float64(b.N)*5e6/b.Elapsed().Seconds(), "verdicts/s")
}

// BenchmarkOursBuildAndMatrix is the end-to-end figure.
func BenchmarkOursBuildAndMatrix(b *testing.B) {
	w := Generate(Bench)
	b.ReportAllocs()
	for b.Loop() {
		policy.Compile(w.Pods, w.Namespaces, w.Policies).Matrix(BenchPorts, nil)
	}
	b.ReportMetric(float64(b.N)*5e6/b.Elapsed().Seconds(), "verdicts/s")
}

// BenchmarkCyclonusBuild measures cyclonus's BuildNetworkPolicies.
func BenchmarkCyclonusBuild(b *testing.B) {
	w := Generate(Bench)
	b.ReportAllocs()
	for b.Loop() {
		NewCyclonus(w)
	}
}

// BenchmarkCyclonusVerdicts measures cyclonus per verdict over the benchmark
// matrix in pair order (b.N verdicts; 5M of them is the full matrix). Run
// with -benchtime=5000000x for the whole matrix.
func BenchmarkCyclonusVerdicts(b *testing.B) {
	w := Generate(Bench)
	c := NewCyclonus(w)
	n := len(w.Pods)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q := BenchPorts[(i/(n*n))%len(BenchPorts)]
		sink = c.Allowed((i/n)%n, i%n, q)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verdicts/s")
}
