package images

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// BusyboxFiles returns the files of a minimal busybox root filesystem:
// /bin/busybox (copied from the static host binary busyboxPath), a symlink to
// /bin/busybox for every applet at the location reported by
// `busybox --list-full` (falling back to /bin/<applet> from `busybox
// --list`), /etc/passwd and /etc/group with root and nobody (65534), /root
// (0700) and /tmp (1777).
func BusyboxFiles(busyboxPath string) ([]File, error) {
	applets, err := busyboxApplets(busyboxPath)
	if err != nil {
		return nil, err
	}
	files := []File{
		StaticBinary(busyboxPath, "/bin/busybox"),
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(
			"root:x:0:0:root:/root:/bin/sh\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\n")},
		{Path: "/root", Mode: os.ModeDir | 0o700},
		{Path: "/tmp", Mode: os.ModeDir | os.ModeSticky | 0o777},
	}
	seen := map[string]bool{"bin/busybox": true, "etc/passwd": true, "etc/group": true}
	for _, p := range applets {
		if seen[p] {
			continue
		}
		seen[p] = true
		files = append(files, File{Path: "/" + p, Link: "/bin/busybox"})
	}
	return files, nil
}

// BusyboxImage returns an image built from BusyboxFiles with Cmd ["/bin/sh"]
// (not an Entrypoint, so pods can override the command) and DefaultPathEnv.
func BusyboxImage(ref, busyboxPath string) (Image, error) {
	files, err := BusyboxFiles(busyboxPath)
	if err != nil {
		return Image{}, err
	}
	return Image{Ref: ref, Files: files, Cmd: []string{"/bin/sh"}, Env: []string{DefaultPathEnv}}, nil
}

// StaticBinary returns a File installing the host file hostPath at
// inImagePath with mode 0755. The host file is read when the image is written.
func StaticBinary(hostPath, inImagePath string) File {
	return File{Path: inImagePath, Mode: 0o755, Src: hostPath}
}

// busyboxApplets returns the sorted, root-relative applet paths (for example
// "bin/sh", "usr/bin/env").
func busyboxApplets(busyboxPath string) ([]string, error) {
	out, err := exec.Command(busyboxPath, "--list-full").Output()
	prefix := ""
	if err != nil || !bytes.Contains(out, []byte("/")) {
		out, err = exec.Command(busyboxPath, "--list").Output()
		prefix = "bin/"
	}
	if err != nil {
		return nil, fmt.Errorf("images: listing busybox applets of %s: %w", busyboxPath, err)
	}
	var applets []string
	for _, line := range strings.Fields(string(out)) {
		p := strings.TrimPrefix(prefix+line, "/")
		// Skip entries outside a directory (busybox lists "linuxrc") and
		// anything that would escape the root.
		if !strings.Contains(p, "/") || strings.Contains(p, "..") {
			continue
		}
		applets = append(applets, p)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("images: %s listed no applets", busyboxPath)
	}
	sort.Strings(applets)
	return applets, nil
}
