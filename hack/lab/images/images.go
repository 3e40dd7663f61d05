// Package images builds docker-archive ("docker save" v1.2 format) image
// tarballs without a daemon or registry, for import into the lab cluster's
// containerd with `ctr -n k8s.io images import`.
//
// Output is deterministic: the same Image (and the same contents of any Src
// files) always produces byte-identical archives, so Digest can be used as a
// cache key.
package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// DefaultPathEnv is the conventional PATH for Linux images. Images that run a
// shell or look up programs by name should include it in Env.
const DefaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// epoch is the fixed modification time of every archive and layer entry.
var epoch = time.Unix(0, 0).UTC()

// File is one entry of the image's single layer. Exactly one kind applies:
//   - Link != "": a symlink to Link (Data and Src must be empty);
//   - Mode.IsDir(): a directory (Data and Src must be empty);
//   - otherwise a regular file whose contents are Data, or the contents of
//     the host file Src (read when the archive is written).
//
// Mode's permission bits plus os.ModeSetuid, os.ModeSetgid and os.ModeSticky
// are honoured. A zero permission defaults to 0644 for files (the host file's
// permissions when Src is set), 0755 for directories and 0777 for symlinks.
// Path is absolute or relative to the image root; missing parent directories
// are created with mode 0755. All entries are owned by root (0:0).
type File struct {
	Path string
	Mode os.FileMode
	Data []byte
	Link string // symlink target
	Src  string // host file to read the contents from
}

// Image describes a single-layer image.
type Image struct {
	Ref          string // e.g. "netsleuth.local/busybox:1.35"
	Files        []File
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	User         string
	Labels       map[string]string
	ExposedPorts []string // "80", "80/tcp", "53/udp"
	StopSignal   string
	Architecture string // defaults to runtime.GOARCH
}

type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

type containerConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type historyEntry struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

type imageConfig struct {
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Created      string          `json:"created"`
	Config       containerConfig `json:"config"`
	RootFS       rootFS          `json:"rootfs"`
	History      []historyEntry  `json:"history"`
}

// Write writes img to w as a docker-archive tarball: "<layer sha>/layer.tar"
// (uncompressed), "<config sha>.json" and manifest.json with RepoTags
// [img.Ref]. Src files are read twice (once to digest the layer, once to
// write it); Write fails if they change in between.
func Write(w io.Writer, img Image) error {
	if err := validateRef(img.Ref); err != nil {
		return err
	}
	ents, err := normalize(img.Files)
	if err != nil {
		return err
	}
	layerSum, layerSize, err := digestLayer(ents)
	if err != nil {
		return err
	}
	cfg, err := configJSON(img, layerSum)
	if err != nil {
		return err
	}
	cfgName := sha256Hex(cfg) + ".json"
	layerName := layerSum + "/layer.tar"
	man, err := json.Marshal([]dockerManifest{{
		Config:   cfgName,
		RepoTags: []string{img.Ref},
		Layers:   []string{layerName},
	}})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(dirHeader(layerSum+"/", 0o755)); err != nil {
		return err
	}
	if err := tw.WriteHeader(fileHeader(layerName, 0o644, layerSize)); err != nil {
		return err
	}
	if err := copyLayer(tw, ents, layerSum); err != nil {
		return err
	}
	if err := writeBytes(tw, cfgName, cfg); err != nil {
		return err
	}
	if err := writeBytes(tw, "manifest.json", append(man, '\n')); err != nil {
		return err
	}
	return tw.Close()
}

// Digest returns "sha256:<hex>" of the archive Write would produce for img.
func Digest(img Image) (string, error) {
	h := sha256.New()
	if err := Write(h, img); err != nil {
		return "", err
	}
	return formatDigest(h), nil
}

// WriteFile writes the archive for img to path atomically (temporary file in
// the same directory, then rename) with mode 0644 and returns the archive's
// digest, "sha256:<hex>" (equal to Digest(img)).
func WriteFile(path string, img Image) (digest string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	if err = Write(io.MultiWriter(f, h), img); err != nil {
		return "", err
	}
	if err = f.Chmod(0o644); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	if err = os.Rename(tmp, path); err != nil {
		return "", err
	}
	return formatDigest(h), nil
}

func validateRef(ref string) error {
	if ref == "" {
		return errors.New("images: empty image Ref")
	}
	repo, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	if repo == "" || strings.ContainsAny(ref, " \t\r\n") || repo != strings.ToLower(repo) {
		return fmt.Errorf("images: invalid image Ref %q (want lowercase [domain/]path[:tag])", ref)
	}
	return nil
}

func configJSON(img Image, layerSum string) ([]byte, error) {
	arch := img.Architecture
	if arch == "" {
		arch = runtime.GOARCH
	}
	ports, err := exposedPorts(img.ExposedPorts)
	if err != nil {
		return nil, err
	}
	created := epoch.Format(time.RFC3339)
	cfg := imageConfig{
		Architecture: arch,
		OS:           "linux",
		Created:      created,
		Config: containerConfig{
			User:         img.User,
			ExposedPorts: ports,
			Env:          img.Env,
			Entrypoint:   img.Entrypoint,
			Cmd:          img.Cmd,
			WorkingDir:   img.WorkingDir,
			Labels:       img.Labels,
			StopSignal:   img.StopSignal,
		},
		RootFS:  rootFS{Type: "layers", DiffIDs: []string{"sha256:" + layerSum}},
		History: []historyEntry{{Created: created, CreatedBy: "netsleuth hack/lab/images"}},
	}
	return json.Marshal(cfg)
}

func exposedPorts(ports []string) (map[string]struct{}, error) {
	if len(ports) == 0 {
		return nil, nil
	}
	m := make(map[string]struct{}, len(ports))
	for _, p := range ports {
		port, proto, ok := strings.Cut(p, "/")
		if !ok {
			proto = "tcp"
		}
		if port == "" || strings.Trim(port, "0123456789-") != "" ||
			(proto != "tcp" && proto != "udp" && proto != "sctp") {
			return nil, fmt.Errorf("images: invalid exposed port %q", p)
		}
		m[port+"/"+proto] = struct{}{}
	}
	return m, nil
}

func dirHeader(name string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: epoch}
}

func fileHeader(name string, mode, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: size, ModTime: epoch}
}

func writeBytes(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(fileHeader(name, 0o644, int64(len(data)))); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func formatDigest(h hash.Hash) string {
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
