// Command dewar-observer shows every dewar task of a Mesos agent in a
// browser, with Thermos' observer URLs (port 1338), as JSON and as
// Prometheus metrics:
//
//	dewar-observer [--mesos-root /var/lib/mesos] [--ip 0.0.0.0] [--port 1338] [--refresh 2s]
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
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("dewar-observer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Flag names and defaults as Thermos' observer
	// (src/main/python/apache/aurora/tools/thermos_observer.py).
	root := fs.String("mesos-root", "/var/lib/mesos", "the Mesos agent's work directory (--work_dir) to find tasks in")
	ip := fs.String("ip", "0.0.0.0", "the address to listen on")
	port := fs.Int("port", 1338, "the port to listen on (0: any free port, printed on start)")
	refresh := fs.Duration("refresh", 2*time.Second, "how long a scan of --mesos-root is reused; new and ended tasks show up within it")
	if err := fs.Parse(args); err != nil {
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
