package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The agent's base image is defined here, in code, rather than pulled: no
// registry has to hold it, the release (through serve-base) and the lab
// (through build) put the agent on the same base, and it is byte-for-byte
// reproducible, so .goreleaser.yaml pins it by digest.
//
// It holds only what the agent needs besides its static binary: the
// non-root user agent pods run as (nobody, 65534) named in /etc/passwd and
// /etc/group, and a /tmp. The agent reads nothing else from its image (HTTP
// probes only read status codes, so no CA bundle; node agents run the host's
// iptables-save chrooted into the host's root).
var basePlatforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64"},
}

// baseFile is one entry of the base's single layer, owned by root.
type baseFile struct {
	path string // relative to the root, no trailing slash
	mode int64
	data string // a directory when dir is set
	dir  bool
}

var baseFiles = []baseFile{
	{path: "etc", mode: 0o755, dir: true},
	{path: "etc/group", mode: 0o644, data: "root:x:0:\nnobody:x:65534:\n"},
	{path: "etc/passwd", mode: 0o644, data: "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"},
	{path: "tmp", mode: 0o1777, dir: true},
}

// epoch is the time stamp of everything in the base.
var epoch = time.Unix(0, 0).UTC()

// baseLayer is the base's one layer, an uncompressed tarball: its digest
// then depends on its contents only, not on a compressor's version.
func baseLayer() (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range baseFiles {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.path, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch, Format: tar.FormatPAX}
		if f.dir {
			hdr.Typeflag, hdr.Name, hdr.Size = tar.TypeDir, f.path+"/", 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("base layer %s: %w", f.path, err)
		}
		if _, err := tw.Write([]byte(f.data)); err != nil {
			return nil, fmt.Errorf("base layer %s: %w", f.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	return static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer), nil
}

// baseIndex is the multi-platform base: one image per basePlatforms entry,
// OCI media types, every time stamp at the Unix epoch.
func baseIndex() (v1.ImageIndex, error) {
	layer, err := baseLayer()
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range basePlatforms {
		img, err := baseImage(layer, p)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx, nil
}

func baseImage(layer v1.Layer, p v1.Platform) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "netsleuth hack/agentimage: /etc/passwd, /etc/group (root, nobody 65534), /tmp",
	}})
	if err != nil {
		return nil, fmt.Errorf("base image %s/%s: %w", p.OS, p.Architecture, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("base image %s/%s: %w", p.OS, p.Architecture, err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Created = v1.Time{Time: epoch}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("base image %s/%s: %w", p.OS, p.Architecture, err)
	}
	return img, nil
}
