package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netsleuth/netsleuth/probes/agent/ops"
)

func freePorts(t *testing.T) (int, int) {
	var ps []int
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	return ps[0], ps[1]
}

// TestServeAndExec runs the agent's listeners on loopback and probes them
// through Exec, the way a probe does through the API server.
func TestServeAndExec(t *testing.T) {
	echo, web := freePorts(t)
	t.Setenv("POD_NAME", "agent-x")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, echo, web, true) }()
	req := ops.Request{Ops: []ops.Op{
		{Kind: ops.TCP, Target: "127.0.0.1", Port: echo},
		{Kind: ops.UDP, Target: "127.0.0.1", Port: echo, Count: 2},
		{Kind: ops.HTTP, Target: "127.0.0.1", Port: web, Path: "/"},
	}}
	body, _ := json.Marshal(req)
	var resp ops.Response
	for i := 0; ; i++ {
		var out bytes.Buffer
		if err := Exec(context.Background(), bytes.NewReader(body), &out); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		// Serve starts its listeners concurrently: wait until all of them answer.
		allOK := true
		for _, r := range resp.Results {
			allOK = allOK && r.Outcome == ops.OK
		}
		if allOK || i > 40 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, r := range resp.Results {
		if r.Outcome != ops.OK {
			t.Errorf("op %d: %+v", i, r)
		}
	}
	if !strings.Contains(resp.Results[2].Body, "netsleuth-agent pod=agent-x") {
		t.Errorf("banner: %q", resp.Results[2].Body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestExecRefusesBadInput(t *testing.T) {
	for _, body := range []string{
		"not json",
		`{"ops":[{"kind":"read-files","paths":["/host/etc/shadow"]}]}`,
		`{"ops":[{"kind":"shell","target":"id"}]}`,
		`{"ops":[]}` + strings.Repeat(" ", ops.MaxRequestBytes),
	} {
		var out bytes.Buffer
		err := Exec(context.Background(), strings.NewReader(body), &out)
		if _, ok := err.(*ops.Refusal); !ok {
			t.Errorf("%.40q: got %v (%T), want a refusal", body, err, err)
			continue
		}
		var resp ops.Response
		if jerr := json.Unmarshal(out.Bytes(), &resp); jerr != nil || resp.Error != err.Error() || len(resp.Results) != 0 || resp.Hostname == "" {
			t.Errorf("%.40q: response %q (%v), want the refusal %q and no results", body, out.String(), jerr, err)
		}
	}
}

// TestExecProgressReachesTheClient: a Progress request's answer, read by
// the client's writer in small pieces as a stream delivers it, hands each
// op's result over as a line of its own and leaves the Response whole.
func TestExecProgressReachesTheClient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).Port
	closed, _ := freePorts(t)
	req := ops.Request{Progress: true, Ops: []ops.Op{
		{Kind: ops.TCP, Target: "127.0.0.1", Port: open},
		{Kind: ops.TCP, Target: "127.0.0.1", Port: closed},
	}}
	body, _ := json.Marshal(req)
	var out bytes.Buffer
	if err := Exec(context.Background(), bytes.NewReader(body), &out); err != nil {
		t.Fatal(err)
	}
	got := map[int]ops.Outcome{}
	w := &progressWriter{each: func(i int, r ops.Result) { got[i] = r.Outcome }, ops: len(req.Ops)}
	for b := out.Bytes(); len(b) > 0; b = b[min(7, len(b)):] {
		if _, err := w.Write(b[:min(7, len(b))]); err != nil {
			t.Fatal(err)
		}
	}
	w.end()
	want := map[int]ops.Outcome{0: ops.OK, 1: ops.Refused}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("progress %v, want %v (agent wrote %q)", got, want, out.String())
	}
	var resp ops.Response
	if err := json.Unmarshal(w.rest.Bytes(), &resp); err != nil || len(resp.Results) != 2 || resp.Results[1].Outcome != ops.Refused {
		t.Errorf("the response after the progress lines: %+v, %v (%q)", resp, err, w.rest.String())
	}
	// Without Progress the answer is the Response alone, as before.
	req.Progress = false
	body, _ = json.Marshal(req)
	out.Reset()
	if err := Exec(context.Background(), bytes.NewReader(body), &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Errorf("%d lines without Progress, want 1: %q", n, out.String())
	}
}
