package exposure

import (
	"fmt"
	"strings"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

// texts is what a check says when it passes and when it does not.
type texts struct {
	pass, title, cause string
	policyWhy, policy  string
	fixes              []model.Fix
	refs               []string
}

const policyWhy = "Deny it to pods with an egress NetworkPolicy in each application namespace (it allows everything else; your CNI must enforce NetworkPolicy, and endPort needs Kubernetes 1.25+):"

// denyManifest is a NetworkPolicy that lets pods reach everything except
// addr, and on addr every port except port (TCP).
func denyManifest(name, addr string, port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-egress-%s
  namespace: <app-namespace>
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except: [%s/32]
`, name, addr)
	var ports []string
	if port > 1 {
		ports = append(ports, fmt.Sprintf("{protocol: TCP, port: 1, endPort: %d}", port-1))
	}
	if port < 65535 {
		ports = append(ports, fmt.Sprintf("{protocol: TCP, port: %d, endPort: 65535}", port+1))
	}
	ports = append(ports, "{protocol: UDP, port: 1, endPort: 65535}")
	fmt.Fprintf(&b, "  - to:\n    - ipBlock: {cidr: %s/32}\n    ports:\n", addr)
	for _, p := range ports {
		fmt.Fprintf(&b, "    - %s\n", p)
	}
	return b.String()
}

func metadataTexts(c Check) texts {
	return texts{
		pass:      fmt.Sprintf("The metadata address %s is not reachable from pods", c.Target()),
		title:     fmt.Sprintf("Pods can reach the cloud metadata address %s", c.Target()),
		cause:     fmt.Sprintf("Pods can open connections to the metadata address %s, so any pod can read the node's instance credentials and bootstrap data: connected from", c.Target()),
		policyWhy: policyWhy, policy: denyManifest("metadata", c.Addr, 0),
		fixes: []model.Fix{{Description: "On the cloud side, keep pods away from the metadata service: AWS IMDSv2 with a hop limit of 1; GKE Workload Identity (GKE metadata server); Azure: block 169.254.169.254 from pod CIDRs.",
			Commands: []string{"aws ec2 modify-instance-metadata-options --instance-id <id> --http-tokens required --http-put-response-hop-limit 1",
				"gcloud container clusters update <cluster> --workload-pool=<project>.svc.id.goog"}}},
		refs: []string{"https://kubernetes.io/docs/tasks/administer-cluster/securing-a-cluster/#restricting-cloud-metadata-api-access"},
	}
}

func etcdTexts(c Check) texts {
	return texts{
		pass:      fmt.Sprintf("etcd's client port %s is not reachable from pods", c.Target()),
		title:     fmt.Sprintf("Pods can reach etcd's client port %s", c.Target()),
		cause:     fmt.Sprintf("etcd listens on %s where pods can connect, so the whole cluster state (Secrets included) is one client certificate or one etcd auth mistake away: connected from", c.Target()),
		policyWhy: policyWhy, policy: denyManifest("etcd", c.Addr, c.Port),
		fixes: []model.Fix{{Description: "Bind etcd's client URLs to loopback and the control-plane network only, and require client certificates (kubeadm: /etc/kubernetes/manifests/etcd.yaml):",
			Commands: []string{"--listen-client-urls=https://127.0.0.1:2379,https://<control-plane-ip>:2379", "--client-cert-auth=true"}}},
		refs: []string{"https://kubernetes.io/docs/tasks/administer-cluster/configure-upgrade-etcd/#securing-etcd-clusters"},
	}
}

func kubeletTexts(c Check, seen []Seen) texts {
	pass := fmt.Sprintf("The kubelet API %s refuses anonymous requests from pods", c.Target())
	for _, s := range seen {
		if s.Result.Status != 0 {
			pass = fmt.Sprintf("The kubelet API %s answers pods but refuses anonymous requests (HTTP %d)", c.Target(), s.Result.Status)
		}
	}
	if !anyReached(seen) {
		pass = fmt.Sprintf("The kubelet API %s is not reachable from pods", c.Target())
	}
	return texts{
		pass:      pass,
		title:     fmt.Sprintf("The kubelet API %s serves anonymous requests from pods", c.Target()),
		cause:     fmt.Sprintf("The kubelet on node %s answered an unauthenticated GET /pods with 200, so any pod can list the node's pods and, through /run and /exec, run commands in them: anonymous auth is on with authorization AlwaysAllow; seen from", c.Node),
		policyWhy: policyWhy, policy: denyManifest("kubelet", c.Addr, c.Port),
		fixes: []model.Fix{{Description: "Turn anonymous auth off and authorise through the API server, in the kubelet config on node " + c.Node + ", then restart the kubelet:",
			Commands: []string{"# /var/lib/kubelet/config.yaml: authentication: {anonymous: {enabled: false}, webhook: {enabled: true}}; authorization: {mode: Webhook}",
				"systemctl restart kubelet", "netsleuth check --probe kubelet"}}},
		refs: []string{"https://kubernetes.io/docs/reference/access-authn-authz/kubelet-authn-authz/"},
	}
}

func anyReached(seen []Seen) bool {
	for _, s := range seen {
		if s.Result.Outcome == ops.OK {
			return true
		}
	}
	return false
}

func readOnlyTexts(c Check) texts {
	return texts{
		pass:      fmt.Sprintf("The kubelet read-only port %s is closed to pods", c.Target()),
		title:     fmt.Sprintf("The kubelet read-only port %s is open to pods", c.Target()),
		cause:     fmt.Sprintf("The kubelet on node %s serves its unauthenticated read-only API on %s (readOnlyPort is set), so any pod can read every pod spec and environment on the node: connected from", c.Node, c.Target()),
		policyWhy: policyWhy, policy: denyManifest("kubelet-readonly", c.Addr, c.Port),
		fixes: []model.Fix{{Description: "Set readOnlyPort: 0 in the kubelet config on node " + c.Node + " (or drop --read-only-port) and restart the kubelet:",
			Commands: []string{"sed -i 's/^readOnlyPort: .*/readOnlyPort: 0/' /var/lib/kubelet/config.yaml", "systemctl restart kubelet", "netsleuth check --probe kubelet"}}},
		refs: []string{"https://kubernetes.io/docs/reference/config-api/kubelet-config.v1beta1/"},
	}
}

func insecureTexts(c Check) texts {
	return texts{
		pass:      fmt.Sprintf("No API server answers on the insecure port %s", c.Target()),
		title:     fmt.Sprintf("The API server's insecure port %s answers pods", c.Target()),
		cause:     fmt.Sprintf("An API server answers plain HTTP on %s, where requests skip authentication and authorisation entirely, so any pod is cluster-admin: GET /version answered", c.Target()),
		policyWhy: policyWhy, policy: denyManifest("apiserver-insecure", c.Addr, c.Port),
		fixes: []model.Fix{{Description: "Remove --insecure-port and --insecure-bind-address from kube-apiserver (gone since 1.20: upgrade such a control plane):",
			Commands: []string{"grep -n insecure /etc/kubernetes/manifests/kube-apiserver.yaml"}}},
	}
}

func nodePortTexts(c Check) texts {
	return texts{
		pass:      fmt.Sprintf("NodePort %d of Service %s is not reachable on %s from pods", c.Port, c.Service, c.Addr),
		title:     fmt.Sprintf("Service %s is exposed on every node's address (NodePort %d)", c.Service, c.Port),
		cause:     fmt.Sprintf("Service %s has NodePort %d, which kube-proxy opens on every node address, so anything that reaches a node (pods included) reaches it without going through an Ingress or LoadBalancer: %s connected from", c.Service, c.Port, c.Target()),
		policyWhy: "If pods should not use it, deny it with an egress NetworkPolicy in the application namespaces:", policy: denyManifest("nodeport", c.Addr, c.Port),
		fixes: []model.Fix{{Description: "If nothing outside the cluster needs it, make the Service ClusterIP-only; or limit the addresses kube-proxy opens NodePorts on (nodePortAddresses):",
			Commands: []string{fmt.Sprintf("kubectl -n %s patch service %s -p '{\"spec\":{\"type\":\"ClusterIP\"}}'", strings.Split(c.Service, "/")[0], strings.Split(c.Service, "/")[1]),
				"kubectl -n kube-system edit configmap kube-proxy   # nodePortAddresses: [<cidr>]"}}},
	}
}
