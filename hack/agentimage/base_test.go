package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func repoConfig(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := findRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, configFile)
}

// The base is reproducible and is the one .goreleaser.yaml pins: the lab
// and the release cannot put the agent on different bases.
func TestBaseIsPinned(t *testing.T) {
	a, err := baseIndex()
	if err != nil {
		t.Fatal(err)
	}
	b, err := baseIndex()
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("the base is not reproducible: %s, then %s", da, db)
	}
	pinned, err := pinnedBase(repoConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPinned(a, pinned); err != nil {
		t.Fatal(err)
	}
}

// One image per platform, each with the same single layer: passwd and group
// naming nobody (65534), and a sticky /tmp.
func TestBaseContents(t *testing.T) {
	idx, err := baseIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range m.Manifests {
		got = append(got, d.Platform.OS+"/"+d.Platform.Architecture)
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != d.Platform.Architecture || cfg.OS != "linux" {
			t.Errorf("%s: config says %s/%s", d.Digest, cfg.OS, cfg.Architecture)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%s: %d layers (%v), want 1", d.Digest, len(layers), err)
		}
		files := layerFiles(t, layers[0].Uncompressed)
		if !strings.Contains(files["etc/passwd"], "nobody:x:65534:65534:") || !strings.Contains(files["etc/group"], "nobody:x:65534:") {
			t.Errorf("passwd/group do not name nobody 65534: %q", files)
		}
		if files["tmp/"] != "dir 1777" {
			t.Errorf("/tmp is %q, want dir 1777", files["tmp/"])
		}
	}
	if strings.Join(got, " ") != "linux/amd64 linux/arm64" {
		t.Errorf("platforms %v, want linux/amd64 linux/arm64", got)
	}
}

// layerFiles maps each entry of a layer to its contents (a directory to its
// mode).
func layerFiles(t *testing.T, open func() (io.ReadCloser, error)) map[string]string {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: owner %d:%d, time %s; want 0:0 at the epoch", h.Name, h.Uid, h.Gid, h.ModTime)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
		if h.Typeflag == tar.TypeDir {
			files[h.Name] = fmt.Sprintf("dir %o", h.Mode)
		}
	}
}

// serve-base serves the pinned base on loopback, pullable by digest, and
// stops on its own once its owner (the GoReleaser run) is gone.
func TestServeBase(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	idx, err := baseIndex()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	ref, err := name.NewDigest(addr + "/netsleuth/agent-base@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owner := exec.Command("sleep", "60")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	defer owner.Process.Kill()
	pulled := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveBase(ctx, ref, idx, serveOptions{Owner: owner.Process.Pid, Max: time.Minute}, func() {
			got, err := remote.Index(ref, remote.WithContext(ctx))
			if err != nil {
				pulled <- err
				return
			}
			gd, err := got.Digest()
			if err == nil && gd != d {
				err = fmt.Errorf("pulled %s, want %s", gd, d)
			}
			pulled <- err
		})
	}()
	if err := <-pulled; err != nil {
		t.Fatalf("pull the served base: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("serve-base stopped while its owner lives: %v", err)
	case <-time.After(2 * time.Second):
	}
	_ = owner.Process.Kill()
	_ = owner.Wait()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("serve-base did not stop after its owner was gone")
	}
}

func TestServeBaseLoopbackOnly(t *testing.T) {
	for _, ref := range []string{"10.0.0.1:5117/xy@sha256:" + strings.Repeat("a", 64), "example.com/xy@sha256:" + strings.Repeat("a", 64)} {
		d, err := name.NewDigest(ref)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkLoopback(d); err == nil {
			t.Errorf("%s: accepted, want refused (serve-base listens on loopback only)", ref)
		}
	}
}
