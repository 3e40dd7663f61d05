package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/netsleuth/netsleuth/hack/lab/images"
)

// reimport rebuilds netsleuth from this checkout and imports every lab image
// into both nodes' containerd, without taking the lab down: the agent image
// then runs the code under test.
func (l *lab) reimport(ctx context.Context) error {
	out := l.ownBin("netsleuth")
	_ = os.Remove(out)
	if err := l.cachedBuild(ctx, l.p.Root, ".", out, "", "-s -w"); err != nil {
		return err
	}
	imgs, err := l.labImages()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "nsl-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var tars []string
	for _, img := range imgs {
		path := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(img.Ref)+".tar")
		if _, err := images.WriteFile(path, img); err != nil {
			return err
		}
		tars = append(tars, path)
	}
	for _, n := range nodes {
		for _, t := range tars {
			if _, err := run(ctx, "ctr", "-a", l.p.Socket(n.Name), "-n", "k8s.io", "images", "import", "--no-unpack=false", t); err != nil {
				return err
			}
		}
		step("imported %d images into %s", len(tars), n.Name)
	}
	return nil
}
