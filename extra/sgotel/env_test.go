package sgotel_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/streamgroup/streamgroup/extra/sgotel"
)

// w3c is the default propagator when no global one is set. Tests name it
// rather than rely on the global, which TestDefaultPropagator changes.
var w3c = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// env is a Hook recording into a span recorder and a manual metric
// reader of its own, so that tests can run in parallel.
type env struct {
	t      testing.TB
	hook   *sgotel.Hook
	tp     *sdktrace.TracerProvider
	rec    *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func newEnv(t testing.TB) *env {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	h, err := sgotel.New(&sgotel.Options{TracerProvider: tp, MeterProvider: mp, Propagator: w3c})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, hook: h, tp: tp, rec: rec, reader: reader}
}

// parent starts a span of the test's own ("job"), the context a publish
// is made in.
func (e *env) parent(ctx context.Context) (context.Context, trace.Span) {
	return e.tp.Tracer("test").Start(ctx, "job")
}

// ended returns the ended spans named name, in the order they ended.
func (e *env) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range e.rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// one returns the one ended span named name.
func (e *env) one(name string) sdktrace.ReadOnlySpan {
	e.t.Helper()
	s := e.ended(name)
	if len(s) != 1 {
		e.t.Fatalf("ended spans named %q: %d; want 1 (all: %s)", name, len(s), e.names())
	}
	return s[0]
}

func (e *env) names() string {
	var n []string
	for _, s := range e.rec.Ended() {
		n = append(n, s.Name())
	}
	return strings.Join(n, ", ")
}

// collect reads the metrics.
func (e *env) collect() metricdata.ResourceMetrics {
	e.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(context.Background(), &rm); err != nil {
		e.t.Fatal(err)
	}
	return rm
}

func find(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// sum adds up the points of the counter name whose attributes include
// every one of match.
func sum(t testing.TB, rm metricdata.ResourceMetrics, name string, match ...attribute.KeyValue) int64 {
	t.Helper()
	m, ok := find(rm, name)
	if !ok {
		return 0
	}
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T; want an int64 sum", name, m.Data)
	}
	if !s.IsMonotonic || s.Temporality != metricdata.CumulativeTemporality {
		t.Fatalf("%s: monotonic %v, temporality %v; want a cumulative counter", name, s.IsMonotonic, s.Temporality)
	}
	var n int64
	for _, p := range s.DataPoints {
		if includes(p.Attributes, match) {
			n += p.Value
		}
	}
	return n
}

// histogram returns the points of the float64 histogram name whose
// attributes include every one of match.
func histogram(t testing.TB, rm metricdata.ResourceMetrics, name string, match ...attribute.KeyValue) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	m, ok := find(rm, name)
	if !ok {
		return nil
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is a %T; want a float64 histogram", name, m.Data)
	}
	var out []metricdata.HistogramDataPoint[float64]
	for _, p := range h.DataPoints {
		if includes(p.Attributes, match) {
			out = append(out, p)
		}
	}
	return out
}

func includes(set attribute.Set, match []attribute.KeyValue) bool {
	for _, kv := range match {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// attrs returns a span's attributes as a map of their values' text.
func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// wantAttrs checks that the span has every attribute of want with its
// value, and none of absent.
func wantAttrs(t testing.TB, s sdktrace.ReadOnlySpan, want map[string]string, absent ...string) {
	t.Helper()
	got := attrs(s)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("span %q: attribute %s = %q (present %v); want %q", s.Name(), k, g, ok, v)
		}
	}
	for _, k := range absent {
		if g, ok := got[k]; ok {
			t.Errorf("span %q: attribute %s = %q; want none", s.Name(), k, g)
		}
	}
}

// fields turns the name/value pairs of hook.Publish.Fields into a map.
func fields(f []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i]] = f[i+1]
	}
	return m
}

// traceparent is the W3C traceparent of a sampled span context.
func traceparent(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID())
}

func keys(m map[string]string) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}
