// Command dewar-observer shows every dewar task of a Mesos agent in a
// browser, with Thermos' observer URLs (port 1338), as JSON and as
// Prometheus metrics, and on the command line:
//
//	dewar-observer [--mesos-root /var/lib/mesos] [--ip 0.0.0.0] [--port 1338] [--refresh 2s]
//	dewar-observer status [--mesos-root DIR]
//	dewar-observer tail [--mesos-root DIR] [--run N] [--stderr] [-n LINES] [-f] TASK PROCESS
//
// It reads the checkpoints the executor writes in each task's run
// directory (package checkpoint) and never changes anything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/dewarhq/dewar/observer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// defaultRoot is Thermos' default (path_detector.py, DEFAULT_MESOS_ROOT).
const defaultRoot = "/var/lib/mesos"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "status":
			return status(args[1:], stdout, stderr)
		case "tail":
			return tail(ctx, args[1:], stdout, stderr)
		}
	}
	return serve(ctx, args, stderr)
}

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("dewar-observer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Flag names and defaults as Thermos' observer
	// (src/main/python/apache/aurora/tools/thermos_observer.py).
	root := fs.String("mesos-root", defaultRoot, "the Mesos agent's work directory (--work_dir) to find tasks in")
	ip := fs.String("ip", "0.0.0.0", "the address to listen on")
	port := fs.Int("port", 1338, "the port to listen on (0: any free port, printed on start)")
	refresh := fs.Duration("refresh", 2*time.Second, "how long a scan of --mesos-root is reused; new and ended tasks show up within it")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dewar-observer: unknown command %q: status, tail, or flags only to serve\n", fs.Arg(0))
		return 2
	}
	log, _ := zap.NewProduction()
	defer log.Sync()
	srv, err := observer.NewServer(observer.Options{Root: *root, TTL: *refresh, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "dewar-observer:", err)
		return 1
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*ip, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(stderr, "dewar-observer: %v; choose another --port or --ip\n", err)
		return 1
	}
	// The one line scripts (make demo) read to find the observer.
	fmt.Fprintf(stderr, "observer: http://%s/\n", ln.Addr())
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "dewar-observer:", err)
		return 1
	}
	return 0
}

// index opens the work dir for a command-line verb (no cache: one scan).
func index(root string, stderr io.Writer) *observer.Index {
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		fmt.Fprintf(stderr, "dewar-observer: --mesos-root %s is not a directory: give the agent's --work_dir\n", root)
		return nil
	}
	return observer.NewIndex(root, 0, nil)
}

func status(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dewar-observer status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("mesos-root", defaultRoot, "the Mesos agent's work directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	x := index(*root, stderr)
	if x == nil {
		return 1
	}
	if err := observer.Status(stdout, x); err != nil {
		fmt.Fprintln(stderr, "dewar-observer status:", err)
		return 1
	}
	return 0
}

func tail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dewar-observer tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("mesos-root", defaultRoot, "the Mesos agent's work directory")
	runN := fs.Int("run", -1, "the process run (default: the last)")
	useStderr := fs.Bool("stderr", false, "show stderr instead of stdout")
	lines := fs.Int("n", 10, "lines of the end to show")
	follow := fs.Bool("f", false, "keep showing what is appended, until Ctrl-C")
	// Flags may come before or after TASK PROCESS.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "usage: dewar-observer tail [--mesos-root DIR] [--run N] [--stderr] [-n LINES] [-f] TASK PROCESS")
		return 2
	}
	x := index(*root, stderr)
	if x == nil {
		return 1
	}
	o := observer.TailOptions{Run: *runN, Lines: *lines, Follow: *follow, Stream: "stdout"}
	if *useStderr {
		o.Stream = "stderr"
	}
	if err := observer.Tail(ctx, stdout, x, pos[0], pos[1], o); err != nil {
		fmt.Fprintln(stderr, "dewar-observer tail:", err)
		return 1
	}
	return 0
}
