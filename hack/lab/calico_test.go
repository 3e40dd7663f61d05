package main

import (
	"strings"
	"testing"
)

// felixSave is the shape of felix's rules in a node's iptables-save: its own
// chains, its jumps from the built-in chains (commented cali:…), and other
// programs' rules that must survive teardown.
const felixSave = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:cali-FORWARD - [0:0]
:cali-from-wl-dispatch - [0:0]
:KUBE-FORWARD - [0:0]
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A FORWARD -m comment --comment cali:wUHhoiAYhphO9Mso -j cali-FORWARD
-A FORWARD -m comment --comment "cali:S93hcgKJrXEqnTfs" -m mark --mark 0x10000/0x10000 -j ACCEPT
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -s 10.9.0.0/16 -o eth9 -j DROP
-A cali-FORWARD -i cali+ -j cali-from-wl-dispatch
-A cali-from-wl-dispatch -m comment --comment "Unknown interface" -j DROP
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
:cali-nat-outgoing - [0:0]
-A POSTROUTING -m comment --comment cali:O3lYWMrLQYEMJtB5 -j cali-POSTROUTING
-A POSTROUTING -j MASQUERADE -o eth9
-A cali-nat-outgoing -m set --match-set cali40masq-ipam-pools src -m set ! --match-set cali40all-ipam-pools dst -j MASQUERADE --random-fully
COMMIT
`

func TestFelixFreeTablesKeepsOthersRules(t *testing.T) {
	tables := felixFreeTables(felixSave)
	if len(tables) != 2 {
		t.Fatalf("want filter and nat rewritten, got %d tables", len(tables))
	}
	for table, body := range tables {
		if strings.Contains(body, "cali") {
			t.Errorf("%s still has felix's: %s", table, body)
		}
	}
	for _, keep := range []string{"-A FORWARD -s 10.9.0.0/16 -o eth9 -j DROP", ":KUBE-FORWARD - [0:0]", "kubernetes forwarding rules"} {
		if !strings.Contains(tables["filter"], keep) {
			t.Errorf("teardown of felix's rules lost %q", keep)
		}
	}
	if !strings.Contains(tables["nat"], "-A POSTROUTING -j MASQUERADE -o eth9") {
		t.Errorf("lost another program's NAT rule: %s", tables["nat"])
	}
	// The lab's whole teardown removes felix's too.
	for table, body := range filterTables(felixSave) {
		if strings.Contains(body, "cali") {
			t.Errorf("filterTables left felix's in %s", table)
		}
	}
}

func TestSetHas(t *testing.T) {
	list := "Name: cali40masq-ipam-pools\nType: hash:net\nMembers:\n10.244.1.0/24\n10.244.0.0/24\n"
	if !setHas(list, "10.244.0.0/24") || setHas(list, "10.244.2.0/24") || setHas("Members:\n", "10.244.0.0/24") {
		t.Error("setHas misreads ipset list output")
	}
}
