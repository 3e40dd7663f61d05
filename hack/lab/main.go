// Command lab brings up, inspects, breaks and tears down netsleuth's local
// real Kubernetes cluster: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, and per node containerd, kubelet and kube-proxy, with the
// bridge CNI, CoreDNS, a NetworkPolicy enforcer and the seed 003 external
// subnet behind a router. Node 1 is this machine; node 2 lives in a network
// namespace. It needs Linux and root. 'up --cni calico' brings up the calico
// profile instead: Calico's CNI plugin and felix in place of the bridge CNI
// and the lab's enforcer.
//
//	go run ./hack/lab up|down|status|check-clean|fault NAME|unfault NAME|faults
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

const usage = `usage: go run ./hack/lab <verb> [flags]

verbs:
  up            bring the lab cluster up (idempotent; builds are cached by version);
                --cni bridge (the default: bridge CNI and the lab's NetworkPolicy enforcer)
                or --cni calico (Calico v3.31's CNI plugin and felix); without --cni a running
                lab keeps its profile
  deps          install the Debian packages the lab and its tests need, if missing
  down          stop everything the lab started and remove what it created
  status        print the state of every lab process and node
  check-clean   exit 1 if anything of the lab is left on this machine
  fault NAME    inject a fault (see 'faults'); --node picks the node
  unfault NAME  undo a fault ('all' undoes every fault)
  faults        list the faults
  nodelocal on|off  run the NodeLocal DNS cache (169.254.20.10) on every node, kubelets pointed at it
  kubeconfig    print the path of the admin kubeconfig
  synth SIZE    fill the running lab's API server with a synthetic cluster (small: 200 nodes,
                6,000 pods; medium: 1,000 / 30,000; large: 2,000 nodes, 60,000 pods, 5,000
                Services, 2,000 NetworkPolicies); NotReady nodes with no kubelet, pods that never
                run, labelled netsleuth.lab/synthetic. 'synth off' (or down) removes them
  images        rebuild netsleuth and re-import every lab image into the nodes (lab stays up)
  on NODE CMD   run the shell command CMD on NODE as root, as on a real node: in its network
                namespace, KUBELET_CONFIG its kubelet config file, systemctl/journalctl mapped
                onto the lab's kubelet and kube-proxy (how tests apply netsleuth's fixes)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	verb, args := os.Args[1], os.Args[2:]
	if verb == "on" || verb == "service" {
		os.Exit(nodeVerb(verb, args))
	}
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	nodeName := fs.String("node", nodes[0].Name, "node for node-scoped faults")
	set := fs.String("set", "", "kubelet-config fault: field=value (YAML value), e.g. makeIPTablesUtilChains=false")
	cni := fs.String("cni", "", "up: the CNI profile, bridge or calico")
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			os.Exit(2)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := dispatch(ctx, verb, positional, *nodeName, *set, *cni)
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "lab: %v\n%s", err, usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "lab: %v\n", err)
		os.Exit(1)
	}
}

// nodeVerb runs the verbs whose arguments are not flags: 'on NODE CMD' and
// the systemctl stand-in's 'service ACTION UNIT --node NODE'.
func nodeVerb(verb string, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := newLab()
	if err == nil {
		switch {
		case verb == "on" && len(args) == 2:
			err = l.on(ctx, args[0], args[1])
		case verb == "service" && len(args) == 4 && args[2] == "--node":
			err = l.service(ctx, args[0], args[1], args[3])
		default:
			err = usageError{"usage: on NODE 'COMMAND'"}
		}
	}
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "lab: %v\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(os.Stderr, "lab: %v\n", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func dispatch(ctx context.Context, verb string, rest []string, nodeName, set, cni string) error {
	if err := checkProfile(cni); err != nil {
		return err
	}
	if cni != "" && verb != "up" {
		return usageError{"--cni is a flag of up"}
	}
	if verb == "faults" {
		printFaults()
		return nil
	}
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return fmt.Errorf("the lab needs Linux and root (it creates network namespaces, bridges and iptables rules); this is %s as uid %d", runtime.GOOS, os.Geteuid())
	}
	l, err := newLab()
	if err != nil {
		return err
	}
	switch verb {
	case "up":
		return l.up(ctx, cni)
	case "deps":
		return preflight(ctx)
	case "down":
		return l.down(context.WithoutCancel(ctx))
	case "status":
		return l.status(ctx)
	case "check-clean":
		return l.checkClean(ctx)
	case "kubeconfig":
		fmt.Println(l.p.Kubeconfig())
		return nil
	case "images":
		return l.reimport(ctx)
	case "synth":
		if len(rest) != 1 {
			return usageError{"synth takes small, medium, large or off"}
		}
		if rest[0] == "off" {
			return l.unsynth(ctx)
		}
		z, err := parseSynthSize(rest[0])
		if err != nil {
			return err
		}
		return l.synth(ctx, z)
	case "nodelocal":
		switch {
		case len(rest) == 1 && rest[0] == "on":
			return l.fault(ctx, "nodelocal", nodes[0].Name, "")
		case len(rest) == 1 && rest[0] == "off":
			return l.unfault(ctx, "nodelocal")
		}
		return usageError{"nodelocal takes on or off"}
	case "fault", "unfault":
		if len(rest) != 1 {
			return usageError{verb + " takes one fault name"}
		}
		if verb == "fault" {
			return l.fault(ctx, rest[0], nodeName, set)
		}
		return l.unfault(ctx, rest[0])
	}
	return usageError{fmt.Sprintf("unknown verb %q", verb)}
}
