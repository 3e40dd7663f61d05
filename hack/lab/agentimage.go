package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// The lab's agent image is the release's: hack/agentimage builds it with ko
// from .goreleaser.yaml's kos entry and the base hack/agentimage defines, for
// this machine's platform, as a docker-archive the nodes import.

// agentImageTool is the built hack/agentimage, cached under the ko version it
// pins and a digest of its sources: a cold build compiles ko (minutes), later
// ones reuse it until the tool itself changes.
func (l *lab) agentImageTool() (string, error) {
	dir := filepath.Join(l.p.Root, "hack", "agentimage")
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return "", err
	}
	slices.Sort(names)
	h, ko := sha256.New(), "ko"
	for _, n := range names {
		base := filepath.Base(n)
		if base != "go.mod" && base != "go.sum" && (!strings.HasSuffix(base, ".go") || strings.HasSuffix(base, "_test.go")) {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", base, len(b))
		h.Write(b)
		if base == "go.mod" {
			ko = "ko-" + koVersion(string(b))
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))[:12]
	return filepath.Join(l.p.Cache, "agentimage-"+ko+"-"+sum, "agentimage"), nil
}

// koVersion is the version of ko a go.mod requires, "unknown" without one.
func koVersion(gomod string) string {
	for _, line := range strings.Split(gomod, "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == "github.com/google/ko" {
			return f[1]
		}
	}
	return "unknown"
}

// buildAgentImage builds the agent image from this checkout into
// .lab/agent-image.tar and returns its path.
func (l *lab) buildAgentImage(ctx context.Context) (string, error) {
	tool, err := l.agentImageTool()
	if err != nil {
		return "", err
	}
	if err := l.cachedBuild(ctx, filepath.Join(l.p.Root, "hack", "agentimage"), ".", tool, "", "-s -w"); err != nil {
		return "", err
	}
	out := filepath.Join(l.p.Lab, "agent-image.tar")
	cmd := exec.CommandContext(ctx, tool, "build", "-tag", agentImage, "-platform", "linux/"+runtime.GOARCH, "-out", out)
	cmd.Dir = l.p.Root
	res, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("agent image: %s: %w: %s", tool, err, strings.TrimSpace(string(res)))
	}
	step("agent image: %s", lastLine(string(res)))
	return out, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
