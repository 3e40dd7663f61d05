package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// IPTables applies rendered rulesets with iptables-restore --noflush and
// keeps exactly one jump from FORWARD (at position 1) into the dispatch chain.
// It only ever flushes or deletes chains named <prefix>-*.
type IPTables struct {
	Restore string // iptables-restore binary
	Cmd     string // iptables binary
	Prefix  string
}

func (t *IPTables) run(ctx context.Context, stdin string, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (t *IPTables) restore(ctx context.Context, text string) error {
	_, err := t.run(ctx, text, t.Restore, "-w", "5", "--noflush")
	return err
}

// ownChains lists the filter-table chains carrying our prefix.
func (t *IPTables) ownChains(ctx context.Context) ([]string, error) {
	out, err := t.run(ctx, "", t.Cmd, "-w", "5", "-t", "filter", "-S")
	if err != nil {
		return nil, err
	}
	return parseOwnChains(out, t.Prefix), nil
}

func parseOwnChains(save, prefix string) []string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "-N" && isOwnChain(f[1], prefix) {
			out = append(out, f[1])
		}
	}
	sort.Strings(out)
	return out
}

// isOwnChain matches exactly the names we generate: <prefix>-FWD and
// <prefix>-{I,E,B}-<upper hex>, so a longer prefix of another instance is
// never mistaken for ours.
func isOwnChain(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return false
	}
	if rest == "FWD" {
		return true
	}
	if len(rest) < 3 || !strings.Contains("IEB", rest[:1]) || rest[1] != '-' {
		return false
	}
	for _, c := range rest[2:] {
		if !strings.ContainsRune("0123456789ABCDEF", c) {
			return false
		}
	}
	return true
}

// jumpPositions returns the 1-based FORWARD rule numbers that jump to fwd.
func jumpPositions(forwardRules, fwd string) []int {
	var pos []int
	n := 0
	for _, l := range strings.Split(forwardRules, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		n++
		for i := 0; i+1 < len(f); i++ {
			if (f[i] == "-j" || f[i] == "-g") && f[i+1] == fwd {
				pos = append(pos, n)
				break
			}
		}
	}
	return pos
}

func (t *IPTables) forwardJumps(ctx context.Context) ([]int, error) {
	out, err := t.run(ctx, "", t.Cmd, "-w", "5", "-t", "filter", "-S", "FORWARD")
	if err != nil {
		return nil, err
	}
	return jumpPositions(out, fwdChain(t.Prefix)), nil
}

// deleteJumps removes the FORWARD rules at pos, highest first so numbers stay valid.
func (t *IPTables) deleteJumps(ctx context.Context, pos []int) error {
	sort.Sort(sort.Reverse(sort.IntSlice(pos)))
	for _, p := range pos {
		if _, err := t.run(ctx, "", t.Cmd, "-w", "5", "-t", "filter", "-D", "FORWARD", strconv.Itoa(p)); err != nil {
			return err
		}
	}
	return nil
}

// Apply atomically replaces our chains with rs, deletes our stale chains and
// then ensures the FORWARD jump. It reports whether the jump was (re)placed.
func (t *IPTables) Apply(ctx context.Context, rs Ruleset) (bool, error) {
	existing, err := t.ownChains(ctx)
	if err != nil {
		return false, err
	}
	if err := t.restore(ctx, RestoreText(rs, existing)); err != nil {
		return false, fmt.Errorf("apply ruleset: %w", err)
	}
	pos, err := t.forwardJumps(ctx)
	if err != nil {
		return false, err
	}
	if len(pos) == 1 && pos[0] == 1 {
		return false, nil
	}
	if err := t.deleteJumps(ctx, pos); err != nil {
		return false, err
	}
	_, err = t.run(ctx, "", t.Cmd, "-w", "5", "-t", "filter", "-I", "FORWARD", "1",
		"-m", "comment", "--comment", jumpComment, "-j", fwdChain(t.Prefix))
	return true, err
}

// Cleanup removes our FORWARD jumps, then flushes and deletes our chains.
func (t *IPTables) Cleanup(ctx context.Context) error {
	pos, err := t.forwardJumps(ctx)
	if err != nil {
		return err
	}
	if err := t.deleteJumps(ctx, pos); err != nil {
		return err
	}
	chains, err := t.ownChains(ctx)
	if err != nil || len(chains) == 0 {
		return err
	}
	return t.restore(ctx, CleanupText(chains))
}
