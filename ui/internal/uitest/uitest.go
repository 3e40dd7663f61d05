// Package uitest holds the TUI's test fixtures: reports the probes wrote on
// the lab (testdata/*.json, capture paths neutralised) and the probe list
// of `netsleuth probes -o json`, so goldens do not move with probe wording.
package uitest

import (
	"embed"
	"encoding/json"
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/state"
)

//go:embed testdata/*.json
var files embed.FS

// T0 is the fixed start of every test session.
var T0 = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

// Lab is the lab cluster as the header shows it.
var Lab = model.Cluster{Context: "netsleuth-lab", Server: "https://10.250.0.1:6443", Version: "v1.36.3"}

func read(t testing.TB, name string, v any) {
	t.Helper()
	b, err := files.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// Catalogue is every probe, in the binary's order.
func Catalogue(t testing.TB) []model.ProbeInfo {
	t.Helper()
	var ps []model.ProbeInfo
	read(t, "probes.json", &ps)
	return ps
}

// Demo are the probes of `make demo` (every default probe and external),
// and the others.
func Demo(t testing.TB) (first, extra []model.ProbeInfo) {
	t.Helper()
	for _, p := range Catalogue(t) {
		if p.Default || p.ID == "external" {
			first = append(first, p)
		} else {
			extra = append(extra, p)
		}
	}
	return first, extra
}

// Info returns the catalogue's entry for id.
func Info(t testing.TB, id string) model.ProbeInfo {
	t.Helper()
	for _, p := range Catalogue(t) {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("no probe %s in the catalogue", id)
	return model.ProbeInfo{}
}

// Findings reads the findings of fixture files: snat.json (external with
// the snat fault), healthy.json (every other default probe, healthy),
// coredns-zero.json (dns with CoreDNS at 0 replicas), policy.json, trace.json.
func Findings(t testing.TB, names ...string) []model.Finding {
	t.Helper()
	var all []model.Finding
	for _, n := range names {
		var r struct{ Findings []model.Finding }
		read(t, n+".json", &r)
		all = append(all, r.Findings...)
	}
	return all
}

// Play runs probe in s as run runID from at: started, its findings,
// finished d later.
func Play(s *state.Store, runID, probe string, fs []model.Finding, at time.Time, d time.Duration) {
	s.Apply(model.Event{RunID: runID, Probe: probe, Type: model.EventStarted, Time: at})
	for _, f := range fs {
		if f.Probe == probe {
			s.Apply(model.Event{RunID: runID, Probe: probe, Type: model.EventFinding, Time: at, Finding: &f})
		}
	}
	s.Apply(model.Event{RunID: runID, Probe: probe, Type: model.EventFinished, Time: at.Add(d)})
}

// Store is a finished session of infos with the findings of names.
func Store(t testing.TB, infos []model.ProbeInfo, names ...string) *state.Store {
	t.Helper()
	s := state.New(Lab, T0, "c0ffee12", infos)
	fs := Findings(t, names...)
	at := T0
	for i, in := range infos {
		d := time.Duration(300+100*i) * time.Millisecond
		Play(s, "c0ffee12", in.ID, fs, at, d)
		at = at.Add(d)
	}
	return s
}
