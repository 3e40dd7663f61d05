// An empty stand-in for github.com/projectcalico/calico/lib/httpmachinery:
// calico's go.mod requires it, the module proxy does not serve it, and
// neither felix nor the CNI plugin imports it.
module github.com/projectcalico/calico/lib/httpmachinery

go 1.24
