package model

import (
	"slices"
	"strings"
)

// ReadVerbs are the verbs that only read: a permission with no other verb
// creates, changes and deletes nothing.
var ReadVerbs = []string{"get", "list", "watch"}

// ReadOnly reports whether p only reads.
func (p Permission) ReadOnly() bool {
	for _, v := range p.Verbs {
		if !slices.Contains(ReadVerbs, v) {
			return false
		}
	}
	return true
}

// Name is the permission's resource as RBAC and `kubectl auth can-i` spell
// it: resource[.group][/subresource].
func (p Permission) Name() string {
	r := p.Resource
	if p.Group != "" {
		r += "." + p.Group
	}
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	return r
}

// MergePermissions is the union of sets: one permission per group, resource
// and subresource with the union of their verbs, each list sorted, so the
// result is the same whatever order the sets come in.
func MergePermissions(sets ...[]Permission) []Permission {
	type key struct{ group, resource, sub string }
	verbs := map[key][]string{}
	for _, set := range sets {
		for _, p := range set {
			k := key{p.Group, p.Resource, p.Subresource}
			for _, v := range p.Verbs {
				if !slices.Contains(verbs[k], v) {
					verbs[k] = append(verbs[k], v)
				}
			}
		}
	}
	out := make([]Permission, 0, len(verbs))
	for k, vs := range verbs {
		slices.Sort(vs)
		out = append(out, Permission{Group: k.group, Resource: k.resource, Subresource: k.sub, Verbs: vs})
	}
	slices.SortFunc(out, func(a, b Permission) int {
		return strings.Compare(a.Group+"\x00"+a.Resource+"\x00"+a.Subresource, b.Group+"\x00"+b.Resource+"\x00"+b.Subresource)
	})
	return out
}

// Covers reports whether the permissions in have verb on p's resource.
func Covers(in []Permission, group, resource, subresource, verb string) bool {
	return slices.ContainsFunc(in, func(p Permission) bool {
		return p.Group == group && p.Resource == resource && p.Subresource == subresource && slices.Contains(p.Verbs, verb)
	})
}
