package model

import "testing"

// BenchmarkFindingRedacted is the cost the recorder adds to each finding:
// a finding of typical size (a title, a root cause, 8 lines of evidence, a
// fix of 3 commands) with no secret in it.
func BenchmarkFindingRedacted(b *testing.B) {
	f := Finding{Probe: "services", ID: "services.no-endpoints", Status: StatusFail,
		Title:     "Service shop/web has no ready endpoints",
		RootCause: "Service shop/web selects 3 pods and none of them is ready, so connections to 10.96.12.7:80 are refused or time out.",
		Evidence: []string{"spec.selector: app=web", "pods: web-0 (not ready: readiness probe failed: HTTP probe failed with statuscode: 503)",
			"web-1 (not ready)", "web-2 (not ready)", "EndpointSlice shop/web-abcde: 0 ready of 3", "ports: http 80/TCP -> 8080",
			"-A KUBE-SERVICES -d 10.96.12.7/32 -p tcp -m comment --comment \"shop/web:http has no endpoints\" -j REJECT", "node nsl-node1"},
		Fixes: []Fix{{Description: "See why the pods are not ready.", Commands: []string{"kubectl -n shop describe pod web-0", "kubectl -n shop logs web-0 --tail=50", "kubectl -n shop get endpointslices -l kubernetes.io/service-name=web"}}}}
	for b.Loop() {
		_ = f.Redacted()
	}
}
