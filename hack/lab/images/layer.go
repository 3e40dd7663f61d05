package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// entry is a normalized File: clean relative name, resolved type and mode.
type entry struct {
	name     string // clean, relative to the root, no trailing slash
	typeflag byte
	mode     int64
	data     []byte
	src      string
	size     int64
	link     string
}

// normalize validates files, applies default modes, adds missing parent
// directories and sorts the result by name (parents precede children).
func normalize(files []File) ([]entry, error) {
	byName := make(map[string]*entry, len(files))
	for _, f := range files {
		e, err := toEntry(f)
		if err != nil {
			return nil, err
		}
		if _, dup := byName[e.name]; dup {
			return nil, fmt.Errorf("images: duplicate path %q", f.Path)
		}
		byName[e.name] = &e
	}
	for name := range byName {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			p, ok := byName[dir]
			if !ok {
				byName[dir] = &entry{name: dir, typeflag: tar.TypeDir, mode: 0o755}
				continue
			}
			if p.typeflag != tar.TypeDir {
				return nil, fmt.Errorf("images: %q is a parent of %q but not a directory", dir, name)
			}
		}
	}
	ents := make([]entry, 0, len(byName))
	for _, e := range byName {
		ents = append(ents, *e)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	return ents, nil
}

func cleanPath(p string) (string, error) {
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", fmt.Errorf("images: path %q contains \"..\"", p)
		}
	}
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		return "", fmt.Errorf("images: invalid path %q (the root cannot be an entry)", p)
	}
	return name, nil
}

func toEntry(f File) (entry, error) {
	name, err := cleanPath(f.Path)
	if err != nil {
		return entry{}, err
	}
	e := entry{name: name, mode: tarMode(f.Mode)}
	hasContent := f.Data != nil || f.Src != ""
	switch {
	case f.Link != "":
		if hasContent || f.Mode.IsDir() {
			return entry{}, fmt.Errorf("images: %q: symlink with contents or directory mode", f.Path)
		}
		e.typeflag, e.link = tar.TypeSymlink, f.Link
		e.mode = defaultPerm(e.mode, 0o777)
	case f.Mode&os.ModeSymlink != 0:
		return entry{}, fmt.Errorf("images: %q: symlink mode without Link", f.Path)
	case f.Mode.IsDir():
		if hasContent {
			return entry{}, fmt.Errorf("images: %q: directory with contents", f.Path)
		}
		e.typeflag = tar.TypeDir
		e.mode = defaultPerm(e.mode, 0o755)
	case f.Mode.Type() != 0:
		return entry{}, fmt.Errorf("images: %q: unsupported file type %v", f.Path, f.Mode.Type())
	default:
		return regularEntry(e, f)
	}
	return e, nil
}

func regularEntry(e entry, f File) (entry, error) {
	e.typeflag = tar.TypeReg
	if f.Src == "" {
		e.data, e.size = f.Data, int64(len(f.Data))
		e.mode = defaultPerm(e.mode, 0o644)
		return e, nil
	}
	if f.Data != nil {
		return entry{}, fmt.Errorf("images: %q: both Data and Src set", f.Path)
	}
	fi, err := os.Stat(f.Src)
	if err != nil {
		return entry{}, fmt.Errorf("images: %q: %w", f.Path, err)
	}
	if !fi.Mode().IsRegular() {
		return entry{}, fmt.Errorf("images: %q: Src %s is not a regular file", f.Path, f.Src)
	}
	e.src, e.size = f.Src, fi.Size()
	e.mode = defaultPerm(e.mode, int64(fi.Mode().Perm()))
	return e, nil
}

// defaultPerm returns def (plus any special bits) when mode has no
// permission bits.
func defaultPerm(mode, def int64) int64 {
	if mode&0o777 == 0 {
		return mode | def
	}
	return mode
}

func tarMode(m os.FileMode) int64 {
	v := int64(m.Perm())
	if m&os.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// writeLayer writes the layer tarball for ents to w.
func writeLayer(w io.Writer, ents []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range ents {
		hdr := &tar.Header{
			Typeflag: e.typeflag,
			Name:     e.name,
			Linkname: e.link,
			Mode:     e.mode,
			ModTime:  epoch,
		}
		switch e.typeflag {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			hdr.Size = e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("images: %s: %w", e.name, err)
		}
		if err := writeContents(tw, e); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeContents(w io.Writer, e entry) error {
	if e.typeflag != tar.TypeReg {
		return nil
	}
	if e.src == "" {
		_, err := w.Write(e.data)
		return err
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(w, f, e.size); err != nil {
		return fmt.Errorf("images: %s: reading %s: %w (file changed?)", e.name, e.src, err)
	}
	return nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// digestLayer returns the hex sha256 and size of the layer tarball.
func digestLayer(ents []entry) (string, int64, error) {
	h, c := sha256.New(), &countWriter{}
	if err := writeLayer(io.MultiWriter(h, c), ents); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), c.n, nil
}

// copyLayer writes the layer to w again and checks it still hashes to want.
func copyLayer(w io.Writer, ents []entry, want string) error {
	h := sha256.New()
	if err := writeLayer(io.MultiWriter(w, h), ents); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("images: layer contents changed while writing (sha256 %s, then %s)", want, got)
	}
	return nil
}
