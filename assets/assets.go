// Package assets embeds the data files probes reason with: runtime socket
// paths, the pod CIDR sizing table and anything else that is data, not code.
package assets

import (
	"embed"
	"fmt"
	"math/bits"
	"sort"

	"sigs.k8s.io/yaml"
)

// FS holds every embedded data file.
//
//go:embed *.yaml
var FS embed.FS

// Socket is one container runtime socket (or socket directory) on a node.
type Socket struct {
	Path      string `json:"path"`
	Runtime   string `json:"runtime"`
	Directory bool   `json:"directory,omitempty"`
}

// RuntimeSockets is the content of runtime-sockets.yaml.
type RuntimeSockets struct {
	// Aliases maps a directory to the one it is a symlink to (/var/run → /run).
	Aliases map[string]string `json:"aliases"`
	Sockets []Socket          `json:"sockets"`
}

// CIDRRow is one row of the pod CIDR sizing table: nodes with up to MaxPods
// pods get a block of Addresses addresses (/PrefixLength for IPv4).
type CIDRRow struct {
	MaxPods      int `json:"maxPods"`
	PrefixLength int `json:"prefixLength"`
	Addresses    int `json:"addresses"`
}

// PodCIDRTable is the content of podcidr-table.yaml.
type PodCIDRTable struct {
	Rows      []CIDRRow `json:"rows"`
	WarnRatio float64   `json:"warnRatio"`
}

// LoadRuntimeSockets parses runtime-sockets.yaml.
func LoadRuntimeSockets() (RuntimeSockets, error) {
	var s RuntimeSockets
	err := load("runtime-sockets.yaml", &s)
	return s, err
}

// LoadPodCIDRTable parses podcidr-table.yaml; rows come back sorted by MaxPods.
func LoadPodCIDRTable() (PodCIDRTable, error) {
	var t PodCIDRTable
	if err := load("podcidr-table.yaml", &t); err != nil {
		return t, err
	}
	sort.Slice(t.Rows, func(i, j int) bool { return t.Rows[i].MaxPods < t.Rows[j].MaxPods })
	return t, nil
}

// MustPodCIDRTable is LoadPodCIDRTable for callers that treat a broken
// embedded file as a programming error (it is covered by this package's tests).
func MustPodCIDRTable() PodCIDRTable {
	t, err := LoadPodCIDRTable()
	if err != nil {
		panic(err)
	}
	return t
}

// MustRuntimeSockets is LoadRuntimeSockets, panicking on a broken embedded file.
func MustRuntimeSockets() RuntimeSockets {
	s, err := LoadRuntimeSockets()
	if err != nil {
		panic(err)
	}
	return s
}

// HostBitsFor returns how many host bits (log2 of addresses) a node's pod CIDR
// should have for maxPods: the table row that holds maxPods, or beyond the
// table the smallest power of two holding 2 x maxPods addresses.
func (t PodCIDRTable) HostBitsFor(maxPods int) int {
	for _, r := range t.Rows {
		if maxPods <= r.MaxPods {
			return bits.Len(uint(r.Addresses - 1))
		}
	}
	return bits.Len(uint(2*maxPods - 1))
}

// MaxPodsFor returns the largest maxPods the table allows in a block with
// hostBits host bits: the last row whose block fits, or beyond the table
// half the block's addresses.
func (t PodCIDRTable) MaxPodsFor(hostBits int) int {
	if hostBits >= 30 {
		hostBits = 30 // a larger block than any maxPods needs
	}
	best := 0
	for _, r := range t.Rows {
		if bits.Len(uint(r.Addresses-1)) <= hostBits {
			best = r.MaxPods
		}
	}
	if n := len(t.Rows); n > 0 && bits.Len(uint(t.Rows[n-1].Addresses-1)) < hostBits {
		best = (1 << hostBits) / 2
	}
	return best
}

func load(name string, v any) error {
	b, err := FS.ReadFile(name)
	if err != nil {
		return fmt.Errorf("reading embedded %s: %w", name, err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		return fmt.Errorf("parsing embedded %s: %w", name, err)
	}
	return nil
}
