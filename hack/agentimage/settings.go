package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"
)

// configFile is the release configuration the image is defined in.
const configFile = ".goreleaser.yaml"

// koID is the id of the agent image's entry under kos.
const koID = "netsleuth"

// goreleaserBuild and goreleaserKo are the fields of .goreleaser.yaml that
// shape the agent image, as GoReleaser reads them.
type goreleaserBuild struct {
	ID      string   `yaml:"id"`
	Main    string   `yaml:"main"`
	Env     []string `yaml:"env"`
	Flags   []string `yaml:"flags"`
	Ldflags []string `yaml:"ldflags"`
}

type goreleaserKo struct {
	ID                 string            `yaml:"id"`
	Build              string            `yaml:"build"`
	Main               string            `yaml:"main"`
	BaseImage          string            `yaml:"base_image"`
	User               string            `yaml:"user"`
	Labels             map[string]string `yaml:"labels"`
	Annotations        map[string]string `yaml:"annotations"`
	Platforms          []string          `yaml:"platforms"`
	Env                []string          `yaml:"env"`
	Flags              []string          `yaml:"flags"`
	Ldflags            []string          `yaml:"ldflags"`
	CreationTime       string            `yaml:"creation_time"`
	KoDataCreationTime string            `yaml:"ko_data_creation_time"`
}

type goreleaserConfig struct {
	Builds []goreleaserBuild `yaml:"builds"`
	Kos    []goreleaserKo    `yaml:"kos"`
}

// settings is the agent image's definition with GoReleaser's defaults
// applied and its templates rendered.
type settings struct {
	Base               name.Digest // the base, pinned by digest
	Main               string
	User               string
	Labels             map[string]string
	Annotations        map[string]string
	Platforms          []string
	Env                []string
	Flags              []string
	Ldflags            []string
	CreationTime       time.Time
	KoDataCreationTime time.Time
}

// findRepoRoot walks up from dir to the directory holding configFile.
func findRepoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, configFile)); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s in %s or any directory above it", configFile, dir)
		}
	}
}

// readKo returns the kos entry koID of the configuration at path and the
// build it names.
func readKo(path string) (goreleaserKo, goreleaserBuild, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return goreleaserKo{}, goreleaserBuild{}, err
	}
	var c goreleaserConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		return goreleaserKo{}, goreleaserBuild{}, fmt.Errorf("%s: %w", path, err)
	}
	for _, k := range c.Kos {
		if k.ID != koID {
			continue
		}
		if k.Build == "" {
			k.Build = k.ID
		}
		for _, bld := range c.Builds {
			if bld.ID == k.Build {
				return k, bld, nil
			}
		}
		return goreleaserKo{}, goreleaserBuild{}, fmt.Errorf("%s: kos %q names build %q, which is not under builds", path, koID, k.Build)
	}
	return goreleaserKo{}, goreleaserBuild{}, fmt.Errorf("%s: no kos entry with id %q", path, koID)
}

// loadSettings reads the agent image's settings from the configuration at
// path, fills what the kos entry leaves out from its build as GoReleaser
// does, and renders the templates with data (GoReleaser's template fields,
// e.g. Version, FullCommit, CommitTimestamp).
func loadSettings(path string, data map[string]string) (settings, error) {
	k, bld, err := readKo(path)
	if err != nil {
		return settings{}, err
	}
	base, err := baseRef(path, k)
	if err != nil {
		return settings{}, err
	}
	s := settings{Base: base, Main: firstOr(k.Main, bld.Main), User: k.User, Platforms: k.Platforms}
	if len(s.Platforms) == 0 {
		s.Platforms = []string{"linux/amd64"}
	}
	r := renderer{data: data}
	s.Env = r.all(orList(k.Env, bld.Env))
	s.Flags = r.all(orList(k.Flags, bld.Flags))
	s.Ldflags = r.all(orList(k.Ldflags, bld.Ldflags))
	s.Labels = r.values(k.Labels)
	s.Annotations = r.values(k.Annotations)
	s.CreationTime = r.unix(k.CreationTime)
	s.KoDataCreationTime = r.unix(k.KoDataCreationTime)
	if r.err != nil {
		return settings{}, fmt.Errorf("%s: kos %q: %w", path, koID, r.err)
	}
	return s, nil
}

// pinnedBase is the base the configuration at path pins.
func pinnedBase(path string) (name.Digest, error) {
	k, _, err := readKo(path)
	if err != nil {
		return name.Digest{}, err
	}
	return baseRef(path, k)
}

func baseRef(path string, k goreleaserKo) (name.Digest, error) {
	d, err := name.NewDigest(k.BaseImage)
	if err != nil {
		return name.Digest{}, fmt.Errorf("%s: kos %q base_image %q must be pinned by digest (repo@sha256:...): %w", path, koID, k.BaseImage, err)
	}
	return d, nil
}

func firstOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func orList(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// renderer renders GoReleaser templates with plain data; a field or
// function it does not know is an error, never an empty string.
type renderer struct {
	data map[string]string
	err  error
}

func (r *renderer) one(s string) string {
	if r.err != nil {
		return ""
	}
	t, err := template.New("").Option("missingkey=error").Parse(s)
	if err != nil {
		r.err = fmt.Errorf("template %q: %w", s, err)
		return ""
	}
	var out bytes.Buffer
	if err := t.Execute(&out, r.data); err != nil {
		r.err = fmt.Errorf("template %q: %w", s, err)
	}
	return out.String()
}

func (r *renderer) all(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, r.one(s))
	}
	return out
}

func (r *renderer) values(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = r.one(v)
	}
	return out
}

func (r *renderer) unix(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	v := r.one(s)
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil && r.err == nil {
		r.err = errors.New("time " + strconv.Quote(s) + " is not Unix seconds: " + strconv.Quote(v))
	}
	return time.Unix(sec, 0).UTC()
}
