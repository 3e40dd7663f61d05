package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var labData = map[string]string{
	"ProjectName": "netsleuth", "Version": "1.2.3", "Tag": "v1.2.3", "FullCommit": "abc1234def", "Commit": "abc1234def",
	"ShortCommit": "abc1234", "CommitTimestamp": "1700000000", "CommitDate": "2023-11-14T22:13:20Z",
}

// The repository's own kos entry, as the lab reads it: what the agent pods
// rely on (non-root user, both platforms, the release's CGO-free build with
// its version stamped in) is there.
func TestSettingsOfTheRepository(t *testing.T) {
	s, err := loadSettings(repoConfig(t), labData)
	if err != nil {
		t.Fatal(err)
	}
	if s.User != "65534:65534" {
		t.Errorf("user %q, want 65534:65534 (the agent pods' runAsUser/runAsGroup)", s.User)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		if !slices.Contains(s.Platforms, p) {
			t.Errorf("platforms %v lack %s", s.Platforms, p)
		}
	}
	if !slices.Contains(s.Env, "CGO_ENABLED=0") {
		t.Errorf("env %v lacks CGO_ENABLED=0 (release builds are CGO-free)", s.Env)
	}
	if ld := strings.Join(s.Ldflags, " "); !strings.Contains(ld, "cmd.version=1.2.3") || strings.Contains(ld, "{{") {
		t.Errorf("ldflags %q: want the version rendered in", ld)
	}
	if got := s.Labels["org.opencontainers.image.version"]; got != "1.2.3" {
		t.Errorf("version label %q, want 1.2.3", got)
	}
	if s.CreationTime.Unix() != 1700000000 {
		t.Errorf("creation time %s, want the commit's", s.CreationTime)
	}
	if s.Main != "." {
		t.Errorf("main %q, want .", s.Main)
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), configFile)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const pinned = "127.0.0.1:5117/nb@sha256:570322182eff9fafe1bebd63e7503d78620a70da7dc1b5be5c2c071fd3dcbcbb"

// The kos entry inherits what it leaves out from its build, as GoReleaser
// does, and its own values win.
func TestSettingsDefaultsFromBuild(t *testing.T) {
	p := writeConfig(t, `
builds:
  - id: netsleuth
    main: ./cmd/x
    env: [CGO_ENABLED=0]
    flags: [-trimpath]
    ldflags: ["-X main.v={{ .Version }}"]
kos:
  - id: netsleuth
    base_image: `+pinned+`
    flags: [-tags=ko]
`)
	s, err := loadSettings(p, labData)
	if err != nil {
		t.Fatal(err)
	}
	if s.Main != "./cmd/x" || !slices.Equal(s.Env, []string{"CGO_ENABLED=0"}) || !slices.Equal(s.Ldflags, []string{"-X main.v=1.2.3"}) {
		t.Errorf("from the build: main %q env %v ldflags %v", s.Main, s.Env, s.Ldflags)
	}
	if !slices.Equal(s.Flags, []string{"-tags=ko"}) {
		t.Errorf("flags %v, want the kos entry's own", s.Flags)
	}
	if !slices.Equal(s.Platforms, []string{"linux/amd64"}) {
		t.Errorf("platforms %v, want GoReleaser's default linux/amd64", s.Platforms)
	}
}

// What the lab cannot reproduce faithfully is an error, never a silently
// different image.
func TestSettingsRefused(t *testing.T) {
	cases := map[string]string{
		"base by tag":       "kos: [{id: netsleuth, base_image: 127.0.0.1:5117/nb:1}]\nbuilds: [{id: netsleuth}]",
		"unknown field":     "kos: [{id: netsleuth, base_image: " + pinned + ", labels: {a: '{{ .Nope }}'}}]\nbuilds: [{id: netsleuth}]",
		"unknown function":  "kos: [{id: netsleuth, base_image: " + pinned + ", labels: {a: '{{ tolower .Version }}'}}]\nbuilds: [{id: netsleuth}]",
		"time not a number": "kos: [{id: netsleuth, base_image: " + pinned + ", creation_time: '{{ .CommitDate }}'}]\nbuilds: [{id: netsleuth}]",
		"no entry":          "kos: [{id: other, base_image: " + pinned + "}]\nbuilds: [{id: other}]",
		"no build":          "kos: [{id: netsleuth, build: gone, base_image: " + pinned + "}]\nbuilds: [{id: netsleuth}]",
	}
	for name, body := range cases {
		if _, err := loadSettings(writeConfig(t, body), labData); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
