// Package all lists every probe netsleuth ships, in display order. It is the
// one place that imports every probe package.
package all

import (
	"github.com/netsleuth/netsleuth/probes"
	"github.com/netsleuth/netsleuth/probes/dns"
	"github.com/netsleuth/netsleuth/probes/exposure"
	"github.com/netsleuth/netsleuth/probes/external"
	"github.com/netsleuth/netsleuth/probes/ipmasq"
	"github.com/netsleuth/netsleuth/probes/kubelet"
	"github.com/netsleuth/netsleuth/probes/nodeports"
	"github.com/netsleuth/netsleuth/probes/nodesysctl"
	"github.com/netsleuth/netsleuth/probes/podcidr"
	"github.com/netsleuth/netsleuth/probes/podtopod"
	"github.com/netsleuth/netsleuth/probes/podtoservice"
	"github.com/netsleuth/netsleuth/probes/policy"
	"github.com/netsleuth/netsleuth/probes/runtime"
	"github.com/netsleuth/netsleuth/probes/services"
	"github.com/netsleuth/netsleuth/probes/trace"
)

// Probes returns a fresh instance of every probe.
func Probes() []probes.Probe {
	return []probes.Probe{
		external.New(),     // A
		ipmasq.New(),       // B
		podtopod.New(),     // B
		dns.New(),          // C
		policy.New(),       // D
		runtime.New(),      // E
		kubelet.New(),      // F
		nodeports.New(),    // G
		podcidr.New(),      // H
		exposure.New(),     // I
		nodesysctl.New(),   // J
		services.New(),     // L
		podtoservice.New(), // L
		trace.New(),        // M
	}
}
