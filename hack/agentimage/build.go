package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/ko/pkg/build"
	"golang.org/x/tools/go/packages"
)

// koOptions are the ko build options for s with the base idx, built for
// platforms: the options GoReleaser's kos gives ko, less the SBOM (a
// docker-archive cannot carry it).
func koOptions(s settings, importPath string, idx v1.ImageIndex, platforms ...string) []build.Option {
	opts := []build.Option{
		build.WithConfig(map[string]build.Config{importPath: {
			Main: s.Main, Env: s.Env, Flags: build.FlagArray(s.Flags), Ldflags: build.StringArray(s.Ldflags),
		}}),
		build.WithPlatforms(platforms...),
		build.WithBaseImages(func(context.Context, string) (name.Reference, build.Result, error) {
			return s.Base, idx, nil
		}),
		build.WithDisabledSBOM(),
	}
	if !s.CreationTime.IsZero() {
		opts = append(opts, build.WithCreationTime(v1.Time{Time: s.CreationTime}))
	}
	if !s.KoDataCreationTime.IsZero() {
		opts = append(opts, build.WithKoDataCreationTime(v1.Time{Time: s.KoDataCreationTime}))
	}
	for k, v := range s.Labels {
		opts = append(opts, build.WithLabel(k, v))
	}
	for k, v := range s.Annotations {
		opts = append(opts, build.WithAnnotation(k, v))
	}
	if s.User != "" {
		opts = append(opts, build.WithUser(s.User))
	}
	return opts
}

// importPath is the Go import path of the main package at main under dir,
// found as GoReleaser finds it.
func importPath(dir, main string) (string, error) {
	pkgs, err := packages.Load(&packages.Config{Mode: packages.NeedName, Dir: dir}, main)
	if err != nil {
		return "", fmt.Errorf("load %s in %s: %w", main, dir, err)
	}
	if len(pkgs) != 1 {
		return "", fmt.Errorf("%s in %s is %d packages, not one", main, dir, len(pkgs))
	}
	return pkgs[0].PkgPath, nil
}

// buildImage builds the agent image for platform with ko from repo's sources
// and writes it to out as a docker-archive tagged tag. It returns the image's
// digest.
func buildImage(ctx context.Context, repo string, s settings, platform, tag, out string) (v1.Hash, error) {
	if !slices.Contains(s.Platforms, platform) {
		return v1.Hash{}, fmt.Errorf("platform %s is not among the image's platforms in %s (%v)", platform, configFile, s.Platforms)
	}
	t, err := name.NewTag(tag)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("tag %q: %w", tag, err)
	}
	idx, err := baseIndex()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := checkPinned(idx, s.Base); err != nil {
		return v1.Hash{}, err
	}
	ip, err := importPath(repo, s.Main)
	if err != nil {
		return v1.Hash{}, err
	}
	g, err := build.NewGo(ctx, repo, koOptions(s, ip, idx, platform)...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("ko: %w", err)
	}
	res, err := g.Build(ctx, ip)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("ko build %s: %w", ip, err)
	}
	img, err := platformImage(res, platform)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := writeArchive(out, t, img); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// checkPinned fails unless idx is the base .goreleaser.yaml pins.
func checkPinned(idx v1.ImageIndex, pinned name.Digest) error {
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	if d.String() != pinned.DigestStr() {
		return fmt.Errorf("the base defined in hack/agentimage is %s but %s pins %s: update base_image there", d, configFile, pinned.DigestStr())
	}
	return nil
}

// platformImage is the image for platform ("os/arch") in ko's result.
func platformImage(res build.Result, platform string) (v1.Image, error) {
	idx, ok := res.(v1.ImageIndex)
	if !ok {
		img, ok := res.(v1.Image)
		if !ok {
			return nil, fmt.Errorf("ko returned %T, neither an image nor an index", res)
		}
		return img, nil
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS+"/"+d.Platform.Architecture == platform {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("ko built no %s image", platform)
}

// writeArchive writes img to out as a docker-archive, atomically.
func writeArchive(out string, tag name.Tag, img v1.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tarball.Write(tag, img, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
