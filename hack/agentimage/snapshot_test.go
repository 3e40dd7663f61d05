package main

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
)

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

var goreleaserSnapshot = flag.Bool("goreleaser", false,
	"run `goreleaser release --snapshot --clean` in the repository (minutes: every release binary) "+
		"and check the agent image; needs goreleaser on PATH and a container daemon API at DOCKER_HOST")

// The release's own snapshot: kos builds the agent image for both platforms
// with SBOMs, and the image loaded into the daemon is the one the agent pods
// expect.
func TestGoreleaserSnapshot(t *testing.T) {
	if !*goreleaserSnapshot {
		t.Skip("NOT RUN: the GoReleaser snapshot takes minutes; run with -goreleaser (goreleaser on PATH, DOCKER_HOST a container daemon, e.g. podman system service)")
	}
	root := filepath.Dir(repoConfig(t))
	cmd := exec.Command("goreleaser", "release", "--snapshot", "--clean")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("goreleaser release --snapshot --clean: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "SBOM") || strings.Contains(line, "Loaded") || strings.Contains(line, "release succeeded") {
			t.Log(strings.TrimSpace(line))
		}
	}
	ref := snapshotImage(t, root)
	for _, f := range []string{"netsleuth-linux-amd64.spdx.json", "netsleuth-linux-arm64.spdx.json", "netsleuth-index.spdx.json"} {
		b, err := os.ReadFile(filepath.Join(root, "dist", "sbom", f))
		if err != nil || !strings.Contains(string(b), `"spdxVersion"`) {
			t.Errorf("SBOM %s: %v (not an SPDX document?)", f, err)
		}
	}
	img, err := daemon.Image(ref)
	if err != nil {
		t.Fatalf("the snapshot's image in the daemon: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	// probes/agent.Binary: the agent pods run this path.
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/ko-app/netsleuth"}) {
		t.Errorf("entrypoint %v, want [/ko-app/netsleuth] (probes/agent.Binary)", cfg.Config.Entrypoint)
	}
	if cfg.Config.User != "65534:65534" {
		t.Errorf("user %q, want 65534:65534", cfg.Config.User)
	}
	// Tagged with its version (the version label), as a release tags it.
	v := cfg.Config.Labels["org.opencontainers.image.version"]
	byVersion, err := daemon.Image(ref.Context().Tag(v))
	if err != nil {
		t.Fatalf("no image tagged with the version label %q: %v", v, err)
	}
	want, _ := img.Digest()
	if got, _ := byVersion.Digest(); got != want {
		t.Errorf("%s is %s, not the snapshot's %s", ref.Context().Tag(v), got, want)
	}
	t.Logf("snapshot image %s: %s/%s, entrypoint %v, user %s", ref, cfg.OS, cfg.Architecture, cfg.Config.Entrypoint, cfg.Config.User)
}

// snapshotImage is the agent image the snapshot recorded in
// dist/artifacts.json (a "Docker Manifest" of kos entry koID, with a digest).
func snapshotImage(t *testing.T, root string) name.Reference {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "dist", "artifacts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var arts []struct {
		Name  string         `json:"name"`
		Type  string         `json:"type"`
		Extra map[string]any `json:"extra"`
	}
	if err := json.Unmarshal(b, &arts); err != nil {
		t.Fatal(err)
	}
	for _, a := range arts {
		if a.Type != "Docker Manifest" || a.Extra["ID"] != koID {
			continue
		}
		// A snapshot's "digest" is the loaded image's, as hex (its tag).
		if d, _ := a.Extra["Digest"].(string); !hexDigest.MatchString(strings.TrimPrefix(d, "sha256:")) {
			t.Errorf("artifact %s has no digest: %v", a.Name, a.Extra)
		}
		ref, err := name.ParseReference(a.Name)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("artifact %s, digest %v", a.Name, a.Extra["Digest"])
		return ref
	}
	t.Fatalf("dist/artifacts.json has no Docker Manifest of kos %q", koID)
	return nil
}
