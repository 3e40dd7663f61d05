// Package ui is netsleuth's Bubble Tea TUI: a list of probes with live status
// on the left and the selected probe's findings on the right.
package ui

import (
	"github.com/netsleuth/netsleuth/model"
)

// phase is where a probe is in its run.
type phase int

const (
	phasePending phase = iota
	phaseRunning
	phaseDone
)

// probeState is everything the view shows about one probe.
type probeState struct {
	info     model.ProbeInfo
	phase    phase
	stage    string
	findings []model.Finding
	summary  model.Summary
}

// apply folds one event into the probe's state.
func (s *probeState) apply(e model.Event) {
	switch e.Type {
	case model.EventStarted:
		s.phase = phaseRunning
		s.stage = "starting"
	case model.EventProgress:
		s.stage = e.Message
	case model.EventFinding:
		if e.Finding != nil {
			s.findings = append(s.findings, *e.Finding)
			s.summary.Add(e.Finding.Status)
		}
	case model.EventFinished:
		s.phase = phaseDone
		s.stage = ""
	}
}

// worst is the most severe status among the probe's findings.
func (s *probeState) worst() model.Status {
	switch sum := s.summary; {
	case sum.Error > 0:
		return model.StatusError
	case sum.Fail > 0:
		return model.StatusFail
	case sum.Warn > 0:
		return model.StatusWarn
	case sum.Pass > 0:
		return model.StatusPass
	}
	return model.StatusSkip
}

// Messages: nouns with a past-tense verb, tagged with the run ID.

// eventReceivedMsg carries one runner event to Update.
type eventReceivedMsg struct {
	runID string
	event model.Event
}

// runFinishedMsg says the runner has returned and every cleanup has run.
type runFinishedMsg struct{ runID string }
