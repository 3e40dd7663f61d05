package clusterdns

import (
	"slices"
	"testing"
)

const labCorefile = `.:53 {
    errors
    health {
        lameduck 2s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    forward . 10.250.0.53   # the lab's upstream
    cache 30
    loop
}
`

const nodeLocalCorefile = `cluster.local:53 {
    errors
    cache { success 9984 30 }
    bind 169.254.20.10 10.96.0.10
    forward . 10.96.0.11 { force_tcp }
}
.:53 {
    bind 169.254.20.10 10.96.0.10
    forward . /etc/resolv.conf
}`

func TestParseCorefile(t *testing.T) {
	cf := ParseCorefile(labCorefile)
	if len(cf.Blocks) != 1 || !slices.Equal(cf.Blocks[0].Keys, []string{".:53"}) {
		t.Fatalf("blocks %+v", cf.Blocks)
	}
	if f := cf.Forwards(); len(f) != 1 || f[0].From != "." || !slices.Equal(f[0].To, []string{"10.250.0.53"}) {
		t.Errorf("forwards %+v", f)
	}
	if z := cf.KubernetesZones(); !slices.Equal(z, []string{"cluster.local"}) {
		t.Errorf("zones %v", z)
	}
	if !cf.Has("cache") || cf.Has("bind") {
		t.Error("plugin presence")
	}
	nl := ParseCorefile(nodeLocalCorefile)
	if len(nl.Blocks) != 2 || len(nl.Forwards()) != 2 || nl.Forwards()[0].To[0] != "10.96.0.11" {
		t.Fatalf("node-local: %+v", nl)
	}
	if b := nl.Binds(); !slices.Equal(b, []string{"169.254.20.10", "10.96.0.10", "169.254.20.10", "10.96.0.10"}) {
		t.Errorf("binds %v", b)
	}
	zoneless := ParseCorefile("cluster.local:53 {\n kubernetes\n}")
	if z := zoneless.KubernetesZones(); !slices.Equal(z, []string{"cluster.local"}) {
		t.Errorf("zones from the server block key: %v", z)
	}
}

func TestUniqueAddresses(t *testing.T) {
	if got := unique(ParseCorefile(nodeLocalCorefile).Binds()); !slices.Equal(got, []string{"169.254.20.10", "10.96.0.10"}) {
		t.Errorf("%v", got)
	}
}
