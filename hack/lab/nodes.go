package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netsleuth/netsleuth/hack/lab/images"
)

// labImages are the images the lab imports into every node's containerd.
func (l *lab) labImages() ([]images.Image, error) {
	bb, err := images.BusyboxImage(labImage, "/bin/busybox")
	if err != nil {
		return nil, err
	}
	bb.Files = append(bb.Files, images.StaticBinary(l.ownBin("labecho"), "/usr/local/bin/labecho"))
	return []images.Image{
		{Ref: pauseImage, Files: []images.File{images.StaticBinary(l.ownBin("pause"), "/pause")}, Entrypoint: []string{"/pause"}},
		bb,
		{Ref: corednsImage, Files: []images.File{images.StaticBinary(l.corednsBin(), "/coredns")}, Entrypoint: []string{"/coredns"}},
	}, nil
}

// imageArchives writes the lab images as docker-archives (cached by digest)
// and builds the agent image; it returns the archives to import.
func (l *lab) imageArchives(ctx context.Context) ([]string, error) {
	imgs, err := l.labImages()
	if err != nil {
		return nil, err
	}
	var tars []string
	if err := os.MkdirAll(filepath.Join(l.p.Cache, "images"), 0o755); err != nil {
		return nil, err
	}
	for _, img := range imgs {
		d, err := images.Digest(img)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Ref, err)
		}
		path := filepath.Join(l.p.Cache, "images", strings.NewReplacer("/", "_", ":", "_").Replace(img.Ref)+"-"+strings.TrimPrefix(d, "sha256:")[:12]+".tar")
		if _, err := os.Stat(path); err != nil {
			if _, err := images.WriteFile(path, img); err != nil {
				return nil, err
			}
		}
		tars = append(tars, path)
	}
	agent, err := l.buildAgentImage(ctx)
	if err != nil {
		return nil, err
	}
	return append(tars, agent), nil
}

// importImages imports the archives into node n's containerd.
func (l *lab) importImages(ctx context.Context, n node, tars []string) error {
	for _, t := range tars {
		if _, err := run(ctx, "ctr", "-a", l.p.Socket(n.Name), "-n", "k8s.io", "images", "import", "--no-unpack=false", t); err != nil {
			return err
		}
	}
	step("imported %d images into %s", len(tars), n.Name)
	return nil
}

func (l *lab) startRuntimes(ctx context.Context) error {
	tars, err := l.imageArchives(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		p := proc{Name: "containerd-" + n.Name, NetNS: n.NetNS, Args: []string{"containerd", "--config", l.p.Node(n.Name, "containerd.toml")}}
		if err := l.start(p); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		sock := l.p.Socket(n.Name)
		if err := waitFor(ctx, "containerd on "+n.Name+" serving", 30*time.Second, func(ctx context.Context) (bool, error) {
			_, err := run(ctx, "ctr", "-a", sock, "version")
			return err == nil, err
		}); err != nil {
			return err
		}
		if err := l.importImages(ctx, n, tars); err != nil {
			return err
		}
	}
	return nil
}

func (l *lab) kubeletProc(n node) proc {
	return proc{Name: "kubelet-" + n.Name, NetNS: n.NetNS, Args: []string{l.kubeBin("kubelet"),
		"--config=" + l.p.Node(n.Name, "kubelet.yaml"), "--kubeconfig=" + filepath.Join(l.p.Lab, "kubelet-"+n.Name+".kubeconfig"),
		"--hostname-override=" + n.Name, "--node-ip=" + n.IP.String(), "--root-dir=" + l.p.Node(n.Name, "kubelet"), "--v=1"}}
}

func (l *lab) kubeProxyProc(n node) proc {
	return proc{Name: "kube-proxy-" + n.Name, NetNS: n.NetNS, Args: []string{l.kubeBin("kube-proxy"),
		"--config=" + l.p.Node(n.Name, "kube-proxy.yaml"), "--v=1"}}
}

func (l *lab) startNodes(ctx context.Context) error {
	for _, n := range nodes {
		for _, p := range []proc{l.kubeletProc(n), l.kubeProxyProc(n)} {
			if err := l.start(p); err != nil {
				return err
			}
		}
	}
	cs, err := l.client()
	if err != nil {
		return err
	}
	cidrs, err := podCIDRs(ctx, cs)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		conf, err := l.cniConfig(n, cidrs[n.Name])
		if err != nil {
			return err
		}
		if err := os.WriteFile(l.p.Node(n.Name, "cni/10-netsleuth-lab.conflist"), conf, 0o644); err != nil {
			return err
		}
	}
	if err := l.setupPodRoutes(ctx, cidrs); err != nil {
		return err
	}
	return waitFor(ctx, "every node Ready", 90*time.Second, func(ctx context.Context) (bool, error) { return nodesReady(ctx, cs) })
}

func (l *lab) enforcerProc(n node) proc {
	return proc{Name: "netpol-enforcer-" + n.Name, NetNS: n.NetNS, Args: []string{l.ownBin("netpol-enforcer"),
		"--kubeconfig=" + l.p.Kubeconfig(), "--node=" + n.Name}}
}

func (l *lab) hostProcs() []proc {
	return []proc{
		{Name: "external-host", NetNS: externalNS, Args: []string{l.ownBin("labecho"), "--http=:80", "--tcp-echo=:7", "--udp-echo=:7"}},
		{Name: "upstream-dns", NetNS: upstreamNS, Args: []string{l.corednsBin(), "-conf", filepath.Join(l.p.Lab, "upstream.Corefile")}},
	}
}

// startAddons starts CoreDNS in the cluster, the NetworkPolicy enforcer on
// every node, the external host's listeners and the upstream DNS server.
func (l *lab) startAddons(ctx context.Context) error {
	procs := l.hostProcs()
	for _, n := range nodes {
		procs = append(procs, l.enforcerProc(n))
	}
	for _, p := range procs {
		if err := l.start(p); err != nil {
			return err
		}
	}
	cs, err := l.client()
	if err != nil {
		return err
	}
	doc, err := render("coredns.yaml")
	if err != nil {
		return err
	}
	if err := apply(ctx, cs, doc); err != nil {
		return err
	}
	if err := waitFor(ctx, "CoreDNS ready", 90*time.Second, deploymentReady("kube-system", "coredns", cs)); err != nil {
		return err
	}
	return waitFor(ctx, "default service account present", 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
}
