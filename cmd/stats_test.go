package cmd

import "testing"

func TestAPIResource(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/namespaces/x/pods/y/exec":                      "pods/exec",
		"/api/v1/namespaces/x/pods":                             "pods",
		"/api/v1/namespaces":                                    "namespaces",
		"/api/v1/namespaces/x":                                  "namespaces",
		"/api/v1/nodes/n/proxy/configz":                         "nodes/proxy",
		"/api/v1/nodes":                                         "nodes",
		"/apis/discovery.k8s.io/v1/namespaces/a/endpointslices": "endpointslices",
		"/apis/apps/v1/daemonsets":                              "daemonsets",
		"/version":                                              "/version",
		"/api":                                                  "/api",
	} {
		if got := apiResource(path); got != want {
			t.Errorf("apiResource(%q) = %q, want %q", path, got, want)
		}
	}
}
