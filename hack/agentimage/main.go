// Command agentimage builds netsleuth's in-cluster agent image the way the
// release does, from one definition: the kos entry of .goreleaser.yaml (user,
// labels, platforms, build flags) and the base defined in base.go.
//
//	agentimage digest
//	    print the base's digest (what .goreleaser.yaml's base_image pins)
//	agentimage serve-base [-detach] [-owner PID] [-max 6h]
//	    serve the base on the loopback registry base_image names, for
//	    GoReleaser's kos (a before hook runs it with -detach: it serves until
//	    that GoReleaser run ends)
//	agentimage build -tag REF -out FILE [-platform linux/ARCH] [-version V]
//	    build the image with ko for one platform into a docker-archive
//	    (the lab imports it into its nodes' containerd)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "agentimage:", err)
		os.Exit(1)
	}
}

func usage() error {
	return fmt.Errorf("usage: agentimage digest | serve-base [-detach] [-owner PID] [-max D] | build -tag REF -out FILE [-platform linux/ARCH] [-version V]")
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usage()
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	repo, err := findRepoRoot(wd)
	if err != nil {
		return err
	}
	switch args[0] {
	case "digest":
		idx, err := baseIndex()
		if err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return err
		}
		fmt.Println(d)
		return nil
	case "serve-base":
		return runServe(ctx, repo, args[1:])
	case "build":
		return runBuild(ctx, repo, args[1:])
	}
	return usage()
}

func runServe(ctx context.Context, repo string, args []string) error {
	fs := flag.NewFlagSet("serve-base", flag.ContinueOnError)
	detached := fs.Bool("detach", false, "serve in the background and return once the base can be pulled")
	var o serveOptions
	fs.IntVar(&o.Owner, "owner", 0, "stop once process `pid` is gone (-detach passes the process that ran it)")
	fs.DurationVar(&o.Max, "max", 6*time.Hour, "stop this long after starting in any case")
	if err := fs.Parse(args); err != nil {
		return err
	}
	base, err := pinnedBase(filepath.Join(repo, configFile))
	if err != nil {
		return err
	}
	if *detached {
		return detach(ctx, base, []string{"serve-base", "-max", o.Max.String()}, defaultLogPath())
	}
	idx, err := baseIndex()
	if err != nil {
		return err
	}
	if err := checkPinned(idx, base); err != nil {
		return err
	}
	return serveBase(ctx, base, idx, o, func() { fmt.Printf("serve-base: serving %s\n", base) })
}

func runBuild(ctx context.Context, repo string, args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	tag := fs.String("tag", "", "image reference to tag the archive with")
	out := fs.String("out", "", "docker-archive file to write")
	platform := fs.String("platform", "linux/"+runtime.GOARCH, "platform to build")
	version := fs.String("version", "dev", "the version GoReleaser's templates see")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tag == "" || *out == "" {
		return usage()
	}
	data := templateData(repo, *version)
	s, err := loadSettings(filepath.Join(repo, configFile), data)
	if err != nil {
		return err
	}
	start := time.Now()
	d, err := buildImage(ctx, repo, s, *platform, *tag, *out)
	if err != nil {
		return err
	}
	fmt.Printf("built %s (%s, %s) into %s in %s\n", *tag, *platform, d, *out, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// templateData is what GoReleaser's templates see, for a build outside a
// release: version, and the commit of repo when git can tell.
func templateData(repo, version string) map[string]string {
	commit, when := "none", "0"
	if out, err := exec.Command("git", "-C", repo, "log", "-1", "--format=%H %ct").Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) == 2 {
			commit, when = f[0], f[1]
		}
	}
	short := commit
	if len(short) > 7 {
		short = short[:7]
	}
	date := epoch.Format(time.RFC3339)
	if sec, err := strconv.ParseInt(when, 10, 64); err == nil {
		date = time.Unix(sec, 0).UTC().Format(time.RFC3339)
	}
	return map[string]string{
		"ProjectName": "netsleuth", "Version": version, "Tag": "v" + version,
		"FullCommit": commit, "Commit": commit, "ShortCommit": short,
		"CommitTimestamp": when, "CommitDate": date,
	}
}
