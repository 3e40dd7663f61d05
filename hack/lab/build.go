package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

var kubeCommands = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}

// cachedBuild builds pkg in module dir into the cache unless the binary is
// already there; the cache path carries the version, so a new version is a
// new build and an old one is never reused by mistake.
func (l *lab) cachedBuild(ctx context.Context, modDir, pkg, out, tags, ldflags string) error {
	if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
		return nil
	}
	start := time.Now()
	step("building %s into %s (a cold build of a cluster component takes minutes)", filepath.Base(out), filepath.Dir(out))
	args := []string{"build", "-trimpath", "-o", out + ".tmp"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	step("built %s in %s", filepath.Base(out), time.Since(start).Round(time.Second))
	return os.Rename(out+".tmp", out)
}

// buildAll builds the cluster components (cached by version) and the lab's
// own programs (rebuilt from this checkout every time; Go's cache makes that
// quick). The agent image, netsleuth itself, is built by buildAgentImage.
func (l *lab) buildAll(ctx context.Context) error {
	kdir := filepath.Join(l.p.Cache, "kubernetes-"+kubeVersion)
	minor := strings.Split(kubeVersion, ".")[1]
	ld := fmt.Sprintf("-s -w -X k8s.io/component-base/version.gitVersion=%s -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=%s", kubeVersion, minor)
	for _, c := range kubeCommands {
		if err := l.cachedBuild(ctx, filepath.Join(l.p.Root, "hack", "kube"), "k8s.io/kubernetes/cmd/"+c, filepath.Join(kdir, c), "providerless,dockerless", ld); err != nil {
			return err
		}
	}
	cdir := filepath.Join(l.p.Cache, "coredns-"+corednsVersion)
	if err := l.cachedBuild(ctx, filepath.Join(l.p.Root, "hack", "coredns"), "github.com/coredns/coredns", filepath.Join(cdir, "coredns"), "", "-s -w"); err != nil {
		return err
	}
	own := map[string]string{
		"pause":           "./hack/pause",
		"labecho":         "./hack/labecho",
		"netpol-enforcer": "./hack/netpol-enforcer",
	}
	for name, pkg := range own {
		out := filepath.Join(l.p.Lab, "bin", name)
		_ = os.Remove(out)
		if err := l.cachedBuild(ctx, l.p.Root, pkg, out, "", "-s -w"); err != nil {
			return err
		}
	}
	return nil
}

func (l *lab) kubeBin(name string) string {
	return filepath.Join(l.p.Cache, "kubernetes-"+kubeVersion, name)
}

func (l *lab) corednsBin() string {
	return filepath.Join(l.p.Cache, "coredns-"+corednsVersion, "coredns")
}

func (l *lab) ownBin(name string) string { return filepath.Join(l.p.Lab, "bin", name) }
