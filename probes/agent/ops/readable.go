package ops

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ReadRoot is one part of the readable set: the files whose paths start
// with Prefix, opened without leaving Root (a symbolic link may not lead
// out of it).
type ReadRoot struct{ Prefix, Root string }

// Readable is everything read-files may read: the network stack's sysctls
// and the network interfaces' attributes (/sys/class/net/<if> links into
// /sys/devices). Nothing else is readable: no other /proc or /sys file
// (/proc/<pid>/environ, /proc/self/root/..., /sys/kernel), no path with
// "..", nothing under a node agent's host root mount.
var Readable = []ReadRoot{
	{Prefix: "/proc/sys/net/", Root: "/proc/sys/net"},
	{Prefix: "/sys/class/net/", Root: "/sys"},
}

// Bounds of what read-files reads.
const (
	maxPathLen   = 256
	maxFileBytes = 64 << 10
)

func readableList() string {
	var ps []string
	for _, r := range Readable {
		ps = append(ps, r.Prefix)
	}
	return strings.Join(ps, " and ")
}

// readRootOf finds the part of the readable set p lies in.
func readRootOf(p string) (ReadRoot, bool) {
	for _, r := range Readable {
		if strings.HasPrefix(p, r.Prefix) && len(p) > len(r.Prefix) {
			return r, true
		}
	}
	return ReadRoot{}, false
}

// checkPaths accepts clean absolute paths inside the readable set.
func checkPaths(ps []string) error {
	if len(ps) == 0 || len(ps) > MaxPaths {
		return refuse("read-files takes 1 to %d paths, got %d", MaxPaths, len(ps))
	}
	for _, p := range ps {
		switch {
		case len(p) > maxPathLen:
			return refuse("path %.80q is longer than %d bytes", p, maxPathLen)
		case !strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.ContainsRune(p, 0):
			return refuse("path %.80q is not a clean absolute path (no \"..\", \".\", \"//\" or trailing \"/\"); the agent reads only files under %s", p, readableList())
		}
		if _, ok := readRootOf(p); !ok {
			return refuse("path %.80q is outside the readable set; the agent reads only files under %s", p, readableList())
		}
	}
	return nil
}

// sysRoot is where read-files paths are looked up.
func (env Env) sysRoot() string {
	if env.SysRoot == "" {
		return "/"
	}
	return env.SysRoot
}

// checkLinks refuses a path whose symbolic links lead out of its part of
// the readable set. A path that does not resolve is left to the read, which
// reports it (a sysctl of a module not loaded is a fact, not a refusal).
func (env Env) checkLinks(p string) error {
	r, _ := readRootOf(p)
	root, err := filepath.EvalSymlinks(filepath.Join(env.sysRoot(), r.Root))
	if err != nil {
		return nil
	}
	full, err := filepath.EvalSymlinks(filepath.Join(root, strings.TrimPrefix(p, r.Root+"/")))
	if err != nil {
		return nil
	}
	if full != root && !strings.HasPrefix(full, root+string(filepath.Separator)) {
		return refuse("path %.80q leads out of %s through a symbolic link; the agent reads only files under %s", p, r.Root, readableList())
	}
	return nil
}

// readFile reads one readable file through an os.Root, so that no link can
// lead it outside its part of the readable set even if the file system
// changed since checkLinks.
func (env Env) readFile(p string) (string, error) {
	r, ok := readRootOf(p)
	if !ok {
		return "", refuse("path %.80q is outside the readable set", p)
	}
	f, err := os.OpenInRoot(filepath.Join(env.sysRoot(), r.Root), strings.TrimPrefix(p, r.Root+"/"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	if len(b) > maxFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes", p, maxFileBytes)
	}
	return strings.TrimSpace(string(b)), nil
}
