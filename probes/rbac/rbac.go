// Package rbac turns the permissions probes declare (ProbeInfo.RBAC) into
// the two ClusterRoles netsleuth ships: netsleuth-view, what the probes
// read, and netsleuth-active, that plus what the in-cluster agents create.
package rbac

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/netsleuth/netsleuth/model"
)

// The ClusterRoles' names.
const (
	ViewRole   = "netsleuth-view"
	ActiveRole = "netsleuth-active"
)

// RoleFor is the role that grants verb: reads are in netsleuth-view,
// everything else only in netsleuth-active.
func RoleFor(verb string) string {
	if slices.Contains(model.ReadVerbs, verb) {
		return ViewRole
	}
	return ActiveRole
}

// View is every read any probe declares: the static probes run with it,
// and an active probe bound to it fails only where it would create.
func View(infos []model.ProbeInfo) []model.Permission {
	var reads []model.Permission
	for _, in := range infos {
		for _, p := range in.RBAC {
			if vs := readVerbs(p.Verbs); len(vs) > 0 {
				p.Verbs = vs
				reads = append(reads, p)
			}
		}
	}
	return model.MergePermissions(reads)
}

func readVerbs(vs []string) []string {
	var out []string
	for _, v := range vs {
		if slices.Contains(model.ReadVerbs, v) {
			out = append(out, v)
		}
	}
	return out
}

// Active is everything the probes declare, plus extra (the cleanup
// command's own needs): netsleuth-view and what agents create.
func Active(infos []model.ProbeInfo, extra ...[]model.Permission) []model.Permission {
	sets := slices.Clone(extra)
	for _, in := range infos {
		sets = append(sets, in.RBAC)
	}
	return model.MergePermissions(sets...)
}

// ClusterRole is the role named name granting perms, one rule per resource.
func ClusterRole(name string, perms []model.Permission) *rbacv1.ClusterRole {
	r := &rbacv1.ClusterRole{
		TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"app.kubernetes.io/name": "netsleuth", "app.kubernetes.io/component": "rbac"}},
	}
	for _, p := range model.MergePermissions(perms) {
		res := p.Resource
		if p.Subresource != "" {
			res += "/" + p.Subresource
		}
		r.Rules = append(r.Rules, rbacv1.PolicyRule{APIGroups: []string{p.Group}, Resources: []string{res}, Verbs: p.Verbs})
	}
	return r
}

// YAML renders role as a manifest, headed by comments that say where it
// comes from and how to bind it to a ServiceAccount.
func YAML(role *rbacv1.ClusterRole, what string) ([]byte, error) {
	body, err := yaml.Marshal(role)
	if err != nil {
		return nil, fmt.Errorf("rendering ClusterRole %s: %w", role.Name, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# ClusterRole %s: %s\n", role.Name, what)
	b.WriteString("# Generated from the probes' declared RBAC by `go generate ./cmd`; do not edit.\n")
	b.WriteString("# Bind it to a ServiceAccount netsleuth runs as:\n")
	b.WriteString("#   kubectl create serviceaccount netsleuth -n <namespace>\n")
	fmt.Fprintf(&b, "#   kubectl create clusterrolebinding %[1]s --clusterrole=%[1]s --serviceaccount=<namespace>:netsleuth\n", role.Name)
	b.WriteString("#   kubectl create token netsleuth -n <namespace>   # a token for its kubeconfig\n")
	b.WriteString("---\n")
	b.Write(body)
	return []byte(b.String()), nil
}
