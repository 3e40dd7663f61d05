package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func testImage(t *testing.T) Image {
	t.Helper()
	src := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	return Image{
		Ref: "netsleuth.local/test:1.0",
		Files: []File{
			{Path: "/usr/share/doc/readme.txt", Data: []byte("hello\n")},
			{Path: "etc/config", Mode: 0o600, Data: []byte("k=v\n")},
			{Path: "/tmp", Mode: os.ModeDir | os.ModeSticky | 0o777},
			{Path: "/bin/tool", Link: "/usr/bin/prog"},
			StaticBinary(src, "/usr/bin/prog"),
			{Path: "/usr/bin/raw", Src: src},
			{Path: "/empty", Data: []byte{}},
		},
		Entrypoint:   []string{"/usr/bin/prog"},
		Cmd:          []string{"--flag"},
		Env:          []string{DefaultPathEnv, "A=b"},
		WorkingDir:   "/tmp",
		Labels:       map[string]string{"z": "1", "a": "2"},
		ExposedPorts: []string{"80", "53/udp"},
	}
}

// readTar returns the entries of a tarball in order, with their contents.
func readTar(t *testing.T, data []byte) ([]*tar.Header, map[string][]byte) {
	t.Helper()
	var hdrs []*tar.Header
	contents := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs, contents
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, hdr)
		contents[hdr.Name] = b
	}
}

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestWriteDockerArchive(t *testing.T) {
	img := testImage(t)
	var buf bytes.Buffer
	if err := Write(&buf, img); err != nil {
		t.Fatal(err)
	}
	_, outer := readTar(t, buf.Bytes())
	var man []dockerManifest
	if err := json.Unmarshal(outer["manifest.json"], &man); err != nil {
		t.Fatal(err)
	}
	if len(man) != 1 || len(man[0].RepoTags) != 1 || man[0].RepoTags[0] != img.Ref || len(man[0].Layers) != 1 {
		t.Fatalf("manifest = %+v", man)
	}
	cfgBytes, ok := outer[man[0].Config]
	if !ok || man[0].Config != sumHex(cfgBytes)+".json" {
		t.Fatalf("config %q missing or not named by its sha256", man[0].Config)
	}
	layer, ok := outer[man[0].Layers[0]]
	if !ok || man[0].Layers[0] != sumHex(layer)+"/layer.tar" {
		t.Fatalf("layer %q missing or not named by its sha256", man[0].Layers[0])
	}
	var cfg imageConfig
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, img, cfg, sumHex(layer))
	checkLayer(t, layer)
}

func checkConfig(t *testing.T, img Image, cfg imageConfig, layerSum string) {
	t.Helper()
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("platform = %s/%s", cfg.OS, cfg.Architecture)
	}
	if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != "sha256:"+layerSum {
		t.Errorf("rootfs = %+v, want diff_id sha256:%s", cfg.RootFS, layerSum)
	}
	if len(cfg.History) != 1 {
		t.Errorf("history = %+v", cfg.History)
	}
	c := cfg.Config
	if strings.Join(c.Entrypoint, " ") != "/usr/bin/prog" || strings.Join(c.Cmd, " ") != "--flag" ||
		len(c.Env) != 2 || c.WorkingDir != "/tmp" || c.Labels["a"] != "2" || len(c.Labels) != 2 {
		t.Errorf("config = %+v", c)
	}
	if _, ok := c.ExposedPorts["80/tcp"]; !ok || len(c.ExposedPorts) != 2 {
		t.Errorf("exposed ports = %v", c.ExposedPorts)
	}
}

func checkLayer(t *testing.T, layer []byte) {
	t.Helper()
	hdrs, contents := readTar(t, layer)
	var names []string
	byName := map[string]*tar.Header{}
	for _, h := range hdrs {
		names = append(names, h.Name)
		byName[h.Name] = h
		if h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d", h.Name, h.ModTime, h.Uid, h.Gid)
		}
	}
	want := "bin/ bin/tool empty etc/ etc/config tmp/ usr/ usr/bin/ usr/bin/prog usr/bin/raw usr/share/ usr/share/doc/ usr/share/doc/readme.txt"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("layer entries:\n got %s\nwant %s", got, want)
	}
	modes := map[string]int64{"bin/": 0o755, "etc/config": 0o600, "tmp/": 0o1777,
		"usr/bin/prog": 0o755, "usr/bin/raw": 0o750, "usr/share/doc/readme.txt": 0o644, "bin/tool": 0o777}
	for name, mode := range modes {
		if byName[name].Mode != mode {
			t.Errorf("%s: mode %o, want %o", name, byName[name].Mode, mode)
		}
	}
	if h := byName["bin/tool"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "/usr/bin/prog" {
		t.Errorf("bin/tool = %+v", h)
	}
	if byName["tmp/"].Typeflag != tar.TypeDir {
		t.Errorf("tmp is not a directory")
	}
	if string(contents["usr/bin/prog"]) != "#!/bin/sh\necho hi\n" || string(contents["etc/config"]) != "k=v\n" {
		t.Errorf("contents = %q", contents)
	}
}

func TestDeterministic(t *testing.T) {
	img := testImage(t)
	var a, b bytes.Buffer
	if err := Write(&a, img); err != nil {
		t.Fatal(err)
	}
	// Same files in another order must give the same archive.
	img2 := img
	img2.Files = append([]File(nil), img.Files...)
	for i, j := 0, len(img2.Files)-1; i < j; i, j = i+1, j-1 {
		img2.Files[i], img2.Files[j] = img2.Files[j], img2.Files[i]
	}
	if err := Write(&b, img2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of the same image differ")
	}
	d, err := Digest(img)
	if err != nil {
		t.Fatal(err)
	}
	if want := "sha256:" + sumHex(a.Bytes()); d != want {
		t.Fatalf("Digest = %s, want %s", d, want)
	}
	img3 := img
	img3.Ref = "netsleuth.local/test:2.0"
	if d3, _ := Digest(img3); d3 == d {
		t.Fatal("digest does not depend on Ref")
	}
}

func TestWriteFile(t *testing.T) {
	img := testImage(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "img.tar")
	d, err := WriteFile(path, img)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d != "sha256:"+sumHex(data) {
		t.Fatalf("WriteFile digest %s does not match file", d)
	}
	if d2, _ := Digest(img); d2 != d {
		t.Fatalf("Digest %s != WriteFile %s", d2, d)
	}
	img.Ref = ""
	if _, err := WriteFile(filepath.Join(dir, "bad.tar"), img); err == nil {
		t.Fatal("WriteFile with empty Ref succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("leftover files: %v", ents)
	}
}

func TestWriteErrors(t *testing.T) {
	cases := map[string]Image{
		"empty ref":      {},
		"uppercase ref":  {Ref: "netsleuth.local/Test:1"},
		"duplicate":      {Ref: "x:1", Files: []File{{Path: "/a"}, {Path: "a"}}},
		"parent is file": {Ref: "x:1", Files: []File{{Path: "/a", Data: []byte("x")}, {Path: "/a/b"}}},
		"dotdot":         {Ref: "x:1", Files: []File{{Path: "/a/../../b"}}},
		"root":           {Ref: "x:1", Files: []File{{Path: "/", Mode: os.ModeDir}}},
		"data and src":   {Ref: "x:1", Files: []File{{Path: "/a", Data: []byte("x"), Src: "/etc/hostname"}}},
		"missing src":    {Ref: "x:1", Files: []File{StaticBinary("/nonexistent/netsleuth", "/a")}},
		"symlink data":   {Ref: "x:1", Files: []File{{Path: "/a", Link: "b", Data: []byte("x")}}},
		"bad port":       {Ref: "x:1", ExposedPorts: []string{"80/icmp"}},
	}
	for name, img := range cases {
		if err := Write(io.Discard, img); err == nil {
			t.Errorf("%s: Write succeeded", name)
		}
	}
}

func TestBusyboxFiles(t *testing.T) {
	const bb = "/bin/busybox"
	if _, err := os.Stat(bb); err != nil {
		t.Skip("no host busybox:", err)
	}
	img, err := BusyboxImage("netsleuth.local/busybox:1.35", bb)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Entrypoint) != 0 || strings.Join(img.Cmd, " ") != "/bin/sh" {
		t.Fatalf("entrypoint %v cmd %v", img.Entrypoint, img.Cmd)
	}
	var buf bytes.Buffer
	if err := Write(&buf, img); err != nil {
		t.Fatal(err)
	}
	_, outer := readTar(t, buf.Bytes())
	var man []dockerManifest
	if err := json.Unmarshal(outer["manifest.json"], &man); err != nil {
		t.Fatal(err)
	}
	hdrs, contents := readTar(t, outer[man[0].Layers[0]])
	byName := map[string]*tar.Header{}
	for _, h := range hdrs {
		byName[h.Name] = h
	}
	for _, name := range []string{"bin/sh", "bin/ls", "usr/bin/env", "bin/busybox", "tmp/", "etc/passwd"} {
		if byName[name] == nil {
			t.Errorf("missing %s", name)
		}
	}
	if h := byName["bin/sh"]; h != nil && (h.Typeflag != tar.TypeSymlink || h.Linkname != "/bin/busybox") {
		t.Errorf("bin/sh = %+v", h)
	}
	if h := byName["tmp/"]; h != nil && h.Mode != 0o1777 {
		t.Errorf("tmp mode %o", h.Mode)
	}
	if h := byName["bin/busybox"]; h != nil && (h.Mode != 0o755 || h.Size < 100000) {
		t.Errorf("bin/busybox = %+v", h)
	}
	if !strings.Contains(string(contents["etc/passwd"]), "nobody:x:65534:65534:") {
		t.Errorf("passwd = %q", contents["etc/passwd"])
	}
}
