package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// up brings the whole lab up with profile cni ("": the running lab's, else
// bridge). It is idempotent: with everything running it only checks; after
// a partial start, or when another profile runs, it tears down first.
func (l *lab) up(ctx context.Context, cni string) error {
	start := time.Now()
	if err := preflight(ctx); err != nil {
		return err
	}
	if err := l.claim(); err != nil {
		return err
	}
	want := cni
	if want == "" {
		want = l.profile()
	}
	if want == l.profile() && l.healthy(ctx) {
		step("already up (%s profile): kubeconfig %s", l.profile(), l.p.Kubeconfig())
		return nil
	}
	if len(l.procNames()) > 0 {
		step("found a partial lab or one with the %s profile: tearing it down first", l.profile())
		if err := l.down(context.WithoutCancel(ctx)); err != nil {
			return err
		}
		if err := l.claim(); err != nil {
			return err
		}
	}
	l.s.CNI = want
	step("profile %s", want)
	if err := foreignChains(ctx); err != nil {
		return err
	}
	if err := l.prepareDirs(); err != nil {
		return err
	}
	if err := l.buildAll(ctx); err != nil {
		return err
	}
	if err := l.prepareCNIBin(); err != nil {
		return err
	}
	if err := l.recordHost(); err != nil {
		return err
	}
	steps := []func(context.Context) error{
		l.setupGuards, l.setupNetwork, l.writeConfigs, l.setupCgroups,
		l.startControlPlane, l.setupCalicoDatastore, l.startRuntimes, l.startNodes, l.startAddons,
	}
	for _, s := range steps {
		if err := s(ctx); err != nil {
			return fmt.Errorf("%w\n(logs in %s; 'go run ./hack/lab down' removes the partial lab)", err, l.rel(filepath.Join(l.p.Lab, "logs")))
		}
	}
	step("lab up in %s: export KUBECONFIG=%s", time.Since(start).Round(100*time.Millisecond), l.p.Kubeconfig())
	return nil
}

// preflight checks the tools the lab and the tests need and installs
// Debian's packages for the missing ones (CI starts from a fresh machine).
func preflight(ctx context.Context) error {
	need := map[string]string{
		"containerd": "containerd", "runc": "runc", "etcd": "etcd-server", "iptables": "iptables",
		"ip": "iproute2", "nsenter": "util-linux", "ctr": "containerd", "conntrack": "conntrack",
		"busybox": "busybox-static", "ipset": "ipset",
		// The peers tests and benchmarks compare netsleuth with, and tmux for
		// the terminal tests.
		"tcpdump": "tcpdump", "tshark": "tshark", "dig": "dnsutils", "tmux": "tmux",
	}
	var missing []string
	for bin, pkg := range need {
		if _, err := lookPath(bin); err != nil {
			missing = append(missing, pkg)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		missing = append(missing, "containernetworking-plugins")
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := lookPath("apt-get"); err != nil {
		return fmt.Errorf("missing packages %s and no apt-get to install them", strings.Join(missing, " "))
	}
	step("installing Debian packages: %s", strings.Join(missing, " "))
	if _, err := run(ctx, "apt-get", "update", "-q"); err != nil {
		return err
	}
	_, err := run(ctx, "env", append([]string{"DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q"}, missing...)...)
	return err
}

// foreignChains refuses to start when the host has Kubernetes or CNI chains
// (or Calico ipsets) the lab did not make: teardown removes those prefixes.
func foreignChains(ctx context.Context) error {
	out, err := run(ctx, "iptables-save")
	if err != nil {
		return err
	}
	if tables := filterTables(out); len(tables) > 0 {
		return fmt.Errorf("this machine already has KUBE-, CNI-, cali- or NSL- iptables chains: if an earlier lab left them, run 'go run ./hack/lab down'; if another Kubernetes node runs here, the lab cannot share the machine")
	}
	if sets := calicoIPSets(ctx, ""); len(sets) > 0 {
		return fmt.Errorf("this machine already has Calico's ipsets (%s): if an earlier lab left them, run 'go run ./hack/lab down'; if a Calico node runs here, the lab cannot share the machine", strings.Join(sets, ", "))
	}
	return nil
}

func (l *lab) prepareDirs() error {
	dirs := []string{filepath.Join(l.p.Lab, "logs"), filepath.Join(l.p.Lab, "pids"), filepath.Join(l.p.Lab, "bin"), l.p.PKI("")}
	for _, n := range nodes {
		dirs = append(dirs, l.p.Node(n.Name, "cni"), l.p.Node(n.Name, "kubelet"), filepath.Join(l.p.Run, n.Name))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// recordHost remembers the host settings the lab is about to change.
func (l *lab) recordHost() error {
	if len(l.s.Sysctls) == 0 {
		l.s.Sysctls = map[string]string{}
		for _, k := range hostSysctls {
			l.s.Sysctls[k] = readSysctl(k)
		}
	}
	l.s.Owner = l.p.Lab
	return l.save()
}

func (l *lab) writeConfigs(ctx context.Context) error {
	if err := l.ensurePKI(); err != nil {
		return err
	}
	kcs := map[string]string{"kubeconfig": "admin", "controller-manager.kubeconfig": "controller-manager", "scheduler.kubeconfig": "scheduler", "kube-proxy.kubeconfig": "kube-proxy"}
	for _, n := range nodes {
		kcs["kubelet-"+n.Name+".kubeconfig"] = "kubelet-" + n.Name
	}
	for file, cert := range kcs {
		if err := l.writeKubeconfig(filepath.Join(l.p.Lab, file), cert, cert); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(l.p.Lab, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := os.WriteFile(l.p.Node(n.Name, "containerd.toml"), []byte(l.containerdConfig(n)), 0o644); err != nil {
			return err
		}
		if err := l.writeKubeletConfig(n); err != nil {
			return err
		}
		if err := writeYAML(l.p.Node(n.Name, "kube-proxy.yaml"), l.kubeProxyConfig(n), 0o644); err != nil {
			return err
		}
	}
	corefile, err := render("upstream.Corefile")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.p.Lab, "upstream.Corefile"), corefile, 0o644)
}

// writeKubeletConfig writes a node's kubelet config with the overrides of any
// active kubelet-config fault.
func (l *lab) writeKubeletConfig(n node) error {
	over := map[string]any{}
	if _, ok := l.s.Faults["nodelocal"]; ok {
		over["clusterDNS"] = []string{nodeLocalDNS.String()}
	}
	if f, ok := l.s.Faults["kubelet-config"]; ok && f.Node == n.Name {
		k, v, _ := strings.Cut(f.Set, "=")
		var val any
		if err := yaml.Unmarshal([]byte(v), &val); err != nil {
			return fmt.Errorf("kubelet-config value %q: %w", v, err)
		}
		over[k] = val
	}
	return writeYAML(l.p.Node(n.Name, "kubelet.yaml"), l.kubeletConfig(n, over), 0o644)
}

// setupCgroups creates each node's cgroupRoot in every v1 hierarchy, with the
// cpuset filled in from the parent (kubelet needs it to exist).
func (l *lab) setupCgroups(ctx context.Context) error {
	hier, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return err
	}
	for _, n := range nodes {
		for _, h := range hier {
			dir := filepath.Join("/sys/fs/cgroup", h.Name(), n.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("create cgroup %s: %w", dir, err)
			}
			if h.Name() != "cpuset" {
				continue
			}
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuset", f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (l *lab) startControlPlane(ctx context.Context) error {
	pki := l.p.PKI
	etcd := proc{Name: "etcd", Args: []string{"etcd", "--name=lab", "--data-dir=" + filepath.Join(l.p.Lab, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=lab=http://127.0.0.1:2380", "--listen-metrics-urls=http://127.0.0.1:2381"}}
	if err := l.start(etcd); err != nil {
		return err
	}
	if err := waitFor(ctx, "etcd healthy", 30*time.Second, httpOK("http://127.0.0.1:2379/health")); err != nil {
		return err
	}
	if err := l.startAPIServer(ctx); err != nil {
		return err
	}
	common := func(kc string) []string {
		k := filepath.Join(l.p.Lab, kc)
		return []string{"--kubeconfig=" + k, "--authentication-kubeconfig=" + k, "--authorization-kubeconfig=" + k, "--bind-address=127.0.0.1", "--leader-elect=false", "--v=1"}
	}
	cm := proc{Name: "kube-controller-manager", Args: append([]string{l.kubeBin("kube-controller-manager"),
		"--allocate-node-cidrs", "--cluster-cidr=" + podCIDR.String(), "--node-cidr-mask-size=24",
		"--service-cluster-ip-range=" + serviceCIDR.String(), "--cluster-signing-cert-file=" + pki("ca.crt"),
		"--cluster-signing-key-file=" + pki("ca.key"), "--root-ca-file=" + pki("ca.crt"),
		"--service-account-private-key-file=" + pki("sa.key"), "--use-service-account-credentials",
		// The default 20 QPS would take minutes to make the EndpointSlices
		// of a synthetic cluster's 5,000 Services.
		"--kube-api-qps=200", "--kube-api-burst=400"}, common("controller-manager.kubeconfig")...)}
	sched := proc{Name: "kube-scheduler", Args: append([]string{l.kubeBin("kube-scheduler")}, common("scheduler.kubeconfig")...)}
	for _, p := range []proc{cm, sched} {
		if err := l.start(p); err != nil {
			return err
		}
	}
	return nil
}

// apiServerProc is the lab's kube-apiserver.
func (l *lab) apiServerProc() proc {
	pki := l.p.PKI
	return proc{Name: "kube-apiserver", Args: []string{l.kubeBin("kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379", "--bind-address=" + nodes[0].IP.String(), "--advertise-address=" + nodes[0].IP.String(),
		"--secure-port=6443", "--service-cluster-ip-range=" + serviceCIDR.String(), "--delete-collection-workers=8",
		"--client-ca-file=" + pki("ca.crt"), "--tls-cert-file=" + pki("apiserver.crt"), "--tls-private-key-file=" + pki("apiserver.key"),
		"--kubelet-client-certificate=" + pki("apiserver-kubelet-client.crt"), "--kubelet-client-key=" + pki("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority=" + pki("ca.crt"), "--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local", "--service-account-key-file=" + pki("sa.pub"),
		"--service-account-signing-key-file=" + pki("sa.key"), "--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction", "--allow-privileged=true", "--profiling=false", "--v=1"}}
}

// startAPIServer starts kube-apiserver and waits until it is ready.
func (l *lab) startAPIServer(ctx context.Context) error {
	if err := l.start(l.apiServerProc()); err != nil {
		return err
	}
	cs, err := l.client()
	if err != nil {
		return err
	}
	return waitFor(ctx, "kube-apiserver ready", 60*time.Second, func(ctx context.Context) (bool, error) {
		b, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(b) == "ok", err
	})
}

func httpOK(url string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}
}
