package nodesysctl

import "testing"

// TestRequestIsValid: the agent takes what the probe asks of every node.
func TestRequestIsValid(t *testing.T) {
	if err := Request().Validate(); err != nil {
		t.Fatal(err)
	}
}
