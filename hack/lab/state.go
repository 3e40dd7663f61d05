package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// state is what the lab must remember between verbs: what it changed on the
// host (to restore it) and which faults are active.
type state struct {
	Owner   string            `json:"owner"`         // the .lab dir of the checkout that owns the lab
	CNI     string            `json:"cni,omitempty"` // the profile: "" or bridge, or calico
	Sysctls map[string]string `json:"sysctls"`       // host values before the lab changed them
	Faults  map[string]fault  `json:"faults"`        // active faults by name
}

type fault struct {
	Node string `json:"node,omitempty"`
	Set  string `json:"set,omitempty"`
}

// hostSysctls are the host settings the lab changes and restores.
// (felix turns on conntrack accounting).
var hostSysctls = []string{"net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.netfilter.nf_conntrack_acct"}

type lab struct {
	p paths
	s state
}

func newLab() (*lab, error) {
	p, err := newPaths()
	if err != nil {
		return nil, err
	}
	l := &lab{p: p}
	if err := l.load(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *lab) load() error {
	b, err := os.ReadFile(l.p.State())
	if errors.Is(err, fs.ErrNotExist) {
		l.s = state{Owner: l.p.Lab, Sysctls: map[string]string{}, Faults: map[string]fault{}}
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &l.s); err != nil {
		return fmt.Errorf("read %s: %w", l.p.State(), err)
	}
	if l.s.Faults == nil {
		l.s.Faults = map[string]fault{}
	}
	return nil
}

func (l *lab) save() error {
	b, err := json.MarshalIndent(l.s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(l.p.State()), 0o755); err != nil {
		return err
	}
	return os.WriteFile(l.p.State(), b, 0o644)
}

// takeOver tears down a lab left by another checkout whose processes are
// all gone (a killed session, a deleted clone); a live one is refused.
func (l *lab) takeOver(otherLab string) error {
	other := &lab{p: l.p}
	other.p.Lab = otherLab
	_ = other.load()
	for _, name := range other.procNames() {
		if pid, ok := other.alive(name); ok {
			return fmt.Errorf("another netsleuth lab is running from %s (%s, pid %d): run 'go run ./hack/lab down' there first", otherLab, name, pid)
		}
	}
	if pids := other.pidsReferencing(otherLab); len(pids) > 0 {
		return fmt.Errorf("another netsleuth lab is running from %s (pids %v): run 'go run ./hack/lab down' there first", otherLab, pids)
	}
	step("a lab left by %s has no live process: tearing its remains down", otherLab)
	return other.down(context.Background())
}

// claim makes sure no other checkout's lab runs on this machine (addresses
// and namespace names are fixed) and records this one as the owner.
func (l *lab) claim() error {
	owner := filepath.Join(l.p.Run, "owner")
	if b, err := os.ReadFile(owner); err == nil && string(b) != l.p.Lab {
		if err := l.takeOver(string(b)); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(l.p.Run, 0o755); err != nil {
		return err
	}
	return os.WriteFile(owner, []byte(l.p.Lab), 0o644)
}
